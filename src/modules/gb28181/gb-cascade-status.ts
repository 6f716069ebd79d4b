import { DataSource } from 'typeorm';
import { CascadeEvent, cascadeEventOf } from './gb-cascade-catalog';

/** Ids skipped by the cursor are watched this long for a late commit (a transaction that drew its id before a later one committed). */
const GAP_WAIT_MS = 60_000;
/** A jump larger than this (a big rollback, a sequence reset) is not watched id by id. */
const GAP_MAX_JUMP = 1000;
/** Gaps watched at most; beyond, the oldest are forgotten. */
const GAPS_MAX = 10_000;

/**
 * Reads camera status transitions for the cascade's status pushes (issue 16 §7): device_transitions
 * rows after a cursor (its bigserial id), in id order. Ids are drawn at insert and committed in
 * any order, so an id skipped by a read may still commit: each skipped id is looked at again for
 * GAP_WAIT_MS. Starts at the newest row (what happened before is in the superior's next Catalog).
 * Reading the changes, never the whole camera table each round: a district may have a million cameras.
 */
export class TransitionCursor {
  private cursor: number | null = null;
  private readonly gaps = new Map<number, number>();

  constructor(private readonly db: DataSource) {}

  /** Camera ids with a transition since the last call (all of them, in pages of `page` rows). */
  async next(now: number, page = 5000): Promise<string[]> {
    if (this.cursor === null) {
      const [row] = (await this.db.query(`SELECT coalesce(max(id), 0)::bigint AS id FROM device_transitions`)) as { id: string }[];
      this.cursor = Number(row.id);
      return [];
    }
    for (const [id, at] of this.gaps) if (now - at > GAP_WAIT_MS) this.gaps.delete(id);
    const cameras = new Set<string>();
    for (;;) {
      const rows = (await this.db.query(
        `SELECT id, device_id AS "deviceId", kind FROM device_transitions WHERE id > $1 OR id = ANY($2::bigint[]) ORDER BY id LIMIT $3`,
        [this.cursor, [...this.gaps.keys()], page],
      )) as { id: string; deviceId: string; kind: string }[];
      let fresh = 0;
      for (const r of rows) {
        const id = Number(r.id);
        if (r.kind === 'camera') cameras.add(r.deviceId);
        if (this.gaps.delete(id) || id <= this.cursor) continue;
        fresh++;
        if (id - this.cursor > 1 && id - this.cursor <= GAP_MAX_JUMP) for (let g = this.cursor + 1; g < id; g++) this.gaps.set(g, now);
        this.cursor = id;
      }
      while (this.gaps.size > GAPS_MAX) this.gaps.delete(this.gaps.keys().next().value!);
      if (rows.length < page || fresh === 0) break;
    }
    return [...cameras];
  }
}

/** The current status of these cameras as Catalog Notify events, by channel id. */
export async function cameraEvents(db: DataSource, cameraIds: string[]): Promise<Map<string, CascadeEvent>> {
  if (cameraIds.length === 0) return new Map();
  const rows = (await db.query(`SELECT channel_id AS "channelId", status FROM cameras WHERE id = ANY($1::uuid[])`, [cameraIds])) as {
    channelId: string;
    status: string;
  }[];
  return new Map(rows.map((r) => [r.channelId, cascadeEventOf(r.status)]));
}
