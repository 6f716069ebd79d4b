import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { SqlParams } from '../../infra/database/sql-params';
import { ErrorCode, Errors } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { Actor } from '../../infra/http/request-context';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { AuditService } from '../audit-log/audit.service';
import type { AuthUser, UserRole } from '../../infra/access/roles';
import { assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { ConsoleEventsService } from '../console-events/console-events.service';
import type { IncidentCamera, IncidentSummary } from '../console-events/console-events';
import { RegistryService } from '../registry/registry.service';
import { AlarmsOutboxService, OutboxJob, OutboxRow } from './alarms-outbox.service';
import { IncidentSource, IncidentStatus, IncidentType, jobIds, Outcome, Priority } from './alarms.constants';
import { allowedFrom, IncidentAction, transition } from './incident-state';

/** Roles that act on incidents at the control center. */
export const ACT_ROLES: UserRole[] = ['operator', 'supervisor', 'admin'];
export const RAISE_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
export const CANCEL_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security'];
export const READ_ROLES: UserRole[] = ['operator', 'supervisor', 'admin', 'school_security', 'auditor'];

/** An incident row as Postgres returns it. */
export interface IncidentRow {
  id: string;
  type: IncidentType;
  priority: Priority;
  source: IncidentSource;
  school_id: string;
  zone_id: string | null;
  alarm_device_id: string | null;
  camera_id: string | null;
  location: string;
  area_kind: string | null;
  note: string;
  status: IncidentStatus;
  press_count: number;
  first_press_at: Date;
  last_press_at: Date;
  drill: boolean;
  outcome: Outcome | null;
  raised_by_id: string | null;
  raised_by_name: string;
  shown_at: Date | null;
  acknowledged_by_id: string | null;
  acknowledged_by_name: string | null;
  acknowledged_at: Date | null;
  dispatched_at: Date | null;
  on_scene_at: Date | null;
  resolved_by_id: string | null;
  resolved_by_name: string | null;
  resolved_at: Date | null;
  cancelled_at: Date | null;
  cancel_reason: string | null;
  escalation_level: number;
  linked_camera_ids: string[];
  cameras: IncidentCamera[];
  school_name: string;
  relay_required: boolean;
  relay_delivered_at: Date | null;
  relay_attempts: number;
  relay_late: boolean;
  created_at: Date;
  updated_at: Date;
}

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

export function toSummary(r: IncidentRow): IncidentSummary {
  return {
    incidentId: r.id,
    schoolId: r.school_id,
    schoolName: r.school_name,
    zoneId: r.zone_id,
    type: r.type,
    priority: r.priority,
    source: r.source,
    status: r.status,
    location: r.location,
    areaKind: r.area_kind,
    note: r.note,
    alarmDeviceId: r.alarm_device_id,
    cameraId: r.camera_id,
    pressCount: r.press_count,
    firstPressAt: iso(r.first_press_at)!,
    lastPressAt: iso(r.last_press_at)!,
    drill: r.drill,
    outcome: r.outcome,
    cameras: r.cameras,
    raisedBy: r.raised_by_name,
    acknowledgedBy: r.acknowledged_at ? { id: r.acknowledged_by_id, name: r.acknowledged_by_name ?? '', at: iso(r.acknowledged_at)! } : null,
    escalationLevel: r.escalation_level,
    relay: { required: r.relay_required, deliveredAt: iso(r.relay_delivered_at), attempts: r.relay_attempts, late: r.relay_late },
  };
}

/** The API view: the console summary plus the remaining timestamps. */
export function toView(r: IncidentRow) {
  return {
    id: r.id,
    ...toSummary(r),
    dispatchedAt: iso(r.dispatched_at),
    onSceneAt: iso(r.on_scene_at),
    resolvedAt: iso(r.resolved_at),
    resolvedBy: r.resolved_by_name,
    cancelledAt: iso(r.cancelled_at),
    cancelReason: r.cancel_reason,
    shownAt: iso(r.shown_at),
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}
export type IncidentView = ReturnType<typeof toView>;

export interface RaiseResult {
  incident: IncidentView;
  /** true: a new incident; false: a retried event or a press folded into an open incident. */
  created: boolean;
  folded: boolean;
}

export interface DeviceAlarmInput {
  /** 'alarm_device': a one-click button press; 'camera': video analytics / tamper reported by a camera or its gateway. */
  deviceKind: 'alarm_device' | 'camera';
  deviceId: string;
  /** The device's own event id: a retried request with the same id returns the same incident. */
  eventId: string;
  type?: IncidentType;
  priority?: Priority;
  note?: string;
  drill?: boolean;
  /** For a gateway-reported camera event: the school the gateway is bound to (null = any). */
  gatewaySchoolId?: string | null;
}

export interface ManualAlarmInput {
  schoolId: string;
  type: IncidentType;
  location: string;
  areaKind?: string;
  note?: string;
  priority?: Priority;
  alarmDeviceId?: string;
  drill?: boolean;
}

export interface IncidentListQuery {
  schoolId?: string;
  zoneId?: string;
  status?: IncidentStatus[];
  type?: IncidentType;
  priority?: Priority;
  drill?: boolean;
  from?: string;
  to?: string;
  limit?: number;
  offset?: number;
}

interface Spot {
  schoolId: string;
  schoolName: string;
  zoneId: string | null;
  location: string;
  areaKind: string | null;
  cameras: IncidentCamera[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const userActor = (u: AuthUser): Actor => ({ type: 'user', id: u.id, name: u.username });

/**
 * Alarm intake and the incident lifecycle. Every change commits the incident, its timeline
 * entry, its console event, its audit entry and its outbox jobs in one transaction; the
 * caller gets its answer only after that commit. Methods take the acting user and do their
 * own role and scope checks, so the console socket gateway can call them as the REST routes do.
 */
@Injectable()
export class AlarmsService {
  private readonly cfg: AlarmsConfig;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
    private readonly outbox: AlarmsOutboxService,
    private readonly queue: QueueService,
  ) {
    this.cfg = config.alarms;
  }

  // ---------- intake ----------

  /**
   * An alarm reported by a device (HTTP device routes, and the GB/T 28181 SIP front end).
   * One-click presses fold into the device's open incident; event ids make retries idempotent.
   */
  async raiseFromDevice(input: DeviceAlarmInput, actor: Actor): Promise<RaiseResult> {
    const receivedAt = new Date();
    let spot: Spot;
    let type: IncidentType;
    let priority: Priority;
    if (input.deviceKind === 'alarm_device') {
      const dev = await this.registry.alarmDeviceSpot(input.deviceId);
      spot = { schoolId: dev.schoolId, schoolName: dev.schoolName, zoneId: dev.zoneId, location: dev.location, areaKind: dev.areaKind, cameras: dev.cameras };
      type = input.type ?? 'other';
      priority = input.priority ?? this.cfg.devicePressPriority;
    } else {
      const [cam] = await this.registry.cameras({ ids: [input.deviceId] });
      if (!cam) throw Errors.notFound(ErrorCode.CAMERA.NOT_FOUND, input.deviceId);
      if (input.gatewaySchoolId && input.gatewaySchoolId !== cam.schoolId) throw Errors.outOfScope();
      spot = await this.spot(cam.schoolId, cam.location || cam.name, cam.areaKind, [cam.id]);
      type = input.type ?? 'video_alarm';
      priority = input.priority ?? this.cfg.priorityByType[type];
    }
    // Serialise events of one device (the lock): a retry and a fold never race into two incidents.
    return this.transaction(input.deviceId, async (m) => {
      const foldCol = input.deviceKind === 'alarm_device' ? 'alarm_device_id' : 'camera_id';
      // One round trip: was this event seen already, is an alarm of this device open — and if
      // neither, the new incident with everything that goes with it.
      const r = await this.insertIncident(m, {
        check: {
          sql: `SELECT (SELECT incident_id FROM incident_presses WHERE device_id = $1 AND device_event_id = $2) AS seen,
                       (SELECT id FROM incidents WHERE ${foldCol} = $1 AND type = $3 AND source = 'device' AND status IN ('raised','acknowledged','dispatched','on_scene')
                        ORDER BY first_press_at DESC LIMIT 1) AS open_id`,
          params: [input.deviceId, input.eventId, type],
        },
        press: { deviceId: input.deviceId, eventId: input.eventId },
        spot,
        type,
        priority,
        source: 'device',
        note: input.note ?? '',
        alarmDeviceId: input.deviceKind === 'alarm_device' ? input.deviceId : null,
        cameraId: input.deviceKind === 'camera' ? input.deviceId : null,
        drill: input.drill ?? false,
        actor,
        at: receivedAt,
      });
      if (r.row) return { incident: toView(r.row), created: true, folded: false, jobs: r.jobs };
      if (r.seen) return { incident: toView(await this.row(m, r.seen)), created: false, folded: false };
      const openId = r.openId!;
      await m.query(`INSERT INTO incident_presses (incident_id, device_id, device_event_id, at) VALUES ($1, $2, $3, $4)`, [openId, input.deviceId, input.eventId, receivedAt]);
      const [[row]] = (await m.query(
        `UPDATE incidents SET press_count = press_count + 1, last_press_at = greatest(last_press_at, $2), updated_at = now() WHERE id = $1 RETURNING *`,
        [openId, receivedAt],
      )) as [IncidentRow[]];
      await this.timeline(m, row.id, actor, 'press', input.note ?? '', { eventId: input.eventId, pressCount: row.press_count });
      await this.events.append(m, { type: 'incident.updated', schoolId: row.school_id, payload: { ...toSummary(row), change: 'press' } });
      return { incident: toView(row), created: false, folded: true };
    }).then((r) => this.afterRaise(r));
  }

  /** An alarm raised by school security staff (own school only) or a control-center user. */
  async raiseManual(user: AuthUser, input: ManualAlarmInput): Promise<RaiseResult> {
    this.assertRole(user, RAISE_ROLES);
    assertSchoolScope(user, input.schoolId);
    const receivedAt = new Date();
    let linked: string[] = [];
    let areaKind = input.areaKind ?? null;
    if (input.alarmDeviceId) {
      const dev = await this.registry.alarmDevice(input.alarmDeviceId);
      if (dev.schoolId !== input.schoolId) throw Errors.validation([{ field: 'alarmDeviceId', reason: 'belongs to another school' }]);
      linked = dev.linkedCameraIds;
      areaKind ??= dev.areaKind;
    }
    const spot = await this.spot(input.schoolId, input.location, areaKind, linked);
    const actor = userActor(user);
    return this.transaction(null, async (m) => {
      const { row, jobs } = await this.insertIncident(m, {
        spot,
        type: input.type,
        priority: input.priority ?? this.cfg.priorityByType[input.type],
        source: user.role === 'school_security' ? 'staff' : 'operator',
        note: input.note ?? '',
        alarmDeviceId: input.alarmDeviceId ?? null,
        cameraId: null,
        drill: input.drill ?? false,
        actor,
        at: receivedAt,
      });
      return { incident: toView(row!), created: true, folded: false, jobs };
    }).then((r) => this.afterRaise(r));
  }

  private afterRaise(r: RaiseResult & { jobs?: OutboxRow[] }): RaiseResult {
    if (r.jobs) this.outbox.kick(r.jobs);
    return { incident: r.incident, created: r.created, folded: r.folded };
  }

  /**
   * A transaction on one pooled connection, answered only after COMMIT. With a `lockKey` (a
   * device id), the first round trip both begins it and takes that device's advisory lock: BEGIN
   * and the lock go as one simple-protocol query, so the key is inlined — it must be a uuid.
   */
  private async transaction<T>(lockKey: string | null, fn: (m: EntityManager) => Promise<T>): Promise<T> {
    if (lockKey !== null && !UUID.test(lockKey)) throw new Error(`advisory lock key is not a uuid: ${lockKey}`);
    const qr = this.db.createQueryRunner();
    await qr.connect();
    try {
      await qr.query(lockKey === null ? 'BEGIN' : `BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('${lockKey}', 0))`);
      try {
        const result = await fn(qr.manager);
        await qr.query('COMMIT');
        return result;
      } catch (e) {
        await qr.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    } finally {
      await qr.release();
    }
  }

  /** Where the alarm is, with the cameras covering the spot (read through the registry). */
  private async spot(schoolId: string, location: string, areaKind: string | null, linkedCameraIds: string[]): Promise<Spot> {
    const [school, linked, sameArea] = await Promise.all([
      this.registry.school(schoolId),
      linkedCameraIds.length ? this.registry.cameras({ ids: linkedCameraIds }) : Promise.resolve([]),
      areaKind ? this.registry.cameras({ schoolId, areaKinds: [areaKind] }) : Promise.resolve([]),
    ]);
    const seen = new Set<string>();
    const cameras: IncidentCamera[] = [];
    for (const c of [...linked, ...sameArea]) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      cameras.push({ id: c.id, name: c.name, location: c.location, areaKind: c.areaKind, streamUrl: c.streamUrl, status: c.status });
    }
    return { schoolId, schoolName: school.name, zoneId: school.zoneId, location, areaKind, cameras };
  }

  /**
   * A new incident in ONE statement (one round trip): the incident, its first timeline entry,
   * its press row (device alarms), its console event with the NOTIFY, its audit entry and its
   * outbox jobs, as data-modifying CTEs — each table's part written by the module that owns it.
   * The id is drawn here so the console payload and the outbox jobs are known beforehand; only
   * `drill` (a drill window may cover the press) is decided inside the statement and merged in.
   * With `check` (device intake), nothing is written if it finds the event seen or an incident
   * open: the caller gets `seen` / `openId` instead of `row`.
   */
  private async insertIncident(
    m: EntityManager,
    f: {
      spot: Spot;
      type: IncidentType;
      priority: Priority;
      source: IncidentSource;
      note: string;
      alarmDeviceId: string | null;
      cameraId: string | null;
      drill: boolean;
      actor: Actor;
      at: Date;
      press?: { deviceId: string; eventId: string };
      /** A one-row SELECT of `seen` and `open_id`, with its own parameters from $1. */
      check?: { sql: string; params: unknown[] };
    },
  ): Promise<{ row: IncidentRow | null; jobs: OutboxRow[]; seen: string | null; openId: string | null }> {
    const relayRequired = this.cfg.policeRelay.url !== '' && this.cfg.relayPriorities.includes(f.priority);
    const id = randomUUID();
    const draft: IncidentRow = {
      id,
      type: f.type,
      priority: f.priority,
      source: f.source,
      school_id: f.spot.schoolId,
      zone_id: f.spot.zoneId,
      alarm_device_id: f.alarmDeviceId,
      camera_id: f.cameraId,
      location: f.spot.location,
      area_kind: f.spot.areaKind,
      note: f.note,
      status: 'raised',
      press_count: 1,
      first_press_at: f.at,
      last_press_at: f.at,
      drill: f.drill, // or a drill window: decided in SQL, merged into the payloads below
      outcome: null,
      raised_by_id: f.actor.type === 'user' ? f.actor.id : null,
      raised_by_name: f.actor.name,
      shown_at: null,
      acknowledged_by_id: null,
      acknowledged_by_name: null,
      acknowledged_at: null,
      dispatched_at: null,
      on_scene_at: null,
      resolved_by_id: null,
      resolved_by_name: null,
      resolved_at: null,
      cancelled_at: null,
      cancel_reason: null,
      escalation_level: 0,
      linked_camera_ids: f.spot.cameras.map((c) => c.id),
      cameras: f.spot.cameras,
      school_name: f.spot.schoolName,
      relay_required: relayRequired,
      relay_delivered_at: null,
      relay_attempts: 0,
      relay_late: false,
      created_at: f.at,
      updated_at: f.at,
    };
    const t0 = f.at.getTime();
    const jobs: OutboxJob[] = (this.cfg.escalationSeconds[f.priority] ?? []).map((s, i) => ({
      name: JobName.AlarmEscalate,
      jobId: jobIds.escalation(id, i + 1),
      payload: { incidentId: id, level: i + 1 },
      availableAt: new Date(t0 + s * 1000),
    }));
    if (relayRequired) {
      jobs.push({ name: JobName.AlarmPoliceRelay, jobId: jobIds.relay(id), payload: { incidentId: id }, availableAt: new Date(t0) });
      jobs.push({
        name: JobName.AlarmRelayWatch,
        jobId: jobIds.relayWatch(id),
        payload: { incidentId: id },
        availableAt: new Date(t0 + this.cfg.policeRelay.lateAfterSeconds * 1000),
      });
    }

    const p = new SqlParams();
    const chk = f.check ? f.check.sql : `SELECT NULL::uuid AS seen, NULL::uuid AS open_id`;
    f.check?.params.forEach((v) => p.add(v));
    const [at, schoolId, actorId] = [p.add(f.at), p.add(f.spot.schoolId), p.add(f.actor.type === 'system' ? null : f.actor.id)];
    const drillSql = `jsonb_build_object('drill', inc.drill)`;
    const ctes = [
      `chk AS (${chk})`,
      `inc AS (
         INSERT INTO incidents (id, type, priority, source, school_id, zone_id, alarm_device_id, camera_id, location, area_kind, note,
           first_press_at, last_press_at, drill, raised_by_id, raised_by_name, shown_at, linked_camera_ids, cameras, school_name, relay_required)
         SELECT ${p.add(id)}::uuid, ${p.add(f.type)}, ${p.add(f.priority)}, ${p.add(f.source)}, ${schoolId}::uuid, ${p.add(f.spot.zoneId)}::uuid,
           ${p.add(f.alarmDeviceId)}::uuid, ${p.add(f.cameraId)}::uuid, ${p.add(f.spot.location)}, ${p.add(f.spot.areaKind)}, ${p.add(f.note)}, ${at}::timestamptz, ${at}::timestamptz,
           ${p.add(f.drill)}::boolean OR EXISTS (SELECT 1 FROM drill_windows WHERE school_id = ${schoolId}::uuid AND starts_at <= ${at}::timestamptz AND ends_at > ${at}::timestamptz),
           ${p.add(draft.raised_by_id)}::uuid, ${p.add(f.actor.name)}, clock_timestamp(), ${p.add(draft.linked_camera_ids)}::uuid[], ${p.add(JSON.stringify(f.spot.cameras))}::jsonb,
           ${p.add(f.spot.schoolName)}, ${p.add(relayRequired)}::boolean
         FROM chk WHERE chk.seen IS NULL AND chk.open_id IS NULL
         RETURNING *)`,
      `tl AS (
         INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data)
         SELECT id, ${p.add(f.actor.type)}, ${actorId}::uuid, raised_by_name, 'raised', note, jsonb_build_object('type', type, 'priority', priority, 'drill', drill) FROM inc)`,
      f.press
        ? `pr AS (INSERT INTO incident_presses (incident_id, device_id, device_event_id, at) SELECT id, ${p.add(f.press.deviceId)}::uuid, ${p.add(f.press.eventId)}, first_press_at FROM inc)`
        : null,
      `ev AS (${this.events.insertFromSql(p, 'inc', { type: 'incident.raised', schoolId: f.spot.schoolId, payload: toSummary(draft) }, drillSql)})`,
      `au AS (${this.audit.insertFromSql(p, 'inc', { action: 'raise', entity: 'incident', entityId: id, schoolId: f.spot.schoolId, after: { type: f.type, priority: f.priority, source: f.source } }, drillSql)})`,
      jobs.length ? `ob AS (${this.outbox.insertSql(p, jobs, 'inc')})` : null,
    ].filter(Boolean);
    const [res] = (await m.query(
      `WITH ${ctes.join(',\n')}
       SELECT chk.seen, chk.open_id, (SELECT ${this.events.notifySql(p, 'seq')} FROM ev) AS notified,
              ${jobs.length ? `(SELECT json_agg(ob) FROM ob)` : 'NULL::json'} AS outbox, inc.*
       FROM chk LEFT JOIN inc ON true`,
      p.values,
    )) as (IncidentRow & { seen: string | null; open_id: string | null; notified: unknown; outbox: OutboxRow[] | null })[];
    const { seen, open_id: openId, notified: _n, outbox, ...row } = res;
    if (!row.id) return { row: null, jobs: [], seen, openId };
    return { row: row as IncidentRow, jobs: (outbox ?? []).map((o) => ({ ...o, id: String(o.id), available_at: new Date(o.available_at) })), seen: null, openId: null };
  }

  // ---------- lifecycle ----------

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
    this.assertRole(user, action === 'cancel' ? CANCEL_ROLES : action === 'note' ? RAISE_ROLES : ACT_ROLES);
    const actor = userActor(user);
    const scope = scopedSchoolId(user);
    // Base parameters $1..$3; each action's own parameters follow from $4 (typed by their use).
    const sets: Partial<Record<IncidentAction, [string, unknown[]]>> = {
      acknowledge: [`status = 'acknowledged', acknowledged_by_id = $4, acknowledged_by_name = $5, acknowledged_at = now()`, [user.id, user.username]],
      dispatch: [`status = 'dispatched', dispatched_at = now()`, []],
      on_scene: [`status = 'on_scene', on_scene_at = now()`, []],
      resolve: [
        `status = 'resolved', resolved_by_id = $4, resolved_by_name = $5, resolved_at = now(), outcome = $6::text, drill = drill OR $6::text = 'drill'`,
        [user.id, user.username, opts.outcome ?? null],
      ],
      cancel: [`status = 'cancelled', cancelled_at = now(), cancel_reason = $4`, [opts.note ?? '']],
      note: [`note = note`, []],
    };
    const [setSql, extra] = sets[action]!;
    const escalationJobs: string[] = [];
    const row = await this.db.transaction(async (m) => {
      const [[updated]] = (await m.query(
        `UPDATE incidents SET ${setSql}, updated_at = now()
         WHERE id = $1 AND status = ANY($2) AND ($3::uuid IS NULL OR school_id = $3) RETURNING *`,
        [id, allowedFrom(action), scope, ...extra],
      )) as [IncidentRow[]];
      if (!updated) throw await this.refusal(m, id, action, user);
      await this.timeline(m, id, actor, action, opts.note ?? '', opts.outcome ? { outcome: opts.outcome } : null);
      await this.events.append(m, { type: 'incident.updated', schoolId: updated.school_id, payload: { ...toSummary(updated), change: action } });
      await this.audit.record(m, { action, entity: 'incident', entityId: id, schoolId: updated.school_id, after: { status: updated.status, note: opts.note, outcome: opts.outcome } });
      if (action === 'acknowledge' || action === 'cancel') {
        // Escalation is over: mark its outbox rows done (no re-dispatch) and drop the timers after commit.
        const [rows] = (await m.query(
          `UPDATE alarm_outbox SET done_at = now() WHERE job_name = $1 AND payload->>'incidentId' = $2 AND done_at IS NULL RETURNING job_id`,
          [JobName.AlarmEscalate, id],
        )) as [{ job_id: string }[]];
        escalationJobs.push(...rows.map((r) => r.job_id));
      }
      return updated;
    });
    // The handler re-checks the state anyway, so a failed removal is harmless.
    await Promise.allSettled(escalationJobs.map((j) => this.queue.removeJob(JobName.AlarmEscalate, j)));
    return toView(row);
  }

  /** Why a conditional update touched nothing: 404, 403, or the state machine's 409. */
  private async refusal(m: EntityManager, id: string, action: IncidentAction, user: AuthUser) {
    const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    if (!row) return Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    const scope = scopedSchoolId(user);
    if (scope && row.school_id !== scope) return Errors.outOfScope();
    const t = transition(row.status, action, 'user');
    if (!t.ok && t.code === ErrorCode.ALARM.ALREADY_ACKNOWLEDGED) {
      return Errors.conflict(t.code, `${t.message}（${row.acknowledged_by_name}）`, {
        acknowledgedBy: { id: row.acknowledged_by_id, name: row.acknowledged_by_name },
        acknowledgedAt: iso(row.acknowledged_at),
        status: row.status,
      });
    }
    return Errors.conflict(t.ok ? ErrorCode.ALARM.CONCURRENT_CHANGE : t.code, t.ok ? '报警状态刚被其他人更改，请刷新后重试' : t.message, { status: row.status });
  }

  // ---------- reads ----------

  async get(user: AuthUser, id: string) {
    this.assertRole(user, READ_ROLES);
    const [row] = (await this.db.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    if (!row) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    assertSchoolScope(user, row.school_id);
    const timeline = await this.db.query(
      `SELECT at, actor_type AS "actorType", actor_id AS "actorId", actor_name AS "actorName", action, note, data FROM incident_timeline WHERE incident_id = $1 ORDER BY id`,
      [id],
    );
    return { ...toView(row), timeline };
  }

  async list(user: AuthUser, q: IncidentListQuery, maxPage: number, defaultPage: number): Promise<Page<IncidentView>> {
    this.assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (schoolId) add('school_id = ?', schoolId);
    if (q.zoneId) add('zone_id = ?', q.zoneId);
    if (q.status?.length) add('status = ANY(?)', q.status);
    if (q.type) add('type = ?', q.type);
    if (q.priority) add('priority = ?', q.priority);
    if (q.drill !== undefined) add('drill = ?', q.drill);
    if (q.from) add('first_press_at >= ?', q.from);
    if (q.to) add('first_press_at < ?', q.to);
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.min(q.limit ?? defaultPage, maxPage);
    const offset = q.offset ?? 0;
    const [{ total }] = await this.db.query(`SELECT count(*)::int AS total FROM incidents ${w}`, params);
    const rows = (await this.db.query(`SELECT * FROM incidents ${w} ORDER BY first_press_at DESC, id LIMIT ${limit} OFFSET ${offset}`, params)) as IncidentRow[];
    return { items: rows.map(toView), total, limit, offset };
  }

  /**
   * Per-step durations (ms from the first press) at p50/p90, per school, per zone and per day
   * (Asia/Shanghai). Drills and test alarms stay out.
   */
  async stats(user: AuthUser, q: { from?: string; to?: string; schoolId?: string }) {
    this.assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    const from = q.from ?? new Date(Date.now() - 30 * 86400_000).toISOString();
    const to = q.to ?? new Date(Date.now() + 60_000).toISOString();
    const steps = {
      toConsole: 'shown_at',
      toAcknowledged: 'acknowledged_at',
      toRelayed: 'relay_delivered_at',
      toOnScene: 'on_scene_at',
      toResolved: 'resolved_at',
    };
    const cols = Object.entries(steps)
      .map(([k, c]) => `EXTRACT(EPOCH FROM ${c} - first_press_at) * 1000 AS "${k}"`)
      .join(', ');
    const aggs = Object.keys(steps)
      .map(
        (k) =>
          `percentile_cont(0.5) WITHIN GROUP (ORDER BY "${k}") AS "${k}P50", percentile_cont(0.9) WITHIN GROUP (ORDER BY "${k}") AS "${k}P90"`,
      )
      .join(', ');
    const rows: Record<string, unknown>[] = await this.db.query(
      `WITH d AS (
         SELECT school_id, zone_id, school_name, (first_press_at AT TIME ZONE 'Asia/Shanghai')::date::text AS day, ${cols}
         FROM incidents
         WHERE NOT drill AND coalesce(outcome, '') NOT IN ('drill', 'test')
           AND first_press_at >= $1 AND first_press_at < $2 AND ($3::uuid IS NULL OR school_id = $3)
       )
       SELECT CASE WHEN GROUPING(school_id, school_name) = 0 THEN 'school' WHEN GROUPING(zone_id) = 0 THEN 'zone' ELSE 'day' END AS dim,
              school_id AS "schoolId", school_name AS "schoolName", zone_id AS "zoneId", day, count(*)::int AS count, ${aggs}
       FROM d GROUP BY GROUPING SETS ((school_id, school_name), (zone_id), (day))
       ORDER BY dim, "schoolName", day`,
      [from, to, schoolId ?? null],
    );
    const pick = (dim: string) =>
      rows
        .filter((r) => r.dim === dim)
        .map(({ dim: _d, ...r }) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /P[59]0$/.test(k) ? Number(v) : v])));
    return { from, to, unit: 'ms', bySchool: pick('school'), byZone: pick('zone'), byDay: pick('day') };
  }

  // ---------- drill windows ----------

  async createDrillWindow(user: AuthUser, dto: { schoolId: string; startsAt: string; endsAt: string; note?: string }) {
    this.assertRole(user, RAISE_ROLES);
    assertSchoolScope(user, dto.schoolId);
    if (new Date(dto.endsAt) <= new Date(dto.startsAt)) throw Errors.validation([{ field: 'endsAt', reason: 'must be after startsAt' }]);
    await this.registry.school(dto.schoolId);
    return this.db.transaction(async (m) => {
      const [row] = await m.query(
        `INSERT INTO drill_windows (school_id, starts_at, ends_at, note, created_by_name) VALUES ($1, $2, $3, $4, $5)
         RETURNING id, school_id AS "schoolId", starts_at AS "startsAt", ends_at AS "endsAt", note, created_by_name AS "createdBy"`,
        [dto.schoolId, dto.startsAt, dto.endsAt, dto.note ?? '', user.username],
      );
      await this.audit.record(m, { action: 'create', entity: 'drill_window', entityId: row.id, schoolId: dto.schoolId, after: row });
      return row;
    });
  }

  async listDrillWindows(user: AuthUser, q: { schoolId?: string }) {
    this.assertRole(user, READ_ROLES);
    const schoolId = effectiveSchoolFilter(user, q.schoolId);
    return this.db.query(
      `SELECT id, school_id AS "schoolId", starts_at AS "startsAt", ends_at AS "endsAt", note, created_by_name AS "createdBy"
       FROM drill_windows WHERE ($1::uuid IS NULL OR school_id = $1) ORDER BY starts_at DESC LIMIT 500`,
      [schoolId ?? null],
    );
  }

  // ---------- helpers ----------

  async row(m: EntityManager | DataSource, id: string): Promise<IncidentRow> {
    const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    if (!row) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    return row;
  }

  async timeline(m: EntityManager, incidentId: string, actor: Actor, action: string, note: string, data: object | null = null): Promise<void> {
    await m.query(`INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      incidentId,
      actor.type,
      actor.type === 'system' ? null : actor.id,
      actor.name,
      action,
      note,
      data ? JSON.stringify(data) : null,
    ]);
  }

  private assertRole(user: AuthUser, roles: UserRole[]): void {
    if (!roles.includes(user.role)) throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, `Role ${user.role} may not do this`);
  }
}
