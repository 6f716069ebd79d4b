import { HttpStatus } from '@nestjs/common';
import { ErrorCode, NotFoundCode } from './error-codes';

export { ErrorCode } from './error-codes';

export interface FieldError {
  field: string;
  /** Row number (1-based, header = row 1) when the error comes from an imported file. */
  row?: number;
  reason: string;
}

/**
 * A failure the caller can act on. `code` is stable (clients and tests match on it) and comes
 * from the catalogue (error-codes.ts);
 * `message` is for people. The global filter turns it into
 * `{ error: { code, message, requestId, details? } }` with `status`.
 */
export class DomainError extends Error {
  constructor(
    public readonly status: HttpStatus,
    public readonly code: ErrorCode,
    message: string,
    public readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export const Errors = {
  validation: (fields: FieldError[], message = 'Request is invalid') =>
    new DomainError(HttpStatus.BAD_REQUEST, ErrorCode.VALIDATION_FAILED, message, { fields }),
  badRequest: (code: ErrorCode, message: string, details?: Record<string, unknown>) => new DomainError(HttpStatus.BAD_REQUEST, code, message, details),
  unauthorized: (code: ErrorCode = ErrorCode.AUTH.UNAUTHENTICATED, message = 'Authentication required') =>
    new DomainError(HttpStatus.UNAUTHORIZED, code, message),
  forbidden: (code: ErrorCode = ErrorCode.AUTH.FORBIDDEN, message = 'Not allowed') => new DomainError(HttpStatus.FORBIDDEN, code, message),
  outOfScope: () => new DomainError(HttpStatus.FORBIDDEN, ErrorCode.AUTH.OUT_OF_SCOPE, 'This resource belongs to another school'),
  /** 404 `<ENTITY>.NOT_FOUND`, with the message "<entity> <id> not found". */
  notFound: (code: NotFoundCode, id?: string) =>
    new DomainError(HttpStatus.NOT_FOUND, code, `${code.slice(0, -'.NOT_FOUND'.length).toLowerCase()} ${id ?? ''} not found`.replace(/\s+/g, ' ').trim()),
  conflict: (code: ErrorCode, message: string, details?: Record<string, unknown>) => new DomainError(HttpStatus.CONFLICT, code, message, details),
  gone: (code: ErrorCode, message: string) => new DomainError(HttpStatus.GONE, code, message),
  tooMany: (code: ErrorCode, message: string, retryAfterSeconds: number) => new DomainError(HttpStatus.TOO_MANY_REQUESTS, code, message, { retryAfterSeconds }),
  payloadTooLarge: (message: string) => new DomainError(HttpStatus.PAYLOAD_TOO_LARGE, ErrorCode.PAYLOAD_TOO_LARGE, message),
};

/** Characters of a caller's input an error may quote back (a value, a column name, a library's message). */
export const EXCERPT_CHARS = 200;
/** Items of a list an error may carry (row errors of an import…); the rest are counted, not listed. */
export const ERROR_LIST_ITEMS = 1000;
const MAX_DEPTH = 6;

/** A string cut to a short excerpt that says how long it was: never a whole 120 MB cell in an answer or a log. */
export function excerpt(s: string, max = EXCERPT_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars)`;
}

/**
 * An error's details made safe to send: every string cut to an excerpt, Dates as ISO strings, lists cut to
 * ERROR_LIST_ITEMS (with a `{ truncated: n }` marker), nesting cut at 6 levels. Applied by the
 * exception filter to every answer, so no route can echo unbounded input.
 */
export function boundDetails(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return excerpt(v);
  // A Date (a row's timestamptz) goes out as its ISO time, never as the `{}` JSON makes of it.
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (v === null || typeof v !== 'object') return v;
  if (depth >= MAX_DEPTH) return '…';
  if (Array.isArray(v)) {
    const out = v.slice(0, ERROR_LIST_ITEMS).map((x) => boundDetails(x, depth + 1));
    if (v.length > ERROR_LIST_ITEMS) out.push({ truncated: v.length - ERROR_LIST_ITEMS });
    return out;
  }
  const out: Record<string, unknown> = {};
  let keys = 0;
  for (const [k, x] of Object.entries(v)) {
    if (keys++ >= ERROR_LIST_ITEMS) break;
    out[excerpt(k)] = boundDetails(x, depth + 1);
  }
  return out;
}
