import { tr } from '@/i18n';
import { fmtList } from '@/lib/format';

export const TARGETS = ['closedCampus', 'guards', 'networked', 'posts'] as const;
export type Target = (typeof TARGETS)[number];

/**
 * The parts of a school day's `reasons` the console reads. The document declares `reasons` free-form (a
 * stored day keeps the shape it was computed with: src/modules/compliance/compliance.service.ts `compute`),
 * so this is the console's reading of it, each part optional.
 */
interface Reasons {
  closedCampus?: { gates: { gate: string }[] };
  guards?: { required: number; actual: number; short: number };
  networked?: { offlineCameraCount: number; offlineButtons: unknown[]; notPoliceLinked: unknown[]; noAlarmButton?: boolean; noCamera?: boolean };
  posts?: { windows: { gate: string; window: string; required: number; present: number }[] };
  maintenance?: { cameras: number; buttons: number };
}

/**
 * Why a school misses a target, one line per cause, in the page's language — from the reasons' data,
 * never the server's Chinese text. Shared by the guard phone (its own school) and the supervisor's
 * compliance page (every school).
 */
export function complianceReasons(reasons: unknown, target: Target): string[] {
  const r = reasons as Reasons | undefined | null;
  if (!r) return [];
  if (target === 'closedCampus' && r.closedCampus)
    return [tr('guard.compliance.reason.gates', { gates: fmtList([...new Set(r.closedCampus.gates.map((g) => g.gate))]) })];
  if (target === 'guards' && r.guards)
    return [tr('guard.compliance.reason.guards', { actual: r.guards.actual, required: r.guards.required, short: r.guards.short })];
  if (target === 'networked' && (r.networked || r.maintenance)) {
    const out: string[] = [];
    if (r.maintenance) out.push(tr('guard.compliance.reason.maintenance', { cameras: r.maintenance.cameras, buttons: r.maintenance.buttons }));
    const n = r.networked;
    if (!n) return out;
    if (n.noCamera) out.push(tr('guard.compliance.reason.noCamera'));
    if (n.noAlarmButton) out.push(tr('guard.compliance.reason.noButton'));
    if (n.offlineCameraCount) out.push(tr('guard.compliance.reason.offlineCameras', { n: n.offlineCameraCount }));
    if (n.offlineButtons.length) out.push(tr('guard.compliance.reason.offlineButtons', { n: n.offlineButtons.length }));
    if (n.notPoliceLinked.length) out.push(tr('guard.compliance.reason.notLinked', { n: n.notPoliceLinked.length }));
    return out;
  }
  if (target === 'posts' && r.posts)
    return r.posts.windows.map((w) =>
      tr('guard.compliance.reason.post', {
        gate: w.gate,
        window: w.window === 'arrival' ? tr('guard.compliance.reason.arrival') : tr('guard.compliance.reason.dismissal'),
        present: w.present,
        required: w.required,
      }),
    );
  return [];
}
