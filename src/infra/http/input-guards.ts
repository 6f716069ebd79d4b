import type { NextFunction, Request, Response } from 'express';
import { malformedInput } from '../observability/metrics';
import { DomainError, ErrorCode, Errors, FieldError } from './errors';

declare global {
  interface String {
    /** ES2024 (Node 20 has it; the compiler's lib is ES2023). */
    isWellFormed(): boolean;
  }
}

/**
 * Input refused at the edge, before validation, services or Postgres see it:
 * - JSON bodies nested too deep or with too many keys (a 20,000-level body overflows the stack
 *   of class-transformer; a million keys costs seconds of validation);
 * - bodies that are not JSON (form posts are how a foreign site logs a browser in), except the
 *   multipart uploads of the import routes;
 * - text that is not well-formed: NUL (Postgres refuses it in text, 22021) and lone UTF-16
 *   surrogates (the pg driver silently stores them as U+FFFD, so they must never reach it).
 * Each answer is a 4xx in the common error shape; the same text check serves the console socket.
 */

export interface JsonLimits {
  /** Deepest nesting of objects and arrays (http.jsonMaxDepth). */
  maxDepth: number;
  /** Most object members in one body, counted over all levels (http.jsonMaxKeys). */
  maxKeys: number;
  /**
   * Most members of any one object (http.jsonMaxObjectKeys). class-transformer's plainToInstance
   * slows down quadratically with one object's member count: a 484 KB login body whose unknown
   * `extra` object had 45,000 keys (under jsonMaxKeys) held the event loop 12.5 s before its 400,
   * unauthenticated (attack pass 9 #1). Arrays of many small objects (heartbeat batches) stay fine.
   */
  maxObjectKeys: number;
}

const OPEN_OBJ = 0x7b;
const OPEN_ARR = 0x5b;
const CLOSE_OBJ = 0x7d;
const CLOSE_ARR = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;

/**
 * One linear pass over the raw UTF-8 bytes (structural characters are ASCII, never part of a
 * multi-byte sequence): the depth and member count of the JSON text, stopping at the first
 * limit passed. Malformed JSON is left to JSON.parse.
 */
export function jsonShapeProblem(body: Buffer, limits: JsonLimits): string | null {
  let depth = 0;
  let keys = 0;
  let inString = false;
  // Members so far of each open object (null for an open array), innermost last.
  const open: (number | null)[] = [];
  for (let i = 0; i < body.length; i++) {
    const b = body[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJ || b === OPEN_ARR) {
      if (++depth > limits.maxDepth) return `nested deeper than ${limits.maxDepth} levels`;
      open.push(b === OPEN_OBJ ? 0 : null);
    } else if (b === CLOSE_OBJ || b === CLOSE_ARR) {
      depth--;
      open.pop();
    } else if (b === COLON) {
      if (++keys > limits.maxKeys) return `more than ${limits.maxKeys} keys`;
      const top = open.length - 1;
      if (top >= 0 && open[top] !== null && (open[top] = open[top]! + 1) > limits.maxObjectKeys) return `an object with more than ${limits.maxObjectKeys} keys`;
    }
  }
  return null;
}

/** An error body-parser passes on with our status and type (see bodyErrorHandler in bootstrap.ts). */
class BodyRefused extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** body-parser's `verify` hook for json(): UTF-8 only (RFC 8259 §8.1), then depth and key limits. */
export function jsonVerifier(limits: JsonLimits) {
  return (_req: unknown, _res: unknown, body: Buffer, encoding: string): void => {
    if (encoding.toLowerCase() !== 'utf-8') throw new BodyRefused(415, 'charset.unsupported', `JSON must be UTF-8 (got ${encoding})`);
    const problem = jsonShapeProblem(body, limits);
    if (problem) throw new BodyRefused(400, 'entity.too.complex', `Request body is too complex: ${problem}`);
  };
}

/** The body-parser errors answered as themselves: [status, code] by error type. */
export const BODY_ERRORS: Record<string, ErrorCode> = {
  'entity.too.complex': ErrorCode.BODY_TOO_COMPLEX,
  'charset.unsupported': ErrorCode.HTTP.UNSUPPORTED_MEDIA_TYPE,
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * JSON APIs take JSON only: a request with a body of another type is a 415, so a cross-site
 * form (urlencoded, multipart, text/plain) never reaches a route. `uploads` matches the paths
 * that take a multipart file instead.
 */
export function jsonOnly(uploads: RegExp) {
  return (req: Request, _res: Response, next: NextFunction): void => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (!BODY_METHODS.has(req.method) || !hasBody) return next();
    if (req.is(['application/json', '+json'])) return next();
    if (req.is('multipart/form-data') && uploads.test(req.path)) return next();
    malformedInput.inc({ source: 'http', reason: 'content_type' });
    next(
      new DomainError(
        415,
        ErrorCode.HTTP.UNSUPPORTED_MEDIA_TYPE,
        `Content-Type ${req.headers['content-type'] ?? '(none)'} is not accepted here: send application/json`,
      ),
    );
  };
}

/** The message of every refusal of ill-formed text (REST and socket answer alike). */
export const ILL_FORMED_TEXT = 'Text is not valid: NUL characters and lone surrogates are not accepted';

/** Why a string cannot be stored as text, or null: NUL, or a lone UTF-16 surrogate. */
export function textProblem(s: string): string | null {
  if (s.includes('\u0000')) return 'contains a NUL character';
  if (!s.isWellFormed()) return 'contains a lone UTF-16 surrogate (not valid Unicode text)';
  return null;
}

/** A key as it may be shown in an error (the bad characters spelled out). */
const printable = (key: string) => key.replaceAll('\u0000', '\\0').replace(/[\ud800-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

/**
 * Every string (and object key) in a parsed value that is not storable text, by field path
 * (`a.b.0.c`, the value's own name for a top-level string). Iterative: the depth is bounded by
 * the body limits, never by the stack.
 */
export function illFormedText(value: unknown, root: string): FieldError[] {
  const out: FieldError[] = [];
  const stack: [unknown, string][] = [[value, root]];
  while (stack.length && out.length < 50) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      const why = textProblem(v);
      if (why) out.push({ field: path || '(body)', reason: why });
    } else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const at = path ? `${path}.${printable(k)}` : printable(k);
        const why = textProblem(k);
        if (why) out.push({ field: at, reason: `name ${why}` });
        stack.push([child, at]);
      }
    }
  }
  return out;
}

/** Refuses a request whose body, query string or path carries text that is not storable (field-level 400). */
export function textGuard(req: Request, _res: Response, next: NextFunction): void {
  const fields = [...illFormedText(req.body, ''), ...illFormedText(req.query, '')];
  let path: string | null = null;
  try {
    path = decodeURIComponent(req.path);
  } catch {
    // a malformed escape is the router's to refuse
  }
  if (path !== null && textProblem(path)) fields.push({ field: '(path)', reason: textProblem(path)! });
  if (fields.length === 0) return next();
  malformedInput.inc({ source: 'http', reason: 'ill_formed_text' });
  next(Errors.validation(fields, ILL_FORMED_TEXT));
}
