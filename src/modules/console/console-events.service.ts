import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { CONSOLE_EVENT_VERSION, ConsoleEventInput } from './console-events';

export const CONSOLE_EVENTS_CHANNEL = 'shouhu_console_events';

/**
 * Appends console events in the caller's transaction: an event exists exactly when the change
 * it describes committed. Each gets a monotonically increasing `seq`. NOTIFY is delivered by
 * Postgres only on commit, which wakes the delivery side (see the console gateway).
 */
@Injectable()
export class ConsoleEventsService {
  async append(manager: EntityManager, events: ConsoleEventInput | ConsoleEventInput[]): Promise<number[]> {
    const list = Array.isArray(events) ? events : [events];
    if (list.length === 0) return [];
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
}
