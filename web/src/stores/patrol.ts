import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { AnyConsoleEvent } from '@/api/console-protocol';
import { anyErrorMsg } from '@/api/errors';
import { api } from '@/api/http';
import type { RectificationTaskItem } from '@/api/responses';
import type { Msg } from '@/i18n';
import { useFeed } from './feed';
import { useSession } from './session';

/** Open findings listed in the panel (the count says how many there are in all). */
export const SHOWN = 10;
/** Findings of one district run arrive as several events: one reload for them all. */
const RELOAD_AFTER_EVENT_MS = 800;

/**
 * The operator's patrol findings panel: the open findings — open rectification tasks, one per
 * problem at a school (a problem found again joins its task) — the most recently opened first, and
 * how many are open in all (GET /rectification-tasks?status=open&order=newest; school staff get
 * their own school's). Reloaded when findings arrive on the console feed, on a fresh snapshot
 * (after a reconnect), and by the panel every minute (a task closed elsewhere sends no event).
 */
export const usePatrol = defineStore('patrol', () => {
  const session = useSession();
  const feed = useFeed();
  const items = ref<RectificationTaskItem[]>([]);
  /** Open findings in all (the badge). */
  const total = ref(0);
  /** Whether a list has been read since login (until then "none" is not said). */
  const loaded = ref(false);
  const error = ref<Msg | null>(null);
  let timer: ReturnType<typeof setTimeout> | null = null;
  let loading: Promise<void> | null = null;
  let again = false;

  async function read(): Promise<void> {
    try {
      const p = await api.get('/api/v1/rectification-tasks', { query: { status: 'open', order: 'newest', limit: SHOWN } });
      items.value = p.items;
      total.value = p.total;
      loaded.value = true;
      error.value = null;
    } catch (e) {
      error.value = anyErrorMsg(e); // the list stays as it was; the next reload retries
    }
  }

  /** Reads the list now; a call while one is under way reads once more after it (never two at once). */
  function load(): Promise<void> {
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      do {
        again = false;
        await read();
      } while (again && session.authenticated);
      loading = null;
    })();
    return loading;
  }

  function loadSoon(): void {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      void load();
    }, RELOAD_AFTER_EVENT_MS);
  }

  feed.subscribe({
    snapshot: () => {
      if (loaded.value) loadSoon();
    },
    event: (e: AnyConsoleEvent) => {
      if (e.type === 'patrol.finding' || e.type === 'patrol.school_findings') loadSoon();
    },
  });
  session.onEnd(() => {
    if (timer) clearTimeout(timer);
    timer = null;
    items.value = [];
    total.value = 0;
    loaded.value = false;
    error.value = null;
  });

  return { items, total, loaded, error, load };
});
