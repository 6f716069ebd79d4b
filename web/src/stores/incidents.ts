import { defineStore } from 'pinia';
import { computed, reactive, ref, shallowRef } from 'vue';
import type { ActionAnswer, AnyConsoleEvent, Snapshot } from '@/api/console-protocol';
import { ApiError, errorMsg } from '@/api/errors';
import { api } from '@/api/http';
import type { IncidentDetail, IncidentView } from '@/api/responses';
import { isOpen, OPEN_STATUSES, type Outcome, PRIORITY_RANK } from '@/domain';
import type { Msg } from '@/i18n';
import { can, type IncidentAction } from '@/permissions';
import type { IncidentSummary } from '@/shared/server';
import { useFeed } from './feed';
import { useSession } from './session';

/** An incident as the console holds it: the event summary, plus the view fields when a REST answer brought them. */
export type Incident = IncidentSummary & { id: string } & Partial<Pick<IncidentView, 'resolvedAt' | 'resolvedBy' | 'cancelReason' | 'cancelledAt'>>;

/** What the operator is typing or choosing for one incident: never shared between incidents. */
export interface Draft {
  note: string;
  outcome: Outcome | null;
  cancelReason: string;
}

export interface ActionMessage {
  ok: boolean;
  msg: Msg;
  /** For failures: why, in the page's language. */
  reason?: Msg;
  stamp?: number;
}

/** GET /incidents page size while loading open incidents the snapshot did not carry (the api's registry.maxPageSize). */
const PAGE = 500;
const MAX_PAGES = 40;
const RECENT_MAX = 30;

const rank = (p: string) => PRIORITY_RANK[p as keyof typeof PRIORITY_RANK] ?? 9;
const time = (iso: string) => Date.parse(iso) || 0;

/**
 * Order of the live list: unacknowledged first — escalated ones first of those, highest level
 * first — then by priority, then OLDEST first: the alarm that has waited longest is at the top,
 * never sunk below newer ones.
 */
export function compareIncidents(a: Incident, b: Incident): number {
  const esc = (i: Incident) => (i.status === 'raised' ? i.escalationLevel : 0);
  return (
    Number(b.status === 'raised') - Number(a.status === 'raised') ||
    esc(b) - esc(a) ||
    rank(a.priority) - rank(b.priority) ||
    time(a.firstPressAt) - time(b.firstPressAt) ||
    a.id.localeCompare(b.id)
  );
}

function toIncident(x: IncidentSummary | IncidentView, prev?: Incident): Incident {
  const id = 'id' in x && typeof x.id === 'string' ? x.id : x.incidentId;
  return { ...(prev ?? {}), ...x, id, incidentId: id } as Incident;
}

/**
 * The operator's incidents: the open ones (live from the console socket), the one selected with
 * its detail and timeline, each incident's draft (note, outcome, cancel reason), and the actions.
 */
