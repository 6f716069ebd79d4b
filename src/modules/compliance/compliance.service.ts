import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { DayFact, DayFactsService, windowReason } from '../patrols';
import { RegistryService } from '../registry';
import { addDays, dayStart, shanghaiDate } from '../school-day';

export const TARGETS = ['closedCampus', 'guards', 'networked', 'posts'] as const;
export type Target = (typeof TARGETS)[number];
export const TARGET_LABEL: Record<Target, string> = {
  closedCampus: '校园封闭化管理',
  guards: '专职保安员配备',
  networked: '视频监控及一键报警联网',
  posts: '护学岗',
};

export interface SchoolCompliance {
  date: string;
  schoolId: string;
  schoolCode: string;
  schoolName: string;
  zoneId: string | null;
  groupId: string | null;
  schoolDay: boolean;
  closedCampus: boolean;
  guards: boolean;
  networked: boolean;
  posts: boolean;
  allMet: boolean;
  failedCount: number;
  reasons: Record<string, unknown>;
}

/** Shares of schools meeting each target (0–1; null with no school), as in the district view. */
export interface ComplianceShares {
  closedCampus: number | null;
  guards: number | null;
  networked: number | null;
  posts: number | null;
  allMet: number | null;
}

/** One zone's day: its schools and the share of them meeting each target. */
export interface ZoneCompliance {
  zoneId: string | null;
  schools: number;
  shares: ComplianceShares;
}

export interface ComplianceFilter {
  zoneId?: string;
  groupId?: string;
  schoolId?: string;
}

const LIST_CAP = 50;
/** What the four targets judge of a school's day. */
const FACTS: DayFact[] = ['cameraOnline', 'buttonOnline', 'buttons', 'guards', 'posts', 'gates'];
const idName = (d: { id: string; name: string }) => ({ id: d.id, name: d.name });

/**
 * The four "100%" targets per school per day (校园封闭化管理, 专职保安员配备, 视频监控及一键报警
 * 联网, 护学岗), each pass/fail with its reasons. Today is computed on demand; the daily job
 * snapshots each day (one row per date and school, replaced on a re-run).
 */
@Injectable()
export class ComplianceService {
  private readonly logger = new Logger('Compliance');

