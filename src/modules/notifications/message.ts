import type { IncidentSummary } from '../console-events';
import { INCIDENT_TYPE_LABEL } from '../alarms';

/** What a message says, in every form a channel needs (markdown for robots, plain text for SMS). */
export interface OutboundMessage {
  title: string;
  /** Markdown lines (WeCom / DingTalk markdown); the link is the last line. */
  lines: string[];
  link: string;
  /** One line for SMS / voice (the link appended). */
  text: string;
  /** Values an SMS gateway template may use ({{name}}). */
  vars: Record<string, string>;
}

export interface MessageInput {
  incident: IncidentSummary;
  level: number;
  /** The recipient as the message addresses them: '张三（值班主管）', or the group. */
  recipient: string;
  phone: string | null;
  link: string;
  now: Date;
}

/** '2026-11-30 13:05:07' in Asia/Shanghai (UTC+8 all year: China keeps no daylight saving time). */
export function shanghaiDateTime(at: Date | string): string {
  const d = new Date(new Date(at).getTime() + 8 * 3600_000);
  return d.toISOString().slice(0, 19).replace('T', ' ');
}

/** '45 秒', '3 分 05 秒', '2 小时 07 分'. */
export function waitedZh(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} 秒`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} 分 ${String(s % 60).padStart(2, '0')} 秒`;
  return `${Math.floor(m / 60)} 小时 ${String(m % 60).padStart(2, '0')} 分`;
}

/**
 * The message about one escalated incident, in Chinese: school, place, type, time raised
 * (Asia/Shanghai), how long it has waited unacknowledged (at sending time: a retry says more),
 * and the link that opens it on the console. Data from devices and staff is quoted as text.
 */
export function renderMessage(x: MessageInput): OutboundMessage {
  const i = x.incident;
  const type = INCIDENT_TYPE_LABEL[i.type] ?? i.type;
  const drill = i.drill ? '【演练】' : '';
  const waited = waitedZh(x.now.getTime() - Date.parse(i.firstPressAt));
  const raised = shanghaiDateTime(i.firstPressAt);
  const title = `${drill}${i.priority} 报警第 ${x.level} 级升级：${i.schoolName} ${type}`;
  const clean = (s: string) => s.replace(/[\r\n]+/g, ' ').trim();
  const lines = [
    `学校：${clean(i.schoolName)}`,
    `位置：${clean(i.location)}`,
    `类型：${type}（${i.priority}）`,
    `报警时间：${raised}（北京时间）`,
    `已 ${waited} 无人确认`,
    `通知：${clean(x.recipient)}`,
  ];
  const text = `【守护】${drill}${i.priority}报警已${waited}无人确认：${clean(i.schoolName)} ${clean(i.location)} ${type}，${raised.slice(11)}报警。请立即处理：${x.link}`;
  return {
    title,
    lines,
    link: x.link,
    text,
    vars: {
      text,
      title,
      link: x.link,
      phone: x.phone ?? '',
      incidentId: i.incidentId,
      level: String(x.level),
      school: i.schoolName,
      location: i.location,
      type,
      priority: i.priority,
      raisedAt: raised,
      waited,
      recipient: x.recipient,
    },
  };
}
