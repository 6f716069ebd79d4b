import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { createHash, randomUUID } from 'node:crypto';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import type { AuthUser } from '../../infra/access/roles';
import { assertSchoolScope } from '../../infra/access/scope';
import { preparedQuery } from '../../infra/database/prepared';
import { SqlParams } from '../../infra/database/sql-params';
import { turnBatch } from '../../infra/database/turn-batch';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { Actor, currentContext, requestContext, type RequestContext } from '../../infra/http/request-context';
import { JobName } from '../../infra/queue/queue.catalogue';
import { AuditService } from '../audit-log';
import { ConsoleEventsService, type IncidentCamera, type ReporterPosition } from '../console-events';
import { type AlarmDeviceSpot, RegistryService } from '../registry';
import { AlarmsOutboxService, OutboxJob, OutboxRow } from './alarms-outbox.service';
import { IntakePressure } from './intake-pressure';
import { assertRole, RAISE_ROLES, userActor } from './alarms.access';
import { IncidentSource, IncidentType, jobIds, Priority } from './alarms.constants';
import { devicePriority, DevicePriorityFloor } from './device-priority';
import { IncidentRow, IncidentView, toSummary, toView } from './incident-row';
import { intakeMetrics, type IntakePhase } from './alarms.metrics';
import { appendTimeline } from './incident-timeline';
import { storableText } from '../../infra/text/storable';
import { PressFoldingService } from './press-folding.service';

/** What a report of a gateway without a school, naming no usable camera, became (said in its note). */
export const GATEWAY_UNPLACED = '网关不属于任何学校：报警未定位到学校，由区级值守处理';

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
  /**
   * true: the event id is the digest of the body's bytes (`b-…`: no usable eventId in it). The same
   * bytes may be every press of the device: such an id is a retry only within
   * alarms.deviceRetryWindowSeconds and never once its incident is closed.
   */
  eventIdFromBytes?: boolean;
  type?: IncidentType;
  priority?: Priority;
  note?: string;
  drill?: boolean;
  /** For a gateway-reported camera event: the school the gateway is bound to (null = any). */
  gatewaySchoolId?: string | null;
  /**
   * A gateway's report (deviceKind 'camera'): the gateway's key (a uuid: its presses, lock and folding
   * when no camera places the alarm) and its name. A report whose camera is missing (deviceId = key),
   * unknown or not at the gateway's school is never refused (attack A1: a 4xx is an alarm lost): it is
   * raised at the gateway's school without a camera (no school: an unplaced alarm the district sees),
   * the reason in its note.
   */
  gateway?: { key: string; name: string };
  /**
   * The caller's rate limit, called with the key the alarm is taken under once it is known — the
   * camera, or for a gateway's report without a usable camera the gateway's key (a bucket per
   * made-up camera id would let a gateway past any limit) — as soon as that key is known, before
   * any further read (the spot) and anything written; what it throws (429) is the answer. A caller
   * that knows the key before the intake (a camera's own report) limits first and passes none.
   */
  limit?: (key: string) => void;
  /** When the request arrived (RequestContext.receivedAt: its headers, before its body was read): the press time. Default now. */
  at?: Date;
  /**
   * How the device's priority meets its type's default (device-priority.ts): 'type' (the default:
   * never less urgent than the type, said in the note) or 'none' (as reported: GB/T 28181 alarms,
   * a product decision — see GbAlarms).
   */
  priorityFloor?: DevicePriorityFloor;
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
  /** The raising phone's position (WGS-84 degrees, accuracy in metres), when its user allows it. */
  position?: ReporterPosition;
  /**
   * The client's own event id (body `clientEventId` or header `Idempotency-Key`; 1–128 of
   * `A-Za-z0-9_.:-`), unique per user: a retry with the same id and body returns the same incident
   * (created: false → 200); the same id with a different body is 409 INCIDENT.CLIENT_EVENT_REUSED.
   */
  clientEventId?: string;
}

/**
 * An alarm from a registered GB/T 28181 device whose channel is not placed in a school (no registry
 * camera): raised at the device's school when known, otherwise as an unplaced device alarm (no
 * school: the district sees it, school staff do not). Never dropped.
 */
export interface UnplacedGbAlarmInput {
  /** The device's 20-digit id (the SIP From) and the channel the alarm names (DeviceID of the Notify). */
  gbDeviceId: string;
  channelId: string;
  /** The device's school (gb_devices.school_id), null when nobody placed it. */
  schoolId: string | null;
  /** Deterministic per alarm: a repeat returns the same incident. */
  eventId: string;
  type: IncidentType;
  priority?: Priority;
  note: string;
}

/** The id an unplaced GB/T 28181 channel's alarms are keyed by (presses, the lock, the audit actor): a uuid-shaped digest of device and channel. */
export function unplacedChannelKey(gbDeviceId: string, channelId: string): string {
  return uuidOf(`gb28181-channel\n${gbDeviceId}\n${channelId}`);
}

interface Spot {
  /** null: an unplaced device alarm (no school known). */
  schoolId: string | null;
  schoolName: string;
  zoneId: string | null;
  location: string;
  areaKind: string | null;
  cameras: IncidentCamera[];
}

/** The hash a retry must match: the alarm's fields (not the client event id), in a fixed order, absent = null. */
function requestHash(i: ManualAlarmInput): string {
  const pos = i.position ? [i.position.latitude, i.position.longitude, i.position.accuracyM] : null;
  const fields = [i.schoolId, i.type, i.location, i.areaKind, i.note, i.priority, i.alarmDeviceId, i.drill, ...(pos ? [pos] : [])].map((v) => v ?? null);
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex');
}

