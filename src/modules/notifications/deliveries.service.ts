import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { NotificationsConfig, Priority } from '../../config/sections';
import { JobName, JOBS } from '../../infra/queue/queue.catalogue';
import { Batcher } from '../../infra/queue/batcher';
import { QueueService } from '../../infra/queue/queue.service';
import { IncidentNoticesService, NoticeTimelineEntry } from '../alarms';
import { UsersService } from '../auth';
import { ConsoleEventsService, type IncidentSummary, type NotificationDeliveryItem } from '../console-events';
import { signLink } from './ack-links';
import { ChannelRow, ChannelsService, isSilenced, toTarget } from './channels.service';
import { renderMessage } from './message';
import { CHANNEL_LABEL, DUTY_ROLE_LABEL, DutyRole, DeliveryStatus, notifyJobIds, OPEN_DELIVERY } from './notifications.constants';
import { notificationMetrics } from './notifications.metrics';
import { PolicyLevel, PolicyService, PolicyView } from './policy.service';
import { ProviderAnswer, sendOnce, withoutUrlSecrets } from './providers';
import { RosterService } from './roster.service';
import { TargetResolver } from './target-address';
import { dutyRefusal, maskPhone, people, Person } from './users';

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

/** One attempt's outcome: the row's new status, the provider's answer (null: closed without a send) and the channel used. */
interface Outcome {
  row: DeliveryRow;
  status: DeliveryStatus;
  answer: ProviderAnswer | null;
  error: string | null;
  channel?: ChannelRow;
}

