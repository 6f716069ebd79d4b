import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { NotificationsConfig } from '../../config/sections';
import { JobName, JOBS } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { IncidentNoticesService, NoticeTimelineEntry } from '../alarms';
import { UsersService } from '../auth';
import { ConsoleEventsService, type IncidentSummary, type NotificationDeliveryItem } from '../console-events';
import { signLink } from './ack-links';
import { ChannelRow, ChannelsService, isSilenced, toTarget } from './channels.service';
import { renderMessage } from './message';
import { CHANNEL_LABEL, DUTY_ROLE_LABEL, DutyRole, DeliveryStatus, notifyJobIds, OPEN_DELIVERY } from './notifications.constants';
import { notificationMetrics } from './notifications.metrics';
import { PolicyService } from './policy.service';
import { ProviderAnswer, sendOnce } from './providers';
import { RosterService } from './roster.service';
import { maskPhone, people, Person } from './users';

export interface DeliveryRow {
  id: string;
  incident_id: string;
  level: number;
  dedup_key: string;
  channel_id: string | null;
  channel_kind: string | null;
  channel_name: string | null;
  recipient_user_id: string | null;
  recipient_name: string;
  duty_role: DutyRole | null;
  address: string | null;
  status: DeliveryStatus;
  attempts: number;
  provider_code: string | null;
  last_error: string | null;
  due_at: Date;
  sent_at: Date | null;
  updated_at: Date;
}

/** A message as the console lists it under its incident (the catalogue's item plus the masked address and last error). */
export type DeliveryView = NotificationDeliveryItem & { address: string | null; lastError: string | null; dueAt: string };

type Planned = Omit<DeliveryRow, 'id' | 'attempts' | 'provider_code' | 'sent_at' | 'updated_at' | 'last_error'> & { last_error: string | null };

/**
 * Escalation messages end to end. An escalation (NotifyEscalation, from the alarms outbox) is
 * planned into one row per recipient × channel — the dedup key (incident, level, recipient,
 * channel) makes a re-run add nothing — and each row is one BullMQ job (ntf-<row>) that sends
 * it, retried with a pause until it is sent, finally fails, or no longer matters (acknowledged).
 * Every attempt is a timeline entry and a console event; the rows are also this module's outbox:
 * a row left unfinished with no job behind it (Redis lost it) is queued again by the reconciler.
 */
