import { shanghaiStamp } from '../school-day';
import { INCIDENT_TYPE_LABEL, OUTCOME_LABEL, STATUS_LABEL } from './alarms.constants';
import type { IncidentView } from './incident-row';

/**
 * GET /incidents/export: one line per incident, zh-CN headers and names, times in Asia/Shanghai.
 * Text cells are written through the tabular writers, which neutralise formula-like cells (CSV
 * injection) — a school name or note typed as `=HYPERLINK(…)` stays text.
 */
export function incidentExportRows(items: IncidentView[]): { header: string[]; rows: (string | number)[][] } {
  const header = [
    '编号',
    '学校',
    '类型',
    '优先级',
    '状态',
    '处置结果',
    '演练',
    '地点',
    '报警时间',
    '报警人',
    '确认时间',
    '确认人',
    '处置完毕时间',
    '处置人',
    '撤销原因',
    '备注',
  ];
  return {
    header,
    rows: items.map((i) => [
      i.id,
      i.schoolName,
      INCIDENT_TYPE_LABEL[i.type] ?? i.type,
      i.priority,
      STATUS_LABEL[i.status] ?? i.status,
      i.outcome ? (OUTCOME_LABEL[i.outcome] ?? i.outcome) : '',
      i.drill ? '是' : '否',
      i.location,
      shanghaiStamp(i.firstPressAt),
      i.raisedBy,
      shanghaiStamp(i.acknowledgedBy?.at),
      i.acknowledgedBy?.name ?? '',
      shanghaiStamp(i.resolvedAt),
      i.resolvedBy ?? '',
      i.cancelReason ?? '',
      i.note,
    ]),
  };
}

type StatsRowOut = Record<string, unknown> & { count: number; closed: number; falseAlarms: number };
const seconds = (ms: unknown): number | string => (typeof ms === 'number' && Number.isFinite(ms) ? Math.round(ms / 100) / 10 : '');

/**
 * GET /incidents/stats/export: the response-time statistics as a table, one line per school then
 * per day (Asia/Shanghai): alarms, closed, false alarms and their rate, and each step's p50/p90 in
 * seconds from the first press. Drills and tests are not in the statistics.
 */
export function statsExportRows(stats: { bySchool: StatsRowOut[]; byDay: StatsRowOut[] }): { header: string[]; rows: (string | number)[][] } {
  const steps: [string, string][] = [
    ['toAcknowledged', '确认'],
    ['toRelayed', '联网送达'],
    ['toOnScene', '到场'],
    ['toResolved', '处置完毕'],
  ];
  const header = ['分组', '名称', '报警数', '已处置', '误报', '误报率', ...steps.flatMap(([, l]) => [`${l}用时P50(秒)`, `${l}用时P90(秒)`])];
  const line = (group: string, name: string, r: StatsRowOut) => [
    group,
    name,
    r.count,
    r.closed,
    r.falseAlarms,
    r.closed > 0 ? `${((r.falseAlarms / r.closed) * 100).toFixed(1)}%` : '',
    ...steps.flatMap(([k]) => [seconds(r[`${k}P50`]), seconds(r[`${k}P90`])]),
  ];
  return {
    header,
    rows: [...stats.bySchool.map((r) => line('学校', String(r.schoolName ?? ''), r)), ...stats.byDay.map((r) => line('日期', String(r.day ?? ''), r))],
  };
}
