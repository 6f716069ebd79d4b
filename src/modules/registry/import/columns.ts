import type { ObjectLiteral } from 'typeorm';
import type { DateKind } from '../../../infra/tabular/tabular';

/**
 * The file layout of each importable registry list. Rows refer to other records by code, never
 * by uuid; nested values (timetable, post windows) are flattened into plain columns.
 *
 * Cell semantics: a column absent from the file leaves that field as it is; a present but empty
 * cell clears an optional text (''), a nullable value (null) or leaves a boolean/number at its
 * current value (default on create). Required columns must be in the header.
 */

/** Code ↔ id maps for the references a file may use. */
export interface Lookups {
  districts: Map<string, string>;
  zones: Map<string, string>;
  groups: Map<string, string>;
  schools: Map<string, string>;
  /** `deviceId:channelId` → camera id (loaded only for alarm devices). */
  cameras: Map<string, string>;
  /** The reverse maps, for export. */
  byId: Map<string, string>;
}

export type Draft = Record<string, unknown>;

export interface Column {
  /** The documented English header. */
  header: string;
  /** Other accepted headers (Chinese). The first is the Chinese name shown in templates. */
  aliases: string[];
  required?: boolean;
  /** DTO property path this column fills; DTO errors on it are reported against this column. */
  field: string;
  /** Exported for information, ignored on import (runtime state such as status). */
  readOnly?: boolean;
  hint?: string;
  /**
   * The dates and times Excel typed (an XLSX date cell) the column takes, as their text (`YYYY-MM-DD`,
   * `HH:mm`, `YYYY-MM-DD HH:mm`); any other is a row error. None by default: Excel turns `1-5` (weekdays),
   * `3-12` or `2021-12` (a code or licence number) into dates, and those must not import as `2026-01-05`.
   */
  dates?: readonly DateKind[];
  /** Natural-key text compared without regard to case: stored trimmed and upper-cased, in files and on the CRUD routes. */
  upperCase?: boolean;
  /** Writes the cell into the DTO draft; returns a reason when the cell cannot be understood. */
  read?: (cell: string, draft: Draft, refs: Lookups) => string | void;
  /** The cell value for an entity on export. */
  write: (row: ObjectLiteral, refs: Lookups) => string | number | null;
}

function setPath(obj: Draft, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Draft;
  cur[parts[parts.length - 1]] = value;
}

function getPath(obj: ObjectLiteral, path: string): unknown {
  return path.split('.').reduce<unknown>((o, p) => (o && typeof o === 'object' ? (o as Draft)[p] : undefined), obj);
}

const TRUE = new Set(['true', '1', 'yes', 'y', '是', '√', 't']);
const FALSE = new Set(['false', '0', 'no', 'n', '否', '×', 'f']);

type ColOpts = Partial<Pick<Column, 'required' | 'hint' | 'upperCase'>>;

const col = {
  /** Text; empty is '' for optional text, undefined (→ a DTO error) for required text. */
  text: (header: string, aliases: string[], field: string, o: ColOpts = {}): Column => ({
    header,
    aliases,
    field,
    ...o,
    read: (cell, d) => setPath(d, field, cell === '' && o.required ? undefined : o.upperCase ? cell.toUpperCase() : cell),
    write: (r) => (getPath(r, field) as string | null) ?? '',
  }),
  /** A whole number or a decimal; empty is null when nullable, else left unset. */
  num: (header: string, aliases: string[], field: string, o: ColOpts & { nullable?: boolean } = {}): Column => ({
    header,
    aliases,
    field,
    ...o,
    read: (cell, d) => {
      if (cell === '') return void (o.nullable ? setPath(d, field, null) : undefined);
      if (!/^-?\d+(\.\d+)?$/.test(cell)) return `应为数字，实际为"${cell}"`;
      setPath(d, field, Number(cell));
    },
    write: (r) => (getPath(r, field) as number | null) ?? null,
  }),
  bool: (header: string, aliases: string[], field: string): Column => ({
    header,
    aliases,
    field,
    hint: 'true/false（或 是/否、1/0）',
    read: (cell, d) => {
      if (cell === '') return;
      const v = cell.toLowerCase();
      if (TRUE.has(v)) setPath(d, field, true);
      else if (FALSE.has(v)) setPath(d, field, false);
      else return `应为 true/false（是/否），实际为"${cell}"`;
    },
    write: (r) => (getPath(r, field) ? 'true' : 'false'),
  }),
  /** A reference by code to another record, resolved to its id. */
  ref: (
    header: string,
    aliases: string[],
    field: string,
    map: keyof Omit<Lookups, 'byId' | 'cameras'>,
    what: string,
    o: ColOpts & { nullable?: boolean } = {},
  ): Column => ({
    header,
    aliases,
    field,
    ...o,
    read: (cell, d, refs) => {
      if (cell === '') return void setPath(d, field, o.nullable ? null : undefined);
      const id = refs[map].get(cell);
      if (!id) return `${what}不存在：${cell}`;
      setPath(d, field, id);
    },
    write: (r, refs) => {
      const id = getPath(r, field) as string | null;
      return id ? (refs.byId.get(id) ?? '') : '';
    },
  }),
  readOnly: (header: string, aliases: string[], field: string): Column => ({
    header,
    aliases,
    field,
    readOnly: true,
    write: (r) => {
      const v = getPath(r, field);
      return v instanceof Date ? v.toISOString() : ((v as string | null) ?? '');
    },
  }),
};

