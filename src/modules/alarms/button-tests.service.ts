import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { assertRecordInScope } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Actor } from '../../infra/http/request-context';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log';
import { ConsoleEventsService } from '../console-events';
import { RegistryService } from '../registry';
import { AlarmsOutboxService, OutboxRow } from './alarms-outbox.service';
import { assertRole, RAISE_ROLES, READ_ROLES } from './alarms.access';
import { postToPolice } from './police-relay.client';
import { addDays, dayStart, shanghaiDate } from '../school-day';

export type ButtonTestKind = 'device_flag' | 'test_mode' | 'outcome';

export interface ButtonTestView {
  id: string;
  alarmDeviceId: string;
  schoolId: string;
  at: string;
  kind: ButtonTestKind;
  deviceEventId: string | null;
  incidentId: string | null;
  by: string;
  policeLinked: boolean;
  relay: { required: boolean; deliveredAt: string | null; attempts: number };
}

interface TestRow {
  id: string;
  alarm_device_id: string;
  school_id: string;
  at: Date;
  kind: ButtonTestKind;
  device_event_id: string | null;
  incident_id: string | null;
  by_name: string;
  police_linked: boolean;
  relay_required: boolean;
  relay_delivered_at: Date | null;
  relay_attempts: number;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
const view = (r: TestRow): ButtonTestView => ({
  id: r.id,
  alarmDeviceId: r.alarm_device_id,
  schoolId: r.school_id,
  at: iso(r.at)!,
  kind: r.kind,
  deviceEventId: r.device_event_id,
  incidentId: r.incident_id,
  by: r.by_name,
  policeLinked: r.police_linked,
  relay: { required: r.relay_required, deliveredAt: iso(r.relay_delivered_at), attempts: r.relay_attempts },
});

/**
 * Alarm-button self-tests (一键报警测试, issue 11 §3). A test press — the device's `test` flag, a
 * press while a guard has the button in test mode (alarms.buttonTests.testModeMinutes), or an
 * incident resolved with outcome `test` — is recorded (alarm_button_tests: when, by whom, how) and
 * moves the button's last_test_at, which the patrol audit's alarm_button check reads. A test press
 * raises no incident, never escalates and never dispatches: a police-linked button's test goes to
 * the police endpoint marked `test: true` (so the link is exercised); every delivery that succeeds
 * (test or real alarm) stamps the button's last_police_relay_at — compliance's measure of
 * "networked with the police" (alarms.buttonTests.networkedWithinDays).
 *
 * Which buttons are in test mode is held per process and re-read every testModeRefreshMs, so the
 * press path costs no extra query. Failure direction: a press on another process within that time
 * after test mode started, or while the re-read fails, is a real alarm.
 */
@Injectable()
export class ButtonTestsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ButtonTests');
  private readonly cfg: AlarmsConfig;
  private testMode = new Map<string, { until: number; by: string }>();
  private timer?: NodeJS.Timeout;
  private refreshFailing = false;
  private refreshing = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
    private readonly outbox: AlarmsOutboxService,
    queue: QueueService,
  ) {
    this.cfg = config.alarms;
    queue.handle(JobName.AlarmButtonTestRelay, (p, meta) => this.relay(p.testId, meta.attempt));
  }

  onApplicationBootstrap(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.cfg.buttonTests.testModeRefreshMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return; // a slow read is not stacked up
    this.refreshing = true;
    try {
      const rows = await this.registry.buttonsInTestMode();
      this.testMode = new Map(rows.map((r) => [r.id, { until: new Date(r.until).getTime(), by: r.by ?? '' }]));
      if (this.refreshFailing) this.logger.log('test-mode refresh works again');
      this.refreshFailing = false;
    } catch (e) {
      // Fails toward real alarms: a stale entry ends at its own deadline anyway. Logged once per outage, not every period.
      if (!this.refreshFailing)
        this.logger.warn(`test-mode refresh failed (a test mode started on another process counts as real until it works): ${(e as Error).message}`);
      this.refreshFailing = true;
    } finally {
      this.refreshing = false;
    }
  }

  /** Is this button in test mode now (this process's view, see the class note)? */
  inTestMode(alarmDeviceId: string, at = Date.now()): boolean {
    const t = this.testMode.get(alarmDeviceId);
    return t !== undefined && t.until > at;
  }

  /**
   * Records a test press (device flag or test mode): 'created' false for a retried event id (the
   * same record). Committed with its audit entry, console event and (police-linked button, relay
   * configured) the test relay job before the answer.
   */
  async pressed(
    alarmDeviceId: string,
    eventId: string,
    kind: 'device_flag' | 'test_mode',
    actor: Actor,
    at: Date = new Date(), // when the request arrived
  ): Promise<{ test: ButtonTestView; created: boolean }> {
    const dev = await this.registry.alarmDeviceSpot(alarmDeviceId);
    const relayRequired = dev.policeLinked && this.cfg.policeRelay.url !== '';
    // By whom: the device, and for test mode the guard who started it.
    const guard = kind === 'test_mode' ? this.testMode.get(alarmDeviceId)?.by : undefined;
    const byName = guard ? `${actor.name}（${guard} 测试模式）` : actor.name;
    let jobs: OutboxRow[] = [];
    const result = await this.db.transaction(async (m) => {
      const [row] = (await m.query(
        `INSERT INTO alarm_button_tests (alarm_device_id, school_id, at, kind, device_event_id, by_type, by_id, by_name, police_linked, relay_required)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (alarm_device_id, device_event_id) DO NOTHING RETURNING *`,
        [alarmDeviceId, dev.schoolId, at, kind, eventId, actor.type, actor.type === 'system' ? null : actor.id, byName, dev.policeLinked, relayRequired],
      )) as TestRow[];
      if (!row) {
        const [seen] = (await m.query(`SELECT * FROM alarm_button_tests WHERE alarm_device_id = $1 AND device_event_id = $2`, [
          alarmDeviceId,
          eventId,
        ])) as TestRow[];
        return { test: view(seen), created: false };
      }
      await this.tested(m, row);
      if (relayRequired)
        jobs = await this.outbox.insert(m, [
          { name: JobName.AlarmButtonTestRelay, jobId: `testrelay-${row.id}`, payload: { testId: row.id }, availableAt: at },
        ]);
      return { test: view(row), created: true };
    });
    this.outbox.kick(jobs);
    return result;
  }

  /**
   * An incident of a button resolved with outcome `test` (in the resolve's transaction): the press
   * was a test, recorded at the press time, by the person who resolved it. Nothing for an incident
   * without a button (an incident of a button always has its school: incidents_school_required).
   */
  async fromOutcome(
    m: EntityManager,
    incident: { id: string; alarm_device_id: string | null; school_id: string | null; first_press_at: Date },
    user: AuthUser,
  ) {
    if (!incident.alarm_device_id) return;
    const [row] = (await m.query(
      `INSERT INTO alarm_button_tests (alarm_device_id, school_id, at, kind, incident_id, by_type, by_id, by_name, police_linked)
       SELECT d.id, $2, $3, 'outcome', $4, 'user', $5, $6, d.police_linked FROM alarm_devices d WHERE d.id = $1
       ON CONFLICT (incident_id) DO NOTHING RETURNING *`,
      [incident.alarm_device_id, incident.school_id, incident.first_press_at, incident.id, user.id, shownName(user)],
    )) as TestRow[];
    if (row) await this.tested(m, row);
  }

  /** A guard (own school) or a control-center user puts one button in test mode for `minutes` (default and maximum from config). */
  async startTestMode(user: AuthUser, alarmDeviceId: string, minutes?: number): Promise<{ alarmDeviceId: string; testModeUntil: string | null }> {
    assertRole(user, RAISE_ROLES);
    const c = this.cfg.buttonTests;
    if (minutes !== undefined && minutes > c.testModeMaxMinutes)
      throw Errors.validation([{ field: 'minutes', reason: `at most ${c.testModeMaxMinutes} minutes` }]);
    return this.setTestMode(user, alarmDeviceId, new Date(Date.now() + (minutes ?? c.testModeMinutes) * 60_000));
  }

  async endTestMode(user: AuthUser, alarmDeviceId: string): Promise<{ alarmDeviceId: string; testModeUntil: string | null }> {
    assertRole(user, RAISE_ROLES);
    return this.setTestMode(user, alarmDeviceId, null);
  }

  /** A button's test records, newest first (at most 200). */
  async list(user: AuthUser, alarmDeviceId: string): Promise<ButtonTestView[]> {
    assertRole(user, READ_ROLES);
    const dev = await this.registry.alarmDeviceSpot(alarmDeviceId);
    assertRecordInScope(user, dev.schoolId, () => Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, alarmDeviceId));
    const rows = (await this.db.query(`SELECT * FROM alarm_button_tests WHERE alarm_device_id = $1 ORDER BY at DESC LIMIT 200`, [alarmDeviceId])) as TestRow[];
    return rows.map(view);
  }

  /**
   * A police delivery of a button's real alarm or test succeeded (in the caller's transaction):
   * the button's last_police_relay_at, which "networked with the police" is measured by.
   */
  async relayed(m: EntityManager, alarmDeviceId: string): Promise<void> {
    await this.registry.recordButtonPoliceRelay(m, alarmDeviceId);
  }

  /** One delivery attempt of a test to the police endpoint, marked `test: true` (the platform never dispatches for it). */
  async relay(testId: string, attempt: number): Promise<string> {
    const jobId = `testrelay-${testId}`;
    const [row] = (await this.db.query(`SELECT * FROM alarm_button_tests WHERE id = $1`, [testId])) as TestRow[];
    if (!row || row.relay_delivered_at || !this.cfg.policeRelay.url) {
      await this.outbox.markDone(this.db, [jobId]);
      return 'nothing to do';
    }
    const dev = await this.registry.alarmDeviceSpot(row.alarm_device_id);
    const body = {
      testId: row.id,
      test: true, // 测试: the receiver must not dispatch officers
      kind: 'button_self_test',
      school: { id: dev.schoolId, name: dev.schoolName },
      button: { id: dev.id, code: dev.code, location: dev.location },
      pressedAt: new Date(row.at).toISOString(),
    };
    try {
      await postToPolice(this.cfg.policeRelay, `test-${row.id}`, body);
    } catch (e) {
      await this.db.query(`UPDATE alarm_button_tests SET relay_attempts = greatest(relay_attempts, $2) WHERE id = $1`, [testId, attempt]);
      throw e;
    }
    await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE alarm_button_tests SET relay_delivered_at = now(), relay_attempts = greatest(relay_attempts, $2) WHERE id = $1 AND relay_delivered_at IS NULL RETURNING *`,
        [testId, attempt],
      )) as [TestRow[]];
      if (up) await this.relayed(m, up.alarm_device_id);
      await this.outbox.markDone(m, [jobId]);
    });
    return 'delivered';
  }

  private async tested(m: EntityManager, row: TestRow): Promise<void> {
    await this.registry.recordButtonTest(m, row.alarm_device_id, row.at, row.by_name);
    await this.audit.record(m, {
      action: 'test',
      entity: 'alarm_device',
      entityId: row.alarm_device_id,
      schoolId: row.school_id,
      after: { testId: row.id, kind: row.kind, at: iso(row.at), by: row.by_name, incidentId: row.incident_id },
    });
    await this.events.append(m, {
      type: 'button.test',
      schoolId: row.school_id,
      payload: {
        alarmDeviceId: row.alarm_device_id,
        schoolId: row.school_id,
        change: 'tested',
        testId: row.id,
        kind: row.kind,
        at: iso(row.at)!,
        by: row.by_name,
        testModeUntil: null,
      },
    });
  }

  /**
   * Records a test-mode start, in the start's transaction, after checking the daily cap: at most
   * alarms.buttonTests.maxTestModesPerDay starts per button and Asia/Shanghai day (attack F9),
   * else 429 BUTTON_TEST.DAILY_LIMIT with Retry-After to the next Shanghai midnight. Serialised
   * per button (advisory lock), so parallel starts cannot all slip under the cap.
   */
  private async countTestModeStart(m: EntityManager, user: AuthUser, alarmDeviceId: string, until: Date): Promise<void> {
    const now = new Date();
    const today = shanghaiDate(now);
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`test-mode:${alarmDeviceId}`]);
    const [{ n }] = (await m.query(`SELECT count(*)::int AS n FROM alarm_button_test_modes WHERE alarm_device_id = $1 AND started_at >= $2`, [
      alarmDeviceId,
      dayStart(today),
    ])) as { n: number }[];
    const max = this.cfg.buttonTests.maxTestModesPerDay;
    if (n >= max) {
      const wait = Math.max(1, Math.ceil((dayStart(addDays(today, 1)).getTime() - now.getTime()) / 1000));
      throw Errors.tooMany(ErrorCode.BUTTON_TEST.DAILY_LIMIT, `该报警按钮今日已开启 ${n} 次测试模式（每日最多 ${max} 次）`, wait);
    }
    await m.query(`INSERT INTO alarm_button_test_modes (alarm_device_id, started_at, until, by_id, by_name) VALUES ($1, $2, $3, $4, $5)`, [
      alarmDeviceId,
      now,
      until,
      user.id,
      shownName(user),
    ]);
  }

  private async setTestMode(user: AuthUser, alarmDeviceId: string, until: Date | null) {
    const dev = await this.registry.alarmDeviceSpot(alarmDeviceId);
    assertRecordInScope(user, dev.schoolId, () => Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, alarmDeviceId));
    const r = await this.db.transaction(async (m) => {
      if (until) await this.countTestModeStart(m, user, alarmDeviceId, until);
      const r = await this.registry.setButtonTestMode(m, alarmDeviceId, until, until ? shownName(user) : null);
      await this.audit.record(m, {
        action: until ? 'test_mode_start' : 'test_mode_end',
        entity: 'alarm_device',
        entityId: alarmDeviceId,
        schoolId: r.schoolId,
        after: { testModeUntil: iso(r.testModeUntil) },
      });
      await this.events.append(m, {
        type: 'button.test',
        schoolId: r.schoolId,
        payload: {
          alarmDeviceId,
          schoolId: r.schoolId,
          change: until ? 'test_mode_started' : 'test_mode_ended',
          testId: null,
          kind: null,
          at: new Date().toISOString(),
          by: shownName(user),
          testModeUntil: iso(r.testModeUntil),
        },
      });
      return r;
    });
    // This process knows at once; the others within testModeRefreshMs.
    if (until) this.testMode.set(alarmDeviceId, { until: until.getTime(), by: shownName(user) });
    else this.testMode.delete(alarmDeviceId);
    return { alarmDeviceId, testModeUntil: iso(r.testModeUntil) };
  }
}
