import { createHash, randomUUID } from 'node:crypto';
import { isUUID } from 'class-validator';
import { DEVICE_REPORT_TYPES, INCIDENT_TYPES, PRIORITIES } from './alarms.constants';
import type { IncidentType, Priority } from './alarms.constants';
import type { DevicePressDto, DeviceReportDto } from './dto';
import { storableText } from '../../infra/text/storable';

/**
 * Device alarm bodies are read tolerantly: for an authenticated button or camera the request IS
 * the alarm, and a 400 makes the device give up — one firmware that adds a `battery` field or a
 * new type code would silently stop every alarm of that model (adversarial pass F12; GB 50394:
 * no alarm signal may be lost). So nothing in the body's content refuses the alarm: an unknown
 * field is ignored, an unknown type is `other` (a report: `video_alarm`), an unusable priority is
 * the type's default, a malformed event id becomes `x-<sha256 of it>` (the device's retries still
 * find their incident), a body that is not a JSON object `b-<sha256 of its bytes>` (the same), a
 * missing one a fresh id (its retries fold into the open incident as presses) — and each such problem is written into the incident's note so the district sees the
 * device misbehave. How the bytes become a value (charset, size cap, text repair, depth) is
 * infra/http/device-body.ts, run by the route after the device credential was checked (A1). The DTO classes still document the well-formed body (OpenAPI).
 */
const EVENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const NOTE_MAX = 500;
const PROBLEMS_MAX = 200;

interface Read<T> {
  dto: T;
  /** What was wrong with the body, in words for the note (bounded). */
  problems: string[];
}

const shown = (v: unknown) => {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
};

function common(body: unknown, known: readonly string[], digest: string | null) {
  const problems: string[] = [];
  const b = body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  if (!b) problems.push('无报文体');
  const o = b ?? {};
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length) problems.push(`未知字段 ${extra.slice(0, 5).map(shown).join('、')}${extra.length > 5 ? ' 等' : ''}`);
  let eventId: string;
  if (typeof o.eventId === 'string' && EVENT_ID.test(o.eventId)) eventId = o.eventId;
  else if (o.eventId !== undefined && o.eventId !== null && o.eventId !== '') {
    eventId = `x-${createHash('sha256')
      .update(String(typeof o.eventId === 'string' ? o.eventId : JSON.stringify(o.eventId)))
      .digest('hex')
      .slice(0, 40)}`;
    problems.push(`事件编号格式不符 ${shown(o.eventId)}`);
  } else if (digest) {
    // A body that was not a JSON object (cut, not JSON, a bare value): its bytes name the event, so retries still dedup.
    eventId = digest;
    problems.push('事件编号取自报文摘要');
  } else {
    eventId = `gen-${randomUUID()}`;
    problems.push('缺少事件编号');
  }
  let note: string | undefined;
  if (typeof o.note === 'string') note = storableText(o.note, NOTE_MAX);
  else if (o.note !== undefined) problems.push('备注不是文本');
  return { o, problems, eventId, note };
}

function pick<T extends string>(v: unknown, allowed: readonly T[], field: string, problems: string[]): T | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  problems.push(`${field} 取值未知 ${shown(v)}`);
  return undefined;
}

function flag(v: unknown, field: string, problems: string[]): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  problems.push(`${field} 取值未知 ${shown(v)}`);
  return undefined;
}

/** The note with the body's problems appended (bounded), or the note as given. */
export function noteWithProblems(note: string | undefined, problems: string[]): string | undefined {
  if (!problems.length) return note;
  const said = `（设备报文异常：${problems.join('；')}）`.slice(0, PROBLEMS_MAX);
  // The cuts may split a surrogate pair: a lone half is refused by Postgres jsonb (the console event carries the note).
  return storableText(`${note ?? ''}${said}`.slice(-NOTE_MAX));
}

/** The top-level fields a press or report body may carry (also what is saved from a body that does not parse). */
export const DEVICE_BODY_FIELDS = ['eventId', 'type', 'note', 'drill', 'test', 'priority', 'cameraId'] as const;

/**
 * A button press body, read tolerantly (see above). Never throws. `raw`: how the route read it
 * (infra/http/device-body.ts) — its problems come first in the note, its digest is the event id
 * of a body that was not a JSON object.
 */
export function readDevicePress(body: unknown, raw?: { problems: string[]; digest: string | null }): Read<DevicePressDto> {
  const { o, problems, eventId, note } = common(body, ['eventId', 'type', 'note', 'drill', 'test'], raw?.digest ?? null);
  problems.unshift(...(raw?.problems ?? []));
  const type = pick<IncidentType>(o.type, INCIDENT_TYPES, 'type', problems);
  return {
    dto: {
      eventId,
      type: type ?? (o.type !== undefined && o.type !== null ? 'other' : undefined),
      note,
      drill: flag(o.drill, 'drill', problems),
      test: flag(o.test, 'test', problems),
    },
    problems,
  };
}

/**
 * A camera / gateway report body, read tolerantly (see above). Never throws; `cameraIdInvalid`
 * when a cameraId was given but is not a UUID (a gateway's report is then raised at its school, see the controller).
 */
export function readDeviceReport(body: unknown, raw?: { problems: string[]; digest: string | null }): Read<DeviceReportDto> & { cameraIdInvalid: boolean } {
  const { o, problems, eventId, note } = common(body, ['eventId', 'type', 'priority', 'cameraId', 'note'], raw?.digest ?? null);
  problems.unshift(...(raw?.problems ?? []));
  const type = pick<IncidentType>(o.type, DEVICE_REPORT_TYPES, 'type', problems) ?? 'video_alarm';
  const priority = pick<Priority>(o.priority, PRIORITIES, 'priority', problems);
  const cameraIdInvalid = o.cameraId !== undefined && o.cameraId !== null && !(typeof o.cameraId === 'string' && isUUID(o.cameraId));
  const cameraId = !cameraIdInvalid && typeof o.cameraId === 'string' ? o.cameraId : undefined;
  return { dto: { eventId, type, priority, cameraId, note }, problems, cameraIdInvalid };
}