const SCHOOL_TYPE_ALIASES: Record<string, string> = {
  幼儿园: 'kindergarten',
  小学: 'primary',
  初中: 'middle',
  中学: 'middle',
  高中: 'high',
  职高: 'vocational',
  中职: 'vocational',
  职业学校: 'vocational',
  九年一贯制: 'nine_year',
};

/** `1-5`, `1,2,3,4,5`, `1;3;5` (full-width commas too) → ISO weekdays. */
export function parseWeekdays(cell: string): number[] | null {
  const out: number[] = [];
  for (const part of cell.split(/[,;，；、\s]+/).filter(Boolean)) {
    const m = /^([1-7])(?:-([1-7]))?$/.exec(part);
    if (!m) return null;
    const from = Number(m[1]);
    const to = m[2] ? Number(m[2]) : from;
    if (to < from) return null;
    for (let d = from; d <= to; d++) out.push(d);
  }
  return out.length ? out : null;
}

/** [1,2,3,4,5] → `1-5`; [1,3,5] → `1,3,5`. */
export function formatWeekdays(days: number[]): string {
  const sorted = [...days].sort((a, b) => a - b);
  const contiguous = sorted.every((d, i) => i === 0 || d === sorted[i - 1] + 1);
  return contiguous && sorted.length > 2 ? `${sorted[0]}-${sorted[sorted.length - 1]}` : sorted.join(',');
}

const time = (header: string, aliases: string[], field: string): Column => ({
  ...col.text(header, aliases, field, { required: true, hint: 'HH:mm，如 07:30' }),
  dates: ['time'], // 7:30 typed in Excel is a time cell
  // Excel may have turned 7:30 into "7:30"; the DTO wants two-digit hours.
  read: (cell, d) => setPath(d, field, cell === '' ? undefined : /^\d:\d\d$/.test(cell) ? `0${cell}` : cell),
});

