import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import type { SqlParams } from '../../infra/database/sql-params';
import { currentContext, SYSTEM_ACTOR } from '../../infra/http/request-context';
import { AuditEntry } from './audit-entry.entity';
import { REQUEST_TURN_BUDGET_MS, TurnBudget } from '../../infra/lifecycle/turn-budget';

export interface AuditRecord {
  action: string; // e.g. 'create', 'update', 'delete', 'import', 'login'
  entity: string; // e.g. 'school', 'camera'
  entityId?: string | null;
  schoolId?: string | null;
  before?: object | null;
  after?: object | null;
}

/**
 * Keys whose values never reach the audit log, at any depth (a user's `{ credentials: { password } }`,
 * an import row, a channel's nested settings): matched on the key with case and `_`/`-` ignored, so
 * `password_hash`, `sipPassword`, `accessToken`, `qrToken`, `apiKey`, `privateKey` are all caught.
 */
const SECRET_KEY = /pass(word|wd)|secret|token|apikey|privatekey|credential/;
/** Deeper than this is replaced whole: the audit log is not a place for arbitrary trees. */
const SCRUB_MAX_DEPTH = 8;

function scrubValue(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  if (depth >= SCRUB_MAX_DEPTH) return '[too deep]';
  if (Array.isArray(v)) return v.map((x) => scrubValue(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k.toLowerCase().replace(/[_-]/g, '')) ? '[redacted]' : scrubValue(x, depth + 1);
  return out;
}

/** `value` with every secret-looking key's value replaced by '[redacted]', at every depth (exported for its unit test). */
export function scrub(value: object | null | undefined): Record<string, unknown> | null {
  if (!value) return null;
  return scrubValue(value, 0) as Record<string, unknown>;
}

/**
 * Who did what, when, from where, with before/after. Always written through the caller's
 * EntityManager so the entry commits (or rolls back) with the change itself.
 */
@Injectable()
export class AuditService {
  constructor(@InjectRepository(AuditEntry) private readonly repo: Repository<AuditEntry>) {}

  async record(manager: EntityManager, rec: AuditRecord | AuditRecord[]): Promise<void> {
    const recs = Array.isArray(rec) ? rec : [rec];
    if (recs.length === 0) return;
    const ctx = currentContext();
    const actor = ctx?.actor ?? SYSTEM_ACTOR;
    // An import's 50,000 records took ~230 ms of the event loop to scrub in one pass: cut into short turns.
    const budget = new TurnBudget(REQUEST_TURN_BUDGET_MS);
    const rows = [];
    for (const r of recs) {
      if (recs.length > 1) await budget.tick();
      rows.push({
        actorType: actor.type,
        actorId: actor.id,
        actorName: actor.name,
        ip: ctx?.ip ?? null,
        requestId: ctx?.requestId ?? null,
        action: r.action,
        entity: r.entity,
        entityId: r.entityId ?? null,
        schoolId: r.schoolId ?? null,
        before: scrub(r.before),
        after: scrub(r.after),
      });
    }
    // Chunked multi-row inserts: an import of thousands of rows stays a handful of statements.
    for (let i = 0; i < rows.length; i += 1000) await manager.insert(AuditEntry, rows.slice(i, i + 1000) as never);
  }

  /**
   * The entry as `INSERT … SELECT … FROM <from>`, for a caller that folds it into one statement
   * with its change (a data-modifying CTE; same transaction, one round trip). One entry per row
   * of `from`; `afterSql`, a jsonb expression over `from`, is merged into `after` (values only
   * known inside the statement).
   */
  insertFromSql(p: SqlParams, from: string, rec: AuditRecord, afterSql?: string): string {
    const ctx = currentContext();
    const actor = ctx?.actor ?? SYSTEM_ACTOR;
    const json = (v: object | null | undefined) => (v ? JSON.stringify(scrub(v)) : null); // SQL NULL, not jsonb 'null'
    const after = afterSql ? `coalesce(${p.add(json(rec.after))}::jsonb, '{}') || ${afterSql}` : `${p.add(json(rec.after))}::jsonb`;
    return `INSERT INTO audit_log (actor_type, actor_id, actor_name, ip, request_id, action, entity, entity_id, school_id, before, after)
       SELECT ${p.add(actor.type)}, ${p.add(actor.id)}::uuid, ${p.add(actor.name)}, ${p.add(ctx?.ip ?? null)}, ${p.add(ctx?.requestId ?? null)},
         ${p.add(rec.action)}, ${p.add(rec.entity)}, ${p.add(rec.entityId ?? null)}, ${p.add(rec.schoolId ?? null)}::uuid, ${p.add(json(rec.before))}::jsonb, ${after}
       FROM ${from}`;
  }

  async list(filter: { entity?: string; entityId?: string; actorId?: string; schoolId?: string; limit: number; beforeId?: string }): Promise<AuditEntry[]> {
    const qb = this.repo.createQueryBuilder('a').orderBy('a.id', 'DESC').limit(filter.limit);
    if (filter.entity) qb.andWhere('a.entity = :entity', { entity: filter.entity });
    if (filter.entityId) qb.andWhere('a.entity_id = :entityId', { entityId: filter.entityId });
    if (filter.actorId) qb.andWhere('a.actor_id = :actorId', { actorId: filter.actorId });
    if (filter.schoolId) qb.andWhere('a.school_id = :schoolId', { schoolId: filter.schoolId });
    if (filter.beforeId) qb.andWhere('a.id < :beforeId', { beforeId: filter.beforeId });
    return qb.getMany();
  }
}