/** A uuid-shaped SHA-256 digest of a text (advisory-lock keys, keys of things without a row of their own). */
function uuidOf(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The advisory-lock key of one user's client event. */
function clientEventLock(userId: string, clientEventId: string): string {
  return uuidOf(`${userId}\n${clientEventId}`);
}

/** A device event as the intake applies it (see deviceEvent). */
interface DeviceEvent {
  deviceId: string;
  eventId: string;
  /** The event id is the digest of the body's bytes (DeviceAlarmInput.eventIdFromBytes). */
  eventIdFromBytes: boolean;
  /** The device's open incidents (id, drill, first_press_at); params $1 device id, $3 type, $5 school id, $8 location (its place now). */
  openSql: string;
  spot: Spot;
  type: IncidentType;
  priority: Priority;
  note: string;
  alarmDeviceId: string | null;
  cameraId: string | null;
  drill: boolean;
  /** false: a button not wired to the police — never relayed. */
  policeLinked: boolean;
  /** When the request arrived: the press time. */
  at: Date;
}

interface ArrivalTicket {
  turn: Promise<void>;
  done: () => void;
}

interface QueuedDeviceEvent {
  e: DeviceEvent;
  actor: Actor;
  /** The caller's request context: the group runs each event in it (the audit entry names the caller). */
  ctx: RequestContext | undefined;
  since: number;
  resolve: (r: RaiseResult) => void;
  reject: (e: unknown) => void;
}

/** What a new incident is made of (insertIncident). */
interface IncidentInsertFields {
  spot: Spot;
  type: IncidentType;
  priority: Priority;
  source: IncidentSource;
  note: string;
  alarmDeviceId: string | null;
  cameraId: string | null;
  drill: boolean;
  /** A phone's position at a staff alarm (null/absent: none sent). */
  position?: ReporterPosition | null;
  /** false: a press of a button not wired to the police (一键报警联网) — never relayed. Staff, operator and camera alarms: true. */
  policeLinked?: boolean;
  actor: Actor;
  at: Date;
  press?: { deviceId: string; eventId: string };
  /** A staff/operator alarm's client event id (idempotency key, unique per user) with the hash of its request. */
  clientEvent?: { userId: string; eventId: string; hash: string };
  /** A one-row SELECT of `seen`, `open_id` and `repeat_no` (of the press row to write), with its own parameters from $1. */
  check?: { sql: string; params: unknown[] };
}

/** A new incident's insert (incidentInsertPart): `text` with {S}/{K} and its own $1… over `values`. */
interface IncidentInsertPart {
  text: string;
  values: unknown[];
}

/** What the insert found or wrote: the new row with its outbox rows, or the event already `seen`, or the device's open incident. */
interface IncidentInsertResult {
  row: IncidentRow | null;
  jobs: OutboxRow[];
  seen: string | null;
  openId: string | null;
  repeatNo: number;
}

type IncidentInsertRow = IncidentRow & { seen: string | null; open_id: string | null; repeat_no: number; notified: unknown; outbox: OutboxRow[] | null };

function insertResult(res: IncidentInsertRow): IncidentInsertResult {
  const { seen, open_id: openId, repeat_no: repeatNo, notified: _n, outbox, k: _k, ...row } = res as IncidentInsertRow & { k?: number };
  if (!row.id) return { row: null, jobs: [], seen, openId, repeatNo };
  return {
    row: row as IncidentRow,
    jobs: (outbox ?? []).map((o) => ({ ...o, id: String(o.id), available_at: new Date(o.available_at) })),
    seen: null,
    openId: null,
    repeatNo,
  };
}

/** Combined statement texts by part text, then count (a few per shape: chunkSize's ladder). Keyed in two steps: no key string built per event. */
const combinedTexts = new Map<string, Map<number, string>>();

/**
 * `count` parts of one text as one statement: part k's CTEs suffixed `_k`, its placeholders moved
 * past the parts before it, and its SELECT (numbered k) joined to the others' with UNION ALL.
 * One part alone keeps its names (no suffix).
 */
function combinedInsertText(partText: string, count: number, paramsPerPart: number): string {
  const byCount = combinedTexts.get(partText);
  const known = byCount?.get(count);
  if (known) return known;
  const cut = partText.lastIndexOf('\nSELECT {K}::int AS k');
  const [ctes, select] = [partText.slice(0, cut), partText.slice(cut + 1)];
  const one = (t: string, k: number) =>
    t
      .replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + k * paramsPerPart}`)
      .replace(/\{S\}/g, count === 1 ? '' : `_${k}`)
      .replace(/\{K\}/g, String(k));
  const ks = [...Array(count).keys()];
  const text = `WITH ${ks.map((k) => one(ctes, k)).join(',\n')}\n${ks.map((k) => one(select, k)).join('\nUNION ALL\n')}`;
  if (!byCount && combinedTexts.size >= 64) combinedTexts.clear(); // a handful of shapes in practice
  combinedTexts.set(partText, (byCount ?? new Map<number, string>()).set(count, text));
  return text;
}

/** The next chunk's size for `left` parts: the largest of max, 2 and 1 that fits (few distinct texts to prepare). */
function chunkSize(left: number, max: number): number {
  return [max, 2, 1].find((n) => n <= left && n <= max) ?? 1;
}

/** Runs fn in a request context (or none). */
const inContext = <T>(ctx: RequestContext | undefined, fn: () => Promise<T>): Promise<T> => (ctx ? requestContext.run(ctx, fn) : requestContext.exit(fn));

/** Longest note kept for a device alarm (device-alarm-body.ts bounds what the body brings to the same). */
const NOTE_MAX = 500;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Alarm intake: device presses and reports (HTTP device routes, the GB/T 28181 SIP front end)
 * and alarms raised by staff and operators. A new incident commits with its timeline entry,
 * console event, audit entry and outbox jobs in one statement before the caller gets its answer;
 * presses fold into the device's open incident and event ids make retries idempotent.
 */
@Injectable()
export class AlarmIntakeService implements OnApplicationShutdown {
  private readonly cfg: AlarmsConfig;
  /** Device events waiting for a group transaction (alarms.groupCommit). */
  private readonly queued: QueuedDeviceEvent[] = [];
  private groupTimer: NodeJS.Timeout | null = null;
  private groupsInFlight = 0;
  /** Group transactions in flight (shutdown waits for them). */
  private readonly groups = new Set<Promise<void>>();
  /** Devices with events in a group still committing: their next events wait for the next group. */
  private readonly devicesInFlight = new Set<string>();
  /** Buttons whose spot is wanted, read together once per event-loop turn (see alarmDeviceSpot). */
  /** Per device, the tail of its line of arrivals (see arrive). */
  private readonly arrivals = new Map<string, Promise<void>>();

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly registry: RegistryService,
    private readonly events: ConsoleEventsService,
    private readonly audit: AuditService,
    private readonly outbox: AlarmsOutboxService,
    private readonly folding: PressFoldingService,
    private readonly pressure: IntakePressure,
  ) {
    this.cfg = config.alarms;
  }

  /**
   * An alarm reported by a device (HTTP device routes, and the GB/T 28181 SIP front end).
   * One-click presses fold into the device's open incident; event ids make retries idempotent.
   */
  async raiseFromDevice(input: DeviceAlarmInput, actor: Actor): Promise<RaiseResult> {
    this.pressure.note();
    const ticket = this.arrive(input.deviceId.toLowerCase()); // one line per camera however a gateway spells its uuid (deviceEventOf)
    let e: DeviceEvent;
    try {
      e = await this.deviceEventOf(input);
    } catch (err) {
      ticket.done();
      throw err;
    }
    return this.deviceEvent(e, actor, ticket);
  }

  /** The note with what the intake had to decide added (bounded like the body's problems). */
  private static noted(note: string | undefined, said: string[]): string {
    return said.length ? storableText(`${note ?? ''}（${said.join('；')}）`.slice(-NOTE_MAX)) : (note ?? '');
  }

  /** The event of a device alarm: where, what, how urgent (registry reads; no transaction yet). */
  private async deviceEventOf(input: DeviceAlarmInput): Promise<DeviceEvent> {
    const receivedAt = input.at ?? new Date();
    const said: string[] = [];
    let spot: Spot;
    let type: IncidentType;
    let priority: Priority;
    let policeLinked = true;
    let deviceId = input.deviceId;
    // At the device's place as it is now ($5 school, $8 location): a button moved to another school or spot opens
    // an incident there instead of feeding the one of its old place (attack A13).
    const openOf = (foldCol: string) => `SELECT id, drill, first_press_at FROM incidents
                WHERE ${foldCol} = $1 AND type = $3 AND source = 'device' AND status IN ('raised','acknowledged','dispatched','on_scene')
                  AND school_id = $5::uuid AND location = $8`;
    let openSql: string;
    let cameraId: string | null = null;
    let eventId = input.eventId;
    if (input.deviceKind === 'alarm_device') {
      input.limit?.(input.deviceId);
      const dev = await this.alarmDeviceSpot(input.deviceId);
      spot = { schoolId: dev.schoolId, schoolName: dev.schoolName, zoneId: dev.zoneId, location: dev.location, areaKind: dev.areaKind, cameras: dev.cameras };
      type = input.type ?? 'other';
      // A button's press is never less urgent than its type (attack A6; alarms.devicePressPriority is P1 by default).
      const p = devicePriority(this.cfg.priorityByType, type, input.priority, { floor: input.priorityFloor ?? 'type', fallback: this.cfg.devicePressPriority });
      priority = p.priority;
      if (p.said) said.push(p.said);
      policeLinked = dev.policeLinked;
      openSql = openOf('alarm_device_id');
    } else {
      const gw = input.gateway;
      const [cam] = gw && input.deviceId === gw.key ? [] : await this.registry.cameras({ ids: [input.deviceId] });
      const foreign = !!cam && !!input.gatewaySchoolId && input.gatewaySchoolId !== cam.schoolId;
      type = input.type ?? 'video_alarm';
      const p = devicePriority(this.cfg.priorityByType, type, input.priority, { floor: input.priorityFloor ?? 'type' });
      priority = p.priority;
      if (p.said) said.push(p.said);
      if (cam && !foreign) {
        // Keyed by the registry's id, not as the report spelled it: a gateway writing the camera's uuid in capitals is the
        // same camera (Postgres compares uuids so), and a second spelling was a second device — its own lock, and in a
        // group a second first event in the same combined statement, which both opened an incident (attack pass 11 #1).
        deviceId = cam.id;
        input.limit?.(cam.id); // before the spot's reads: a refused report reads no more
        spot = await this.spot(cam.schoolId, cam.location || cam.name, cam.areaKind, [cam.id]);
        cameraId = cam.id;
        openSql = openOf('camera_id');
      } else if (gw) {
        // Under the gateway's key, two cameras counting their events from 1 would collide: the named camera stays in the event id.
        if (input.deviceId !== gw.key) eventId = `${input.deviceId.slice(0, 64)}/${input.eventId}`;
        deviceId = gw.key;
        input.limit?.(deviceId); // before the spot's reads: a refused report reads no more
        spot = await this.gatewaySpot(input.gatewaySchoolId ?? null, gw.name);
        // Unknown and another school's camera are said alike: the note does not tell what exists elsewhere. It says
        // where the alarm went: the gateway's school, or — a district gateway, or its school since deleted — nowhere placed.
        if (input.deviceId !== gw.key)
          said.push(spot.schoolId ? '摄像机编号未登记于网关所属学校，按网关所属学校报警' : `摄像机编号未登记，${GATEWAY_UNPLACED}`);
        openSql = `SELECT DISTINCT i.id, i.drill, i.first_press_at FROM incident_presses p JOIN incidents i ON i.id = p.incident_id
                  WHERE p.device_id = $1 AND i.type = $3 AND i.source = 'device' AND i.status IN ('raised','acknowledged','dispatched','on_scene')
                    AND i.school_id IS NOT DISTINCT FROM $5::uuid AND i.location = $8`;
      } else if (!cam) throw Errors.notFound(ErrorCode.CAMERA.NOT_FOUND, input.deviceId);
      else throw Errors.outOfScope();
    }
    return {
      deviceId,
      eventId,
      eventIdFromBytes: input.eventIdFromBytes ?? false,
      openSql,
      spot,
      type,
      priority,
      note: AlarmIntakeService.noted(input.note, said),
      alarmDeviceId: input.deviceKind === 'alarm_device' ? input.deviceId : null,
      cameraId,
      drill: input.drill ?? false,
      policeLinked,
      at: receivedAt,
    };
  }

  /** Where a gateway's report without a usable camera is raised: the gateway's school (none, or since deleted: unplaced, the district sees it). */
  private async gatewaySpot(schoolId: string | null, name: string): Promise<Spot> {
    const location = `设备网关 ${name}（未指明摄像机）`;
    const unplaced: Spot = { schoolId: null, schoolName: '', zoneId: null, location, areaKind: null, cameras: [] };
    if (!schoolId) return unplaced;
    return this.spot(schoolId, location, null, []).catch((e: unknown) => {
      if ((e as { status?: number }).status === 404) return unplaced;
      throw e;
    });
  }

  /**
   * A GB/T 28181 alarm from a channel not placed in a school: an incident at the device's school
   * when known (a school since deleted counts as unknown), otherwise one without a school that the
   * district sees. Located by device id and channel; repeats fold like any device alarm.
   */
  async raiseFromUnplacedGbChannel(input: UnplacedGbAlarmInput, actor: Actor): Promise<RaiseResult> {
    const receivedAt = new Date();
    const key = unplacedChannelKey(input.gbDeviceId, input.channelId);
    const ticket = this.arrive(key);
    const location = `GB/T 28181 设备 ${input.gbDeviceId} 通道 ${input.channelId}`;
    let spot: Spot = { schoolId: null, schoolName: '', zoneId: null, location, areaKind: null, cameras: [] };
    if (input.schoolId) {
      spot = await this.spot(input.schoolId, location, null, []).catch((e: unknown) => {
        if ((e as { status?: number }).status === 404) return spot;
        ticket.done();
        throw e;
      });
    }
    return this.deviceEvent(
      {
        deviceId: key,
        eventId: input.eventId,
        eventIdFromBytes: false,
        openSql: `SELECT DISTINCT i.id, i.drill, i.first_press_at FROM incident_presses p JOIN incidents i ON i.id = p.incident_id
                  WHERE p.device_id = $1 AND i.type = $3 AND i.source = 'device' AND i.status IN ('raised','acknowledged','dispatched','on_scene')
                    AND i.school_id IS NOT DISTINCT FROM $5::uuid AND i.location = $8`,
        spot,
        type: input.type,
        // GB/T 28181 only (an unplaced channel): as reported, like a placed channel's alarm (GbAlarms says why).
        priority: devicePriority(this.cfg.priorityByType, input.type, input.priority, { floor: 'none' }).priority,
        note: input.note,
        alarmDeviceId: null,
        cameraId: null,
        drill: false,
        policeLinked: true, // no school: not relayed anyway
        at: receivedAt,
      },
      actor,
      ticket,
    );
  }

  /**
   * One device event: the same event id again returns its incident, an open incident of the device
   * (`openSql`, $1 device id, $3 type: the device's open incidents as id, drill, first_press_at;
   * the newest that may take the press does) takes it as a press, otherwise a new incident.
   * Group commit (alarms.groupCommit): events arriving within a few milliseconds share one
   * transaction; each device's events keep their arrival order under its advisory lock.
   */
  private async deviceEvent(e: DeviceEvent, actor: Actor, ticket: ArrivalTicket): Promise<RaiseResult> {
    if (this.cfg.groupCommit.windowMs === 0) {
      // One after another per device, in arrival order, until committed: the device's lock alone did not order them —
      // each event on its own connection, a later press could take the lock first (attack pass 11 #3).
      await ticket.turn;
      return this.transaction([e.deviceId], (m) => this.applyDeviceEvent(m, e, actor))
        .then((r) => this.afterRaise(r))
        .finally(() => ticket.done());
    }
    await ticket.turn; // the device's earlier arrivals are queued first
    return new Promise<RaiseResult>((resolve, reject) => {
      this.queued.push({ e, actor, ctx: currentContext(), since: performance.now(), resolve, reject });
      intakeMetrics.queued.set(this.queued.length);
      ticket.done();
      this.scheduleGroup();
    });
  }

  /**
   * A button's spot (404 ALARM_DEVICE.NOT_FOUND if none). The presses that arrive in one
   * event-loop turn are read in one query: no added wait, one round trip for a burst.
   */
  private readonly alarmDeviceSpot = turnBatch<string, AlarmDeviceSpot>(
    (ids) => this.registry.alarmDeviceSpots([...ids]),
    (id) => Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, id),
  );

  /**
   * A place in a device's line: `turn` resolves once the device's earlier arrivals are queued (or
   * failed before), `done` lets the next one go. Registry reads run in parallel; queueing keeps arrival order.
   */
  private arrive(key: string): ArrivalTicket {
    const turn = this.arrivals.get(key) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((r) => (done = r));
    const tail = turn.then(() => mine);
    this.arrivals.set(key, tail);
    void tail.then(() => {
      if (this.arrivals.get(key) === tail) this.arrivals.delete(key);
    });
    return { turn, done };
  }

  /** Starts a group when one may start (a free slot) and should (full, or its first event waited the window); else arms the window timer. */
  private scheduleGroup(): void {
    const g = this.cfg.groupCommit;
    if (this.queued.length === 0 || this.groupsInFlight >= g.maxConcurrent) return; // a finishing group schedules again
    const waited = performance.now() - this.queued[0].since;
    if (this.queued.length >= g.maxBatch || waited >= g.windowMs) return this.startGroup();
    this.groupTimer ??= setTimeout(() => {
      this.groupTimer = null;
      this.startGroup();
    }, g.windowMs - waited);
  }

  /**
   * Takes the next group from the queue in order, leaving a device whose events are in a group
   * still committing (and its later events) for a later group: each device's events commit in
   * arrival order, one group at a time.
   */
  private startGroup(): void {
    if (this.groupTimer) clearTimeout(this.groupTimer);
    this.groupTimer = null;
    const g = this.cfg.groupCommit;
    if (this.queued.length === 0 || this.groupsInFlight >= g.maxConcurrent) return;
    const batch: QueuedDeviceEvent[] = [];
    const rest: QueuedDeviceEvent[] = [];
    const held = new Set<string>();
    for (const q of this.queued) {
      const id = q.e.deviceId;
      if (batch.length < g.maxBatch && !this.devicesInFlight.has(id) && !held.has(id)) batch.push(q);
      else {
        rest.push(q);
        held.add(id);
      }
    }
    if (batch.length === 0) return; // every waiting device is committing: the finishing group schedules again
    this.queued.splice(0, this.queued.length, ...rest);
    intakeMetrics.queued.set(rest.length);
    intakeMetrics.groupSize.observe(batch.length);
    const now = performance.now();
    for (const q of batch) intakeMetrics.phase.observe({ phase: 'queued' }, (now - q.since) / 1000);
    const devices = new Set(batch.map((q) => q.e.deviceId));
    for (const id of devices) this.devicesInFlight.add(id);
    this.groupsInFlight++;
    const done = this.commitGroup(batch).finally(() => {
      for (const id of devices) this.devicesInFlight.delete(id);
      this.groupsInFlight--;
      this.groups.delete(done);
      this.scheduleGroup();
    });
    this.groups.add(done);
    this.scheduleGroup();
  }

  /** Shutdown: events already taken are committed (and answered) before the database goes; no window is waited. */
  async onApplicationShutdown(): Promise<void> {
    while (this.queued.length || this.groups.size) {
      if (this.queued.length && this.groupsInFlight < this.cfg.groupCommit.maxConcurrent) this.startGroup();
      if (this.groups.size === 0) break; // cannot happen (nothing committing holds a device back), but never wait on nothing
      await Promise.race(this.groups);
    }
  }

  /**
   * One transaction for a group: every device's lock (in one order: no deadlock between groups),
   * each event in arrival order (with its own request context: the audit names its caller), one
   * COMMIT, then every caller answered. If it fails, each event is tried again alone so one bad
   * event never fails the others (retries are idempotent by event id).
   */
  private async commitGroup(batch: QueuedDeviceEvent[]): Promise<void> {
    let results: (RaiseResult & { jobs?: OutboxRow[] })[];
    try {
      results = await this.transaction(
        batch.map((q) => q.e.deviceId),
        async (m) => {
          const inserted = await this.insertFirstEvents(m, batch);
          const out: (RaiseResult & { jobs?: OutboxRow[] })[] = [];
          for (const q of batch) out.push(await inContext(q.ctx, () => this.applyDeviceEvent(m, q.e, q.actor, inserted.get(q))));
          return out;
        },
      );
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      // Devices in parallel, each device's events one after another in arrival order: all at once, a device's
      // later press could take its lock first — opening the incident its first press then folded into, the presses
      // recorded out of order (attack pass 11 #2).
      const lines = new Map<string, QueuedDeviceEvent[]>();
      for (const q of batch) lines.set(q.e.deviceId, [...(lines.get(q.e.deviceId) ?? []), q]);
      await Promise.all(
        [...lines.values()].map(async (line) => {
          for (const q of line)
            await inContext(q.ctx, () => this.transaction([q.e.deviceId], (m) => this.applyDeviceEvent(m, q.e, q.actor))).then(
              (r) => q.resolve(this.afterRaise(r)),
              (e: unknown) => q.reject(e),
            );
        }),
      );
      return;
    }
    this.outbox.kick(results.flatMap((r) => r.jobs ?? []));
    batch.forEach((q, i) => q.resolve({ incident: results[i].incident, created: results[i].created, folded: results[i].folded }));
  }

  /**
   * The first event of each device in a group, taken together (insertIncidents): new incidents
   * inserted, retries and open incidents found. A device's later events in the group, and what an
   * open incident does with a press, run after, one by one in arrival order (applyDeviceEvent).
   * Each event's part is built in its caller's request context (the audit entry names the caller).
   */
  private async insertFirstEvents(m: EntityManager, batch: QueuedDeviceEvent[]): Promise<Map<QueuedDeviceEvent, IncidentInsertResult>> {
    const devices = new Set<string>();
    const firsts = batch.filter((q) => !devices.has(q.e.deviceId) && devices.add(q.e.deviceId));
    if (firsts.length < 2 || this.cfg.groupCommit.statementMaxEvents < 2) return new Map();
    const parts = await Promise.all(firsts.map((q) => inContext(q.ctx, async () => this.incidentInsertPart(this.deviceInsertFields(q.e, q.actor)))));
    const results = await this.insertIncidents(m, parts);
    return new Map(firsts.map((q, i) => [q, results[i]]));
  }

  /** A device event's insert: the check (seen, open incident, repeat number) and the new incident it would open. */
  private deviceInsertFields(e: DeviceEvent, actor: Actor): IncidentInsertFields {
    return {
      check: {
        // A real incident takes any press of its device; a drill takes only presses that are drills
        // too (the device said so, $4, or an approved drill window of the school, $5, covers the press
        // time, $6 — as insertIncident decides), so a real press after the window opens its own real
        // incident instead of vanishing into the drill (adversarial pass F11).
        // The event id's latest use ($1, $2) is this press again only within the repeat window ($7 s, from its first
        // arrival): later the id is a new press (a rebooted button restarts its counter — attack A8), numbered repeat_no.
        // A closed incident answers a repeat only within the retry window ($9 s): a real new press is never answered
        // with an old closed incident. An id that is the digest of the body's bytes ($10: the same bytes may be every
        // press) is a retry only within the retry window, and never once its incident is closed.
        sql: `SELECT CASE WHEN NOT (last.closed AND $10::boolean)
                         AND last.at > $6::timestamptz - make_interval(secs => CASE WHEN last.closed OR $10::boolean
                                                                               THEN least($9::double precision, $7::double precision)
                                                                               ELSE $7::double precision END)
                        THEN last.incident_id END AS seen,
              coalesce(last.repeat_no + 1, 0) AS repeat_no,
              (SELECT o.id FROM (${e.openSql}) o
               WHERE NOT o.drill OR $4::boolean OR EXISTS (SELECT 1 FROM drill_windows w WHERE w.school_id = $5::uuid AND w.status = 'approved'
                                                             AND w.starts_at <= $6::timestamptz AND w.ends_at > $6::timestamptz)
               ORDER BY o.first_press_at DESC LIMIT 1) AS open_id
            FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT p.incident_id, p.at, p.repeat_no, i.status IN ('resolved','cancelled') AS closed
                                                   FROM incident_presses p JOIN incidents i ON i.id = p.incident_id
                                                   WHERE p.device_id = $1 AND p.device_event_id = $2 ORDER BY p.repeat_no DESC LIMIT 1) last ON true`,
        params: [
          e.deviceId,
          e.eventId,
          e.type,
          e.drill,
          e.spot.schoolId,
          e.at,
          this.cfg.deviceEventRepeatWindowSeconds,
          e.spot.location,
          this.cfg.deviceRetryWindowSeconds,
          e.eventIdFromBytes,
        ],
      },
      press: { deviceId: e.deviceId, eventId: e.eventId },
      spot: e.spot,
      type: e.type,
      priority: e.priority,
      source: 'device',
      note: e.note,
      alarmDeviceId: e.alarmDeviceId,
      cameraId: e.cameraId,
      drill: e.drill,
      policeLinked: e.policeLinked,
      actor,
      at: e.at,
    };
  }

  /**
   * A device event inside a transaction holding its device's lock. `inserted`: its insert already
   * ran (insertIncidents, with other devices' first events of its group).
   */
  private async applyDeviceEvent(
    m: EntityManager,
    e: DeviceEvent,
    actor: Actor,
    inserted?: IncidentInsertResult,
  ): Promise<RaiseResult & { jobs?: OutboxRow[] }> {
    const receivedAt = e.at;
    // One round trip: was this event seen already, is an alarm of this device open — and if
    // neither, the new incident with everything that goes with it.
    const r = inserted ?? (await this.insertIncident(m, this.deviceInsertFields(e, actor)));
    if (r.row) return { incident: toView(r.row), created: true, folded: false, jobs: r.jobs };
    if (r.seen) return { incident: toView(await this.row(m, r.seen)), created: false, folded: false };
    const openId = r.openId!;
    await m.query(`INSERT INTO incident_presses (incident_id, device_id, device_event_id, at, repeat_no) VALUES ($1, $2, $3, $4, $5)`, [
      openId,
      e.deviceId,
      e.eventId,
      receivedAt,
      r.repeatNo,
    ]);
    // A more urgent press raises the incident's priority (P1 < P4 as text): a level-1 alarm folded
    // into an open level-4 one stayed P4 — no police relay, escalation after 15 min instead of 30 s
    // (adversarial pass F3). Relay becomes required when the new priority is one to relay.
    const relayWanted = this.cfg.policeRelay.url !== '' && this.cfg.relayPriorities.includes(e.priority) && e.policeLinked && e.spot.schoolId !== null;
    const [[row]] = (await m.query(
      `WITH old AS (SELECT priority, relay_required FROM incidents WHERE id = $1)
       UPDATE incidents i SET press_count = press_count + 1, last_press_at = greatest(last_press_at, $2),
         priority = least(i.priority, $3::text), relay_required = i.relay_required OR ($4::boolean AND NOT i.drill AND $3::text < i.priority), updated_at = now()
       FROM old WHERE i.id = $1 RETURNING i.*, old.priority AS prev_priority, old.relay_required AS prev_relay_required`,
      [openId, receivedAt, e.priority, relayWanted],
    )) as [(IncidentRow & { prev_priority: Priority; prev_relay_required: boolean })[]];
    await appendTimeline(m, row.id, actor, 'press', e.note, { eventId: e.eventId, pressCount: row.press_count, priority: e.priority });
    if (row.priority === row.prev_priority) {
      await this.folding.folded(m, row); // recorded above; the console hears of it now or, folded, later
      return { incident: toView(row), created: false, folded: true };
    }
    await appendTimeline(m, row.id, actor, 'priority_raised', `${row.prev_priority} → ${row.priority}`, { from: row.prev_priority, to: row.priority });
    await this.events.append(m, { type: 'incident.updated', schoolId: row.school_id, payload: { ...toSummary(row), change: 'priority_raised' } });
    await this.audit.record(m, {
      action: 'priority_raised',
      entity: 'incident',
      entityId: row.id,
      schoolId: row.school_id,
      before: { priority: row.prev_priority },
      after: { priority: row.priority, eventId: e.eventId },
    });
    // The new priority's timers, counted from this press (the old ones stay: a level already reached is not repeated).
    const t0 = receivedAt.getTime();
    const jobs: OutboxJob[] =
      row.status === 'raised' && !row.drill
        ? (this.cfg.escalationSeconds[row.priority] ?? []).map((s, i) => ({
            name: JobName.AlarmEscalate,
            jobId: jobIds.raisedEscalation(row.id, i + 1, row.priority),
            payload: { incidentId: row.id, level: i + 1 },
            availableAt: new Date(t0 + s * 1000),
          }))
        : [];
    if (row.relay_required && !row.prev_relay_required) {
      jobs.push({ name: JobName.AlarmPoliceRelay, jobId: jobIds.relay(row.id), payload: { incidentId: row.id }, availableAt: new Date(t0) });
      jobs.push({
        name: JobName.AlarmRelayWatch,
        jobId: jobIds.relayWatch(row.id),
        payload: { incidentId: row.id },
        availableAt: new Date(t0 + this.cfg.policeRelay.lateAfterSeconds * 1000),
      });
    }
    return { incident: toView(row), created: false, folded: true, jobs: await this.outbox.insert(m, jobs) };
  }

  /**
   * An alarm raised by school security staff (own school only) or a control-center user.
   *
   * Attack F17 (one account flooded the consoles with the same alarm): a school-security user's
   * alarm of the same school, type, location and priority as their own alarm that is still open,
   * not a drill, and last pressed less than alarms.staffFoldSeconds ago folds into it (not while
   * an approved drill window of the school is on: that alarm is a drill of its own) — press
   * count + 1, a `press` on its timeline, the console told as for a button's presses
   * (PressFoldingService) — and is answered `created: false, folded: true` (200). Serialised per
   * user and spot (advisory lock), so a burst folds rather than racing into N incidents.
   * `beforeCreate` runs only when a new incident is about to be opened (the caller's per-user
   * rate limit: repeats that fold are never refused); what it throws is answered.
   */
  async raiseManual(user: AuthUser, input: ManualAlarmInput, beforeCreate?: () => void): Promise<RaiseResult> {
    assertRole(user, RAISE_ROLES);
    assertSchoolScope(user, input.schoolId);
    // Staff may make an alarm more urgent than its type, never less (attack A6: fire as P4 → no police relay, 15-min
    // escalation); control-center roles may, and the raise's audit entry says so (insertIncident). 'P1' < 'P4' as text.
    const typePriority = this.cfg.priorityByType[input.type];
    if (user.role === 'school_security' && input.priority !== undefined && input.priority > typePriority)
      throw Errors.badRequest(ErrorCode.INCIDENT.PRIORITY_BELOW_TYPE, `priority ${input.priority} is below the ${input.type} default ${typePriority}`, {
        fields: [{ field: 'priority', reason: `at most ${typePriority} for ${input.type} (may be more urgent)` }],
        typePriority,
      });
    const receivedAt = currentContext()?.receivedAt ?? new Date(); // when the request arrived, not when its body was read
    let linked: string[] = [];
    let areaKind = input.areaKind ?? null;
    if (input.alarmDeviceId) {
      const dev = await this.registry.alarmDevice(input.alarmDeviceId);
      // Another school's button answers as an unknown one (no existence oracle, attack note A10).
      if (dev.schoolId !== input.schoolId) throw Errors.notFound(ErrorCode.ALARM_DEVICE.NOT_FOUND, input.alarmDeviceId);
      linked = dev.linkedCameraIds;
      areaKind ??= dev.areaKind;
    }
    const spot = await this.spot(input.schoolId, input.location, areaKind, linked);
    const actor = userActor(user);
    const client = input.clientEventId === undefined ? null : { id: input.clientEventId, hash: requestHash(input) };
    const foldMs = user.role === 'school_security' && !input.drill ? this.cfg.staffFoldSeconds * 1000 : 0;
    const priority = input.priority ?? this.cfg.priorityByType[input.type];
    const foldKey = foldMs > 0 ? uuidOf(`staff-fold\n${user.id}\n${input.schoolId}\n${input.type}\n${spot.location}\n${priority}`) : null;
    const locks = [...(client ? [clientEventLock(user.id, client.id)] : []), ...(foldKey ? [foldKey] : [])];
    // Serialise one user's retries of one client event (the lock): the second waits for the first to commit, then finds it.
    return this.transaction(locks.length ? locks : null, async (m) => {
      if (client) {
        const [prev] = (await m.query(`SELECT incident_id, request_hash FROM incident_client_events WHERE user_id = $1 AND client_event_id = $2`, [
          user.id,
          client.id,
        ])) as { incident_id: string; request_hash: string }[];
        if (prev && prev.request_hash !== client.hash) {
          throw Errors.conflict(ErrorCode.INCIDENT.CLIENT_EVENT_REUSED, '该事件编号已用于另一条报警；重试须与首次请求内容相同', {
            clientEventId: client.id,
            incidentId: prev.incident_id,
          });
        }
        if (prev) return { incident: toView(await this.row(m, prev.incident_id)), created: false, folded: false };
      }
      if (foldMs > 0) {
        const folded = await this.foldStaffAlarm(
          m,
          user,
          actor,
          { schoolId: input.schoolId, type: input.type, location: spot.location, priority },
          input.note ?? '',
          receivedAt,
          foldMs,
          input.position ?? null,
        );
        if (folded) {
          if (client)
            await m.query(`INSERT INTO incident_client_events (user_id, client_event_id, incident_id, request_hash) VALUES ($1, $2, $3, $4)`, [
              user.id,
              client.id,
              folded.id,
              client.hash,
            ]);
          return { incident: toView(folded), created: false, folded: true };
        }
      }
      beforeCreate?.();
      const { row, jobs } = await this.insertIncident(m, {
        clientEvent: client ? { userId: user.id, eventId: client.id, hash: client.hash } : undefined,
        spot,
        type: input.type,
        priority: input.priority ?? this.cfg.priorityByType[input.type],
        source: user.role === 'school_security' ? 'staff' : 'operator',
        note: input.note ?? '',
        alarmDeviceId: input.alarmDeviceId ?? null,
        cameraId: null,
        drill: input.drill ?? false,
        position: input.position ?? null,
        actor,
        at: receivedAt,
      });
      return { incident: toView(row!), created: true, folded: false, jobs };
    }).then((r) => this.afterRaise(r));
  }

  /**
   * The user's own open alarm of this spot pressed within `foldMs`, with this press folded in (see
   * raiseManual); null when there is none. The press's position is on its timeline entry
   * (`data.position`); when it is a better fix than the incident's (smaller accuracyM, or the
   * incident had none) it becomes the incident's position and the entry says so (`positionUpdated`).
   */
  private async foldStaffAlarm(
    m: EntityManager,
    user: AuthUser,
    actor: Actor,
    key: { schoolId: string; type: string; location: string; priority: string },
    note: string,
    at: Date,
    foldMs: number,
    position: ReporterPosition | null,
  ): Promise<IncidentRow | null> {
    const [found] = (await m.query(
      `SELECT id, reporter_accuracy_m AS acc FROM incidents
                     WHERE source = 'staff' AND raised_by_id = $1 AND school_id = $2 AND type = $3 AND location = $4 AND priority = $5 AND NOT drill
                       AND status IN ('raised','acknowledged','dispatched','on_scene') AND last_press_at > $7
                       -- inside an approved drill window the alarm is a drill of its own (never folded into a real one, nor the reverse: F11)
                       AND NOT EXISTS (SELECT 1 FROM drill_windows w WHERE w.school_id = $2 AND w.status = 'approved' AND w.starts_at <= $6 AND w.ends_at > $6)
                     ORDER BY last_press_at DESC LIMIT 1
        FOR UPDATE`,
      [user.id, key.schoolId, key.type, key.location, key.priority, at, new Date(at.getTime() - foldMs)],
    )) as { id: string; acc: number | null }[];
    if (!found) return null;
    const better = position !== null && (found.acc === null || position.accuracyM < found.acc);
    const [updated] = returningRows<IncidentRow>(
      await m.query(
        `UPDATE incidents SET press_count = press_count + 1, last_press_at = greatest(last_press_at, $2), updated_at = now(),
           reporter_latitude = CASE WHEN $3 THEN $4::double precision ELSE reporter_latitude END,
           reporter_longitude = CASE WHEN $3 THEN $5::double precision ELSE reporter_longitude END,
           reporter_accuracy_m = CASE WHEN $3 THEN $6::real ELSE reporter_accuracy_m END
         WHERE id = $1 RETURNING *`,
        [found.id, at, better, position?.latitude ?? null, position?.longitude ?? null, position?.accuracyM ?? null],
      ),
    );
    const told = better ? `位置更新为更精确的定位（±${position!.accuracyM} 米${found.acc === null ? '' : `，原 ±${found.acc} 米`}）` : '';
    await appendTimeline(m, updated.id, actor, 'press', [note, told].filter(Boolean).join('；'), {
      pressCount: updated.press_count,
      source: 'staff',
      ...(position ? { position, positionUpdated: better } : {}),
    });
    await this.folding.folded(m, updated);
    return updated;
  }

  private afterRaise(r: RaiseResult & { jobs?: OutboxRow[] }): RaiseResult {
    if (r.jobs) this.outbox.kick(r.jobs);
    return { incident: r.incident, created: r.created, folded: r.folded };
  }

  /**
   * A transaction on one pooled connection, answered only after COMMIT. With `lockKeys` (device
   * ids, or digests shaped like them), the first round trip both begins it and takes those
   * advisory locks, in the order of their lock keys (two transactions never wait on each other
   * in a circle): BEGIN and the locks go as one simple-protocol query, so the keys are inlined —
   * each must be a uuid.
   */
  private async transaction<T>(lockKeys: string[] | null, fn: (m: EntityManager) => Promise<T>): Promise<T> {
    let t = performance.now();
    const phase = (name: IntakePhase) => {
      const now = performance.now();
      intakeMetrics.phase.observe({ phase: name }, (now - t) / 1000);
      t = now;
    };
    const keys = [...new Set(lockKeys ?? [])];
    for (const k of keys) if (!UUID.test(k)) throw new Error(`advisory lock key is not a uuid: ${k}`);
    const begin =
      keys.length === 0
        ? 'BEGIN'
        : keys.length === 1
          ? `BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('${keys[0]}', 0))`
          : `BEGIN; SELECT count(pg_advisory_xact_lock(h)) FROM (SELECT hashtextextended(k, 0) AS h FROM unnest(ARRAY['${keys.join("','")}']) k ORDER BY 1 OFFSET 0) s`;
    const qr = this.db.createQueryRunner();
    await qr.connect();
    phase('connect');
    try {
      // BEGIN and the lock wait are one message: when the wait fails (statement timeout) the
      // transaction is open and aborted — end it, or the pooled connection refuses all later work.
      await qr.query(begin).catch(async (e: unknown) => {
        await qr.query('ROLLBACK').catch(() => undefined);
        throw e;
      });
      phase('lock');
      try {
        const result = await fn(qr.manager);
        phase('apply');
        await qr.query('COMMIT');
        phase('commit');
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
  private async insertIncident(m: EntityManager, f: IncidentInsertFields): Promise<IncidentInsertResult> {
    const part = this.incidentInsertPart(f);
    // Prepared: Postgres plans this statement once per connection (infra/database/prepared.ts says why).
    const [res] = await preparedQuery<IncidentInsertRow>(m, combinedInsertText(part.text, 1, part.values.length), part.values);
    return insertResult(res);
  }

  /**
   * Several device events' incident inserts (each as insertIncident would do it) in as few statements as
   * their shapes allow: parts of one text go together, at most alarms.groupCommit.statementMaxEvents per
   * statement, in chunks whose sizes come from a short ladder (max, 2, 1) so each connection prepares only a few
   * texts. Under a burst of presses, one round trip per press bound the intake (issue 11 §6).
   * The parts must be of different devices: a statement's sub-statements see one snapshot, and a
   * device's second event must see its first. Returns one result per part, in order.
   */
  private async insertIncidents(m: EntityManager, parts: IncidentInsertPart[]): Promise<IncidentInsertResult[]> {
    const out: IncidentInsertResult[] = new Array(parts.length);
    const byText = new Map<string, number[]>();
    parts.forEach((pt, i) => byText.set(pt.text, [...(byText.get(pt.text) ?? []), i]));
    for (const [text, idx] of byText) {
      for (let at = 0; at < idx.length;) {
        const chunk = idx.slice(at, at + chunkSize(idx.length - at, this.cfg.groupCommit.statementMaxEvents));
        at += chunk.length;
        const rows = await preparedQuery<IncidentInsertRow & { k: number }>(
          m,
          combinedInsertText(text, chunk.length, parts[chunk[0]].values.length),
          chunk.flatMap((i) => parts[i].values),
        );
        for (const r of rows) out[chunk[r.k]] = insertResult(r);
      }
    }
    return out;
  }

  /**
   * One incident's insert as a statement part: data-modifying CTEs (each table's own module writes
   * its part) and the SELECT of its outcome, with `{S}` for its CTE names' suffix, `{K}` for its
   * index in a combined statement, and placeholders $1… numbered over its own `values` alone (see
   * combinedInsertText). Two parts with the same text differ only in their values.
   */
  private incidentInsertPart(f: IncidentInsertFields): IncidentInsertPart {
    // Not relayed: a button not wired to the police; an unplaced device alarm (no school: the police could not be told where; the district acts on it).
    const relayRequired =
      this.cfg.policeRelay.url !== '' && this.cfg.relayPriorities.includes(f.priority) && f.policeLinked !== false && f.spot.schoolId !== null;
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
      reporter_latitude: f.position?.latitude ?? null,
      reporter_longitude: f.position?.longitude ?? null,
      reporter_accuracy_m: f.position?.accuracyM ?? null,
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
    // Evidence (src/modules/video handles it): a picture of each linked camera at each configured offset.
    if (f.spot.cameras.length)
      this.cfg.evidenceSnapshotSeconds.forEach((s, round) =>
        jobs.push({
          name: JobName.VideoIncidentEvidence,
          jobId: jobIds.evidence(id, round),
          payload: { incidentId: id, round, afterSeconds: s },
          availableAt: new Date(t0 + s * 1000),
        }),
      );
    if (relayRequired) {
      jobs.push({ name: JobName.AlarmPoliceRelay, jobId: jobIds.relay(id), payload: { incidentId: id }, availableAt: new Date(t0) });
      jobs.push({
        name: JobName.AlarmRelayWatch,
        jobId: jobIds.relayWatch(id),
        payload: { incidentId: id },
        availableAt: new Date(t0 + this.cfg.policeRelay.lateAfterSeconds * 1000),
      });
    }

    // Less urgent than the type's default (an operator's choice, or a device's own priority): audited with the default (attack A6).
    const typePriority = this.cfg.priorityByType[f.type];
    const belowType = f.priority > typePriority ? { typePriority } : {};
    const p = new SqlParams();
    const chk = f.check ? f.check.sql : `SELECT NULL::uuid AS seen, NULL::uuid AS open_id, 0 AS repeat_no`;
    f.check?.params.forEach((v) => p.add(v));
    const [at, schoolId, actorId] = [p.add(f.at), p.add(f.spot.schoolId), p.add(f.actor.type === 'system' ? null : f.actor.id)];
    const drillSql = `jsonb_build_object('drill', inc{S}.drill)`;
    const ctes = [
      `chk{S} AS (${chk})`,
      `inc{S} AS (
         INSERT INTO incidents (id, type, priority, source, school_id, zone_id, alarm_device_id, camera_id, location, area_kind, note,
           first_press_at, last_press_at, drill, raised_by_id, raised_by_name, shown_at, linked_camera_ids, cameras, school_name, relay_required,
           reporter_latitude, reporter_longitude, reporter_accuracy_m)
         SELECT ${p.add(id)}::uuid, ${p.add(f.type)}, ${p.add(f.priority)}, ${p.add(f.source)}, ${schoolId}::uuid, ${p.add(f.spot.zoneId)}::uuid,
           ${p.add(f.alarmDeviceId)}::uuid, ${p.add(f.cameraId)}::uuid, ${p.add(f.spot.location)}, ${p.add(f.spot.areaKind)}, ${p.add(f.note)}, ${at}::timestamptz, ${at}::timestamptz,
           ${p.add(f.drill)}::boolean OR EXISTS (SELECT 1 FROM drill_windows WHERE school_id = ${schoolId}::uuid AND status = 'approved' AND starts_at <= ${at}::timestamptz AND ends_at > ${at}::timestamptz),
           ${p.add(draft.raised_by_id)}::uuid, ${p.add(f.actor.name)}, clock_timestamp(), ${p.add(draft.linked_camera_ids)}::uuid[], ${p.add(JSON.stringify(f.spot.cameras))}::jsonb,
           ${p.add(f.spot.schoolName)}, ${p.add(relayRequired)}::boolean,
           ${p.add(draft.reporter_latitude)}::double precision, ${p.add(draft.reporter_longitude)}::double precision, ${p.add(draft.reporter_accuracy_m)}::real
         FROM chk{S} WHERE chk{S}.seen IS NULL AND chk{S}.open_id IS NULL
         RETURNING *)`,
      `tl{S} AS (
         INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data)
         SELECT id, ${p.add(f.actor.type)}, ${actorId}::uuid, raised_by_name, 'raised', note,
           jsonb_build_object('type', type, 'priority', priority, 'drill', drill) || CASE WHEN reporter_latitude IS NULL THEN '{}'::jsonb
             ELSE jsonb_build_object('position', jsonb_build_object('latitude', reporter_latitude, 'longitude', reporter_longitude, 'accuracyM', reporter_accuracy_m)) END
         FROM inc{S})`,
      f.press
        ? `pr{S} AS (INSERT INTO incident_presses (incident_id, device_id, device_event_id, at, repeat_no)
             SELECT id, ${p.add(f.press.deviceId)}::uuid, ${p.add(f.press.eventId)}, first_press_at, (SELECT repeat_no FROM chk{S}) FROM inc{S})`
        : null,
      f.clientEvent
        ? `ce{S} AS (INSERT INTO incident_client_events (user_id, client_event_id, incident_id, request_hash)
             SELECT ${p.add(f.clientEvent.userId)}::uuid, ${p.add(f.clientEvent.eventId)}, id, ${p.add(f.clientEvent.hash)} FROM inc{S})`
        : null,
      `ev{S} AS (${this.events.insertFromSql(p, 'inc{S}', { type: 'incident.raised', schoolId: f.spot.schoolId, payload: toSummary(draft) }, drillSql)})`,
      `au{S} AS (${this.audit.insertFromSql(p, 'inc{S}', { action: 'raise', entity: 'incident', entityId: id, schoolId: f.spot.schoolId, after: { type: f.type, priority: f.priority, source: f.source, ...belowType } }, drillSql)})`,
      jobs.length ? `ob{S} AS (${this.outbox.insertSql(p, jobs, 'inc{S}')})` : null,
    ].filter(Boolean);
    const select = `SELECT {K}::int AS k, chk{S}.seen, chk{S}.open_id, chk{S}.repeat_no, (SELECT ${this.events.notifySql(p, 'seq')} FROM ev{S}) AS notified,
              ${jobs.length ? `(SELECT json_agg(ob{S}) FROM ob{S})` : 'NULL::json'} AS outbox, inc{S}.*
       FROM chk{S} LEFT JOIN inc{S} ON true`;
    return { text: `${ctes.join(',\n')}\n${select}`, values: p.values };
  }

  /** An incident row by id (404 if none). */
  private async row(m: EntityManager | DataSource, id: string): Promise<IncidentRow> {
    const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1`, [id])) as IncidentRow[];
    if (!row) throw Errors.notFound(ErrorCode.INCIDENT.NOT_FOUND, id);
    return row;
  }
}
