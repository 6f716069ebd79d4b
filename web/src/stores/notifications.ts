import { defineStore } from 'pinia';
import { computed, ref, shallowRef, watch } from 'vue';
import type { AnyConsoleEvent } from '@/api/console-protocol';
import { api } from '@/api/http';
import type { DutyNow, NotificationChannel, NotificationDelivery } from '@/api/responses';
import { escalationTone } from '@/lib/alarm-sound';
import { useFeed } from './feed';
import { useIncidents } from './incidents';
import { useSession } from './session';

const PERIOD_MS = 60_000;
const AFTER_EVENT_MS = 500;
/** Roles that may read the roster and channels (the control center); school staff see neither. */
const CENTER = ['admin', 'operator', 'supervisor', 'auditor'];

/**
 * Escalation as the console shows it: who is on duty now and the gaps ahead (值班表), channels
 * failing or silenced (a banner), the messages sent about the selected incident, and the
 * escalation tone when an alarm reaches a new level.
 */
export const useNotifications = defineStore('notifications', () => {
  const session = useSession();
  const feed = useFeed();
  const incidents = useIncidents();
  const duty = shallowRef<DutyNow | null>(null);
  const channels = ref<NotificationChannel[]>([]);
  const deliveries = ref<NotificationDelivery[]>([]);
  const deliveriesFor = ref<string | null>(null);
  /** Escalation events heard this session (tests read it). */
  const escalationsHeard = ref(0);
  let started = false;
  let dutySoon: (() => void) | null = null;
  let deliveriesSoon: (() => void) | null = null;

  const center = computed(() => CENTER.includes(session.role ?? ''));
  const failing = computed(() => channels.value.filter((c) => c.state === 'failing'));
  const silenced = computed(() => channels.value.filter((c) => c.state === 'silenced'));

  async function loadDuty(): Promise<void> {
    if (!center.value) return;
    const scope = session.scope;
    try {
      const d = await api.get('/api/v1/duty/now');
      if (!scope.ended) duty.value = d;
    } catch {
      /* keep the last figures; the next period retries */
    }
  }

  async function loadChannels(): Promise<void> {
    if (!center.value) return;
    const scope = session.scope;
    try {
      const list = await api.get('/api/v1/notifications/channels');
      if (!scope.ended) channels.value = list;
    } catch {
      /* as above */
    }
  }

  async function loadDeliveries(id: string): Promise<void> {
    if (!center.value) return;
    try {
      const r = await api.get('/api/v1/incidents/{id}/notifications', { path: { id } });
      if (incidents.selectedId === id) {
        deliveries.value = r.items;
        deliveriesFor.value = id;
      }
    } catch {
      /* the list stays as it was */
    }
  }

  function start(): void {
    if (started) return;
    started = true;
    void loadDuty();
    void loadChannels();
    session.scope.interval(() => {
      void loadDuty();
      void loadChannels();
    }, PERIOD_MS);
    session.scope.onEnd(() => (started = false));
  }

  watch(
    () => incidents.selectedId,
    (id) => {
      deliveries.value = [];
      deliveriesFor.value = null;
      if (id) void loadDeliveries(id);
    },
  );

  function onEvent(e: AnyConsoleEvent): void {
    switch (e.type) {
      case 'incident.escalated':
        escalationsHeard.value++;
        escalationTone();
        break;
      case 'notification.delivery':
        if (e.payload.incidentId === incidents.selectedId) {
          const id = e.payload.incidentId;
          deliveriesSoon ??= session.scope.timeout(() => {
            deliveriesSoon = null;
            void loadDeliveries(id);
          }, AFTER_EVENT_MS);
        }
        break;
      case 'notification.channel':
        void loadChannels();
        break;
      case 'duty.roster_changed':
      case 'duty.roster_gap':
        dutySoon ??= session.scope.timeout(() => {
          dutySoon = null;
          void loadDuty();
        }, AFTER_EVENT_MS);
        break;
      default:
        break;
    }
  }

  feed.subscribe({ snapshot: () => undefined, event: onEvent });
  session.onEnd(() => {
    duty.value = null;
    channels.value = [];
    deliveries.value = [];
    deliveriesFor.value = null;
    escalationsHeard.value = 0;
    dutySoon = null;
    deliveriesSoon = null;
  });

  return { duty, channels, failing, silenced, deliveries, deliveriesFor, escalationsHeard, center, start, loadDuty, loadChannels };
});
