import { randomBytes } from 'node:crypto';
import { DataSource, EntityManager, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { AppConfig } from '../../config/config';
import { Errors, FieldError } from '../../infra/http/errors';
import type { Page } from '../../infra/http/pagination';
import type { AuditService } from '../audit-log/audit.service';
import type { AuthUser, UserRole } from '../auth/roles';
import { ALL_ROLES } from '../auth/roles';
import { assertSchoolScope, effectiveSchoolFilter, scopedSchoolId } from '../auth/scope';

type Ctor<T = unknown> = new (...args: never[]) => T;
type Where = (value: unknown) => { sql: string; params?: Record<string, unknown> };

/**
 * Everything that differs between registry resources (schools, cameras, guards…). One generic
 * service and one controller factory serve them all, so scoping, validation of references,
 * audit and pagination are written once.
 */
export interface ResourceDef<E extends ObjectLiteral = ObjectLiteral> {
  /** Route segment under /api/v1 and OpenAPI tag. */
  path: string;
  /** Singular name used in audit entries and error codes. */
  name: string;
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
  /** Columns that identify a row for idempotent import (upsert). */
  naturalKey: (keyof E & string)[];
  /** Extra checks and derived fields before a write. */
  prepare?: (m: EntityManager, row: E, before: E | null) => Promise<FieldError[]>;
}

const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

/** Filter helpers shared by the definitions. */
export const where = {
  eq: (column: string, param: string): Where => (v) => ({ sql: `e.${column} = :${param}`, params: { [param]: v } }),
  viaSchool: (schoolColumn: string, param: string): Where => (v) => ({
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

  async list(user: AuthUser, query: Record<string, unknown>): Promise<Page<E>> {
    const limit = Math.min(Number(query.limit ?? this.config.registry.defaultPageSize), this.config.registry.maxPageSize);
    const offset = Number(query.offset ?? 0);
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
    const [items, total] = await qb.take(limit).skip(offset).getManyAndCount();
    return { items, total, limit, offset };
  }

  private applySort(qb: SelectQueryBuilder<E>, sort: string): void {
    const parts = sort.split(',').filter(Boolean);
    const bad = parts.map((p) => p.replace(/^-/, '')).filter((f) => !this.def.sortable.includes(f));
    if (bad.length) throw Errors.validation([{ field: 'sort', reason: `cannot sort by ${bad.join(', ')}; use one of ${this.def.sortable.join(', ')}` }]);
    parts.forEach((p, i) => {
      const desc = p.startsWith('-');
      const col = `e.${snake(p.replace(/^-/, ''))}`;
      if (i === 0) qb.orderBy(col, desc ? 'DESC' : 'ASC', desc ? 'NULLS LAST' : 'NULLS FIRST');
      else qb.addOrderBy(col, desc ? 'DESC' : 'ASC');
    });
    qb.addOrderBy('e.id', 'ASC'); // stable pages
  }

  async get(user: AuthUser, id: string): Promise<E> {
    const row = await this.db.getRepository(this.def.entity).findOneBy({ id } as never);
    if (!row) throw Errors.notFound(this.def.name, id);
    assertSchoolScope(user, this.schoolOf(row));
    return row;
  }

  private assertWriteScope(user: AuthUser, schoolId: string | null): void {
    if (scopedSchoolId(user) !== null && this.def.school === 'none') throw Errors.forbidden('AUTH.ROLE_FORBIDDEN', 'District-level records are managed by the control center');
    assertSchoolScope(user, schoolId);
  }

  /** Checks references and the definition's own rules; throws one 400 listing every problem. */
  async validateRow(m: EntityManager, row: E, before: E | null): Promise<FieldError[]> {
    const problems: FieldError[] = [];
    for (const [prop, table] of Object.entries(this.def.refs)) {
      const value = row[prop];
      if (value === null || value === undefined || (before && before[prop] === value)) continue;
      const [found] = await m.query(`SELECT 1 FROM ${table} WHERE id = $1`, [value]);
      if (!found) problems.push({ field: prop, reason: `no such ${table.replace(/_/g, ' ').replace(/s$/, '')}` });
    }
    if (this.def.prepare) problems.push(...(await this.def.prepare(m, row, before)));
    return problems;
  }

  async create(user: AuthUser, dto: Partial<E>): Promise<E> {
    return this.db.transaction(async (m) => {
      const row = m.getRepository(this.def.entity).create(dto as E);
      this.assertWriteScope(user, this.schoolOf(row));
      const problems = await this.validateRow(m, row, null);
      if (problems.length) throw Errors.validation(problems);
      await this.assertNaturalKeyFree(m, row);
      const saved = await m.save(row);
      await this.audit.record(m, { action: 'create', entity: this.def.name, entityId: saved.id, schoolId: this.schoolOf(saved), after: saved });
      return saved;
    });
  }

  async update(user: AuthUser, id: string, dto: Partial<E>): Promise<E> {
    return this.db.transaction(async (m) => {
      const before = await m.getRepository(this.def.entity).findOne({ where: { id } as never, lock: { mode: 'pessimistic_write' } });
      if (!before) throw Errors.notFound(this.def.name, id);
      this.assertWriteScope(user, this.schoolOf(before));
      const row = m.getRepository(this.def.entity).merge(m.getRepository(this.def.entity).create({ ...before }), dto as E);
      this.assertWriteScope(user, this.schoolOf(row)); // moving a row to another school needs scope there too
      const problems = await this.validateRow(m, row, before);
      if (problems.length) throw Errors.validation(problems);
      await this.assertNaturalKeyFree(m, row);
      const saved = await m.save(row);
      await this.audit.record(m, { action: 'update', entity: this.def.name, entityId: id, schoolId: this.schoolOf(saved), before, after: saved });
      return saved;
    });
  }

  async remove(user: AuthUser, id: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const before = await m.getRepository(this.def.entity).findOne({ where: { id } as never, lock: { mode: 'pessimistic_write' } });
      if (!before) throw Errors.notFound(this.def.name, id);
      this.assertWriteScope(user, this.schoolOf(before));
      await m.delete(this.def.entity, { id } as never);
      await this.audit.record(m, { action: 'delete', entity: this.def.name, entityId: id, schoolId: this.schoolOf(before), before });
    });
  }

  /** A friendly 409 naming the key, instead of a bare unique-violation. */
  private async assertNaturalKeyFree(m: EntityManager, row: E): Promise<void> {
    const cond = this.def.naturalKey.map((k, i) => `${snake(k)} = $${i + 1}`).join(' AND ');
    const params = this.def.naturalKey.map((k) => row[k]);
    const [clash] = await m.query(`SELECT id FROM ${this.def.table} WHERE ${cond} AND id IS DISTINCT FROM $${params.length + 1}`, [...params, row.id ?? null]);
    if (clash)
      throw Errors.conflict(`${this.def.name.toUpperCase()}.DUPLICATE`, `A ${this.def.name} with this ${this.def.naturalKey.join(' + ')} already exists`, {
        fields: this.def.naturalKey,
        existingId: clash.id,
      });
  }

  /**
   * Import: insert or update each row by its natural key, in the caller's transaction.
   * Returns the counts; problems found per row are returned, not thrown, so the caller can
   * report every bad row and roll back.
   */
  async upsertRows(
    m: EntityManager,
    rows: { line: number; data: Partial<E> }[],
  ): Promise<{ created: number; updated: number; unchanged: number; problems: FieldError[] }> {
    let created = 0;
    let updated = 0;
    let unchanged = 0;
    const problems: FieldError[] = [];
    const repo = m.getRepository(this.def.entity);
    const audits: Parameters<AuditService['record']>[1] = [];
    for (const { line, data } of rows) {
      const key = Object.fromEntries(this.def.naturalKey.map((k) => [k, data[k]]));
      const before = await repo.findOneBy(key as never);
      const row = before ? repo.merge(repo.create({ ...before }), data as E) : repo.create(data as E);
      const rowProblems = await this.validateRow(m, row, before);
      if (rowProblems.length) {
        problems.push(...rowProblems.map((p) => ({ ...p, row: line })));
        continue;
      }
      if (before && !changed(before, row)) {
        unchanged++;
        continue;
      }
      const saved = await repo.save(row);
      audits.push({ action: before ? 'import_update' : 'import_create', entity: this.def.name, entityId: saved.id, schoolId: this.schoolOf(saved), before, after: saved });
      if (before) updated++;
      else created++;
    }
    if (problems.length === 0) await this.audit.record(m, audits);
    return { created, updated, unchanged, problems };
  }
}

function changed(a: ObjectLiteral, b: ObjectLiteral): boolean {
  for (const k of Object.keys(b)) {
    if (k === 'updatedAt' || k === 'createdAt') continue;
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return true;
  }
  return false;
}