export const useIncidents = defineStore('incidents', () => {
  const session = useSession();
  const feed = useFeed();

  const incidents = reactive(new Map<string, Incident>());
  /** Open incidents the server counted at the last snapshot. */
  const snapshotTotal = ref(0);
  const loadingRest = ref(false);
  /** Not every open incident could be loaded (more than MAX_PAGES pages). */
  const partial = ref(false);
  const selectedId = ref<string | null>(null);
  const detail = shallowRef<IncidentDetail | null>(null);
  const detailError = ref<Msg | null>(null);
  const drafts = reactive(new Map<string, Draft>());
  const messages = reactive(new Map<string, ActionMessage>());
  const busy = reactive(new Set<string>());
  /** Incidents closed since login (newest first), so a resolved alarm can be found again. */
  const recent = ref<Incident[]>([]);
  /** Bumped by every event about an incident: an action's answer older than an event is not applied. */
  const versions = new Map<string, number>();
  /** Incidents an event has told us about since the last snapshot (a REST page never overrides them). */
  let touched = new Set<string>();
  let epoch = 0;
  let messageStamp = 0;

  const open = computed(() => [...incidents.values()].filter((i) => isOpen(i.status)));
  const ordered = computed(() => open.value.slice().sort(compareIncidents));
  const unacked = computed(() => ordered.value.filter((i) => i.status === 'raised'));
  /** Unacknowledged P1 alarms, oldest first: they take over the screen. */
  const unackedP1 = computed(() => unacked.value.filter((i) => i.priority === 'P1'));
  const selected = computed<Incident | IncidentDetail | null>(() => {
    const id = selectedId.value;
    if (!id) return null;
    const inc = incidents.get(id);
    const d = detail.value?.id === id ? detail.value : null;
    return d && inc
      ? { ...d, ...inc, resolvedBy: d.resolvedBy, resolvedAt: d.resolvedAt, cancelReason: d.cancelReason, timeline: d.timeline }
      : (d ?? inc ?? null);
  });

  function draft(id: string): Draft {
    let d = drafts.get(id);
    if (!d) {
      drafts.set(id, { note: '', outcome: null, cancelReason: '' });
      d = drafts.get(id)!;
    }
    return d;
  }

  function forget(id: string): void {
    if (selectedId.value === id) return;
    incidents.delete(id);
    drafts.delete(id);
    messages.delete(id);
    versions.delete(id);
  }

  function upsert(x: IncidentSummary | IncidentView): Incident {
    const inc = toIncident(x, incidents.get('id' in x && typeof x.id === 'string' ? x.id : x.incidentId));
    const wasOpen = incidents.has(inc.id) && isOpen(incidents.get(inc.id)!.status);
    incidents.set(inc.id, inc);
    if (!isOpen(inc.status)) {
      if (wasOpen || !recent.value.some((r) => r.id === inc.id)) recent.value = [inc, ...recent.value.filter((r) => r.id !== inc.id)].slice(0, RECENT_MAX);
      forget(inc.id);
    }
    return inc;
  }

  // ---------- the feed ----------
  function onSnapshot(s: Snapshot): void {
    epoch++;
    touched = new Set();
    const keep = selectedId.value ? incidents.get(selectedId.value) : undefined;
    incidents.clear();
    for (const v of s.incidents) incidents.set(v.id, toIncident(v));
    if (keep && !incidents.has(keep.id)) incidents.set(keep.id, keep);
    snapshotTotal.value = s.incidentsTotal;
    partial.value = false;
    if (s.incidentsTotal > s.incidents.length) void loadRest(epoch, s.incidents);
    if (selectedId.value) void loadDetail(selectedId.value);
  }

  function onEvent(e: AnyConsoleEvent): void {
    switch (e.type) {
      case 'incident.raised':
      case 'incident.updated':
      case 'incident.escalated':
      case 'incident.relay_late': {
        const id = e.payload.incidentId;
        touched.add(id);
        versions.set(id, (versions.get(id) ?? 0) + 1);
        upsert(e.payload);
        if (selectedId.value === id) detailSoon(id);
        break;
      }
      default:
        break;
    }
  }

  /**
   * A snapshot carries the newest open incidents only (console.snapshotMaxIncidents): during a
   * mass event the oldest — the ones waiting longest — would be missing. Load the rest, page by
   * page, older than the oldest we hold (keyset on first press: closings between pages cannot
   * shift a row out of reach). Incidents an event already told us about keep the event's state.
   */
  async function loadRest(myEpoch: number, first: IncidentView[]): Promise<void> {
    loadingRest.value = true;
    try {
      let before = first.reduce((m, v) => Math.min(m, time(v.firstPressAt)), Infinity);
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = await api.get('/api/v1/incidents', { query: { status: [...OPEN_STATUSES], limit: PAGE, to: new Date(before + 1).toISOString() } });
        if (myEpoch !== epoch) return;
        let oldest = before;
        for (const v of res.items) {
          oldest = Math.min(oldest, time(v.firstPressAt));
          if (!touched.has(v.id) && !incidents.has(v.id) && isOpen(v.status)) incidents.set(v.id, toIncident(v));
        }
        if (res.items.length < PAGE) return;
        if (oldest >= before) break; // a page of one instant: no progress possible with this cursor
        before = oldest;
      }
      partial.value = true;
    } catch {
      if (myEpoch === epoch) partial.value = true;
    } finally {
      if (myEpoch === epoch) loadingRest.value = false;
    }
  }

  // ---------- selection and detail ----------
  function select(id: string | null): void {
    const prev = selectedId.value;
    if (prev === id) return;
    selectedId.value = id;
    detail.value = null;
    detailError.value = null;
    // A closed incident stays only while it is on screen.
    if (prev && incidents.has(prev) && !isOpen(incidents.get(prev)!.status)) forget(prev);
    if (id) {
      if (!incidents.has(id)) {
        const r = recent.value.find((x) => x.id === id);
        if (r) incidents.set(id, r);
      }
      void loadDetail(id);
    }
  }

  let cancelDetailTimer = (): void => undefined;
  function detailSoon(id: string): void {
    cancelDetailTimer();
    cancelDetailTimer = session.scope.timeout(() => void loadDetail(id), 150);
  }

  async function loadDetail(id: string): Promise<void> {
    try {
      const d = await api.get('/api/v1/incidents/{id}', { path: { id } });
      if (selectedId.value !== id) return;
      detail.value = d;
      detailError.value = null;
      if (!incidents.has(id)) incidents.set(id, toIncident(d));
    } catch (e) {
      if (selectedId.value === id && e instanceof ApiError && e.status !== 401) detailError.value = errorMsg(e);
    }
  }

  // ---------- actions ----------
  /** POST /incidents/:id/acknowledge, answered like a socket action. */
  async function acknowledgeOverRest(id: string, body: { note?: string }): Promise<ActionAnswer> {
    try {
      return { ok: true, incident: (await api.post('/api/v1/incidents/{id}/acknowledge', { path: { id }, body })) as IncidentView };
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'NETWORK', (e as Error).message);
      return { ok: false, error: { status: err.status, code: err.code, message: err.message, details: err.details } };
    }
  }

  async function act(action: IncidentAction, id: string): Promise<boolean> {
    const role = session.role;
    if (!role || !can(role, action) || busy.has(id)) return false;
    const d = draft(id);
    const note = d.note.trim();
    const withNote = note ? { note } : {};
    if (action === 'resolve' && !d.outcome) {
      messages.set(id, { ok: false, msg: { key: 'act.needOutcome' } });
      return false;
    }
    if (action === 'cancel' && !d.cancelReason.trim()) {
      messages.set(id, { ok: false, msg: { key: 'act.needReason' } });
      return false;
    }
    if (action === 'note' && !note) return false;
    busy.add(id);
    const scope = session.scope;
    const version = versions.get(id) ?? 0;
    // An acknowledgement must not wait for the live socket (the P1 takeover would hold the screen): without it, REST.
    const answer = await (action === 'acknowledge' && feed.conn !== 'online'
      ? acknowledgeOverRest(id, withNote)
      : action === 'resolve'
        ? feed.act('incident:resolve', { id, outcome: d.outcome!, ...withNote })
        : action === 'cancel'
          ? feed.act('incident:cancel', { id, reason: d.cancelReason.trim() })
          : action === 'note'
            ? feed.act('incident:note', { id, note })
            : feed.act(`incident:${action}`, { id, ...withNote }));
    busy.delete(id);
    if (scope.ended) return false; // logged out meanwhile: the answer belongs to a finished session
    if (!answer.ok) {
      messages.set(id, { ok: false, msg: { key: 'act.failed' }, reason: errorMsg(answer.error) });
      return false;
    }
    // Only what was sent is cleared: the draft of this incident, never another's.
    if (note && action !== 'cancel') d.note = '';
    if (action === 'resolve') d.outcome = null;
    if (action === 'cancel') d.cancelReason = '';
    const stamp = ++messageStamp;
    messages.set(id, { ok: true, msg: { key: 'act.done' }, stamp });
    // "Done" fades; failures stay until the next attempt.
    session.scope.timeout(() => messages.get(id)?.stamp === stamp && messages.delete(id), 5000);
    if ((versions.get(id) ?? 0) === version) upsert(answer.incident);
    if (selectedId.value === id) void loadDetail(id);
    return true;
  }

  function reset(): void {
    epoch++;
    incidents.clear();
    drafts.clear();
    messages.clear();
    busy.clear();
    versions.clear();
    touched = new Set();
    recent.value = [];
    selectedId.value = null;
    detail.value = null;
    detailError.value = null;
    snapshotTotal.value = 0;
    loadingRest.value = false;
    partial.value = false;
  }

  feed.subscribe({ snapshot: onSnapshot, event: onEvent });
  session.onEnd(reset);

  return {
    incidents,
    ordered,
    open,
    unacked,
    unackedP1,
    selectedId,
    selected,
    detail,
    detailError,
    drafts,
    messages,
    busy,
    recent,
    snapshotTotal,
    loadingRest,
    partial,
    draft,
    select,
    act,
    reset,
  };
});
