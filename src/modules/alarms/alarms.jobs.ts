import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { SYSTEM_ACTOR } from '../../infra/http/request-context';
import { JobName } from '../../infra/queue/queue.catalogue';
import { Batcher } from '../../infra/queue/batcher';
import { QueueService } from '../../infra/queue/queue.service';
import { ConsoleEventsService } from '../console-events';
import { AlarmsOutboxService, OutboxRow } from './alarms-outbox.service';
import { ButtonTestsService } from './button-tests.service';
import { jobIds, OUTCOME_LABEL } from './alarms.constants';
import { IncidentNoticesService } from './incident-notices.service';
import { IncidentRow, toSummary } from './incident-row';
import { appendTimeline } from './incident-timeline';
import { postToPolice } from './police-relay.client';

interface EscalateItem {
  incidentId: string;
  level: number;
  jobId: string;
}

/**
 * The work driven from committed incidents: escalation timers, police relay, late-relay watch.
 * Every handler re-reads the incident, does nothing if its work is already done, and marks
 * its outbox row done in the same transaction as its effect; failures throw so BullMQ retries.
 */
@Injectable()
export class AlarmsJobs {
  private readonly cfg: AlarmsConfig;
  private readonly escalations: Batcher<EscalateItem, string>;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    private readonly queue: QueueService,
    private readonly events: ConsoleEventsService,
    private readonly outbox: AlarmsOutboxService,
    private readonly buttonTests: ButtonTestsService,
    private readonly notices: IncidentNoticesService,
  ) {
    this.cfg = config.alarms;
    this.escalations = new Batcher((items) => this.escalateMany(items), { maxBatch: config.queue.batchMax, maxConcurrent: config.queue.batchConcurrency });
    queue.handle(JobName.AlarmEscalate, (p, meta) => this.escalate(p.incidentId, p.level, meta.jobId));
    queue.handle(JobName.AlarmPoliceRelay, (p, meta) => this.relay(p.incidentId, meta.attempt, p.real ?? false));
    queue.handle(JobName.AlarmRelayWatch, (p) => this.relayWatch(p.incidentId, p.real ?? false));
    queue.handle(JobName.AlarmPoliceWithdraw, (p, meta) => this.withdraw(p.incidentId, meta.attempt));
  }

  /**
   * Unacknowledged after the configured delay: record the level (timeline, console event) and, in
   * the same transaction, hand the escalation to whoever tells people — a NotifyEscalation job
   * through the outbox (src/modules/notifications handles it and marks it done). The timeline says
   * only what happened here; who was told, how, and whether it arrived, the notifications add.
   * Escalations falling due together (a burst of alarms) are folded into one transaction (Batcher:
   * queue.batchMax, queue.batchConcurrency) — one lock, update, timeline, event and outbox statement
   * for all of them, not one transaction each queueing for connections.
   */
  /** A drill (演练) does not escalate: its timers do nothing; turned real, it gets timers of its own (jobIds.realEscalation). */
  escalate(incidentId: string, level: number, jobId = jobIds.escalation(incidentId, level)): Promise<string> {
    return this.escalations.run({ incidentId, level, jobId });
  }

  private async escalateMany(items: EscalateItem[]): Promise<string[]> {
    let notice: OutboxRow[] = [];
    const out = await this.db.transaction(async (m) => {
      const ids = [...new Set(items.map((i) => i.incidentId))].sort();
      // Locked in id order: two batches never wait on each other in a cycle.
      const rows = (await m.query(`SELECT * FROM incidents WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, [ids])) as IncidentRow[];
      const byId = new Map(rows.map((r) => [r.id, r]));
      const want = new Map<string, number>();
      for (const it of items) want.set(it.incidentId, Math.max(want.get(it.incidentId) ?? 0, it.level));
      const ups = [...want]
        .map(([id, level]) => ({ row: byId.get(id), level }))
        .filter((u): u is { row: IncidentRow; level: number } => !!u.row && u.row.status === 'raised' && !u.row.drill && u.row.escalation_level < u.level);
      const from = new Map(ups.map((u) => [u.row.id, u.row.escalation_level]));
      const to = new Map(ups.map((u) => [u.row.id, u.level]));
      if (ups.length) {
        const [updated] = (await m.query(
          `UPDATE incidents i SET escalation_level = v.l, updated_at = now() FROM unnest($1::uuid[], $2::int[]) AS v(id, l) WHERE i.id = v.id RETURNING i.*`,
          [ups.map((u) => u.row.id), ups.map((u) => u.level)],
        )) as [IncidentRow[]];
        // Every level passed is escalated and told, not only the last: when timers run late (a worker down, Redis
        // back after an outage) the level-2 job may run before the level-1 one, which would then find nothing to
        // do — and the duty supervisor of level 1 would never hear of the alarm.
        const passed = updated.flatMap((up) => {
          const f = from.get(up.id) ?? 0;
          return Array.from({ length: up.escalation_level - f }, (_, i) => ({ up, level: f + 1 + i }));
        });
        await this.notices.appendTimeline(
          m,
          passed.map((p) => ({ incidentId: p.up.id, action: 'escalated', note: `超时未确认，升级至第 ${p.level} 级`, data: { level: p.level } })),
        );
        await this.events.append(
          m,
          passed.map((p) => ({ type: 'incident.escalated' as const, schoolId: p.up.school_id, payload: { ...toSummary(p.up), level: p.level } })),
        );
        notice = await this.outbox.insert(
          m,
          passed.map((p) => ({
            name: JobName.NotifyEscalation,
            jobId: jobIds.notice(p.up.id, p.level),
            payload: { incidentId: p.up.id, level: p.level },
            availableAt: new Date(),
          })),
        );
      }
      await this.outbox.markDone(
        m,
        items.map((i) => i.jobId),
      );
      return items.map((i) => {
        const t = to.get(i.incidentId);
        return t !== undefined && i.level > (from.get(i.incidentId) ?? 0) ? `escalated to ${t}` : 'skipped';
      });
    });
    this.outbox.kick(notice);
    return out;
  }

  /**
   * One delivery attempt to the police endpoint; throws on failure (BullMQ backs off and retries).
   * A drill goes out marked (`drill: true`, `drillLabel`) or not at all (alarms.drills.relay). A
   * drill turned real (`real`) is delivered again as real under its own key `<incident>-real`
   * (the platform deduplicates by key, so the drill's delivery would hide it).
   */
  async relay(incidentId: string, attempt: number, real = false): Promise<string> {
    const jobId = jobIds.relay(incidentId, real);
    const [row] = (await this.db.query(`SELECT * FROM incidents WHERE id = $1`, [incidentId])) as IncidentRow[];
    if (!row || row.relay_delivered_at || !this.cfg.policeRelay.url) {
      await this.outbox.markDone(this.db, [jobId]);
      return 'nothing to do';
    }
    if (row.drill && this.cfg.drills.relay === 'none') {
      await this.outbox.markDone(this.db, [jobId]);
      return 'drill not relayed';
    }
    // The drill's own delivery (key `<incident>`) after it was made real: the `-real` job delivers it, as
    // real; this one would send a real body under the drill's key (deduplicated away by the platform if
    // the drill went out) and, recorded as the delivery, make the `-real` job find nothing to do.
    if (!real && row.made_real_at) {
      await this.outbox.markDone(this.db, [jobId]);
      return 'made real: delivered by the real relay';
    }
    const body = {
      incidentId: row.id,
      drill: row.drill, // 演练: the receiver must not dispatch officers for a drill
      ...(row.drill ? { drillLabel: this.cfg.drills.relayLabel } : {}),
      ...(real ? { madeRealFromDrill: true } : {}),
      type: row.type,
      priority: row.priority,
      source: row.source,
      school: { id: row.school_id, name: row.school_name },
      location: row.location,
      pressedAt: new Date(row.first_press_at).toISOString(),
      pressCount: row.press_count,
      cameras: row.cameras.map((c) => ({ id: c.id, name: c.name, streamUrl: c.streamUrl })),
    };
    try {
      await postToPolice(this.cfg.policeRelay, real ? `${row.id}-real` : row.id, body);
    } catch (e) {
      await this.db.query(`UPDATE incidents SET relay_attempts = greatest(relay_attempts, $2) WHERE id = $1`, [incidentId, attempt]);
      throw e;
    }
    const closed = await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE incidents SET relay_delivered_at = now(), relay_attempts = greatest(relay_attempts, $2), updated_at = now()
         WHERE id = $1 AND relay_delivered_at IS NULL AND ($3::boolean OR made_real_at IS NULL) RETURNING *`,
        // A drill delivered while it was being made real (make-real cleared relay_delivered_at and committed
        // after the read above) is not the delivery of the real alarm: recording it would stop the `-real`
        // job, and the withdrawal would go out with the police told only of a drill (attack pass 12).
        [incidentId, attempt, real],
      )) as [IncidentRow[]];
      if (up) {
        const what = up.drill ? `（${this.cfg.drills.relayLabel}）` : '';
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relayed', `已推送公安联网平台${what}（第 ${attempt} 次尝试）`, { attempt, drill: up.drill });
        await this.events.append(m, { type: 'incident.updated', schoolId: up.school_id, payload: { ...toSummary(up), change: 'relayed' } });
        // "Networked with the police" is measured: the button's last delivery that succeeded (issue 11 §3).
        if (up.alarm_device_id) await this.buttonTests.relayed(m, up.alarm_device_id);
      }
      await this.outbox.markDone(m, [jobId]);
      return up?.status === 'cancelled' || up?.status === 'resolved';
    });
    // A withdrawal that found this alarm still pending waits out its backoff (1 s, 2 s, 4 s… up to minutes):
    // the police should hear of the withdrawal right after the alarm, not that much later. Asked of Redis only
    // when the incident is closed: the UPDATE above holds the row, so a cancel committing after it comes after
    // this delivery, and its withdrawal finds the alarm delivered on its first run. Best effort: the backoff
    // still runs it if Redis does not answer now.
    if (closed) await this.queue.promoteJob(JobName.AlarmPoliceWithdraw, jobIds.withdraw(incidentId)).catch(() => false);
    return 'delivered';
  }

  /**
   * Tells the police endpoint an alarm it was sent is withdrawn (cancelled by the school, resolved
   * as a false alarm, a drill or a test — WITHDRAWN_OUTCOMES): same signature and retries as the alarm, under its own key
   * `<incident>-withdraw` (body `withdrawn: true`, the status, outcome, reason and time). The alarm
   * goes first: while its delivery is still pending this throws and is retried; an alarm that was
   * never sent (no endpoint, a drill not relayed) has nothing to withdraw. Sent twice at worst (a run
   * here and one from BullMQ after an outage) under one key; recorded once. The attempt number on the
   * timeline counts the withdrawal requests actually sent (incidents.withdraw_attempts), not the job's
   * attempts — those include the runs that only found the alarm itself still pending.
   */
  async withdraw(incidentId: string, attempt: number): Promise<string> {
    const jobId = jobIds.withdraw(incidentId);
    // One statement, one snapshot: the relay marks its delivery and its outbox row done in one transaction,
    // so read apart a delivery committing between the two reads looked like 'never relayed' and the
    // withdrawal was dropped (attack pass 12).
    const [row] = (await this.db.query(
      `SELECT i.*, EXISTS (SELECT 1 FROM alarm_outbox WHERE job_id = ANY($2) AND done_at IS NULL) AS relay_pending
         FROM incidents i WHERE i.id = $1`,
      [incidentId, [jobIds.relay(incidentId), jobIds.relay(incidentId, true)]],
    )) as (IncidentRow & { relay_pending: boolean })[];
    if (!row || !this.cfg.policeRelay.url) {
      await this.outbox.markDone(this.db, [jobId]);
      return 'nothing to do';
    }
    if (!row.relay_delivered_at) {
      if (row.relay_pending) throw new Error(`incident ${incidentId}: the alarm is not delivered to the police yet; withdrawn after it`);
      await this.outbox.markDone(this.db, [jobId]);
      return 'never relayed';
    }
    const [[{ n: sent }]] = (await this.db.query(
      `UPDATE incidents SET withdraw_attempts = withdraw_attempts + 1 WHERE id = $1 RETURNING withdraw_attempts AS n`,
      [incidentId],
    )) as [[{ n: number }]];
    await postToPolice(this.cfg.policeRelay, `${row.id}-withdraw`, {
      incidentId: row.id,
      withdrawn: true,
      status: row.status,
      outcome: row.outcome,
      reason: row.cancel_reason ?? null,
      withdrawnAt: new Date(row.cancelled_at ?? row.resolved_at ?? Date.now()).toISOString(),
      school: { id: row.school_id, name: row.school_name },
    });
    await this.db.transaction(async (m) => {
      if ((await this.notices.lockOutboxJob(m, jobId)).done) return;
      const why = row.status === 'cancelled' ? '报警已撤销' : `处置结果为${OUTCOME_LABEL[row.outcome ?? ''] ?? row.outcome}`;
      await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relay_withdrawn', `已通知公安联网平台撤警：${why}（第 ${sent} 次尝试）`, {
        attempt: sent,
        jobAttempt: attempt,
      });
      await this.events.append(m, { type: 'incident.updated', schoolId: row.school_id, payload: { ...toSummary(row), change: 'relay_withdrawn' } });
      await this.outbox.markDone(m, [jobId]);
    });
    return 'withdrawn';
  }

  /**
   * Runs `lateAfterSeconds` after the press (the due time of its outbox row): not delivered by then →
   * operator-visible warning (not for a drill that is not to be relayed). Whatever order the jobs ran
   * in — after a Redis outage the relay may run before this — a delivery made after that due time is
   * late too, and is marked so with how late it was.
   */
  async relayWatch(incidentId: string, real = false): Promise<string> {
    const jobId = jobIds.relayWatch(incidentId, real);
    const s = this.cfg.policeRelay.lateAfterSeconds;
    return this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `WITH due AS (
           SELECT coalesce((SELECT available_at FROM alarm_outbox WHERE job_id = $3), i.first_press_at + make_interval(secs => $4)) AS at
           FROM incidents i WHERE i.id = $1)
         UPDATE incidents SET relay_late = true, updated_at = now()
         WHERE id = $1 AND relay_required AND NOT relay_late AND NOT (drill AND $2::boolean)
           AND (relay_delivered_at IS NULL OR relay_delivered_at > (SELECT at FROM due))
         RETURNING *, extract(epoch FROM relay_delivered_at - (SELECT at FROM due)) AS late_by`,
        [incidentId, this.cfg.drills.relay === 'none', jobId, s],
      )) as [(IncidentRow & { late_by: string | null })[]];
      if (up) {
        const lateBy = up.late_by === null ? null : Math.ceil(Number(up.late_by));
        const note = lateBy === null ? `推送公安联网平台超过 ${s} 秒仍未成功，正在重试` : `推送公安联网平台超过 ${s} 秒才成功（晚了 ${lateBy} 秒）`;
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relay_late', note, {
          attempts: up.relay_attempts,
          ...(lateBy === null ? {} : { deliveredLateBySeconds: lateBy }),
        });
        await this.events.append(m, { type: 'incident.relay_late', schoolId: up.school_id, payload: { ...toSummary(up), lateAfterSeconds: s } });
      }
      await this.outbox.markDone(m, [jobId]);
      return up ? 'late' : 'on time';
    });
  }
}
