import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { SqlParams } from '../../infra/database/sql-params';
import { CONSOLE_EVENT_VERSION, ConsoleEventInput } from './console-events.catalogue';

export const CONSOLE_EVENTS_CHANNEL = 'shouhu_console_events';

/**
 * Appends console events in the caller's transaction: an event exists exactly when the change
 * it describes committed. Each gets a monotonically increasing `seq`. NOTIFY is delivered by
 * Postgres only on commit, which wakes the delivery side (see ConsoleFeed in src/modules/console).
 */
@Injectable()
export class ConsoleEventsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly db: DataSource,
  ) {}

  async append(manager: EntityManager, events: ConsoleEventInput | ConsoleEventInput[]): Promise<number[]> {
    const list = Array.isArray(events) ? events : [events];
    if (list.length === 0) return [];
    // The transaction must own an xid before it draws a seq: ConsoleFeed decides that a missing
    // seq is a rolled-back one once every transaction older than a snapshot has ended, which
    // holds only if the seq's transaction was already visible (had an xid) to that snapshot.
    // Callers normally wrote something already; then this is a no-op round trip.
    await manager.query(`SELECT pg_current_xact_id()`);
    const rows: { seq: string }[] = await manager.query(
      `INSERT INTO console_events (type, v, school_id, payload)
       SELECT * FROM unnest($1::text[], $2::int[], $3::uuid[], $4::jsonb[])
       RETURNING seq`,
      [list.map((e) => e.type), list.map(() => CONSOLE_EVENT_VERSION), list.map((e) => e.schoolId), list.map((e) => JSON.stringify(e.payload))],
    );
    const seqs = rows.map((r) => Number(r.seq));
    await manager.query(`SELECT pg_notify($1, $2)`, [CONSOLE_EVENTS_CHANNEL, String(Math.max(...seqs))]);
    return seqs;
  }

  /**
   * The append as `INSERT … SELECT … FROM <from> RETURNING seq`, for a caller that folds it into
   * one statement with its change (a data-modifying CTE: same transaction, one round trip). One
   * event per row of `from`, which must be a CTE that *inserted* the change's row: reading it
   * makes Postgres write that row (and give the transaction its xid) before this insert draws
   * the seq — the order `append` gets from pg_current_xact_id(). `payloadSql`, a jsonb expression
   * over `from`, is merged into the payload (values only known inside the statement). Wake the
   * feed with `notifySql` over the returned seq.
   */
  insertFromSql(p: SqlParams, from: string, e: ConsoleEventInput, payloadSql?: string): string {
    const payload = `${p.add(JSON.stringify(e.payload))}::jsonb${payloadSql ? ` || ${payloadSql}` : ''}`;
    return `INSERT INTO console_events (type, v, school_id, payload)
       SELECT ${p.add(e.type)}, ${p.add(CONSOLE_EVENT_VERSION)}::int, ${p.add(e.schoolId)}::uuid, ${payload} FROM ${from}
       RETURNING seq`;
  }

  /** `pg_notify(…)` for a seq expression (delivered on commit, like `append`'s). */
  notifySql(p: SqlParams, seqExpr: string): string {
    return `pg_notify(${p.add(CONSOLE_EVENTS_CHANNEL)}, ${seqExpr}::text)`;
  }

  /**
   * Retention: events older than the replay window can never be replayed (a console away that
   * long gets a snapshot), so they go. Deleted in slices to keep each transaction short.
   */
  async prune(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.console.replayWindowSeconds * 1000);
    let total = 0;
    for (;;) {
      const [, n] = (await this.db.query(`DELETE FROM console_events WHERE seq IN (SELECT seq FROM console_events WHERE at < $1 ORDER BY seq LIMIT 5000)`, [
        cutoff,
      ])) as [unknown, number];
      total += n;
      if (n < 5000) return total;
    }
  }
}
