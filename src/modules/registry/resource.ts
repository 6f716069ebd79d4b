import { randomBytes } from 'node:crypto';
import { DataSource, EntityManager, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { AppConfig } from '../../config/config';
import { HttpStatus } from '@nestjs/common';
import { DomainError, ErrorCode, Errors, FieldError } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import { pick } from '../../infra/http/views';
import type { AuditService } from '../audit-log';
import type { AuthUser, UserRole } from '../../infra/access/roles';
import { ALL_ROLES } from '../../infra/access/roles';
import { assertRecordInScope, assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../../infra/access/scope';
import { REQUEST_TURN_BUDGET_MS, TurnBudget } from '../../infra/lifecycle/turn-budget';

type Ctor<T = unknown> = new (...args: never[]) => T;
type Where = (value: unknown) => { sql: string; params?: Record<string, unknown> };

/** The registry resources: each has `<NAME>.NOT_FOUND` and `<NAME>.DUPLICATE` in the error catalogue. */
export type ResourceName = 'district' | 'zone' | 'group' | 'school' | 'camera' | 'alarm_device' | 'guard' | 'protection_post';
const codesOf = (name: ResourceName) => ErrorCode[name.toUpperCase() as Uppercase<ResourceName>];

/**
 * Everything that differs between registry resources (schools, cameras, guards…). One generic
 * service and one controller factory serve them all, so scoping, validation of references,
 * audit and pagination are written once.
 */
export interface ResourceDef<E extends ObjectLiteral = ObjectLiteral> {
  /** Route segment under /api/v1 and OpenAPI tag. */
  path: string;
  /** Singular name used in audit entries and error codes. */
  name: ResourceName;
  entity: Ctor<E>;
  table: string;
  createDto: Ctor;
  updateDto: Ctor;
  queryDto: Ctor;
  /** How a row belongs to a school: via its school_id, it is the school, or district-level. */
  school: 'column' | 'self' | 'none';
  readRoles: UserRole[];
  writeRoles: UserRole[];
  filters: Record<string, Where>;
  sortable: string[];
  defaultSort: string;
  search: string[];
  /** Properties that reference another table: checked before writing, for a field-level 400. */
  refs: Record<string, string>;
  /** The response allow-list: the properties a caller sees (infra/http/views.ts); nothing else of the row is ever sent. */
  view: readonly (keyof E & string)[];
  /** Columns that identify a row for idempotent import (upsert). */
  naturalKey: (keyof E & string)[];
  /** Extra checks and derived fields before a write. */
  prepare?: (m: EntityManager, row: E, before: E | null) => Promise<FieldError[]>;
  /** Fields set from who writes (create, update, import; `user` absent: the system, e.g. the seed). */
  stamp?: (row: E, before: E | null, user: AuthUser | undefined) => void;
}

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/** Filter helpers shared by the definitions. */
export const where = {
  eq:
    (column: string, param: string): Where =>
    (v) => ({ sql: `e.${column} = :${param}`, params: { [param]: v } }),
  viaSchool:
    (schoolColumn: string, param: string): Where =>
    (v) => ({
      sql: `e.school_id IN (SELECT id FROM schools WHERE ${schoolColumn} = :${param})`,
      params: { [param]: v },
    }),
};

export const schoolOwnedFilters = (): Record<string, Where> => ({
  schoolId: where.eq('school_id', 'schoolId'),
  zoneId: where.viaSchool('zone_id', 'zoneId'),
  groupId: where.viaSchool('group_id', 'groupId'),
});

export const CENTER_WRITE: UserRole[] = ['admin'];
export const SCHOOL_WRITE: UserRole[] = ['admin', 'school_security'];
/**
 * The bureau (区教委 control center: operator, supervisor, admin): who sets what is audited — a
 * protection post's windows and head count (attack F8d: a guard lowered their own post's head
 * count to pass) — and who verifies what schools declare (guards, attack F8e).
 */
export const BUREAU_WRITE: UserRole[] = ['admin', 'supervisor', 'operator'];
export { ALL_ROLES };

export const newQrToken = () => randomBytes(18).toString('base64url');

/** Generic CRUD over one registry table, with school scoping and the audit trail. */
export class ResourceService<E extends ObjectLiteral & { id: string }> {
  constructor(
    readonly def: ResourceDef<E>,
    private readonly db: DataSource,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
  ) {}

  private schoolOf(row: ObjectLiteral): string | null {
    return this.def.school === 'self' ? row.id : this.def.school === 'column' ? row.schoolId : null;
  }

  /** A row as callers see it: its allow-listed properties only. */
  view(row: E): Partial<E> {
    return pick(row, this.def.view) as Partial<E>;
  }

  async list(user: AuthUser, query: Record<string, unknown>): Promise<Page<Partial<E>>> {
    const limit = Math.min(Number(query.limit ?? this.config.registry.defaultPageSize), this.config.registry.maxPageSize);
    const offset = Number(query.offset ?? 0);
    // Plain rows (hydrating entities cost more CPU than the query on large pages), and the
    // count in parallel: a window count(*) would make Postgres read every row for each page.
    const qb = this.filtered(user, query).select([]);
    const shown = new Set<string>(this.def.view);
    for (const c of this.db.getMetadata(this.def.entity).columns) if (shown.has(c.propertyName)) qb.addSelect(`e.${c.databaseName}`, c.propertyName);
    const [rows, total] = await Promise.all([qb.limit(limit).offset(offset).getRawMany<E>(), this.filtered(user, query).getCount()]);
    return { items: rows, total, limit, offset };
  }

  /** Every row matching the list filters, unpaged (export). */
  async listAll(user: AuthUser, query: Record<string, unknown>): Promise<E[]> {
    return this.filtered(user, query).getMany();
  }

  /** The list query: school scope, the definition's filters, search and sort. */
  private filtered(user: AuthUser, query: Record<string, unknown>): SelectQueryBuilder<E> {
    const qb = this.db.getRepository(this.def.entity).createQueryBuilder('e');
    if (this.def.school !== 'none') {
      const requested = this.def.school === 'self' ? undefined : (query.schoolId as string | undefined);
      const school = effectiveSchoolFilter(user, requested);
      if (school) qb.andWhere(this.def.school === 'self' ? 'e.id = :scopeSchool' : 'e.school_id = :scopeSchool', { scopeSchool: school });
    }
    for (const [prop, filter] of Object.entries(this.def.filters)) {
      if (query[prop] === undefined || prop === 'schoolId') continue;
      const { sql, params } = filter(query[prop]);
      qb.andWhere(sql, params);
    }
    if (typeof query.q === 'string' && query.q.trim() && this.def.search.length) {
      const like = `%${query.q.trim().replace(/[\\%_]/g, (c) => '\\' + c)}%`;
      qb.andWhere(`(${this.def.search.map((c) => `e.${c} ILIKE :like`).join(' OR ')})`, { like });
    }
    this.applySort(qb, (query.sort as string | undefined) ?? this.def.defaultSort);
    return qb;
  }

  private applySort(qb: SelectQueryBuilder<E>, sort: string): void {
    const parts = sort.split(',').filter(Boolean);
    const bad = parts.map((p) => p.replace(/^-/, '')).filter((f) => !this.def.sortable.includes(f));
    if (bad.length) throw Errors.validation([{ field: 'sort', reason: `cannot sort by ${bad.join(', ')}; use one of ${this.def.sortable.join(', ')}` }]);
    parts.forEach((p, i) => {
      const desc = p.startsWith('-');
      const col = `e.${snake(p.replace(/^-/, ''))}`;
      // Postgres's default null ordering, so plain btree indexes can serve the sort.
      if (i === 0) qb.orderBy(col, desc ? 'DESC' : 'ASC');
      else qb.addOrderBy(col, desc ? 'DESC' : 'ASC');
    });
    qb.addOrderBy('e.id', 'ASC'); // stable pages
  }

  async get(user: AuthUser, id: string): Promise<E> {
    const row = await this.db.getRepository(this.def.entity).findOneBy({ id } as never);
    if (!row) throw Errors.notFound(codesOf(this.def.name).NOT_FOUND, id);
    this.assertVisible(user, row);
    return row;
  }

  /** A record of another school is answered like a missing one (no existence oracle). */
  private assertVisible(user: AuthUser, row: E): void {
    assertRecordInScope(user, this.def.school === 'none' ? scopedSchoolId(user) : this.schoolOf(row), () =>
      Errors.notFound(codesOf(this.def.name).NOT_FOUND, row.id),
    );
  }

  /** Whether the user may write a record of this school (assertWriteScope without the throw). */
  private inWriteScope(user: AuthUser, schoolId: string | null): boolean {
    try {
      this.assertWriteScope(user, schoolId);
      return true;
    } catch {
      return false;
    }
  }

  private assertWriteScope(user: AuthUser, schoolId: string | null): void {
    if (scopedSchoolId(user) !== null && this.def.school === 'none')
      throw Errors.forbidden(ErrorCode.AUTH.ROLE_FORBIDDEN, 'District-level records are managed by the control center');
    assertSchoolScope(user, schoolId);
  }

  /** Checks references and the definition's own rules; throws one 400 listing every problem. */
  async validateRow(m: EntityManager, row: E, before: E | null): Promise<FieldError[]> {
    const [problems] = await this.missingRefs(m, [{ row, before }]);
    if (this.def.prepare) problems.push(...(await this.def.prepare(m, row, before)));
    return problems;
  }

  /** Reference checks for many rows at once: one query per referenced table, not per row. */
  private async missingRefs(m: EntityManager, rows: { row: E; before: E | null }[]): Promise<FieldError[][]> {
    const out = rows.map((): FieldError[] => []);
    for (const [prop, table] of Object.entries(this.def.refs)) {
      const pending = (r: { row: E; before: E | null }) => {
        const value = r.row[prop];
        return value !== null && value !== undefined && !(r.before && r.before[prop] === value);
      };
      const wanted = [...new Set(rows.filter(pending).map((r) => r.row[prop] as string))];
      if (wanted.length === 0) continue;
      const found = new Set((await m.query(`SELECT id FROM ${table} WHERE id = ANY($1::uuid[])`, [wanted])).map((r: { id: string }) => r.id));
      rows.forEach((r, i) => {
        if (pending(r) && !found.has(r.row[prop])) out[i].push({ field: prop, reason: `no such ${table.replace(/_/g, ' ').replace(/s$/, '')}` });
      });
    }
    return out;
  }

  async create(user: AuthUser, dto: Partial<E>): Promise<E> {
    return this.db.transaction(async (m) => {
      const row = m.getRepository(this.def.entity).create(dto as E);
      this.assertWriteScope(user, this.schoolOf(row));
      this.def.stamp?.(row, null, user);
      const problems = await this.validateRow(m, row, null);
      if (problems.length) throw Errors.validation(problems);
      await this.assertNaturalKeyFree(m, row, user);
      const saved = await m.save(row);
      await this.audit.record(m, { action: 'create', entity: this.def.name, entityId: saved.id, schoolId: this.schoolOf(saved), after: saved });
      return saved;
    });
  }

  async update(user: AuthUser, id: string, dto: Partial<E>): Promise<E> {
    return this.db.transaction(async (m) => {
      const before = await m.getRepository(this.def.entity).findOne({ where: { id } as never, lock: { mode: 'pessimistic_write' } });
      if (!before) throw Errors.notFound(codesOf(this.def.name).NOT_FOUND, id);
      this.assertVisible(user, before);
      this.assertWriteScope(user, this.schoolOf(before));
      const row = m.getRepository(this.def.entity).merge(m.getRepository(this.def.entity).create({ ...before }), dto as E);
      this.assertWriteScope(user, this.schoolOf(row)); // moving a row to another school needs scope there too
      this.def.stamp?.(row, before, user);
      const problems = await this.validateRow(m, row, before);
      if (problems.length) throw Errors.validation(problems);
      await this.assertNaturalKeyFree(m, row, user);
      const saved = await m.save(row);
      await this.audit.record(m, { action: 'update', entity: this.def.name, entityId: id, schoolId: this.schoolOf(saved), before, after: saved });
      return saved;
    });
  }

  async remove(user: AuthUser, id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const before = await m.getRepository(this.def.entity).findOne({ where: { id } as never, lock: { mode: 'pessimistic_write' } });
      if (!before) throw Errors.notFound(codesOf(this.def.name).NOT_FOUND, id);
      this.assertVisible(user, before);
      this.assertWriteScope(user, this.schoolOf(before));
      await m.delete(this.def.entity, { id } as never);
      await this.audit.record(m, { action: 'delete', entity: this.def.name, entityId: id, schoolId: this.schoolOf(before), before });
    });
  }

  /**
   * A friendly 409 naming the key, instead of a bare unique-violation. The existing record's id
   * is given only to a caller who may see that record: another school's staff learn that the
   * value is taken (a unique key cannot hide that), never which record holds it.
   */
  private async assertNaturalKeyFree(m: EntityManager, row: E, user: AuthUser): Promise<void> {
    const cond = this.def.naturalKey.map((k, i) => `${snake(k)} = $${i + 1}`).join(' AND ');
    const params = this.def.naturalKey.map((k) => row[k]);
    const school = this.def.school === 'column' ? 'school_id' : this.def.school === 'self' ? 'id' : 'NULL::uuid';
    const [clash] = await m.query(`SELECT id, ${school} AS school_id FROM ${this.def.table} WHERE ${cond} AND id IS DISTINCT FROM $${params.length + 1}`, [
      ...params,
      row.id ?? null,
    ]);
    if (!clash) return;
    const own = scopedSchoolId(user);
    const visible = own === null || this.def.school === 'none' || clash.school_id === own;
    throw Errors.conflict(codesOf(this.def.name).DUPLICATE, `A ${this.def.name} with this ${this.def.naturalKey.join(' + ')} already exists`, {
      fields: this.def.naturalKey,
      ...(visible ? { existingId: clash.id } : {}),
    });
  }

  /**
   * Import: insert or update each row by its natural key, in the caller's transaction.
   * Returns the counts; problems found per row are returned, not thrown, so the caller can
   * report every bad row and roll back. With `user`, every row (and the record it replaces)
   * must be inside the user's scope, or the whole call fails with a 403 naming the row.
   * Existing rows are fetched in one query and new rows inserted in batches: an import of
   * thousands of rows is a handful of statements plus one per updated row. `audit: false` (a dry
   * run that the caller rolls back) writes no audit records.
   */
  async upsertRows(
    m: EntityManager,
    rows: { line: number; data: Partial<E> }[],
    opts: { user?: AuthUser; audit?: boolean } = {},
  ): Promise<{ created: number; updated: number; unchanged: number; problems: FieldError[] }> {
    const problems: FieldError[] = [];
    const repo = m.getRepository(this.def.entity);
    const existing = await this.fetchByNaturalKey(
      m,
      rows.map((r) => r.data),
    );
    // Tens of thousands of rows (an import) are cut into short event-loop turns, here and below: each pass over
    // them took 100–300 ms of the loop at 50,000 rows, and alarms wait behind it (issue 12 §3).
    const budget = new TurnBudget(REQUEST_TURN_BUDGET_MS);
    const work: { line: number; before: E | null; row: E }[] = [];
    for (const { line, data } of rows) {
      await budget.tick();
      const before = existing.get(this.keyOf(data)) ?? null;
      const clean = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)) as E;
      const row = before ? repo.merge(repo.create({ ...before }), clean) : repo.create(clean);
      this.def.stamp?.(row, before, opts.user);
      work.push({ line, before, row });
    }
    // Rows whose natural key is held by a record outside the user's scope (another school's guard with this licence
    // number): a row error that says the key is taken — as a duplicate does — never a 403 that would confirm the
    // record exists and belongs to another school, nor which one.
    const taken = new Set<number>();
    if (opts.user) {
      for (const [i, { line, before, row }] of work.entries()) {
        await budget.tick();
        if (before && !this.inWriteScope(opts.user, this.schoolOf(before))) {
          taken.add(i);
          problems.push({ field: this.def.naturalKey[0], reason: '该编号已被登记，不能导入', row: line });
          continue;
        }
        try {
          this.assertWriteScope(opts.user, this.schoolOf(row));
        } catch (e) {
          // The row itself names a school (or district record) the user may not write: zh-CN here (English through the code's i18n).
          const code = (e as DomainError).code ?? ErrorCode.AUTH.OUT_OF_SCOPE;
          const why = code === ErrorCode.AUTH.ROLE_FORBIDDEN ? '区级数据由监控中心维护' : '只能导入本校的数据';
          throw new DomainError(HttpStatus.FORBIDDEN, code, `第 ${line} 行：${why}`, { row: line });
        }
      }
    }
    const refProblems = await this.missingRefs(m, work);
    const inserts: E[] = [];
    const updates: { before: E; row: E }[] = [];
    let unchanged = 0;
    for (const [i, { line, before, row }] of work.entries()) {
      if (taken.has(i)) continue; // said above
      await budget.tick();
      const rowProblems = [...refProblems[i], ...(this.def.prepare ? await this.def.prepare(m, row, before) : [])];
      if (rowProblems.length) problems.push(...rowProblems.map((p) => ({ ...p, row: line })));
      else if (!before) inserts.push(row);
      else if (changedKeys(before, row).length) updates.push({ before, row });
      else unchanged++;
    }
    if (problems.length) return { created: 0, updated: 0, unchanged: 0, problems };
    for (let i = 0; i < inserts.length; i += 500) {
      // InsertQueryBuilder writes the generated id and defaults back into the entities.
      await m
        .createQueryBuilder()
        .insert()
        .into(this.def.entity)
        .values(inserts.slice(i, i + 500))
        .execute();
    }
    for (const { before, row } of updates) {
      const patch = Object.fromEntries(changedKeys(before, row).map((k) => [k, row[k]]));
      await m
        .createQueryBuilder()
        .update(this.def.entity)
        .set(patch as never)
        .where('id = :id', { id: before.id })
        .execute();
    }
    // A dry run rolls back: its audit records would be written only to be thrown away — for 50,000 rows ~100 MB of
    // WAL that every alarm committed meanwhile must wait to flush behind (console p99 during a dry run, issue 12 §3).
    if (opts.audit === false) return { created: inserts.length, updated: updates.length, unchanged, problems };
    await this.audit.record(m, [
      ...inserts.map((row) => ({ action: 'import_create', entity: this.def.name, entityId: row.id, schoolId: this.schoolOf(row), after: row })),
      ...updates.map(({ before, row }) => ({
        action: 'import_update',
        entity: this.def.name,
        entityId: row.id,
        schoolId: this.schoolOf(row),
        before,
        after: row,
      })),
    ]);
    return { created: inserts.length, updated: updates.length, unchanged, problems };
  }

  private keyOf(row: ObjectLiteral): string {
    return JSON.stringify(this.def.naturalKey.map((k) => (row[k] === undefined || row[k] === null ? null : String(row[k]))));
  }

  /** Existing rows for the given natural keys, locked for the transaction, by keyOf(). */
  private async fetchByNaturalKey(m: EntityManager, rows: Partial<E>[]): Promise<Map<string, E>> {
    const out = new Map<string, E>();
    const keyed = rows.filter((r) => this.def.naturalKey.every((k) => typeof r[k] === 'string'));
    for (let i = 0; i < keyed.length; i += 5000) {
      const chunk = keyed.slice(i, i + 5000);
      const cols = this.def.naturalKey.map((k) => `e.${snake(k)}`).join(', ');
      const arrays = Object.fromEntries(this.def.naturalKey.map((k, j) => [`nk${j}`, chunk.map((r) => r[k] as string)]));
      const found = await m
        .getRepository(this.def.entity)
        .createQueryBuilder('e')
        .where(
          `(${cols}) IN (SELECT * FROM unnest(${Object.keys(arrays)
            .map((p) => `:${p}::text[]`)
            .join(', ')}))`,
          arrays,
        )
        .setLock('pessimistic_write')
        .getMany();
      for (const e of found) out.set(this.keyOf(e), e);
    }
    return out;
  }
}

const IGNORED = new Set(['id', 'createdAt', 'updatedAt']);

/** Properties whose values differ (deep, key-order-insensitive: jsonb does not keep key order). */
function changedKeys(a: ObjectLiteral, b: ObjectLiteral): string[] {
  return Object.keys(b).filter((k) => !IGNORED.has(k) && !sameValue(a[k], b[k]));
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a).filter((k) => (a as ObjectLiteral)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as ObjectLiteral)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue((a as ObjectLiteral)[k], (b as ObjectLiteral)[k]));
}
