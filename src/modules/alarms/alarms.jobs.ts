import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { AlarmsConfig } from '../../config/sections';
import { SYSTEM_ACTOR } from '../../infra/http/request-context';
import { JobName } from '../../infra/queue/queue.catalogue';
import { QueueService } from '../../infra/queue/queue.service';
import { ConsoleEventsService } from '../console-events';
import { AlarmsOutboxService, OutboxRow } from './alarms-outbox.service';
import { jobIds } from './alarms.constants';
import { IncidentRow, toSummary } from './incident-row';
import { appendTimeline } from './incident-timeline';
import { postToPolice } from './police-relay.client';

/**
 * The work driven from committed incidents: escalation timers, police relay, late-relay watch.
 * Every handler re-reads the incident, does nothing if its work is already done, and marks
 * its outbox row done in the same transaction as its effect; failures throw so BullMQ retries.
 */
@Injectable()
export class AlarmsJobs {
  private readonly cfg: AlarmsConfig;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
    queue: QueueService,
    private readonly events: ConsoleEventsService,
    private readonly outbox: AlarmsOutboxService,
  ) {
    this.cfg = config.alarms;
    queue.handle(JobName.AlarmEscalate, (p) => this.escalate(p.incidentId, p.level));
    queue.handle(JobName.AlarmPoliceRelay, (p, meta) => this.relay(p.incidentId, meta.attempt));
    queue.handle(JobName.AlarmRelayWatch, (p) => this.relayWatch(p.incidentId));
  }

  /**
   * Unacknowledged after the configured delay: record the level (timeline, console event) and, in
   * the same transaction, hand the escalation to whoever tells people — a NotifyEscalation job
   * through the outbox (src/modules/notifications handles it and marks it done). The timeline says
   * only what happened here; who was told, how, and whether it arrived, the notifications add.
   */
  async escalate(incidentId: string, level: number): Promise<string> {
    let notice: OutboxRow[] = [];
    const result = await this.db.transaction(async (m) => {
      const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1 FOR UPDATE`, [incidentId])) as IncidentRow[];
      let result = 'skipped';
      if (row && row.status === 'raised' && row.escalation_level < level) {
        const [[up]] = (await m.query(`UPDATE incidents SET escalation_level = $2, updated_at = now() WHERE id = $1 RETURNING *`, [incidentId, level])) as [
          IncidentRow[],
        ];
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'escalated', `超时未确认，升级至第 ${level} 级`, { level });
        await this.events.append(m, { type: 'incident.escalated', schoolId: up.school_id, payload: { ...toSummary(up), level } });
        notice = await this.outbox.insert(m, [
          { name: JobName.NotifyEscalation, jobId: jobIds.notice(incidentId, level), payload: { incidentId, level }, availableAt: new Date() },
        ]);
        result = `escalated to ${level}`;
      }
      await this.outbox.markDone(m, [jobIds.escalation(incidentId, level)]);
      return result;
    });
    this.outbox.kick(notice);
    return result;
  }

  /** One delivery attempt to the police endpoint; throws on failure (BullMQ backs off and retries). */
  async relay(incidentId: string, attempt: number): Promise<string> {
    const [row] = (await this.db.query(`SELECT * FROM incidents WHERE id = $1`, [incidentId])) as IncidentRow[];
    if (!row || row.relay_delivered_at || !this.cfg.policeRelay.url) {
      await this.outbox.markDone(this.db, [jobIds.relay(incidentId)]);
      return 'nothing to do';
    }
    const body = {
      incidentId: row.id,
      drill: row.drill, // 演练: the receiver must not dispatch officers for a drill
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
      await postToPolice(this.cfg.policeRelay, row.id, body);
    } catch (e) {
      await this.db.query(`UPDATE incidents SET relay_attempts = greatest(relay_attempts, $2) WHERE id = $1`, [incidentId, attempt]);
      throw e;
    }
    await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE incidents SET relay_delivered_at = now(), relay_attempts = greatest(relay_attempts, $2), updated_at = now()
         WHERE id = $1 AND relay_delivered_at IS NULL RETURNING *`,
        [incidentId, attempt],
      )) as [IncidentRow[]];
      if (up) {
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relayed', `已推送公安联网平台（第 ${attempt} 次尝试）`, { attempt });
        await this.events.append(m, { type: 'incident.updated', schoolId: up.school_id, payload: { ...toSummary(up), change: 'relayed' } });
      }
      await this.outbox.markDone(m, [jobIds.relay(incidentId)]);
    });
    return 'delivered';
  }

  /** Runs `lateAfterSeconds` after the press: undelivered by then → operator-visible warning. */
  async relayWatch(incidentId: string): Promise<string> {
    return this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE incidents SET relay_late = true, updated_at = now()
         WHERE id = $1 AND relay_required AND relay_delivered_at IS NULL AND NOT relay_late RETURNING *`,
        [incidentId],
      )) as [IncidentRow[]];
      if (up) {
        const s = this.cfg.policeRelay.lateAfterSeconds;
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relay_late', `推送公安联网平台超过 ${s} 秒仍未成功，正在重试`, { attempts: up.relay_attempts });
        await this.events.append(m, { type: 'incident.relay_late', schoolId: up.school_id, payload: { ...toSummary(up), lateAfterSeconds: s } });
      }
      await this.outbox.markDone(m, [jobIds.relayWatch(incidentId)]);
      return up ? 'late' : 'on time';
    });
  }
}
