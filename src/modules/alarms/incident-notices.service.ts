import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { SYSTEM_ACTOR } from '../../infra/http/request-context';
import type { IncidentSummary } from '../console-events';
import { AlarmsOutboxService } from './alarms-outbox.service';
import { jobIds } from './alarms.constants';
import { IncidentRow, toSummary } from './incident-row';

/** A timeline entry written on behalf of the system by a module that reacts to incidents. */
export interface NoticeTimelineEntry {
  incidentId: string;
  /** e.g. 'notified', 'notify_failed' (the console labels known actions, shows others as notes). */
  action: string;
  note: string;
  data?: object | null;
}

/**
 * What the alarms module offers to modules that tell people about incidents (src/modules/notifications,
 * a higher layer: alarms never imports it). They learn of an escalation from the NotifyEscalation job
 * the escalate handler writes to the outbox; here they read the incident, write what they did onto its
 * timeline, and mark that job done — each in their own transaction, with their own change.
 */
@Injectable()
export class IncidentNoticesService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly outbox: AlarmsOutboxService,
  ) {}

  /** Incidents as the console shows them (missing ids are absent from the map). */
  async summaries(ids: string[], m: EntityManager | DataSource = this.db, opts: { lock?: boolean } = {}): Promise<Map<string, IncidentSummary>> {
    if (ids.length === 0) return new Map();
    // lock (in the caller's transaction): waits for a lifecycle change in flight to commit, so that an event
    // appended with this summary never carries a state older than one appended before it (a stale 'raised').
    const rows = (await m.query(`SELECT * FROM incidents WHERE id = ANY($1::uuid[])${opts.lock ? ' FOR SHARE' : ''}`, [ids])) as IncidentRow[];
    return new Map(rows.map((r) => [r.id, toSummary(r)]));
  }

  /** Appends system entries to incident timelines, in the caller's transaction (one statement). */
  async appendTimeline(m: EntityManager, entries: NoticeTimelineEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await m.query(
      `INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data)
       SELECT i, $2, NULL, $3, a, n, d FROM unnest($1::uuid[], $4::text[], $5::text[], $6::jsonb[]) AS t(i, a, n, d)`,
      [
        entries.map((e) => e.incidentId),
        SYSTEM_ACTOR.type,
        SYSTEM_ACTOR.name,
        entries.map((e) => e.action),
        entries.map((e) => e.note),
        entries.map((e) => (e.data ? JSON.stringify(e.data) : null)),
      ],
    );
  }

  /** Appends an entry a person made (an alarm photo…), in the caller's transaction. */
  async appendByUser(m: EntityManager, user: { id: string; name: string }, entry: NoticeTimelineEntry): Promise<void> {
    await m.query(`INSERT INTO incident_timeline (incident_id, actor_type, actor_id, actor_name, action, note, data) VALUES ($1, 'user', $2, $3, $4, $5, $6)`, [
      entry.incidentId,
      user.id,
      user.name,
      entry.action,
      entry.note,
      entry.data ? JSON.stringify(entry.data) : null,
    ]);
  }

  /**
   * For handlers of other jobs the alarms outbox carries (VideoIncidentEvidence): locks the job's
   * outbox row in the caller's transaction and says whether it is done already (a retried or
   * duplicated job then writes nothing again). A job without a row counts as done.
   */
  async lockOutboxJob(m: EntityManager, jobId: string): Promise<{ done: boolean }> {
    const rows: { done: boolean }[] = await m.query(`SELECT done_at IS NOT NULL AS done FROM alarm_outbox WHERE job_id = $1 FOR UPDATE`, [jobId]);
    return { done: rows[0]?.done ?? true };
  }

  /** Outbox jobs handled (call in the handler's transaction, with its effect). */
  async outboxJobsDone(m: EntityManager | DataSource, jobIds: string[]): Promise<void> {
    await this.outbox.markDone(m, jobIds);
  }

  /** The NotifyEscalation jobs of these incidents and levels are handled (call in the handler's transaction). */
  async noticesDone(m: EntityManager, notices: { incidentId: string; level: number }[]): Promise<void> {
    await this.outbox.markDone(
      m,
      notices.map((n) => jobIds.notice(n.incidentId, n.level)),
    );
  }
}
