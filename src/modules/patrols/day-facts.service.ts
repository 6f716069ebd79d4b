import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { DeviceHealthQueries, OnlineTimeService, SchoolOnlineTime } from '../device-health';
import { DeviceStateRow, DeviceStatusService, RegistryService, WatchedDeviceKind } from '../registry';
import { requiredGuardsFor, StaffingRule } from '../school-day';
import { FieldService, GateOpening, PostWindowStatus } from './field.service';

/** The facts of a school's day that audits and compliance judge; each is loaded only when asked for. */
export const DAY_FACTS = ['cameraOnline', 'buttonOnline', 'buttons', 'overdueFaults', 'guards', 'posts', 'gates', 'guardPatrols'] as const;
export type DayFact = (typeof DAY_FACTS)[number];

/** A device offline longer than liveness.faultOverdueHours at the instant judged. */
export interface OverdueFault {
  deviceId: string;
  kind: WatchedDeviceKind;
  /** Camera name, or alarm button code + location; null if the device has left the registry. */
  name: string | null;
  since: Date;
}

/** One school's day, as of an instant. A fact not asked for is absent; one asked for is always set (empty when nothing). */
export interface SchoolDayFacts {
  /** cameraOnline / buttonOnline: online time in school hours (device-health), for the kinds asked for. */
  online?: SchoolOnlineTime;
  /** buttons: the school's one-click alarm buttons (status, police link, last test press). */
  buttons?: DeviceStateRow[];
  /** overdueFaults: its devices offline past liveness.faultOverdueHours, oldest first. */
  overdueFaults?: OverdueFault[];
  /** guards: active full-time guards the bureau verified (`actual`) and those only declared by the school, against the number the staffing rule in force requires. */
  guards?: { required: number; actual: number; declared?: number; rule: StaffingRule };
  /** posts: its protection-post windows whose head-count deadline has passed, with the head count. */
  posts?: PostWindowStatus[];
  /** gates: gates seen open in school hours (gate events past the tolerance, video-round verdicts). */
  gates?: GateOpening[];
  /** guardPatrols: guard patrol check-ins that date. */
  guardPatrols?: number;
}

type SchoolRow = Awaited<ReturnType<RegistryService['schoolsIn']>>[number];

/**
 * The one loader of schools' daily facts for patrol audits and compliance: devices and their
 * online time, alarm buttons, overdue faults, guards, post windows with check-ins, gate openings,
 * guard patrols. Batched: a district of 5,000 schools and 100,000 cameras is a handful of
 * queries (overlapping on the pool), never one per school; the whole district ships no id list.
 */
@Injectable()
export class DayFactsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: RegistryService,
    private readonly statuses: DeviceStatusService,
    private readonly health: DeviceHealthQueries,
    private readonly onlineTime: OnlineTimeService,
    private readonly field: FieldService,
  ) {}

  /**
   * The facts in `want` for `schools` on `date` (Asia/Shanghai) as of `asOf` (now for today, the
   * end of the day for a past date): one entry per school. `now` (default: the clock) bounds the
   * transitions read for online time; `wholeDistrict`: `schools` is the whole registry.
   */
  async load(
    schools: SchoolRow[],
    date: string,
    asOf: Date,
    want: Iterable<DayFact>,
    opts: { wholeDistrict?: boolean; now?: Date } = {},
  ): Promise<Map<string, SchoolDayFacts>> {
    const w = new Set(want);
    const out = new Map<string, SchoolDayFacts>(schools.map((s) => [s.id, {}]));
    if (schools.length === 0 || w.size === 0) return out;
    const ids = schools.map((s) => s.id);
    const filter = opts.wholeDistrict ? undefined : ids; // the whole district: no id list to ship to Postgres
    const kinds = [...(w.has('cameraOnline') ? ['camera' as const] : []), ...(w.has('buttonOnline') ? ['alarm_device' as const] : [])];
    const none = Promise.resolve(null);
    const [online, buttons, faults, guards, posts, gates, patrols] = await Promise.all([
      kinds.length ? this.onlineTime.inSchoolHours(schools, date, asOf, { kinds, wholeDistrict: opts.wholeDistrict, now: opts.now }) : none,
      w.has('buttons') ? this.statuses.alarmDeviceStates(filter) : none,
      w.has('overdueFaults') ? this.overdueFaults(asOf, filter) : none,
      w.has('guards') ? this.registry.fullTimeGuardCounts(filter) : none,
      w.has('posts') ? this.field.postWindowStatus(schools, date, asOf) : none,
      w.has('gates') ? this.field.gateOpenings(schools, date, asOf) : none,
      w.has('guardPatrols') ? this.field.guardPatrolCounts(ids, date) : none,
    ]);
    const rule = this.config.patrols.staffingRule;
    const byButtons = buttons && bySchool(buttons);
    const byFaults = faults && bySchool(faults);
    const byPosts = posts && bySchool(posts);
    const byGates = gates && bySchool(gates);
    for (const s of schools) {
      const f = out.get(s.id)!;
      if (online) f.online = online.get(s.id);
      if (byButtons) f.buttons = byButtons.get(s.id) ?? [];
      if (byFaults) f.overdueFaults = byFaults.get(s.id) ?? [];
      if (guards) f.guards = { required: requiredGuardsFor(s, rule), actual: guards.get(s.id)?.verified ?? 0, declared: guards.get(s.id)?.declared ?? 0, rule };
      if (byPosts) f.posts = byPosts.get(s.id) ?? [];
      if (byGates) f.gates = byGates.get(s.id) ?? [];
      if (patrols) f.guardPatrols = patrols.get(s.id) ?? 0;
    }
    return out;
  }

  private async overdueFaults(asOf: Date, schoolIds: string[] | undefined): Promise<(OverdueFault & { schoolId: string })[]> {
    const faults = await this.health.overdueFaultRows(asOf, schoolIds);
    const names = await this.registry.deviceNames([...new Set(faults.map((f) => f.deviceId))]);
    return faults.map((f) => ({ schoolId: f.schoolId, deviceId: f.deviceId, kind: f.kind, name: names.get(f.deviceId) ?? null, since: f.since }));
  }
}

function bySchool<T extends { schoolId: string }>(xs: T[]): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) (m.get(x.schoolId) ?? m.set(x.schoolId, []).get(x.schoolId)!).push(x);
  return m;
}