  private readonly networkedWithinDays: number;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly dayFacts: DayFactsService,
    private readonly audit: AuditService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.networkedWithinDays = config.compliance.networkedWithinDays;
  }

  /**
   * Computes a date for the schools in `filter`, as of `now` for today (windows not yet due do
   * not count) or the end of the day for past dates.
   */
  async compute(date: string, filter: ComplianceFilter = {}, now = new Date()): Promise<SchoolCompliance[]> {
    const today = shanghaiDate(now);
    if (date > today) throw Errors.validation([{ field: 'date', reason: 'must not be in the future' }]);
    const asOf = date === today ? now : dayStart(addDays(date, 1));
    const schools = await this.registry.schoolsIn({
      zoneIds: filter.zoneId ? [filter.zoneId] : undefined,
      groupIds: filter.groupId ? [filter.groupId] : undefined,
      ids: filter.schoolId ? [filter.schoolId] : undefined,
    });
    if (schools.length === 0) return [];
    const whole = !filter.zoneId && !filter.groupId && !filter.schoolId;
    // Devices must be online throughout school hours (up to asOf); on a day without school, at asOf.
    const facts = await this.dayFacts.load(schools, date, asOf, FACTS, { wholeDistrict: whole, now });

    return schools.map((s) => {
      const f = facts.get(s.id)!;
      const o = f.online!;
      const hours = o.hours;
      const offlineCameras = o.notAlwaysOnline.filter((d) => d.kind === 'camera').map(idName);
      const offlineButtons = o.notAlwaysOnline.filter((d) => d.kind === 'alarm_device').map(idName);
      const notLinked = f.buttons!.filter((d) => !d.policeLinked).map(idName);
      const buttons = o.devices.alarm_device;
      const cameras = o.devices.camera;
      // Linked with the police is measured, not a flag: a relay of a police-linked button (real or test) delivered within the period.
      const linked = f.buttons!.filter((d) => d.policeLinked);
      const lastRelay = Math.max(0, ...linked.map((d) => (d.lastPoliceRelayAt ? new Date(d.lastPoliceRelayAt).getTime() : 0)));
      const relayVerified = lastRelay > asOf.getTime() - this.networkedWithinDays * 86_400_000;
      const networked = cameras > 0 && buttons > 0 && offlineCameras.length === 0 && offlineButtons.length === 0 && relayVerified;

      const { required, actual, declared, rule } = f.guards!;
      const unstaffed = f.posts!.filter((w) => !w.staffed);
      const gateList = f.gates!;

      const result = {
        closedCampus: gateList.length === 0,
        guards: actual >= required,
        networked,
        posts: unstaffed.length === 0,
      };
      const failedCount = TARGETS.filter((t) => !result[t]).length;
      const reasons: Record<string, unknown> = {};
      if (!result.closedCampus)
        reasons.closedCampus = { gates: gateList.slice(0, LIST_CAP).map((g) => ({ gate: g.gate, at: g.at, source: g.source })), count: gateList.length };
      if (!result.guards) reasons.guards = { required, actual, short: required - actual, rule, ...(declared ? { declared } : {}) };
      if (!result.networked)
        reasons.networked = {
          cameras,
          buttons,
          offlineCameras: offlineCameras.slice(0, LIST_CAP),
          offlineCameraCount: offlineCameras.length,
          offlineButtons: offlineButtons.slice(0, LIST_CAP),
          notPoliceLinked: notLinked.slice(0, LIST_CAP),
          ...(relayVerified
            ? {}
            : { noRecentPoliceRelay: { lastPoliceRelayAt: lastRelay ? new Date(lastRelay).toISOString() : null, withinDays: this.networkedWithinDays } }),
          ...(linked.length === 0 ? { noPoliceLinkedButton: true } : {}),
          ...(buttons === 0 ? { noAlarmButton: true } : {}),
          ...(cameras === 0 ? { noCamera: true } : {}),
        };
      if (!result.posts) reasons.posts = { windows: unstaffed.map(windowReason) };
      // Devices offline only under a declared maintenance window are not held against the school: said, whatever the verdict.
      if (o.inMaintenance.camera || o.inMaintenance.alarm_device)
        reasons.maintenance = { cameras: o.inMaintenance.camera, buttons: o.inMaintenance.alarm_device };
      return {
        date,
        schoolId: s.id,
        schoolCode: s.code,
        schoolName: s.name,
        zoneId: s.zoneId,
        groupId: s.groupId,
        schoolDay: hours !== null,
        ...result,
        allMet: failedCount === 0,
        failedCount,
        reasons,
      };
    });
  }

  /** Stores a day's results for every school (one row per date and school; a re-run replaces them). */
  async snapshot(date: string, now = new Date()): Promise<{ date: string; schools: number }> {
    const rows = await this.compute(date, {}, now);
    await this.db.transaction(async (m) => {
      for (let i = 0; i < rows.length; i += 5000) {
        const c = rows.slice(i, i + 5000);
        await m.query(
          `INSERT INTO compliance_daily (date, school_id, zone_id, group_id, school_day, closed_campus, guards, networked, posts, all_met, failed_count, reasons, computed_at)
           SELECT $1::date, * , $12::timestamptz FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::boolean[], $6::boolean[], $7::boolean[], $8::boolean[], $9::boolean[], $10::boolean[], $11::int[], $13::jsonb[])
             AS v(school_id, zone_id, group_id, school_day, closed_campus, guards, networked, posts, all_met, failed_count, reasons)
           ON CONFLICT (date, school_id) DO UPDATE SET zone_id = EXCLUDED.zone_id, group_id = EXCLUDED.group_id, school_day = EXCLUDED.school_day,
             closed_campus = EXCLUDED.closed_campus, guards = EXCLUDED.guards, networked = EXCLUDED.networked, posts = EXCLUDED.posts,
             all_met = EXCLUDED.all_met, failed_count = EXCLUDED.failed_count, reasons = EXCLUDED.reasons, computed_at = EXCLUDED.computed_at`,
          [
            date,
            c.map((r) => r.schoolId),
            c.map((r) => r.zoneId),
            c.map((r) => r.groupId),
            c.map((r) => r.schoolDay),
            c.map((r) => r.closedCampus),
            c.map((r) => r.guards),
            c.map((r) => r.networked),
            c.map((r) => r.posts),
            c.map((r) => r.allMet),
            c.map((r) => r.failedCount),
            now,
            c.map((r) => JSON.stringify(r.reasons)),
          ],
        );
      }
      await this.audit.record(m, { action: 'snapshot', entity: 'compliance_daily', entityId: date, after: { date, schools: rows.length } });
    });
    this.logger.log(`compliance snapshot ${date}: ${rows.length} schools`);
    return { date, schools: rows.length };
  }

  /** A day's rows: computed live for today, from the snapshot for past days (computed if none was taken). */
  async day(date: string, filter: ComplianceFilter, now = new Date()): Promise<SchoolCompliance[]> {
    if (date === shanghaiDate(now)) return this.compute(date, filter, now);
    const rows = await this.stored(date, date, filter);
    return rows.length ? rows : this.compute(date, filter, now);
  }

  private async stored(from: string, to: string, f: ComplianceFilter): Promise<SchoolCompliance[]> {
    const rows: Record<string, unknown>[] = await this.db.query(
      `SELECT to_char(date, 'YYYY-MM-DD') AS date, school_id AS "schoolId", zone_id AS "zoneId", group_id AS "groupId", school_day AS "schoolDay",
              closed_campus AS "closedCampus", guards, networked, posts, all_met AS "allMet", failed_count AS "failedCount", reasons
         FROM compliance_daily
        WHERE date BETWEEN $1 AND $2 AND ($3::uuid IS NULL OR zone_id = $3) AND ($4::uuid IS NULL OR group_id = $4) AND ($5::uuid IS NULL OR school_id = $5)
        ORDER BY date, school_id`,
      [from, to, f.zoneId ?? null, f.groupId ?? null, f.schoolId ?? null],
    );
    if (rows.length === 0) return [];
    const schools = new Map((await this.registry.schoolsIn({ ids: [...new Set(rows.map((r) => r.schoolId as string))] })).map((s) => [s.id, s]));
    return rows.map((r) => ({
      ...(r as unknown as SchoolCompliance),
      schoolCode: schools.get(r.schoolId as string)?.code ?? '',
      schoolName: schools.get(r.schoolId as string)?.name ?? '',
    }));
  }

  /** Rows for a date range (snapshots, plus today computed live), for trends and exports. */
  async range(from: string, to: string, filter: ComplianceFilter, now = new Date()): Promise<SchoolCompliance[]> {
    if (to < from) throw Errors.validation([{ field: 'to', reason: 'must not be before from' }]);
    if (Date.parse(to) - Date.parse(from) > 366 * 86_400_000) throw Errors.validation([{ field: 'to', reason: 'at most 366 days after from' }]);
    const today = shanghaiDate(now);
    const rows = (await this.stored(from, to, filter)).filter((r) => r.date !== today);
    if (from <= today && today <= to) rows.push(...(await this.compute(today, filter, now)));
    return rows;
  }

  /** District view of a day: share of schools meeting each target, and schools worst first. */
  /**
   * One day of the district (or of the filter's zone / group / school): the share of schools meeting each target, the same
   * per zone (schools without a zone under `zoneId: null`; lowest all-four share first), and the schools worst first
   * (most targets missed), a page of them with their reasons.
   */
  async district(date: string, filter: ComplianceFilter, limit: number, offset: number, now = new Date()) {
    const rows = await this.day(date, filter, now);
    const worst = [...rows].sort((a, b) => b.failedCount - a.failedCount || a.schoolCode.localeCompare(b.schoolCode));
    const byZone = new Map<string | null, SchoolCompliance[]>();
    for (const r of rows) (byZone.get(r.zoneId) ?? byZone.set(r.zoneId, []).get(r.zoneId)!).push(r);
    const zones: ZoneCompliance[] = [...byZone]
      .map(([zoneId, rs]) => ({ zoneId, schools: rs.length, shares: shares(rs) }))
      .sort((a, b) => (a.shares.allMet ?? 1) - (b.shares.allMet ?? 1) || String(a.zoneId).localeCompare(String(b.zoneId)));
    return {
      date,
      schools: rows.length,
      shares: shares(rows),
      zones,
      worst: { items: worst.slice(offset, offset + limit), total: worst.length, limit, offset },
    };
  }

  async trend(from: string, to: string, filter: ComplianceFilter, now = new Date()) {
    const rows = await this.range(from, to, filter, now);
    const byDate = new Map<string, SchoolCompliance[]>();
    for (const r of rows) (byDate.get(r.date) ?? byDate.set(r.date, []).get(r.date)!).push(r);
    return { from, to, days: [...byDate].sort(([a], [b]) => a.localeCompare(b)).map(([date, rs]) => ({ date, schools: rs.length, shares: shares(rs) })) };
  }
}

