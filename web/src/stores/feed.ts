import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { ActionAnswer, ActionName, ActionPayloads, AnyConsoleEvent, Snapshot, SystemState } from '@/api/console-protocol';
import { ConsoleConnection, type ConnState } from '@/api/console-socket';
import { testHooksEnabled } from '@/lib/test-hooks';
import { useSession } from './session';

export interface FeedListener {
  snapshot(s: Snapshot): void;
  event(e: AnyConsoleEvent): void;
}

/**
 * The session's one console socket, shared by whichever surfaces are on screen: they subscribe
 * to snapshots and events. Started by the first surface that needs it, stopped with the session.
 */
export const useFeed = defineStore('feed', () => {
  const session = useSession();
  const conn = ref<ConnState>('offline');
  const lastSeq = ref(0);
  /** The server's degraded state, as last heard (null before the first connect). */
  const systemState = ref<SystemState | null>(null);
  /** Seqs applied, in order, snapshots as `{ snapshot: seq }` (kept only for tests). */
  const seqs: (number | { snapshot: number })[] = [];
  const listeners = new Set<FeedListener>();
  let connection: ConsoleConnection | null = null;

  function start(): void {
    if (connection) return;
    const c = new ConsoleConnection({
      token: () => session.tokens?.accessToken ?? null,
      refresh: () => session.refresh(),
      expired: () => session.expire(),
      onState: (s) => (conn.value = s),
      onSystemState: (s) => (systemState.value = s),
      onSnapshot: (s) => {
        lastSeq.value = s.seq;
        if (testHooksEnabled) seqs.push({ snapshot: s.seq });
        for (const l of listeners) l.snapshot(s);
      },
      onEvent: (e) => {
        lastSeq.value = e.seq;
        if (testHooksEnabled) seqs.push(e.seq);
        for (const l of listeners) l.event(e);
      },
    });
    connection = c;
    c.start();
    session.scope.onEnd(stop);
  }

  function stop(): void {
    connection?.stop();
    connection = null;
    lastSeq.value = 0;
    seqs.length = 0;
    conn.value = 'offline';
    systemState.value = null;
  }

  session.onNewToken((token) => connection?.reauth(token));

  function subscribe(l: FeedListener): () => void {
    listeners.add(l);
    return () => listeners.delete(l);
  }

  function act<A extends ActionName>(name: A, payload: ActionPayloads[A]): Promise<ActionAnswer> {
    if (!connection) return Promise.resolve({ ok: false, error: { status: 0, code: 'NETWORK', message: 'not connected' } });
    return connection.act(name, payload);
  }

  return { conn, lastSeq, systemState, seqs, start, stop, subscribe, act, dropTransport: () => connection?.dropTransport() };
});
