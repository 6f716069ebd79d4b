import { Inject, Injectable } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../../../config/config';
import { ErrorCode, Errors } from '../../../infra/http/errors';
import { flattenValidationErrors } from '../../../infra/http/validation';
import type { AuthUser } from '../../../infra/access/roles';
import type { ResourceService } from '../resource';
import { Column, columnOfField, Draft, findColumn, IMPORT_KINDS, ImportKind, Lookups } from './columns';
import { CellOut, cellProblem, DateKind, FileFormat, ParsePool, Row, Table } from '../../../infra/tabular/tabular';
import { REQUEST_TURN_BUDGET_MS, TurnBudget } from '../../../infra/lifecycle/turn-budget';

export interface RowError {
  row: number;
  column: string;
  reason: string;
}

export interface ImportResult {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  dryRun: boolean;
  /** How the file was read: its text encoding (CSV: detected, never guessed) or 'XLSX'. */
  encoding: Table['encoding'];
  /** Dry run: the header and first rows as decoded (import.previewRows), to check before writing. */
  preview?: { header: string[]; rows: { line: number; cells: string[] }[] };
}

export interface FileOut {
  body: Buffer;
  contentType: string;
  filename: string;
}

/** At most this many row errors in one answer; `errorCount` still gives the total. */
const MAX_REPORTED_ERRORS = 1000;

const CONTENT_TYPES: Record<FileFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
};

const LABELS: Record<ImportKind, string> = {
  schools: '学校',
  cameras: '摄像机',
  'alarm-devices': '一键报警',
  guards: '保安员',
  'protection-posts': '护学岗',
};

type Svc = ResourceService<{ id: string }>;

const DATE_KINDS: Record<DateKind, string> = { date: '日期', time: '时间', datetime: '日期时间' };

/** A date/time cell in a column that does not take that kind (Column.dates), or null. */
function dateProblem(c: Column, kind: DateKind, cell: string): string | null {
  if (c.dates?.includes(kind)) return null;
  const wants = c.dates?.length ? `该列应为${c.dates.map((k) => DATE_KINDS[k]).join('或')}，` : '';
  return `Excel 把该单元格存成了${DATE_KINDS[kind]}（${cell}）；${wants}如是 1-5、3-12 这样的内容被 Excel 自动当成了日期，请把该列设为“文本”格式后重新输入`;
}

/** Row errors of a file, in row order: the first MAX_REPORTED_ERRORS kept, all counted. */
class Reported {
  private readonly list: RowError[] = [];
  count = 0;

  add(errors: RowError[]): void {
    this.count += errors.length;
    for (const e of errors) if (this.list.length < MAX_REPORTED_ERRORS) this.list.push(e);
  }

  /** With `more` (any order) merged in by row: the first MAX_REPORTED_ERRORS of all, and the total. */
  merge(more: RowError[]): { list: RowError[]; count: number } {
    const sorted = more.sort((a, b) => a.row - b.row);
    const list: RowError[] = [];
    for (let i = 0, j = 0; list.length < MAX_REPORTED_ERRORS && (i < this.list.length || j < sorted.length);)
      list.push(j >= sorted.length || (i < this.list.length && this.list[i].row <= sorted[j].row) ? this.list[i++] : sorted[j++]);
    return { list, count: this.count + more.length };
  }
}

/**
 * Bulk import and export of registry lists. Rows are validated with the same DTOs as the CRUD
 * routes and written through ResourceService.upsertRows (reference checks, the definition's own
 * rules, audit), all in one transaction per file: any bad row and nothing is written.
 */
@Injectable()
export class ImportService {
  constructor(
    private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly parser: ParsePool,
  ) {}

  /** One import: at most import.maxConcurrent at once per process (503 IMPORT.BUSY), import.maxConcurrentPerUser per user (429 IMPORT.BUSY_FOR_USER). */
  importFile(kind: ImportKind, svc: Svc, user: AuthUser, file: Buffer, dryRun: boolean): Promise<ImportResult> {
    return this.parser.exclusive(user.id, 'import', () => this.importNow(kind, svc, user, file, dryRun));
  }

