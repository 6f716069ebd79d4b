import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { scopedSchoolId } from '../../infra/access/scope';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log';
import { ConsoleEventsService } from '../console-events';
import { ACT_ROLES, assertRole, CANCEL_OWN_ONLY_ROLES, CANCEL_ROLES, RAISE_ROLES, userActor } from './alarms.access';
import { AlarmsOutboxService, OutboxJob, OutboxRow } from './alarms-outbox.service';
import { jobIds, OPEN_STATUSES, type Outcome, WITHDRAWN_OUTCOMES } from './alarms.constants';
import { ButtonTestsService } from './button-tests.service';
import { IncidentRow, IncidentView, iso, toSummary, toView } from './incident-row';
import { allowedFrom, IncidentAction, transition } from './incident-state';
import { appendTimeline } from './incident-timeline';

/**
 * The incident lifecycle: acknowledge, dispatch, on scene, resolve, cancel and notes. Each is one
 * conditional update (the state machine's allowed "from" states, the user's school) committed
 * with its timeline entry, console event and audit entry; when it touches nothing, the refusal
 * says why (404, 403, 409). Methods take the acting user and do their own role and scope checks,
 * so the console socket gateway calls them as the REST routes do.
 */
@Injectable()
export class IncidentLifecycleService {
  private readonly cfg: AlarmsConfig;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
    private readonly queue: QueueService,
    private readonly outbox: AlarmsOutboxService,
    private readonly buttonTests: ButtonTestsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.cfg = config.alarms;
  }

  /**
   * One action turns an open drill into a real alarm (issue 11 §2): `drill` false, then — in the
   * same transaction — a police delivery as real (its own key `<incident>-real`, whether or not the
   * drill went out marked) when the incident is one to relay, and escalation timers counted from
   * the raise time (an overdue level fires at once; acknowledged incidents do not escalate).
   * Control-center roles; 409 ALARM.NOT_A_DRILL when it is not a drill or no longer open. Succeeds
   * also when the button has an open real incident of its own (attack A5: the drill becomes a second
   * real incident; migration 1764321020000 says why not a merge).
   */
  async makeReal(user: AuthUser, id: string, note?: string): Promise<IncidentView> {
    assertRole(user, ACT_ROLES);
    const scope = scopedSchoolId(user);
    let jobs: OutboxRow[] = [];
    const row = await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        // made_real_at takes it out of the one-open-incident-per-button index: a real incident the button opened after the
        // drill window no longer makes this a 409 (attack A5) — both stand, the newest takes further presses.
        `UPDATE incidents SET drill = false, made_real_at = now(), relay_delivered_at = NULL, relay_attempts = 0, relay_late = false, updated_at = now()
         WHERE id = $1 AND drill AND status = ANY($2) AND ($3::uuid IS NULL OR school_id = $3) RETURNING *`,
        [id, OPEN_STATUSES, scope],
      )) as [IncidentRow[]];
      if (!up) {
        const [cur] = (await m.query(`SELECT status, drill, school_id FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
        if (!cur || (scope && cur.school_id !== scope)) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
        throw Errors.conflict(ErrorCode.ALARM.NOT_A_DRILL, '该报警不是演练或已结束', { status: cur.status, drill: cur.drill });
      }
      const actor = userActor(user);
      await appendTimeline(m, id, actor, 'made_real', note ?? '', null);
      await this.events.append(m, { type: 'incident.updated', schoolId: up.school_id, payload: { ...toSummary(up), change: 'made_real' } });
      await this.audit.record(m, {
        action: 'make_real',
        entity: 'incident',
        entityId: id,
        schoolId: up.school_id,
        before: { drill: true },
        after: { drill: false, note },
      });
      const t0 = new Date(up.first_press_at).getTime();
      const now = Date.now();
      const out: OutboxJob[] =
        up.status === 'raised'
          ? (this.cfg.escalationSeconds[up.priority] ?? []).map((sec, i) => ({
              name: JobName.AlarmEscalate,
              jobId: jobIds.realEscalation(id, i + 1),
              payload: { incidentId: id, level: i + 1 },
              availableAt: new Date(Math.max(now, t0 + sec * 1000)),
            }))
          : [];
      if (up.relay_required && this.cfg.policeRelay.url) {
        out.push({ name: JobName.AlarmPoliceRelay, jobId: jobIds.relay(id, true), payload: { incidentId: id, real: true }, availableAt: new Date(now) });
        out.push({
          name: JobName.AlarmRelayWatch,
          jobId: jobIds.relayWatch(id, true),
          payload: { incidentId: id, real: true },
          availableAt: new Date(now + this.cfg.policeRelay.lateAfterSeconds * 1000),
        });
      }
      jobs = await this.outbox.insert(m, out);
      return up;
    });
    this.outbox.kick(jobs);
    return toView(row);
  }

  acknowledge(user: AuthUser, id: string, note?: string) {
    return this.act(user, id, 'acknowledge', { note });
  }
  dispatch(user: AuthUser, id: string, note?: string) {
    return this.act(user, id, 'dispatch', { note });
  }
  onScene(user: AuthUser, id: string, note?: string) {
    return this.act(user, id, 'on_scene', { note });
  }
  resolve(user: AuthUser, id: string, outcome: Outcome, note?: string) {
    return this.act(user, id, 'resolve', { note, outcome });
  }
  cancel(user: AuthUser, id: string, reason: string) {
    return this.act(user, id, 'cancel', { note: reason });
  }
  addNote(user: AuthUser, id: string, note: string) {
    return this.act(user, id, 'note', { note });
  }

  private async act(user: AuthUser, id: string, action: IncidentAction, opts: { note?: string; outcome?: Outcome }): Promise<IncidentView> {
    assertRole(user, action === 'cancel' ? CANCEL_ROLES : action === 'note' ? RAISE_ROLES : ACT_ROLES);
    const actor = userActor(user);
    const scope = scopedSchoolId(user);
    // Base parameters $1..$3; each action's own parameters follow from $4 (typed by their use).
    const sets: Partial<Record<IncidentAction, [string, unknown[]]>> = {
      acknowledge: [`status = 'acknowledged', acknowledged_by_id = $4, acknowledged_by_name = $5, acknowledged_at = now()`, [user.id, shownName(user)]],
      dispatch: [`status = 'dispatched', dispatched_at = now()`, []],
      on_scene: [`status = 'on_scene', on_scene_at = now()`, []],
      resolve: [
        `status = 'resolved', resolved_by_id = $4, resolved_by_name = $5, resolved_at = now(), outcome = $6::text, drill = drill OR $6::text = 'drill'`,
        [user.id, shownName(user), opts.outcome ?? null],
      ],
      cancel: [`status = 'cancelled', cancelled_at = now(), cancel_reason = $4`, [opts.note ?? '']],
      note: [`note = note`, []],
    };
    const [setSql, extra] = sets[action]!;
    // Cancel by a role limited to its own alarms: only incidents this user raised (refusal: 403 CANCEL_NOT_OWN).
    const ownerOnly = action === 'cancel' && CANCEL_OWN_ONLY_ROLES.includes(user.role) ? user.id : null;
    const ownerParam = `$${4 + extra.length}`;
    const escalationJobs: string[] = [];
    let withdraw: OutboxRow[] = [];
    const row = await this.db.transaction(async (m) => {
      const [[updated]] = (await m.query(
        `UPDATE incidents SET ${setSql}, updated_at = now()
         WHERE id = $1 AND status = ANY($2) AND ($3::uuid IS NULL OR school_id = $3)
           AND (${ownerParam}::uuid IS NULL OR raised_by_id = ${ownerParam}) RETURNING *`,
        [id, allowedFrom(action), scope, ...extra, ownerOnly],
      )) as [IncidentRow[]];
      if (!updated) throw await this.refusal(m, id, action, user);
      await appendTimeline(m, id, actor, action, opts.note ?? '', opts.outcome ? { outcome: opts.outcome } : null);
      await this.events.append(m, { type: 'incident.updated', schoolId: updated.school_id, payload: { ...toSummary(updated), change: action } });
      // Resolved as a test: the button's self-test is recorded (issue 11 §3).
      if (action === 'resolve' && opts.outcome === 'test') await this.buttonTests.fromOutcome(m, updated, user);
      await this.audit.record(m, {
        action,
        entity: 'incident',
        entityId: id,
        schoolId: updated.school_id,
        after: { status: updated.status, note: opts.note, outcome: opts.outcome },
      });
      if (action === 'acknowledge' || action === 'cancel') {
        // Escalation is over: mark its outbox rows done (no re-dispatch) and drop the timers after commit.
        const [rows] = (await m.query(
          `UPDATE alarm_outbox SET done_at = now() WHERE job_name = $1 AND payload->>'incidentId' = $2 AND done_at IS NULL RETURNING job_id`,
          [JobName.AlarmEscalate, id],
        )) as [{ job_id: string }[]];
        escalationJobs.push(...rows.map((r) => r.job_id));
      }
      // An alarm the police were (or are being) sent, now cancelled or found false: they are told, so nobody is dispatched to a mis-press.
      if (updated.relay_required && (action === 'cancel' || (action === 'resolve' && WITHDRAWN_OUTCOMES.includes(opts.outcome!))))
        withdraw = await this.outbox.insert(m, [
          { name: JobName.AlarmPoliceWithdraw, jobId: jobIds.withdraw(id), payload: { incidentId: id }, availableAt: new Date() },
        ]);
      return updated;
    });
    this.outbox.kick(withdraw);
    // The handler re-checks the state anyway, so a failed removal is harmless.
    await Promise.allSettled(escalationJobs.map((j) => this.queue.removeJob(JobName.AlarmEscalate, j)));
    return toView(row);
  }

  /** Why a conditional update touched nothing: 404 (another school's incident too: no existence oracle), or the state machine's 409. */
  private async refusal(m: EntityManager, id: string, action: IncidentAction, user: AuthUser) {
    const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    if (!row) return Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    const scope = scopedSchoolId(user);
    if (scope && row.school_id !== scope) return Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    if (action === 'cancel' && CANCEL_OWN_ONLY_ROLES.includes(user.role) && row.raised_by_id !== user.id) {
      return Errors.forbidden(ErrorCode.ALARM.CANCEL_NOT_OWN, '只能撤销本人发起的报警；按钮、摄像机或指挥中心发起的报警由值班人员处置');
    }
    const t = transition(row.status, action, 'user');
    if (!t.ok && t.code === ErrorCode.ALARM.ALREADY_ACKNOWLEDGED) {
      return Errors.conflict(t.code, `${t.message}（${row.acknowledged_by_name}）`, {
        acknowledgedBy: { id: row.acknowledged_by_id, name: row.acknowledged_by_name },
        acknowledgedAt: iso(row.acknowledged_at),
        status: row.status,
      });
    }
    return Errors.conflict(t.ok ? ErrorCode.ALARM.CONCURRENT_CHANGE : t.code, t.ok ? '报警状态刚被其他人更改，请刷新后重试' : t.message, {
      status: row.status,
    });
  }
}
