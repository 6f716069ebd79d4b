import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { AnyConsoleEvent } from '@/api/console-protocol';
import { ApiError, errorMsg } from '@/api/errors';
import { api } from '@/api/http';
import type { Msg } from '@/i18n';
import { now } from '@/lib/format';
import type { DrillWindowItem } from '@/shared/server';
import { useFeed } from './feed';
import { useSession } from './session';

const PERIOD_MS = 60_000;
/** Roles that approve and end drill windows and make drills real (the control center). */
const CENTER = ['admin', 'operator', 'supervisor'];

/**
 * Drill windows (演练) on the console (issue 11 §2): the approved windows in force now — an alarm
 * at such a school shows as a drill — and the schools' pending requests for the control center to
 * approve. Reloaded on every `drill.window` event and once a minute (a planned window starts by
 * the clock, with no event).
 */
export const useDrills = defineStore('drills', () => {
  const session = useSession();
  const feed = useFeed();
  const windows = ref<DrillWindowItem[]>([]);
  const message = ref<Msg | null>(null);
  let started = false;

  const center = computed(() => CENTER.includes(session.role ?? ''));
  const active = computed(() =>
    windows.value.filter((w) => w.status === 'approved' && Date.parse(w.startsAt) <= now.value && Date.parse(w.endsAt) > now.value),
  );
  const pending = computed(() => windows.value.filter((w) => w.status === 'pending' && Date.parse(w.endsAt) > now.value));

  async function load(): Promise<void> {
    if (!session.role) return;
    const scope = session.scope;
    try {
      const list = await api.get('/api/v1/incidents/drill-windows');
      if (!scope.ended) windows.value = list.filter((w) => Date.parse(w.endsAt) > Date.now());
    } catch {
      /* keep the last list; the next period retries */
    }
  }

  async function act(what: 'approve' | 'end', id: string): Promise<void> {
    message.value = null;
    try {
      await api.post(what === 'approve' ? '/api/v1/incidents/drill-windows/{id}/approve' : '/api/v1/incidents/drill-windows/{id}/end', { path: { id } });
      await load();
    } catch (e) {
      message.value = e instanceof ApiError ? errorMsg(e) : { key: 'errors.network' };
    }
  }

  function start(): void {
    if (started) return;
    started = true;
    void load();
    session.scope.interval(() => void load(), PERIOD_MS);
    session.scope.onEnd(() => (started = false));
  }

  function onEvent(e: AnyConsoleEvent): void {
    if (e.type === 'drill.window') void load();
  }

  feed.subscribe({ snapshot: () => void load(), event: onEvent });
  session.onEnd(() => {
    windows.value = [];
    message.value = null;
  });

  return { windows, active, pending, center, message, start, load, approve: (id: string) => act('approve', id), end: (id: string) => act('end', id) };
});