  private async importNow(kind: ImportKind, svc: Svc, user: AuthUser, file: Buffer, dryRun: boolean): Promise<ImportResult> {
    const table = await this.parser.read(file); // in a worker thread, within the row/column/size limits
    const columns = this.mapHeader(kind, table.header);
    const keyColumn = IMPORT_KINDS[kind].find((c) => c.field === svc.def.naturalKey[0]);

    const qr = this.db.createQueryRunner();
    await qr.connect();
    await qr.startTransaction();
    try {
      const m = qr.manager;
      const refs = await this.lookups(m, kind === 'alarm-devices');
      // Only the first MAX_REPORTED_ERRORS are kept (rows come in order, so they are the first by row), and rows with
      // errors counted as they go: a 50,000-row file of bad rows made 300,000 error objects, then sorted them and
      // counted distinct rows in one turn of the event loop (attack pass 8).
      const errors = new Reported();
      let badRows = 0;
      const good: { line: number; data: Draft }[] = [];
      const seen = new Map<string, number>();
      // Row validation (class-validator per row) yields by time: 250 rows a turn held the loop 250–335 ms on a loaded
      // machine and console p99 during a 50,000-row import was 139 ms.
      const budget = new TurnBudget(REQUEST_TURN_BUDGET_MS);
      for (const row of table.rows) {
        await budget.tick(); // let alarms through
        const { line } = row;
        const rowErrors = await this.readRow(kind, svc, columns, row, refs);
        const data = rowErrors.data;
        const key = svc.def.naturalKey.map((k) => data[k]);
        if (key.every((v) => typeof v === 'string' && v !== '')) {
          const first = seen.get(JSON.stringify(key));
          if (first !== undefined)
            rowErrors.errors.push({
              row: line,
              column: this.headerOf(kind, svc.def.naturalKey[0]),
              reason: `与第 ${first} 行重复（${key.join(' + ')}${keyColumn?.upperCase ? '，不区分大小写' : ''}）`,
            });
          else seen.set(JSON.stringify(key), line);
        }
        // School names are unique per district too: report a repeated name as a row error, not a 409.
        if (kind === 'schools' && typeof data.name === 'string') {
          const nameKey = JSON.stringify(['name', data.districtId, data.name]);
          const first = seen.get(nameKey);
          if (first !== undefined) rowErrors.errors.push({ row: line, column: 'name', reason: `学校名称与第 ${first} 行重复` });
          else seen.set(nameKey, line);
        }
        if (rowErrors.errors.length === 0) good.push({ line, data });
        else {
          badRows++;
          errors.add(rowErrors.errors);
        }
      }
      // The valid rows still go through the upsert so that reference and rule problems of
      // every row come back in the same report; nothing is committed unless all is well.
      const result = await svc.upsertRows(m, good as never, { user, audit: !dryRun });
      if (errors.count || result.problems.length) {
        await qr.rollbackTransaction();
        // Problems of the upsert are of rows without errors above: merged in by row.
        const later = result.problems.map((p) => ({ row: p.row ?? 0, column: columnOfField(IMPORT_KINDS[kind], p.field), reason: p.reason }));
        const rows = badRows + new Set(later.map((e) => e.row)).size;
        const { list, count } = errors.merge(later);
        throw Errors.badRequest(ErrorCode.IMPORT.INVALID_ROWS, `${rows} 行有错误，未导入任何数据`, { errors: list, errorCount: count });
      }
      if (dryRun) await qr.rollbackTransaction();
      else await qr.commitTransaction();
      const preview = dryRun
        ? { header: table.header, rows: table.rows.slice(0, this.config.import.previewRows).map(({ line, cells }) => ({ line, cells })) }
        : undefined;
      return {
        rows: table.rows.length,
        created: result.created,
        updated: result.updated,
        unchanged: result.unchanged,
        dryRun,
        encoding: table.encoding,
        preview,
      };
    } catch (e) {
      if (qr.isTransactionActive) await qr.rollbackTransaction();
      throw e;
    } finally {
      await qr.release();
    }
  }

  /** Header cells → columns; unknown, duplicate or missing required columns fail the file (row 1). */
  private mapHeader(kind: ImportKind, header: string[]): (Column | null)[] {
    const all = IMPORT_KINDS[kind] as readonly Column[];
    const errors: RowError[] = [];
    const used = new Set<Column>();
    const mapped = header.map((h) => {
      if (h === '') return null;
      const c = findColumn([...all], h);
      if (!c) errors.push({ row: 1, column: h, reason: `未知的列；可用的列：${all.map((x) => x.header).join(', ')}` });
      else if (used.has(c)) errors.push({ row: 1, column: h, reason: `重复的列（${c.header}）` });
      else used.add(c);
      return c && !c.readOnly ? c : null;
    });
    for (const c of all) if (c.required && !used.has(c)) errors.push({ row: 1, column: c.header, reason: `缺少必填列 ${c.header}（${c.aliases[0]}）` });
    if (errors.length) throw Errors.badRequest(ErrorCode.IMPORT.INVALID_HEADER, '表头有误，未导入任何数据', { errors, errorCount: errors.length });
    return mapped;
  }