function shares(rows: SchoolCompliance[]): ComplianceShares {
  const n = rows.length;
  const share = (k: Target | 'allMet') => (n ? Math.round((rows.filter((r) => r[k]).length / n) * 10_000) / 10_000 : null);
  return { closedCampus: share('closedCampus'), guards: share('guards'), networked: share('networked'), posts: share('posts'), allMet: share('allMet') };
}

/** One export line per school and day: the four targets and why each failed, in zh-CN. */
export function exportRows(rows: SchoolCompliance[]): { header: string[]; rows: (string | number)[][] } {
  const yes = (b: boolean) => (b ? '达标' : '未达标');
  const header = [
    '日期',
    '学校代码',
    '学校名称',
    '上课日',
    TARGET_LABEL.closedCampus,
    TARGET_LABEL.guards,
    TARGET_LABEL.networked,
    TARGET_LABEL.posts,
    '四个100%',
    '未达标原因',
  ];
  return {
    header,
    rows: rows.map((r) => [
      r.date,
      r.schoolCode,
      r.schoolName,
      r.schoolDay ? '是' : '否',
      yes(r.closedCampus),
      yes(r.guards),
      yes(r.networked),
      yes(r.posts),
      yes(r.allMet),
      describe(r.reasons),
    ]),
  };
}

