import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { type AuthUser, shownName } from '../../infra/access/roles';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';
import { ACT_ROLES, assertRole } from './alarms.access';
import { OPEN_STATUSES } from './alarms.constants';

/** Handover roles: control-center staff read them (auditors too), operators hand over and take over. */
export const HANDOVER_READ_ROLES = ['operator', 'supervisor', 'admin', 'auditor'] as const;
/** Oldest open alarms and latest notes listed on a handover (the counts are complete). */
const LISTED = 50;

export interface HandoverSummary {
  /** Open alarms at the handover, and of those not yet acknowledged. */
  open: number;
  unacknowledged: number;
  /** The oldest open alarms (at most 50): what the next operator must look at first. */
  oldestOpen: { id: string; schoolName: string; location: string; type: string; priority: string; status: string; firstPressAt: string }[];
  /** Events of the shift [shiftFrom, at): alarms raised, resolved (false alarms among them), cancelled, escalations. */
  raised: number;
  resolved: number;
  falseAlarms: number;
  cancelled: number;
  escalations: number;
  /** Notes written on alarms during the shift: the count and the latest 50. */
  notes: number;
  latestNotes: { incidentId: string; at: string; actorName: string; note: string }[];
}

export interface HandoverView {
  id: string;
  fromUserId: string;
  fromName: string;
  shiftFrom: string;
  at: string;
  note: string;
  summary: HandoverSummary;
  acknowledgedBy: { id: string; name: string; at: string } | null;
}

interface Row {
  id: string;
  from_user_id: string;
  from_name: string;
  shift_from: Date;
  at: Date;
  note: string;
  summary: HandoverSummary;
  acknowledged_by_id: string | null;
  acknowledged_by_name: string | null;
  acknowledged_at: Date | null;
}

const view = (r: Row): HandoverView => ({
  id: r.id,
  fromUserId: r.from_user_id,
  fromName: r.from_name,
  shiftFrom: new Date(r.shift_from).toISOString(),
  at: new Date(r.at).toISOString(),
  note: r.note,
  summary: r.summary,
  acknowledgedBy: r.acknowledged_at ? { id: r.acknowledged_by_id!, name: r.acknowledged_by_name ?? '', at: new Date(r.acknowledged_at).toISOString() } : null,
});

/**
 * Shift handover at the control center (issue 13): the leaving operator records the open alarms,
 * the shift's events and notes and a note of their own; the next operator acknowledges it once
 * (not the one who handed over). Both steps are audited.
 */
