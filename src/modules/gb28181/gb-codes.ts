import { storableText } from '../../infra/text/storable';
import type { IncidentType } from '../alarms';

/** China has had no daylight saving since 1991: Asia/Shanghai is UTC+8 all year. */
const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

/** GB/T 28181 time form, Asia/Shanghai local without zone: `2026-11-28T21:30:00.000`. */
export function gbTime(d: Date): string {
  return new Date(d.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 23);
}

/**
 * Parses a device time (`2026-11-28T21:30:00`, optional fraction, `T` or a space), read as
 * Asia/Shanghai local time; an explicit `Z` or offset is honoured. Null when unparseable.
 */
export function parseGbTime(s: string | undefined): Date | null {
  if (!s) return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})?$/.exec(s.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const ms = frac ? Math.round(Number(frac) * 1000) : 0;
  let t = Date.UTC(+y, +mo - 1, +d, +h, +mi, +sec, ms);
  if (!zone) t -= SHANGHAI_OFFSET_MS;
  else if (zone !== 'Z') {
    const z = /([+-])(\d{2}):?(\d{2})/.exec(zone)!;
    t -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
  }
  const out = new Date(t);
  return Number.isNaN(out.getTime()) || +mo < 1 || +mo > 12 || +d < 1 || +d > 31 || +h > 23 || +mi > 59 || +sec > 60 ? null : out;
}

/** The type code of a GB/T 28181 id (digits 11–13): 111–130 front-end devices, 131 camera, 132 IPC, 2xx platform/organisation entries. */
export function gbTypeCode(id: string): number {
  return Number(id.slice(10, 13));
}

/** Catalog items that are organisation nodes (civil codes of 2–8 digits, business groups 215, virtual organisations 216, systems 200…), not channels. */
export function isOrganisationNode(id: string): boolean {
  if (id.length !== 20) return true;
  const t = gbTypeCode(id);
  return t >= 200 && t <= 299;
}

/** A Catalog item's id: a 20-digit GB/T 28181 id, or a civil code (GB/T 2260) of 2, 4, 6 or 8 digits (province … basic unit). */
export const CATALOG_ITEM_ID = /^(?:\d{2}|\d{4}|\d{6}|\d{8}|\d{20})$/;

export type ChannelKind = 'camera' | 'alarm_input' | 'alarm_output' | 'organisation';

/**
 * What a Catalog item is, by its id (GB/T 28181-2016 Appendix D type codes): organisation nodes
 * (civil codes, 2xx), alarm input 134 / output 135 devices (not cameras: no video), otherwise a
 * camera channel (131 camera, 132 IPC, and device ids of single-channel devices).
 */
export function channelKind(id: string): ChannelKind {
  if (isOrganisationNode(id)) return 'organisation';
  const t = gbTypeCode(id);
  return t === 134 ? 'alarm_input' : t === 135 ? 'alarm_output' : 'camera';
}

/**
 * GB/T 28181-2016 §A.2.6.4 alarm classification → incident type.
 *   AlarmMethod: 1 phone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other; 0 = not stated (missing or 0) → other.
 *   AlarmType for method 2: 1 video lost, 2 tamper (防拆), 3 storage full, 4 over-temperature, 5 under-temperature.
 *   AlarmType for method 5: 1 manual, 2 motion, 3 left object, 4 removed object, 5 tripwire,
 *     6 intrusion, 7 retrograde, 8 loitering, 9 flow count, 10 density, 11 video anomaly, 12 fast moving.
 *   AlarmType for method 6: 1 storage disk fault, 2 storage fan fault.
 */
export function incidentTypeOf(method: number, type: number | null): IncidentType {
  switch (method) {
    case 5:
      if (type === 5 || type === 6) return 'intrusion';
      if (type === 11) return 'tamper';
      return 'video_alarm';
    case 2:
      if (type === 2) return 'tamper';
      return 'device_fault';
    case 6:
      return 'device_fault';
    default:
      return 'other';
  }
}

const METHOD_NAMES: Record<number, string> = { 1: '电话报警', 2: '设备报警', 3: '短信报警', 4: 'GPS报警', 5: '视频报警', 6: '设备故障报警', 7: '其他报警' };

/** A zh-CN note for the incident (what operators read), from the alarm's fields. */
export function alarmNote(a: {
  method: number;
  type: number | null;
  priority: number | null;
  description: string;
  time: string;
  longitude?: string;
  latitude?: string;
  /** Fields the platform could not read, as `Name=value` (the alarm is raised all the same; operators see what the device said). */
  unreadable?: string[];
}): string {
  const parts = [`GB/T 28181 ${a.method === 0 ? '报警（未注明报警方式）' : (METHOD_NAMES[a.method] ?? `报警方式${a.method}`)}`];
  if (a.type !== null) parts.push(`类型 ${a.type}`);
  if (a.priority !== null) parts.push(`级别 ${a.priority}`);
  if (a.time) parts.push(`时间 ${a.time}`);
  if (a.description) parts.push(a.description);
  if (a.longitude && a.latitude) parts.push(`位置 ${a.longitude},${a.latitude}`);
  if (a.unreadable?.length) parts.push(`无法识别的字段 ${a.unreadable.join(' ')}`);
  return storableText(parts.join('；'), 1000);
}