  /** One row → the create DTO shape (references resolved), validated like a POST body. */
  private async readRow(kind: ImportKind, svc: Svc, columns: (Column | null)[], { line, cells, marks }: Row, refs: Lookups) {
    const data: Draft = {};
    const errors: RowError[] = [];
    cells.forEach((cell, i) => {
      const c = columns[i];
      const mark = marks?.[i];
      if (c === undefined) {
        if (cell !== '' || mark) errors.push({ row: line, column: `#${i + 1}`, reason: '该单元格没有表头' });
        return;
      }
      if (c === null) return; // a read-only or blank-headed column
      // An XLSX cell that is not text: a problem whatever the column (a formula without its result…), or a date/time the column may take.
      const reason = mark ? (cellProblem(mark, cell) ?? dateProblem(c, mark.kind as DateKind, cell)) : null;
      if (reason) return void errors.push({ row: line, column: c.header, reason });
      const bad = c.read?.(cell, data, refs);
      if (bad) errors.push({ row: line, column: c.header, reason: bad });
    });
    if (kind === 'schools' && data.districtId === undefined && refs.districts.size === 1) data.districtId = [...refs.districts.values()][0];
    const dto = plainToInstance(svc.def.createDto as new () => object, data);
    const failed = new Set(errors.map((e) => e.column));
    for (const f of flattenValidationErrors(await validate(dto, { whitelist: true, forbidNonWhitelisted: true }))) {
      const column = columnOfField(IMPORT_KINDS[kind] as unknown as Column[], f.field);
      if (!failed.has(column)) errors.push({ row: line, column, reason: f.reason });
    }
    return { data, errors };
  }

  private headerOf(kind: ImportKind, field: string): string {
    return columnOfField(IMPORT_KINDS[kind] as unknown as Column[], field);
  }

  /** Code ↔ id maps of the district structure (small), and of cameras when needed. */
  private async lookups(m: EntityManager, withCameras: boolean): Promise<Lookups> {
    const byId = new Map<string, string>();
    const load = async (table: string) => {
      const map = new Map<string, string>();
      for (const r of (await m.query(`SELECT id, code FROM ${table}`)) as { id: string; code: string }[]) {
        map.set(r.code, r.id);
        byId.set(r.id, r.code);
      }
      return map;
    };
    const cameras = new Map<string, string>();
    if (withCameras) {
      for (const r of (await m.query(`SELECT id, device_id, channel_id FROM cameras`)) as { id: string; device_id: string; channel_id: string }[]) {
        const key = `${r.device_id.trim()}:${r.channel_id.trim()}`;
        cameras.set(key, r.id);
        byId.set(r.id, key);
      }
    }
    return {
      districts: await load('districts'),
      zones: await load('school_zones'),
      groups: await load('education_groups'),
      schools: await load('schools'),
      cameras,
      byId,
    };
  }

  /** One export (query, then the file built in a worker thread): in the export lane of ParsePool.exclusive (not behind imports), per user with imports. */
  exportFile(kind: ImportKind, svc: Svc, user: AuthUser, query: Record<string, unknown>, format: FileFormat): Promise<FileOut> {
    return this.parser.exclusive(user.id, 'export', () => this.exportNow(kind, svc, user, query, format));
  }

  private async exportNow(kind: ImportKind, svc: Svc, user: AuthUser, query: Record<string, unknown>, format: FileFormat): Promise<FileOut> {
    const rows = await svc.listAll(user, query);
    const refs = await this.lookups(this.db.manager, kind === 'alarm-devices');
    const columns = IMPORT_KINDS[kind] as readonly Column[];
    const cells: CellOut[][] = rows.map((r) => columns.map((c) => c.write(r, refs)));
    return this.file(
      kind,
      format,
      '',
      columns.map((c) => c.header),
      cells,
    );
  }

  async template(kind: ImportKind, format: FileFormat): Promise<FileOut> {
    const columns = (IMPORT_KINDS[kind] as readonly Column[]).filter((c) => !c.readOnly);
    return this.file(
      kind,
      format,
      '模板',
      columns.map((c) => c.header),
      [],
      [['列', '中文名', '必填', '格式'], ...columns.map((c) => [c.header, c.aliases[0] ?? '', c.required ? '是' : '', c.hint ?? ''])],
    );
  }

  private async file(kind: ImportKind, format: FileFormat, suffix: string, header: string[], rows: CellOut[][], notes?: string[][]): Promise<FileOut> {
    const stamp = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Shanghai', dateStyle: 'short', timeStyle: 'short' })
      .format(new Date())
      .replace(/[-:]/g, '')
      .replace(' ', '-');
    const body = await this.parser.write(format, LABELS[kind], header, rows, notes);
    return { body, contentType: CONTENT_TYPES[format], filename: `${LABELS[kind]}${suffix}-${stamp}.${format}` };
  }
}