function describe(reasons: Record<string, unknown>): string {
  const out: string[] = [];
  const c = reasons.closedCampus as { gates: { gate: string }[] } | undefined;
  if (c) out.push(`校门开启：${[...new Set(c.gates.map((g) => g.gate))].join('、')}`);
  const g = reasons.guards as { required: number; actual: number; short: number } | undefined;
  if (g) out.push(`保安员 ${g.actual}/${g.required}，缺 ${g.short} 人`);
  const n = reasons.networked as
    | {
        offlineCameraCount: number;
        offlineButtons: unknown[];
        noAlarmButton?: boolean;
        noPoliceLinkedButton?: boolean;
        noRecentPoliceRelay?: { lastPoliceRelayAt: string | null; withinDays: number };
      }
    | undefined;
  if (n) {
    const parts = [];
    if (n.offlineCameraCount) parts.push(`${n.offlineCameraCount} 路摄像机离线`);
    if (n.offlineButtons.length) parts.push(`${n.offlineButtons.length} 个一键报警离线`);
    if (n.noPoliceLinkedButton) parts.push('无与公安联网的一键报警');
    else if (n.noRecentPoliceRelay) parts.push(`${n.noRecentPoliceRelay.withinDays} 天内无成功推送公安的报警或测试`);
    if (n.noAlarmButton) parts.push('无一键报警');
    out.push(parts.join('，') || '联网未达标');
  }
  const p = reasons.posts as { windows: { gate: string; window: string; present: number; required: number }[] } | undefined;
  if (p) out.push(p.windows.map((w) => `护学岗 ${w.gate}${w.window === 'arrival' ? '上学' : '放学'} ${w.present}/${w.required}`).join('；'));
  const m = reasons.maintenance as { cameras: number; buttons: number } | undefined;
  if (m) out.push(`维护中（不计）：${[m.cameras ? `摄像机 ${m.cameras} 路` : '', m.buttons ? `一键报警 ${m.buttons} 个` : ''].filter(Boolean).join('，')}`);
  return out.join('；');
}