@Injectable()
export class HandoversService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly audit: AuditService,
  ) {}

  async create(user: AuthUser, dto: { note?: string; since?: string }): Promise<HandoverView> {
    assertRole(user, ACT_ROLES);
    return this.db.transaction(async (m) => {
      const now = new Date();
      const [last] = (await m.query(`SELECT at FROM shift_handovers ORDER BY at DESC LIMIT 1`)) as { at: Date }[];
      const from = dto.since
        ? new Date(dto.since)
        : last
          ? new Date(last.at)
          : new Date(now.getTime() - this.config.alarms.handoverDefaultShiftHours * 3_600_000);
      if (from > now) throw Errors.validation([{ field: 'since', reason: 'must not be in the future' }]);
      const [c] = (await m.query(
        `SELECT count(*) FILTER (WHERE status = ANY($3))::int AS open,
                count(*) FILTER (WHERE status = 'raised')::int AS unacknowledged,
                count(*) FILTER (WHERE first_press_at >= $1 AND first_press_at < $2)::int AS raised,
                count(*) FILTER (WHERE resolved_at >= $1 AND resolved_at < $2)::int AS resolved,
                count(*) FILTER (WHERE resolved_at >= $1 AND resolved_at < $2 AND outcome = 'false_alarm')::int AS "falseAlarms",
                count(*) FILTER (WHERE cancelled_at >= $1 AND cancelled_at < $2)::int AS cancelled
           FROM incidents WHERE status = ANY($3) OR first_press_at >= $1 OR resolved_at >= $1 OR cancelled_at >= $1`,
        [from, now, OPEN_STATUSES],
      )) as Omit<HandoverSummary, 'oldestOpen' | 'latestNotes' | 'notes' | 'escalations'>[];
      const oldestOpen = await m.query(
        `SELECT id, school_name AS "schoolName", location, type, priority, status, first_press_at AS "firstPressAt"
           FROM incidents WHERE status = ANY($1) ORDER BY first_press_at, id LIMIT ${LISTED}`,
        [OPEN_STATUSES],
      );
      const [tl] = (await m.query(
        `SELECT count(*) FILTER (WHERE action = 'note' AND note <> '')::int AS notes, count(*) FILTER (WHERE action = 'escalated')::int AS escalations
           FROM incident_timeline WHERE at >= $1 AND at < $2`,
        [from, now],
      )) as { notes: number; escalations: number }[];
      const latestNotes = await m.query(
        `SELECT incident_id AS "incidentId", at, actor_name AS "actorName", note FROM incident_timeline
          WHERE action = 'note' AND note <> '' AND at >= $1 AND at < $2 ORDER BY at DESC, id DESC LIMIT ${LISTED}`,
        [from, now],
      );
      const summary: HandoverSummary = { ...c, ...tl, oldestOpen, latestNotes };
      const [row] = (await m.query(
        `INSERT INTO shift_handovers (from_user_id, from_name, shift_from, at, note, summary) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [user.id, shownName(user), from, now, (dto.note ?? '').trim(), JSON.stringify(summary)],
      )) as Row[];
      const v = view(row);
      await this.audit.record(m, {
        action: 'hand_over',
        entity: 'shift_handover',
        entityId: row.id,
        after: { ...v, summary: { open: c.open, raised: c.raised } },
      });
      return v;
    });
  }

  async list(user: AuthUser, q: { limit?: number; pending?: boolean }): Promise<{ items: HandoverView[] }> {
    assertRole(user, [...HANDOVER_READ_ROLES]);
    const rows = (await this.db.query(
      `SELECT * FROM shift_handovers WHERE ($1::boolean IS NOT TRUE OR acknowledged_at IS NULL) ORDER BY at DESC, id LIMIT $2`,
      [q.pending ?? null, q.limit ?? 20],
    )) as Row[];
    return { items: rows.map(view) };
  }

  async acknowledge(user: AuthUser, id: string): Promise<HandoverView> {
    assertRole(user, ACT_ROLES);
    return this.db.transaction(async (m) => {
      const [row] = (await m.query(`SELECT * FROM shift_handovers WHERE id = $1 FOR UPDATE`, [id])) as Row[];
      if (!row) throw Errors.notFound(ErrorCode.HANDOVER.NOT_FOUND, id);
      if (row.acknowledged_at) {
        const v = view(row);
        throw Errors.conflict(ErrorCode.HANDOVER.ALREADY_ACKNOWLEDGED, `Already taken over by ${v.acknowledgedBy!.name}`, {
          acknowledgedBy: { id: v.acknowledgedBy!.id, name: v.acknowledgedBy!.name },
          acknowledgedAt: v.acknowledgedBy!.at,
        });
      }
      if (row.from_user_id === user.id) throw Errors.conflict(ErrorCode.HANDOVER.OWN, 'The next operator takes over, not the one who handed over');
      await m.query(`UPDATE shift_handovers SET acknowledged_by_id = $2, acknowledged_by_name = $3, acknowledged_at = now() WHERE id = $1`, [
        id,
        user.id,
        shownName(user),
      ]);
      const [after] = (await m.query(`SELECT * FROM shift_handovers WHERE id = $1`, [id])) as Row[];
      const v = view(after);
      await this.audit.record(m, { action: 'take_over', entity: 'shift_handover', entityId: id, after: { acknowledgedBy: v.acknowledgedBy } });
      return v;
    });
  }
}