const schoolColumns: Column[] = [
  col.text('code', ['学校代码', '代码'], 'code', { required: true }),
  col.text('name', ['学校名称', '名称'], 'name', { required: true }),
  {
    ...col.text('type', ['学校类型', '类型'], 'type', {
      required: true,
      hint: 'kindergarten/primary/middle/high/vocational/nine_year（或 幼儿园/小学/初中/高中/职高/九年一贯制）',
    }),
    read: (cell, d) => void (d.type = cell === '' ? undefined : (SCHOOL_TYPE_ALIASES[cell] ?? cell)),
  },
  col.ref('districtCode', ['区县代码', '区代码'], 'districtId', 'districts', '区县', { hint: '只有一个区县时可留空' }),
  col.ref('zoneCode', ['学区代码'], 'zoneId', 'zones', '学区', { nullable: true }),
  col.ref('groupCode', ['教育集团代码', '集团代码'], 'groupId', 'groups', '教育集团', { nullable: true }),
  col.text('address', ['地址'], 'address'),
  col.num('lat', ['纬度'], 'lat', { nullable: true }),
  col.num('lng', ['经度'], 'lng', { nullable: true }),
  col.num('studentCount', ['学生人数'], 'studentCount'),
  col.num('staffCount', ['教职工人数'], 'staffCount'),
  col.bool('boarding', ['寄宿'], 'boarding'),
  // The school card shown on each alarm (issue 13).
  col.text('securityChiefName', ['安保负责人'], 'securityChiefName'),
  col.text('securityChiefPhone', ['安保负责人电话'], 'securityChiefPhone'),
  col.text('principalName', ['校长'], 'principalName'),
  col.text('principalPhone', ['校长电话'], 'principalPhone'),
  col.text('policeStationName', ['辖区派出所'], 'policeStationName'),
  col.text('policeStationPhone', ['派出所电话'], 'policeStationPhone'),
  {
    header: 'weekdays',
    aliases: ['上课日'],
    field: 'timetable.weekdays',
    required: true,
    hint: '1-5 或 1,2,3,4,5（1 = 周一）',
    read: (cell, d) => {
      const days = parseWeekdays(cell);
      if (!days) return `上课日应如 1-5 或 1,2,3,4,5，实际为"${cell}"`;
      setPath(d, 'timetable.weekdays', days);
    },
    write: (r) => formatWeekdays((r.timetable?.weekdays as number[]) ?? []),
  },
  time('arrivalStart', ['入校开始'], 'timetable.arrival.start'),
  time('arrivalEnd', ['入校结束'], 'timetable.arrival.end'),
  time('dismissalStart', ['放学开始'], 'timetable.dismissal.start'),
  time('dismissalEnd', ['放学结束'], 'timetable.dismissal.end'),
  time('schoolHoursStart', ['在校开始'], 'timetable.schoolHours.start'),
  time('schoolHoursEnd', ['在校结束'], 'timetable.schoolHours.end'),
  {
    header: 'terms',
    aliases: ['学期'],
    field: 'calendar.terms',
    hint: '2026-09-01..2027-01-20;2027-02-20..2027-07-05',
    read: (cell, d) => {
      const terms = cell
        .split(/[;；]/)
        .filter((s) => s.trim())
        .map((s) => s.split('..').map((x) => x.trim()));
      if (terms.some((t) => t.length !== 2)) return `学期应如 2026-09-01..2027-01-20，多个用 ; 分隔，实际为"${cell}"`;
      setPath(
        d,
        'calendar.terms',
        terms.map(([start, end]) => ({ start, end })),
      );
      (d.calendar as Draft).holidays ??= []; // the calendar is written whole: a file with terms only has no holidays
    },
    write: (r) => ((r.calendar?.terms as { start: string; end: string }[]) ?? []).map((t) => `${t.start}..${t.end}`).join(';'),
  },
  {
    header: 'holidays',
    aliases: ['假日'],
    field: 'calendar.holidays',
    hint: '2026-10-01;2026-10-02',
    dates: ['date'], // one holiday typed in Excel is a date cell
    read: (cell, d) => {
      setPath(
        d,
        'calendar.holidays',
        cell
          .split(/[;；,，]/)
          .map((s) => s.trim())
          .filter(Boolean),
      );
      (d.calendar as Draft).terms ??= [];
    },
    write: (r) => ((r.calendar?.holidays as string[]) ?? []).join(';'),
  },
];

const schoolCode = col.ref('schoolCode', ['学校代码'], 'schoolId', 'schools', '学校', { required: true });

const cameraColumns: Column[] = [
  schoolCode,
  col.text('deviceId', ['设备编码', '设备ID'], 'deviceId', { required: true, hint: '20 位国标编码' }),
  col.text('channelId', ['通道编码', '通道ID'], 'channelId', { required: true, hint: '20 位国标编码' }),
  col.text('name', ['名称', '摄像机名称'], 'name', { required: true }),
  col.text('areaKind', ['区域类型'], 'areaKind', { required: true, hint: 'main_gate/side_gate/gatehouse/perimeter/…' }),
  col.text('location', ['位置'], 'location'),
  col.text('vendor', ['厂商'], 'vendor'),
  col.text('model', ['型号'], 'model'),
  col.text('streamUrl', ['视频流地址'], 'streamUrl'),
  col.num('keepaliveSeconds', ['心跳间隔秒'], 'keepaliveSeconds', { nullable: true }),
  col.readOnly('status', ['状态'], 'status'),
  col.readOnly('lastSeenAt', ['最后在线'], 'lastSeenAt'),
];