@Injectable()
export class DeliveriesService {
  private readonly logger = new Logger('Notifications');
  private readonly cfg: NotificationsConfig;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly queue: QueueService,
    private readonly notices: IncidentNoticesService,
    private readonly users: UsersService,
    private readonly roster: RosterService,
    private readonly policy: PolicyService,
    private readonly channels: ChannelsService,
    private readonly events: ConsoleEventsService,
  ) {
    this.cfg = config.notifications;
  }

  static view(r: DeliveryRow): DeliveryView {
    return {
      deliveryId: r.id,
      incidentId: r.incident_id,
      level: r.level,
      channelId: r.channel_id,
      channelKind: r.channel_kind,
      channelName: r.channel_name,
      recipientName: r.recipient_name,
      dutyRole: r.duty_role,
      status: r.status,
      attempts: r.attempts,
      providerCode: r.provider_code,
      sentAt: r.sent_at ? new Date(r.sent_at).toISOString() : null,
      updatedAt: new Date(r.updated_at).toISOString(),
      address: maskPhone(r.address),
      lastError: r.last_error,
      dueAt: new Date(r.due_at).toISOString(),
    };
  }

  private item(r: DeliveryRow): NotificationDeliveryItem {
    const { address: _a, lastError: _l, dueAt: _d, ...item } = DeliveriesService.view(r);
    return item;
  }

  async forIncident(incidentId: string): Promise<DeliveryView[]> {
    const rows = (await this.db.query(`SELECT * FROM notification_deliveries WHERE incident_id = $1 ORDER BY level, created_at, recipient_name`, [
      incidentId,
    ])) as DeliveryRow[];
    return rows.map((r) => DeliveriesService.view(r));
  }

  link(incidentId: string, now = new Date()): string {
    return `${this.cfg.publicBaseUrl}/console/ack/${signLink(this.cfg.linkSecret, incidentId, new Date(now.getTime() + this.cfg.linkTtlSeconds * 1000))}`;
  }

  private dueAt(i: IncidentSummary, level: number): Date {
    const s = this.config.alarms.escalationSeconds[i.priority]?.[level - 1];
    return s === undefined ? new Date() : new Date(Date.parse(i.firstPressAt) + s * 1000);
  }

  // ---------- planning (NotifyEscalation) ----------

  /** Handles one escalation: plans its messages, records the plan, queues them. Idempotent. */
  async escalation(incidentId: string, level: number): Promise<string> {
    const incident = (await this.notices.summaries([incidentId])).get(incidentId);
    if (!incident || incident.status !== 'raised') {
      await this.db.transaction(async (m) => {
        if (incident)
          await this.notices.appendTimeline(m, [{ incidentId, action: 'notify_cancelled', note: `第 ${level} 级升级通知取消：报警已被处理`, data: { level } }]);
        await this.notices.noticesDone(m, [{ incidentId, level }]);
      });
      return incident ? 'already handled' : 'no such incident';
    }
    const planned = await this.plan(incident, level);
    const rows = await this.db.transaction(async (m) => {
      const inserted = await this.insert(m, planned);
      if (inserted.length) {
        await this.notices.appendTimeline(m, [
          { incidentId, action: 'notify_planned', note: this.planNote(level, inserted), data: { level, count: inserted.length } },
        ]);
        await this.events.append(
          m,
          inserted.map((r) => ({ type: 'notification.delivery' as const, schoolId: null, payload: this.item(r) })),
        );
        const closed = inserted.filter((r) => !OPEN_DELIVERY.includes(r.status));
        if (closed.length)
          await this.notices.appendTimeline(
            m,
            closed.map((r) => this.attemptEntry(r, null)),
          );
      }
      await this.notices.noticesDone(m, [{ incidentId, level }]);
      // Rows of an earlier run of this job that are still open are queued again below (same job ids: no duplicates).
      return (await m.query(`SELECT * FROM notification_deliveries WHERE incident_id = $1 AND level = $2 AND status = ANY($3)`, [
        incidentId,
        level,
        OPEN_DELIVERY,
      ])) as DeliveryRow[];
    });
    await this.enqueue(rows);
    return `planned ${planned.length}, queued ${rows.length}`;
  }

  /** Recipients × channels of a level. People with nobody on duty, or no channel to reach them, are rows too (status no_recipient). */
  private async plan(incident: IncidentSummary, level: number): Promise<Planned[]> {
    const lv = await this.policy.level(incident.priority, level);
    if (!lv) return [];
    const now = new Date();
    const due = this.dueAt(incident, level);
    const base = { incident_id: incident.incidentId, level, due_at: due };
    const key = (...parts: string[]) => [incident.incidentId, level, ...parts].join(':');
    const all = await this.channels.rows();
    const byId = new Map(all.map((c) => [c.id, c]));
    const personChannels = (lv.channelIds ? lv.channelIds.map((id) => byId.get(id)).filter((c): c is ChannelRow => !!c) : all).filter((c) => c.enabled);
    const out: Planned[] = [];
    const none = (k: string, name: string, role: DutyRole | null, why: string): Planned => ({
      ...base,
      dedup_key: key('none', k),
      channel_id: null,
      channel_kind: null,
      channel_name: null,
      recipient_user_id: null,
      recipient_name: name,
      duty_role: role,
      address: null,
      status: 'no_recipient',
      last_error: why,
    });
    // People: by duty role (everyone on duty now) or by name; each once per level even if named twice.
    const wanted: { userId: string; role: DutyRole | null }[] = [];
    for (const t of lv.targets) {
      if (t.kind === 'duty') {
        const ids = await this.roster.onDutyUserIds(t.dutyRole, now);
        if (ids.length === 0)
          out.push(none(`duty-${t.dutyRole}`, DUTY_ROLE_LABEL[t.dutyRole], t.dutyRole, `${DUTY_ROLE_LABEL[t.dutyRole]}当前无人值班（值班表空缺）`));
        for (const id of ids) wanted.push({ userId: id, role: t.dutyRole });
      } else if (t.kind === 'user') wanted.push({ userId: t.userId, role: null });
    }
    const who = await people(
      this.users,
      wanted.map((w) => w.userId),
    );
    const seen = new Set<string>();
    for (const w of wanted) {
      if (seen.has(w.userId)) continue;
      seen.add(w.userId);
      const p: Person | undefined = who.get(w.userId);
      const name = p ? `${p.name}${w.role ? `（${DUTY_ROLE_LABEL[w.role]}）` : ''}` : '（已删除的用户）';
      if (!p || p.disabled) {
        out.push(none(`user-${w.userId}`, name, w.role, '用户不存在或已停用'));
        continue;
      }
      if (personChannels.length === 0) {
        out.push(none(`user-${w.userId}`, name, w.role, '没有可用的通知渠道'));
        continue;
      }
      for (const c of personChannels)
        out.push({
          ...base,
          dedup_key: key('u', p.id, c.id),
          channel_id: c.id,
          channel_kind: c.kind,
          channel_name: c.name,
          recipient_user_id: p.id,
          recipient_name: name,
          duty_role: w.role,
          address: p.phone || null,
          status: 'pending',
          last_error: null,
        });
    }
    for (const t of lv.targets) {
      if (t.kind !== 'group') continue;
      const c = byId.get(t.channelId);
      if (!c || !c.enabled) {
        out.push(none(`group-${t.channelId}`, c?.name ?? '（已删除的渠道）', null, '渠道不存在或已停用'));
        continue;
      }
      out.push({
        ...base,
        dedup_key: key('g', c.id),
        channel_id: c.id,
        channel_kind: c.kind,
        channel_name: c.name,
        recipient_user_id: null,
        recipient_name: `群：${c.name}`,
        duty_role: null,
        address: null,
        status: 'pending',
        last_error: null,
      });
    }
    return out;
  }

  private async insert(m: EntityManager, rows: Planned[]): Promise<DeliveryRow[]> {
    if (rows.length === 0) return [];
    const col = <K extends keyof Planned>(k: K) => rows.map((r) => r[k]);
    return m.query(
      `INSERT INTO notification_deliveries (incident_id, level, dedup_key, channel_id, channel_kind, channel_name, recipient_user_id, recipient_name,
         duty_role, address, status, last_error, due_at)
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::uuid[], $8::text[], $9::text[], $10::text[],
         $11::text[], $12::text[], $13::timestamptz[])
       ON CONFLICT (dedup_key) DO NOTHING RETURNING *`,
      [
        col('incident_id'),
        col('level'),
        col('dedup_key'),
        col('channel_id'),
        col('channel_kind'),
        col('channel_name'),
        col('recipient_user_id'),
        col('recipient_name'),
        col('duty_role'),
        col('address'),
        col('status'),
        col('last_error'),
        rows.map((r) => r.due_at.toISOString()),
      ],
    );
  }

  private planNote(level: number, rows: DeliveryRow[]): string {
    const open = rows.filter((r) => OPEN_DELIVERY.includes(r.status));
    const parts = open.map(
      (r) => `${r.recipient_name} · ${CHANNEL_LABEL[r.channel_kind as keyof typeof CHANNEL_LABEL] ?? r.channel_kind}「${r.channel_name}」`,
    );
    return parts.length ? `第 ${level} 级升级，正在通知：${parts.join('；')}` : `第 ${level} 级升级：没有可通知的人`;
  }

  /** The timeline entry of one attempt (or of a row closed without one): who, how, and what happened. */
  private attemptEntry(r: DeliveryRow, answer: ProviderAnswer | null): NoticeTimelineEntry {
    const via = r.channel_kind ? `${CHANNEL_LABEL[r.channel_kind as keyof typeof CHANNEL_LABEL] ?? r.channel_kind}「${r.channel_name}」` : '';
    const code = answer ? `（应答 ${answer.code}${answer.detail ? ` ${answer.detail}` : ''}）` : '';
    const notes: Record<DeliveryStatus, string> = {
      pending: `待通知 ${r.recipient_name}`,
      sent: `已通过${via}通知 ${r.recipient_name}：送达${code}`,
      retrying: `通过${via}通知 ${r.recipient_name} 第 ${r.attempts} 次发送失败${code}，稍后重试`,
      failed: `通过${via}通知 ${r.recipient_name} 失败${code || (r.last_error ? `（${r.last_error}）` : '')}，不再重试`,
      cancelled: `报警已被确认，取消通过${via}通知 ${r.recipient_name}`,
      suppressed: `${via}维护中（静默），未通知 ${r.recipient_name}`,
      no_recipient: `第 ${r.level} 级：${r.last_error ?? '没有可通知的人'}`,
    };
    return {
      incidentId: r.incident_id,
      action: r.status === 'sent' ? 'notified' : r.status === 'retrying' || r.status === 'failed' ? 'notify_failed' : 'notify_skipped',
      note: notes[r.status],
      data: {
        level: r.level,
        deliveryId: r.id,
        channel: r.channel_kind,
        channelName: r.channel_name,
        recipient: r.recipient_name,
        status: r.status,
        attempt: r.attempts,
        providerCode: answer?.code ?? r.provider_code,
      },
    };
  }

  // ---------- queueing ----------

  jobOptions() {
    return { ...JOBS[JobName.NotifyDeliver].options, attempts: this.cfg.attempts, backoff: { type: 'fixed', delay: this.cfg.retryDelayMs } };
  }

  async enqueue(rows: Pick<DeliveryRow, 'id'>[]): Promise<void> {
    if (rows.length === 0) return;
    await this.queue.addBulk(
      JobName.NotifyDeliver,
      rows.map((r) => ({ payload: { deliveryId: r.id }, options: { ...this.jobOptions(), jobId: notifyJobIds.deliver(r.id) } })),
    );
    await this.db.query(`UPDATE notification_deliveries SET dispatched_at = now() WHERE id = ANY($1::uuid[])`, [rows.map((r) => r.id)]);
  }

  /**
   * Unfinished rows queued more than redispatchAfterMs ago: a job BullMQ still holds is left alone
   * (a failed one retried), a lost one is added again. Returns how many were queued again.
   */
  async reconcile(): Promise<number> {
    const stale = (await this.db.query(
      `SELECT id FROM notification_deliveries WHERE status = ANY($1) AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => $2 / 1000.0))
       ORDER BY dispatched_at NULLS FIRST LIMIT 1000`,
      [OPEN_DELIVERY, this.cfg.redispatchAfterMs],
    )) as { id: string }[];
    const lost: { id: string }[] = [];
    const q = this.queue.queue(JOBS[JobName.NotifyDeliver].queue);
    for (const r of stale) {
      const job = await q.getJob(notifyJobIds.deliver(r.id));
      if (!job) lost.push(r);
      else if (await job.isFailed()) await job.retry('failed');
    }
    await this.enqueue(lost);
    if (stale.length) await this.db.query(`UPDATE notification_deliveries SET dispatched_at = now() WHERE id = ANY($1::uuid[])`, [stale.map((r) => r.id)]);
    if (lost.length) this.logger.warn(`re-queued ${lost.length} notification(s) whose job was lost`);
    return lost.length;
  }

  // ---------- sending (NotifyDeliver) ----------

  /** One attempt at one message. Throws to have BullMQ retry it; returns once the row is finished. */
  async deliver(deliveryId: string, attempt: number): Promise<string> {
    const [row] = (await this.db.query(`SELECT * FROM notification_deliveries WHERE id = $1`, [deliveryId])) as DeliveryRow[];
    if (!row || !OPEN_DELIVERY.includes(row.status)) return 'finished already';
    const incident = (await this.notices.summaries([row.incident_id])).get(row.incident_id);
    if (!incident || incident.status !== 'raised') return this.finish(row, 'cancelled', null, null);
    const channel = row.channel_id ? await this.channels.row(row.channel_id).catch(() => null) : null;
    if (!channel || !channel.enabled) return this.finish(row, 'failed', null, '渠道已删除或停用');
    const now = new Date();
    if (isSilenced(channel, now)) return this.finish(row, 'suppressed', null, channel.silence_reason);
    if (channel.kind === 'sms' && row.recipient_user_id && !row.address) return this.finish(row, 'failed', null, '该用户没有手机号');
    const msg = renderMessage({
      incident,
      level: row.level,
      recipient: row.recipient_name,
      phone: row.address,
      link: this.link(incident.incidentId, now),
      now,
    });
    const answer = await sendOnce(toTarget(channel), msg, {
      timeoutMs: this.cfg.timeoutMs,
      idempotencyKey: row.dedup_key,
      now,
      mentionMobiles: channel.kind !== 'sms' && row.address ? [row.address] : [],
    });
    if (answer.ok) {
      notificationMetrics.latency.observe({ kind: channel.kind }, Math.max(0, Date.now() - new Date(row.due_at).getTime()) / 1000);
      return this.finish(row, 'sent', answer, null, channel);
    }
    const last = attempt >= this.cfg.attempts || !answer.retryable;
    await this.finish(row, last ? 'failed' : 'retrying', answer, `${answer.code} ${answer.detail}`.trim(), channel);
    if (last) return `failed: ${answer.code}`;
    throw new Error(`notification ${deliveryId} via ${channel.kind}: ${answer.code} ${answer.detail}`);
  }

  /** Records an attempt's outcome (row, timeline, console event, channel health) in one transaction; only an open row changes. */
  private async finish(row: DeliveryRow, status: DeliveryStatus, answer: ProviderAnswer | null, error: string | null, channel?: ChannelRow): Promise<string> {
    const counted = answer !== null;
    await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE notification_deliveries SET status = $2, attempts = attempts + $3, provider_code = coalesce($4, provider_code), last_error = $5,
           sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, updated_at = now()
         WHERE id = $1 AND status = ANY($6) RETURNING *`,
        [row.id, status, counted ? 1 : 0, answer?.code ?? null, error?.slice(0, 500) ?? null, OPEN_DELIVERY],
      )) as [DeliveryRow[]];
      if (!up) return;
      await this.notices.appendTimeline(m, [this.attemptEntry(up, answer)]);
      await this.events.append(m, { type: 'notification.delivery', schoolId: null, payload: this.item(up) });
      if (channel && answer) await this.channels.recordHealth(m, channel, answer);
    });
    if (counted) notificationMetrics.attempts.inc({ kind: row.channel_kind ?? 'none', outcome: status });
    return status;
  }
}
