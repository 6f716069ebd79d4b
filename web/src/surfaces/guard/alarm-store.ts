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
import { type PhotoPhase, uploadPhoto } from './alarm-photo';

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
  /** The photo chosen for the alarm being made (kept in memory only: a reload sends the alarm without it). */
  const photo = shallowRef<Blob | null>(null);
  const photoPhase = ref<PhotoPhase | null>(null);
  const photoError = ref<Msg | null>(null);
  /** Photos sent for the received alarm (a key per photo: `<alarm key>.p<n>`). */
  let photoSeq = 0;
  let photoKeyBase = '';
  let photoAbort: AbortController | null = null;

  /** Chooses (or clears) the photo that goes with the next alarm; after a "received", sends it to that alarm at once. */
  function setPhoto(b: Blob | null): void {
    photo.value = b;
    if (b && phase.value === 'received' && incident.value) void sendPhoto();
  }

  /** Sends the chosen photo to the received alarm (retried on no answer, same key: stored once). */
  async function sendPhoto(): Promise<void> {
    const inc = incident.value;
    const b = photo.value;
    if (!inc || !b) return;
    photoAbort?.abort();
    const mine = new AbortController();
    photoAbort = mine;
    const stop = session.scope.onEnd(() => mine.abort());
    photoError.value = null;
    const key = `${photoKeyBase || inc.id}.p${++photoSeq}`;
    const stored = await uploadPhoto(
      { incidentId: inc.id },
      b,
      key,
      (ph, e) => {
        photoPhase.value = ph;
        if (e) photoError.value = anyErrorMsg(e);
      },
      mine.signal,
    );
    stop();
    const ok = stored !== null;
    if (ok && photo.value === b) photo.value = null;
    if (!ok && !mine.signal.aborted) photoSeq--; // "try again" sends the same photo under the same key
  }

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
      photoKeyBase = p.key;
      photoSeq = 0;
      store(null);
      if (photo.value) void sendPhoto();
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
      photoAbort?.abort();
      photo.value = null;
      photoPhase.value = null;
      photoError.value = null;
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
    photoAbort?.abort();
    photo.value = null;
    photoPhase.value = null;
    pending.value = null;
    phase.value = null;
    incident.value = null;
    error.value = null;
  });

  return {
    pending,
    phase,
    attempt,
    retryAt,
    error,
    incident,
    photo,
    photoPhase,
    photoError,
    setPhoto,
    sendPhoto,
    raise,
    retry,
    discard,
    clear,
    resume,
  };
});