const alarmDeviceColumns: Column[] = [
  col.text('code', ['报警器编码', '编码'], 'code', { required: true }),
  schoolCode,
  col.text('areaKind', ['区域类型'], 'areaKind', { required: true }),
  col.text('location', ['位置'], 'location'),
  col.bool('policeLinked', ['联网报警', '接警联动'], 'policeLinked'),
  {
    header: 'linkedCameras',
    aliases: ['联动摄像机'],
    field: 'linkedCameraIds',
    hint: 'deviceId:channelId，多个用 ; 分隔',
    read: (cell, d, refs) => {
      const ids: string[] = [];
      const missing: string[] = [];
      for (const key of cell
        .split(/[;；]/)
        .map((s) => s.trim())
        .filter(Boolean)) {
        const id = refs.cameras.get(key);
        if (id) ids.push(id);
        else missing.push(key);
      }
      if (missing.length) return `摄像机不存在：${missing.join(', ')}`;
      d.linkedCameraIds = ids;
    },
    write: (r, refs) => ((r.linkedCameraIds as string[]) ?? []).map((id) => refs.byId.get(id) ?? id).join(';'),
  },
  col.num('keepaliveSeconds', ['心跳间隔秒'], 'keepaliveSeconds', { nullable: true }),
  col.readOnly('status', ['状态'], 'status'),
  col.readOnly('lastSeenAt', ['最后在线'], 'lastSeenAt'),
];

const guardColumns: Column[] = [
  col.text('licenceNo', ['保安员证号', '证号'], 'licenceNo', { required: true, upperCase: true, hint: '不区分大小写（按大写保存）' }),
  col.text('name', ['姓名'], 'name', { required: true }),
  schoolCode,
  col.bool('fullTime', ['专职'], 'fullTime'),
  col.text('phone', ['电话'], 'phone'),
  col.bool('active', ['在岗', '有效'], 'active'),
];

/** `arrival;dismissal`, with an optional override: `arrival=07:20-08:00;dismissal`. */
export function parseWindows(cell: string): { kind: string; start?: string; end?: string }[] | null {
  const out: { kind: string; start?: string; end?: string }[] = [];
  for (const part of cell
    .split(/[;；,，]/)
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([a-z_]+)(?:=(\d{1,2}:\d\d)-(\d{1,2}:\d\d))?$/.exec(part);
    if (!m) return null;
    const hhmm = (t: string) => (t.length === 4 ? `0${t}` : t);
    out.push(m[2] ? { kind: m[1], start: hhmm(m[2]), end: hhmm(m[3]) } : { kind: m[1] });
  }
  return out.length ? out : null;
}

const postColumns: Column[] = [
  col.text('code', ['护学岗编码', '编码'], 'code', { required: true }),
  schoolCode,
  col.text('gate', ['校门', '岗位'], 'gate', { required: true }),
  {
    header: 'windows',
    aliases: ['时段'],
    field: 'windows',
    required: true,
    hint: 'arrival;dismissal，可写 arrival=07:20-08:00 覆盖学校作息',
    read: (cell, d) => {
      const w = parseWindows(cell);
      if (!w) return `时段应如 arrival;dismissal，实际为"${cell}"`;
      d.windows = w;
    },
    write: (r) =>
      ((r.windows as { kind: string; start?: string; end?: string }[]) ?? [])
        .map((w) => (w.start && w.end ? `${w.kind}=${w.start}-${w.end}` : w.kind))
        .join(';'),
  },
  col.num('requiredHeadcount', ['应到人数'], 'requiredHeadcount'),
];

export const IMPORT_KINDS = {
  schools: schoolColumns,
  cameras: cameraColumns,
  'alarm-devices': alarmDeviceColumns,
  guards: guardColumns,
  'protection-posts': postColumns,
} as const;
export type ImportKind = keyof typeof IMPORT_KINDS;

/** Matches a header cell to a column: English header (any case) or a Chinese alias. */
export function findColumn(columns: Column[], header: string): Column | undefined {
  const h = header.trim().toLowerCase();
  return columns.find((c) => c.header.toLowerCase() === h || c.aliases.includes(header.trim()));
}

/** The column a DTO error path (e.g. `timetable.arrival.start`, `windows.0.kind`) belongs to. */
export function columnOfField(columns: Column[], field: string): string {
  const hit = columns.find((c) => field === c.field || field.startsWith(c.field + '.')) ?? columns.find((c) => c.field.startsWith(field + '.'));
  return hit?.header ?? field;
}
