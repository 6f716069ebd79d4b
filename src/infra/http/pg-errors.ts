import { HttpStatus } from '@nestjs/common';
import { DatabaseError } from 'pg';
import { QueryFailedError } from 'typeorm';
import { DomainError, ErrorCode, Errors } from './errors';

/** The fields of a Postgres error this mapping reads (pg's DatabaseError; TypeORM keeps it as driverError). */
interface PgFields {
  code?: string;
  table?: string;
  column?: string;
  constraint?: string;
  detail?: string;
}

/** Our own message per SQLSTATE of class 22 (data exception); the rest of the class gets the generic one. */
const DATA_MESSAGES: Record<string, string> = {
  '22001': 'A value is too long for its field',
  '22003': 'A number is out of range',
  '22007': 'A date or time has an invalid format',
  '22008': 'A date or time is out of range',
  '22021': 'Text contains a NUL character or bytes that are not valid UTF-8',
  '22P02': 'A value has the wrong format for its field',
  '22P05': 'Text contains a character that cannot be stored (NUL, or a lone UTF-16 surrogate)',
};

const camel = (s: string) => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const IDENT = /^[a-z_][a-z0-9_]*$/;

/**
 * The fields (entity property names) an error is about, from what Postgres names: the column,
 * else the key columns of a unique/foreign-key violation ("Key (a, b)=(…)": only the identifier
 * list before '=' is read, never the values), else a default constraint name
 * `<table>_<column>_key|fkey|check`. [] when none is known (a custom constraint name).
 */
function fieldsOf(pg: PgFields): string[] {
  if (pg.column) return [camel(pg.column)];
  const key = /^Key \(([^()]*)\)=/.exec(pg.detail ?? '');
  const cols = key?.[1].split(', ') ?? [];
  if (cols.length && cols.every((c) => IDENT.test(c))) return cols.map(camel);
  if (pg.constraint && pg.table && pg.constraint.startsWith(`${pg.table}_`)) {
    const col = /^([a-z0-9_]+?)_(key|fkey|check)$/.exec(pg.constraint.slice(pg.table.length + 1))?.[1];
    if (col) return [camel(col)];
  }
  return [];
}

/**
 * The one mapping from Postgres errors to API errors, used by the REST exception filter and the
 * console's socket actions alike. Only client-caused classes are mapped; anything else (lost
 * connection, timeout, a bug in our SQL) returns null and stays a logged 500.
 *
 * - 23505 unique violation (and 23P01 exclusion, 23000): 409 `CONFLICT.DUPLICATE` / `CONFLICT`
 * - 23503 foreign key, 23001 restrict: 409 `CONFLICT.REFERENCE`
 * - 23502 not null, 23514 check, and all of class 22 (data exception: 22001 too long, 22003 out of
 *   range, 22007/22008 bad date/time, 22021 NUL byte or invalid UTF-8, 22P02 bad format, 22P05
 *   untranslatable character…): 400 `VALIDATION_FAILED` with `details.fields`
 *
 * The answer never carries Postgres's message or detail (they quote stored values and server
 * internals): our own message, the constraint name and the field names only.
 */
export function fromPostgres(e: unknown): DomainError | null {
  const pg: PgFields | null = e instanceof QueryFailedError ? (e.driverError as PgFields) : e instanceof DatabaseError ? e : null;
  const code = pg?.code;
  if (!pg || typeof code !== 'string') return null;
  const fields = fieldsOf(pg);
  const constraint = pg.constraint;
  const invalid = (message: string, reason = message) =>
    new DomainError(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, message, { fields: fields.map((field) => ({ field, reason })), constraint });
  if (code.startsWith('22')) return invalid(DATA_MESSAGES[code] ?? 'A value is not valid for its field');
  switch (code) {
    case '23502':
      return invalid('A required value is missing', 'is required');
    case '23514':
      return invalid('A value is not allowed by a rule of its record', 'is not allowed');
    case '23505':
      return Errors.conflict(ErrorCode.CONFLICT.DUPLICATE, 'A record with this value already exists', { constraint, fields });
    case '23503':
    case '23001':
      return Errors.conflict(ErrorCode.CONFLICT.REFERENCE, 'Referenced by or referencing another record', { constraint, fields });
    default:
      return code.startsWith('23')
        ? new DomainError(HttpStatus.CONFLICT, ErrorCode.HTTP.CONFLICT, 'Conflicts with another record', { constraint, fields })
        : null;
  }
}
