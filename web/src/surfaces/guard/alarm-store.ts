import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import { anyErrorMsg, ApiError } from '@/api/errors';
import { api } from '@/api/http';
import type { RaisedIncident } from '@/api/responses';
import type { Msg } from '@/i18n';
import { useSession } from '@/stores/session';
import {
  type AlarmBody,
  type AlarmPhase,
  deliverAlarm,
  isTransientStatus,
  newClientEventId,
  type PendingAlarm,
  RESUME_MAX_AGE_MS,
  TRY_TIMEOUT_MS,
  type TryResult,
} from './alarm-sender';

const STORAGE_KEY = 'shouhu.guard.pendingAlarm';

function readPending(): PendingAlarm | null {
  try {
    const p = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null') as PendingAlarm | null;
    return p && typeof p.key === 'string' && typeof p.createdAt === 'number' && p.body && typeof p.body.schoolId === 'string' ? p : null;
  } catch {
    return null;
  }
}

/** One try of POST /incidents with the alarm's Idempotency-Key. */
async function sendOnce(p: PendingAlarm): Promise<TryResult<RaisedIncident>> {
  try {
    const incident = await api.post('/api/v1/incidents', { body: p.body, headers: { 'Idempotency-Key': p.key }, timeoutMs: TRY_TIMEOUT_MS });
    return { ok: true, incident };
  } catch (e) {
    const status = e instanceof ApiError ? e.status : 0;
    return { ok: false, transient: isTransientStatus(status), error: e };
  }
}

/**
 * The guard's alarm: at most one in flight; kept in localStorage until the server has it, so a
 * reload (or the phone killing the page) resumes the same alarm with the same key within
 * RESUME_MAX_AGE_MS; older, it waits for the guard to send it again or discard it.
 */
export const useGuardAlarm = defineStore('guardAlarm', () => {
  const session = useSession();
  const pending = shallowRef<PendingAlarm | null>(null);
  const phase = ref<AlarmPhase | null>(null);
  const attempt = ref(0);
  const retryAt = ref<number | null>(null);
  const error = ref<Msg | null>(null);
  const incident = shallowRef<RaisedIncident | null>(null);
  let abort: AbortController | null = null;

  function store(p: PendingAlarm | null): void {
    pending.value = p;
    if (p) localStorage.setItem(STORAGE_KEY, JSON.stringify(p));
    else localStorage.removeItem(STORAGE_KEY);
  }

  async function run(p: PendingAlarm): Promise<void> {
    abort?.abort();
    const mine = new AbortController();
    abort = mine;
    const stop = session.scope.onEnd(() => mine.abort());
    error.value = null;
    incident.value = null;
    const got = await deliverAlarm(p, sendOnce, {
      signal: mine.signal,
      onPhase: (ph, info) => {
        phase.value = ph;
        attempt.value = info.attempt;
        retryAt.value = info.retryInMs ? Date.now() + info.retryInMs : null;
        if (info.error) error.value = anyErrorMsg(info.error);
      },
    });
    const aborted = mine.signal.aborted;
    stop(); // (runs the cleanup now: aborts this finished delivery's controller)
    if (aborted) return;
    if (got) {
      incident.value = got;
      store(null);
    }
  }

  /** The button: a new alarm (new key) — unless one is still on its way (then nothing). */
  function raise(body: AlarmBody): void {
    if (pending.value && phase.value !== 'failed') return;
    if (pending.value && phase.value === 'failed') return void run(pending.value);
    const p: PendingAlarm = { key: newClientEventId(), body, createdAt: Date.now(), userId: session.me?.id ?? '' };
    store(p);
    void run(p);
  }

  /** Sends the failed alarm again: same key, same body (the server never makes a second incident). */
  function retry(): void {
    if (pending.value) void run(pending.value);
  }

  /** The guard gives up on an unconfirmed alarm (it may still have reached the server: the list shows). */
  function discard(): void {
    abort?.abort();
    store(null);
    phase.value = null;
    error.value = null;
  }

  /** After a "received": ready for the next alarm. */
  function clear(): void {
    if (phase.value === 'received') {
      phase.value = null;
      incident.value = null;
    }
  }

  /** On opening the surface: a pending alarm of this user is resumed (recent) or shown as failed (old). */
  function resume(): void {
    if (pending.value) return;
    const p = readPending();
    if (!p || p.userId !== session.me?.id) return;
    pending.value = p;
    if (Date.now() - p.createdAt <= RESUME_MAX_AGE_MS) void run(p);
    else {
      phase.value = 'failed';
      error.value = { key: 'guard.alarm.stale' };
    }
  }

  session.onEnd(() => {
    abort?.abort();
    pending.value = null;
    phase.value = null;
    incident.value = null;
    error.value = null;
  });

  return { pending, phase, attempt, retryAt, error, incident, raise, retry, discard, clear, resume };
});
