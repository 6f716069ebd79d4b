import { defineStore } from 'pinia';
import { shallowRef } from 'vue';
import type { AnyConsoleEvent, Snapshot } from '@/api/console-protocol';
import { api } from '@/api/http';
import type { DeviceSummary } from '@/api/responses';
import { useFeed } from './feed';
import { useSession } from './session';

/** Device summary refresh: periodic, and soon after device events (batched: one request per burst). */
const PERIOD_MS = 30_000;
const AFTER_EVENT_MS = 2_000;

/** The district's device counts (the strip above the incidents): from the snapshot, then refreshed. */
export const useDevices = defineStore('devices', () => {
  const session = useSession();
  const feed = useFeed();
  const summary = shallowRef<DeviceSummary | null>(null);
  let pending: (() => void) | null = null;
  let started = false;

  async function load(): Promise<void> {
    const scope = session.scope;
    try {
      const s = await api.get('/api/v1/device-health/summary', { query: { limit: 200 } });
      if (!scope.ended) summary.value = s;
    } catch {
      /* the strip keeps its last figures; the next period retries */
    }
  }

  function soon(): void {
    pending ??= session.scope.timeout(() => {
      pending = null;
      void load();
    }, AFTER_EVENT_MS);
  }

  /** Starts the periodic refresh for this session (idempotent). */
  function start(): void {
    if (started) return;
    started = true;
    session.scope.interval(() => void load(), PERIOD_MS);
    session.scope.onEnd(() => (started = false));
  }

  feed.subscribe({
    snapshot: (s: Snapshot) => {
      if (s.devices) summary.value = s.devices;
    },
    event: (e: AnyConsoleEvent) => {
      if (e.type.startsWith('device.')) soon();
    },
  });
  session.onEnd(() => {
    summary.value = null;
    pending = null;
  });

  return { summary, start, load };
});
