import { computed, onBeforeUnmount, watch, watchEffect } from 'vue';
import { tr } from '@/i18n';
import { beep } from '@/lib/alarm-sound';
import { useIncidents } from '@/stores/incidents';
import { useSession } from '@/stores/session';

/**
 * While any alarm is unacknowledged: the tab title flashes and the alarm sounds — every 2 s,
 * and every second (higher, louder) while a P1 is unacknowledged — until it is acknowledged.
 */
export function useAlertLoop(): void {
  const store = useIncidents();
  const session = useSession();
  const unacked = computed(() => store.unacked.length);
  const urgent = computed(() => store.unackedP1.length > 0);
  let stop: (() => void) | null = null;
  let tick = 0;

  const base = () => tr('app.title');
  const render = (flashOn: boolean) => {
    document.title = flashOn && unacked.value > 0 ? `${tr('alert.title')}(${unacked.value}) ${base()}` : base();
  };

  watch(
    unacked,
    (n) => {
      if (n > 0 && !stop) {
        tick = 0;
        const step = () => {
          tick++;
          render(tick % 2 === 1);
          if (urgent.value || tick % 2 === 1) beep(urgent.value);
        };
        step();
        stop = session.scope.interval(step, 1000);
      } else if (n === 0 && stop) {
        stop();
        stop = null;
        render(false);
      }
      document.body.dataset.alert = n > 0 ? 'on' : 'off';
      document.body.dataset.unacked = String(n);
    },
    { immediate: true },
  );
  // The title follows the language when nothing flashes.
  watchEffect(() => {
    if (unacked.value === 0) render(false);
  });
  onBeforeUnmount(() => {
    stop?.();
    stop = null;
    document.body.dataset.alert = 'off';
    document.title = base();
  });
}
