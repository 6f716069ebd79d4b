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
import { ButtonTestsService } from './button-tests.service';
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
    private readonly buttonTests: ButtonTestsService,
  ) {
    this.cfg = config.alarms;
    queue.handle(JobName.AlarmEscalate, (p, meta) => this.escalate(p.incidentId, p.level, meta.jobId));
    queue.handle(JobName.AlarmPoliceRelay, (p, meta) => this.relay(p.incidentId, meta.attempt, p.real ?? false));
    queue.handle(JobName.AlarmRelayWatch, (p) => this.relayWatch(p.incidentId, p.real ?? false));
  }

  /**
   * Unacknowledged after the configured delay: record the level (timeline, console event) and, in
   * the same transaction, hand the escalation to whoever tells people — a NotifyEscalation job
   * through the outbox (src/modules/notifications handles it and marks it done). The timeline says
   * only what happened here; who was told, how, and whether it arrived, the notifications add.
   */
  /** A drill (演练) does not escalate: its timers do nothing; turned real, it gets timers of its own (jobIds.realEscalation). */
  async escalate(incidentId: string, level: number, jobId = jobIds.escalation(incidentId, level)): Promise<string> {
    let notice: OutboxRow[] = [];
    const result = await this.db.transaction(async (m) => {
      const [row] = (await m.query(`SELECT * FROM incidents WHERE id = $1 FOR UPDATE`, [incidentId])) as IncidentRow[];
      let result = 'skipped';
      if (row && row.status === 'raised' && !row.drill && row.escalation_level < level) {
        const [[up]] = (await m.query(`UPDATE incidents SET escalation_level = $2, updated_at = now() WHERE id = $1 RETURNING *`, [incidentId, level])) as [
          IncidentRow[],
        ];
        // Every level passed is escalated and told, not only the last: when timers run late (a worker down, Redis
        // back after an outage) the level-2 job may run before the level-1 one, which would then find nothing to
        // do — and the duty supervisor of level 1 would never hear of the alarm.
        const passed = Array.from({ length: level - row.escalation_level }, (_, i) => row.escalation_level + 1 + i);
        for (const l of passed) {
          await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'escalated', `超时未确认，升级至第 ${l} 级`, { level: l });
          await this.events.append(m, { type: 'incident.escalated', schoolId: up.school_id, payload: { ...toSummary(up), level: l } });
        }
        notice = await this.outbox.insert(
          m,
          passed.map((l) => ({
            name: JobName.NotifyEscalation,
            jobId: jobIds.notice(incidentId, l),
            payload: { incidentId, level: l },
            availableAt: new Date(),
          })),
        );
        result = `escalated to ${level}`;
      }
      await this.outbox.markDone(m, [jobId]);
      return result;
    });
    this.outbox.kick(notice);
    return result;
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
    await this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE incidents SET relay_delivered_at = now(), relay_attempts = greatest(relay_attempts, $2), updated_at = now()
         WHERE id = $1 AND relay_delivered_at IS NULL RETURNING *`,
        [incidentId, attempt],
      )) as [IncidentRow[]];
      if (up) {
        const what = up.drill ? `（${this.cfg.drills.relayLabel}）` : '';
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relayed', `已推送公安联网平台${what}（第 ${attempt} 次尝试）`, { attempt, drill: up.drill });
        await this.events.append(m, { type: 'incident.updated', schoolId: up.school_id, payload: { ...toSummary(up), change: 'relayed' } });
        // "Networked with the police" is measured: the button's last delivery that succeeded (issue 11 §3).
        if (up.alarm_device_id) await this.buttonTests.relayed(m, up.alarm_device_id);
      }
      await this.outbox.markDone(m, [jobId]);
    });
    return 'delivered';
  }

  /** Runs `lateAfterSeconds` after the press: undelivered by then → operator-visible warning (not for a drill that is not to be relayed). */
  async relayWatch(incidentId: string, real = false): Promise<string> {
    return this.db.transaction(async (m) => {
      const [[up]] = (await m.query(
        `UPDATE incidents SET relay_late = true, updated_at = now()
         WHERE id = $1 AND relay_required AND relay_delivered_at IS NULL AND NOT relay_late AND NOT (drill AND $2::boolean) RETURNING *`,
        [incidentId, this.cfg.drills.relay === 'none'],
      )) as [IncidentRow[]];
      if (up) {
        const s = this.cfg.policeRelay.lateAfterSeconds;
        await appendTimeline(m, incidentId, SYSTEM_ACTOR, 'relay_late', `推送公安联网平台超过 ${s} 秒仍未成功，正在重试`, { attempts: up.relay_attempts });
        await this.events.append(m, { type: 'incident.relay_late', schoolId: up.school_id, payload: { ...toSummary(up), lateAfterSeconds: s } });
      }
      await this.outbox.markDone(m, [jobIds.relayWatch(incidentId, real)]);
      return up ? 'late' : 'on time';
    });
  }
}