/** Reads shared by the plans of one batch. */
interface PlanContext {
  now: Date;
  level: (p: Priority, level: number) => Promise<PolicyLevel | null>;
  channels: () => Promise<ChannelRow[]>;
  onDuty: (role: DutyRole) => Promise<string[]>;
  people: (ids: string[]) => Promise<Map<string, Person>>;
}

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
  private readonly escalations: Batcher<{ incidentId: string; level: number }, string>;
  private readonly deliveries: Batcher<{ deliveryId: string; attempt: number }, string>;

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
    private readonly resolver: TargetResolver,
  ) {
    this.cfg = config.notifications;
    const batch = { maxBatch: config.queue.batchMax, maxConcurrent: config.queue.batchConcurrency };
    this.escalations = new Batcher((items) => this.escalationMany(items), batch);
    this.deliveries = new Batcher((items) => this.deliverMany(items), batch);
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
      lastError: r.last_error === null ? null : withoutUrlSecrets(r.last_error),
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

  /**
   * Handles one escalation: plans its messages, records the plan, queues them. Idempotent.
   * Escalations handled together (a burst falling due at once) are folded (Batcher: queue.batchMax,
   * queue.batchConcurrency): one read of the incidents, the policy, channels, roster and people for
   * all of them, one transaction recording every plan, one queue round trip.
   */
  escalation(incidentId: string, level: number): Promise<string> {
    return this.escalations.run({ incidentId, level });
  }

  private async escalationMany(items: { incidentId: string; level: number }[]): Promise<string[]> {
    const incidents = await this.notices.summaries([...new Set(items.map((i) => i.incidentId))]);
    const ctx = this.planContext();
    const seen = new Set<string>();
    const plans = await Promise.all(
      items.map(async (it) => {
        const incident = incidents.get(it.incidentId);
        const key = `${it.incidentId}:${it.level}`;
        const first = !seen.has(key);
        seen.add(key);
        if (!incident || incident.status !== 'raised') return { it, incident, planned: null, first };
        return { it, incident, planned: first ? await this.plan(incident, it.level, ctx) : [], first };
      }),
    );
    const rows = await this.db.transaction(async (m) => {
      const entries: NoticeTimelineEntry[] = plans
        .filter((p) => p.incident && p.planned === null && p.first)
        .map((p) => ({
          incidentId: p.it.incidentId,
          action: 'notify_cancelled',
          note: `第 ${p.it.level} 级升级通知取消：报警已被处理`,
          data: { level: p.it.level },
        }));
      const inserted = await this.insert(
        m,
        plans.flatMap((p) => p.planned ?? []),
      );
      const groups = new Map<string, DeliveryRow[]>();
      for (const r of inserted) groups.set(`${r.incident_id}:${r.level}`, [...(groups.get(`${r.incident_id}:${r.level}`) ?? []), r]);
      for (const g of groups.values())
        entries.push({
          incidentId: g[0].incident_id,
          action: 'notify_planned',
          note: this.planNote(g[0].level, g),
          data: { level: g[0].level, count: g.length },
        });
      entries.push(...inserted.filter((r) => !OPEN_DELIVERY.includes(r.status)).map((r) => this.attemptEntry(r, null)));
      await this.notices.appendTimeline(m, entries);
      if (inserted.length)
        await this.events.append(
          m,
          inserted.map((r) => ({ type: 'notification.delivery' as const, schoolId: null, payload: this.item(r) })),
        );
      await this.notices.noticesDone(
        m,
        items.map((i) => ({ incidentId: i.incidentId, level: i.level })),
      );
      const live = plans.filter((p) => p.planned !== null && p.first);
      if (live.length === 0) return [] as DeliveryRow[];
      // Rows of an earlier run of these jobs that are still open are queued again below (same job ids: no duplicates).
      return (await m.query(
        `SELECT d.* FROM notification_deliveries d JOIN unnest($1::uuid[], $2::int[]) AS v(i, l) ON d.incident_id = v.i AND d.level = v.l
         WHERE d.status = ANY($3)`,
        [live.map((p) => p.it.incidentId), live.map((p) => p.it.level), OPEN_DELIVERY],
      )) as DeliveryRow[];
    });
    await this.enqueue(rows);
    return plans.map((p) => {
      if (!p.incident) return 'no such incident';
      if (p.planned === null) return 'already handled';
      const queued = rows.filter((r) => r.incident_id === p.it.incidentId && r.level === p.it.level).length;
      return `planned ${p.planned.length}, queued ${queued}`;
    });
  }

  /** Reads shared by the plans of one batch: each policy, the channels, each duty role and each person once. */
  private planContext(): PlanContext {
    const now = new Date();
    const policies = new Map<string, Promise<PolicyView>>();
    const duty = new Map<DutyRole, Promise<string[]>>();
    const persons = new Map<string, Promise<Person | undefined>>();
    let channels: Promise<ChannelRow[]> | undefined;
    const memo = <K, V>(m: Map<K, Promise<V>>, k: K, f: () => Promise<V>) => {
      if (!m.has(k)) m.set(k, f());
      return m.get(k)!;
    };
    return {
      now,
      level: async (p, l) => (await memo(policies, p, () => this.policy.get(p))).levels[l - 1] ?? null,
      channels: () => (channels ??= this.channels.rows()),
      onDuty: (role) => memo(duty, role, () => this.roster.onDutyUserIds(role, now)),
      people: async (ids) => {
        const got = await Promise.all(ids.map((id) => memo(persons, id, async () => (await people(this.users, [id])).get(id))));
        return new Map(got.filter((p): p is Person => !!p).map((p) => [p.id, p]));
      },
    };
  }

  /** Recipients × channels of a level. People with nobody on duty, or no channel to reach them, are rows too (status no_recipient). */
  private async plan(incident: IncidentSummary, level: number, ctx: PlanContext): Promise<Planned[]> {
    const lv = await ctx.level(incident.priority, level);
    if (!lv) return [];
    const due = this.dueAt(incident, level);
    const base = { incident_id: incident.incidentId, level, due_at: due };
    const key = (...parts: string[]) => [incident.incidentId, level, ...parts].join(':');
    const all = await ctx.channels();
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
        const ids = await ctx.onDuty(t.dutyRole);
        if (ids.length === 0)
          out.push(none(`duty-${t.dutyRole}`, DUTY_ROLE_LABEL[t.dutyRole], t.dutyRole, `${DUTY_ROLE_LABEL[t.dutyRole]}当前无人值班（值班表空缺）`));
        for (const id of ids) wanted.push({ userId: id, role: t.dutyRole });
      } else if (t.kind === 'user') wanted.push({ userId: t.userId, role: null });
    }
    const who = await ctx.people(wanted.map((w) => w.userId));
    const seen = new Set<string>();
    for (const w of wanted) {
      if (seen.has(w.userId)) continue;
      seen.add(w.userId);
      const p: Person | undefined = who.get(w.userId);
      const name = p ? `${p.name}${w.role ? `（${DUTY_ROLE_LABEL[w.role]}）` : ''}` : '（已删除的用户）';
      // The roster's one rule (dutyRefusal): a person named in a policy and later demoted to school staff is not told the
      // district's alarms any more than one taken off duty (attack pass 9 #4); the timeline says why nobody was.
      const refused = dutyRefusal(p);
      if (refused || !p) {
        out.push(none(`user-${w.userId}`, name, w.role, refused === 'user_role' ? '用户已不是巡查中心人员，不再接收报警通知' : '用户不存在或已停用'));
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
        // The console names the role in its own language (recipient_name is composed in Chinese).
        dutyRole: r.duty_role,
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
    // Redis unreachable: the rows stay undispatched; runDueHere sends them meanwhile, reconcile queues them once it is back.
    if (rows.length === 0 || !this.queue.redisReady) return;
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
  async reconcile(olderThanMs = this.cfg.redispatchAfterMs): Promise<number> {
    const stale = (await this.db.query(
      `SELECT id FROM notification_deliveries WHERE status = ANY($1) AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => $2 / 1000.0))
       ORDER BY dispatched_at NULLS FIRST LIMIT 1000`,
      [OPEN_DELIVERY, olderThanMs],
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

  /**
   * Redis unreachable (QueueService.duringOutage): claims open rows not dispatched, or last claimed
   * more than notifications.retryDelayMs ago (BullMQ's pause between attempts; also the lease against
   * another process), and sends them here — attempt number from the row's own count. A row sent here
   * is finished in Postgres, so reconcile does not queue it again once Redis is back. Returns how many started.
   */
  async runDueHere(): Promise<number> {
    if (!this.queue.outageJobs().includes(JobName.NotifyDeliver)) return 0;
    const [rows] = (await this.db.query(
      `UPDATE notification_deliveries d SET dispatched_at = now()
       FROM (SELECT id FROM notification_deliveries
             WHERE status = ANY($1) AND (dispatched_at IS NULL OR dispatched_at < now() - make_interval(secs => $2 / 1000.0))
             ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) c
       WHERE d.id = c.id RETURNING d.id, d.attempts`,
      [OPEN_DELIVERY, this.cfg.retryDelayMs, this.config.queue.outage.batchSize],
    )) as [{ id: string; attempts: number }[], number];
    return rows.filter((r) => this.queue.runHere(JobName.NotifyDeliver, { deliveryId: r.id }, { jobId: notifyJobIds.deliver(r.id), attempt: r.attempts + 1 }))
      .length;
  }

  // ---------- sending (NotifyDeliver) ----------

  /**
   * One attempt at one message. Throws to have BullMQ retry it; returns once the row is finished.
   * Attempts made together are folded (Batcher): one read of the rows, incidents and channels, the
   * sends in parallel, one transaction recording every outcome.
   */
  deliver(deliveryId: string, attempt: number): Promise<string> {
    return this.deliveries.run({ deliveryId, attempt });
  }

  private async deliverMany(items: { deliveryId: string; attempt: number }[]): Promise<(string | Error)[]> {
    const rows = (await this.db.query(`SELECT * FROM notification_deliveries WHERE id = ANY($1::uuid[])`, [
      [...new Set(items.map((i) => i.deliveryId))],
    ])) as DeliveryRow[];
    const open = rows.filter((r) => OPEN_DELIVERY.includes(r.status));
    const incidents = await this.notices.summaries([...new Set(open.map((r) => r.incident_id))]);
    const channels = new Map((open.some((r) => r.channel_id) ? await this.channels.rows() : []).map((c) => [c.id, c]));
    const attempt = new Map<string, number>();
    for (const i of items) attempt.set(i.deliveryId, Math.max(attempt.get(i.deliveryId) ?? 0, i.attempt));
    const now = new Date();
    const outcomes = await Promise.all(
      open.map(async (row): Promise<Outcome | Error> => {
        try {
          return await this.attempt(
            row,
            attempt.get(row.id) ?? 1,
            incidents.get(row.incident_id),
            row.channel_id ? channels.get(row.channel_id) : undefined,
            now,
          );
        } catch (e) {
          return e as Error;
        }
      }),
    );
    const done = outcomes.filter((o): o is Outcome => !(o instanceof Error));
    await this.finish(done);
    const byId = new Map(open.map((r, i) => [r.id, outcomes[i]]));
    return items.map((i) => {
      const o = byId.get(i.deliveryId);
      if (!o) return 'finished already';
      if (o instanceof Error) return o;
      if (o.status === 'retrying') return new Error(`notification ${i.deliveryId} via ${o.channel?.kind}: ${o.answer?.code} ${o.answer?.detail}`);
      if (o.status === 'failed' && o.answer) return `failed: ${o.answer.code}`;
      return o.status;
    });
  }

  /** What one attempt comes to: closed without a send (acknowledged, channel gone or silenced, no phone) or the provider's answer. */
  private async attempt(
    row: DeliveryRow,
    attempt: number,
    incident: IncidentSummary | undefined,
    channel: ChannelRow | undefined,
    now: Date,
  ): Promise<Outcome> {
    const closed = (status: DeliveryStatus, error: string | null): Outcome => ({ row, status, answer: null, error });
    if (!incident || incident.status !== 'raised') return closed('cancelled', null);
    if (!channel || !channel.enabled) return closed('failed', '渠道已删除或停用');
    if (isSilenced(channel, now)) return closed('suppressed', channel.silence_reason);
    if (channel.kind === 'sms' && row.recipient_user_id && !row.address) return closed('failed', '该用户没有手机号');
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
      allowPrivateTargets: this.cfg.allowPrivateTargets,
      resolve: (h) => this.resolver.resolve(h),
      idempotencyKey: row.dedup_key,
      now,
      mentionMobiles: channel.kind !== 'sms' && row.address ? [row.address] : [],
    });
    if (answer.ok) {
      notificationMetrics.latency.observe({ kind: channel.kind }, Math.max(0, Date.now() - new Date(row.due_at).getTime()) / 1000);
      return { row, status: 'sent', answer, error: null, channel };
    }
    const last = attempt >= this.cfg.attempts || !answer.retryable;
    return { row, status: last ? 'failed' : 'retrying', answer, error: `${answer.code} ${answer.detail}`.trim(), channel };
  }

  /** Records attempts' outcomes (rows, timeline, console events, channel health) in one transaction; only open rows change. */
  private async finish(outcomes: Outcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.db.transaction(async (m) => {
      const [ups] = (await m.query(
        `UPDATE notification_deliveries d SET status = v.status, attempts = d.attempts + v.counted, provider_code = coalesce(v.code, d.provider_code),
           last_error = v.err, sent_at = CASE WHEN v.status = 'sent' THEN now() ELSE d.sent_at END, updated_at = now()
         FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[]) AS v(id, status, counted, code, err)
         WHERE d.id = v.id AND d.status = ANY($6) RETURNING d.*`,
        [
          outcomes.map((o) => o.row.id),
          outcomes.map((o) => o.status),
          outcomes.map((o) => (o.answer ? 1 : 0)),
          outcomes.map((o) => o.answer?.code ?? null),
          outcomes.map((o) => o.error?.slice(0, 500) ?? null),
          OPEN_DELIVERY,
        ],
      )) as [DeliveryRow[]];
      if (ups.length === 0) return;
      const byId = new Map(outcomes.map((o) => [o.row.id, o]));
      await this.notices.appendTimeline(
        m,
        ups.map((up) => this.attemptEntry(up, byId.get(up.id)?.answer ?? null)),
      );
      await this.events.append(
        m,
        ups.map((up) => ({ type: 'notification.delivery' as const, schoolId: null, payload: this.item(up) })),
      );
      // Channel health once per channel (in id order: concurrent batches lock them alike); one that answered in this batch works.
      const health = new Map<string, { channel: ChannelRow; answer: ProviderAnswer }>();
      for (const up of ups) {
        const o = byId.get(up.id);
        if (!o?.channel || !o.answer) continue;
        const h = health.get(o.channel.id);
        if (!h || (o.answer.ok && !h.answer.ok)) health.set(o.channel.id, { channel: o.channel, answer: o.answer });
      }
      for (const id of [...health.keys()].sort()) await this.channels.recordHealth(m, health.get(id)!.channel, health.get(id)!.answer);
    });
    for (const o of outcomes) if (o.answer) notificationMetrics.attempts.inc({ kind: o.row.channel_kind ?? 'none', outcome: o.status });
  }
}
