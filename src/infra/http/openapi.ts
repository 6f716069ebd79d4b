import type { OpenAPIObject } from '@nestjs/swagger';
import { ErrorCode } from './error-codes';

type Schema = Record<string, unknown>;

/** What scripts/openapi-responses.js derives from the controllers (openapi-responses.generated.ts). */
export interface OpenApiResponses {
  /** Response schemas by name (the server's view interfaces), referenced as #/components/schemas/<name>. */
  components: Record<string, Schema>;
  /**
   * By operationId (`<Controller>_<method>`; `*<Class>_<method>` for a controller class built per
   * resource, matching every operationId that ends so): the answer — a JSON `schema`, a `file`
   * (CSV/XLSX), or `empty` — and the error statuses its code can give, each with the codes named.
   */
  operations: Record<
    string,
    {
      /** The first sentence of the controller method's doc comment (`{resource}`: the route's resource, filled in here). */
      summary?: string;
      /** The whole doc comment. */
      description?: string;
      schema?: Schema;
      file?: boolean;
      empty?: boolean;
      errors: Record<string, string[]>;
    }
  >;
}

const ERROR_SCHEMA = 'ErrorEnvelope';
const ERROR_TEXT: Record<string, string> = {
  '400': 'The request is invalid: VALIDATION_FAILED names each field in `details.fields` ([{ field, reason }])',
  '401': 'No valid credentials',
  '403': 'Not allowed for this role, or the record belongs to another school (AUTH.OUT_OF_SCOPE)',
  '404': 'No such record',
  '409': 'Conflicts with the current state of the record',
  '410': 'Gone',
  '413': 'Payload too large',
  '415': 'Unsupported media type',
  '429': 'Too many requests: retry after `details.retryAfterSeconds` (and Retry-After)',
  '502': 'The device or upstream answered wrongly',
  '503': 'Unavailable now (a store, capacity): retryable',
  '504': 'The device or upstream did not answer in time',
};
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** An operation's summary is one short line: cut at a word to this many characters. */
const SUMMARY_MAX = 120;
const oneLine = (s: string): string => (s.length > SUMMARY_MAX ? `${s.slice(0, s.lastIndexOf(' ', SUMMARY_MAX - 1))}…` : s);

/** The resource a generic route serves: its path's last segment that is not a parameter (`/api/v1/import/templates/cameras` → cameras). */
const resourceOf = (path: string): string =>
  path
    .split('/')
    .filter((s) => s && !s.startsWith('{'))
    .pop() ?? path;

/**
 * Completes the document Nest's scanner builds (request side: DTO classes) with the response side:
 * every operation's 2xx schema, and its error answers with the one error envelope
 * (`{ error: { code, message, requestId, details? } }`, exception.filter.ts) — 400 wherever input is
 * validated, 401/403 wherever credentials are required, and the statuses its code can give.
 */
export function applyResponses(doc: OpenAPIObject, data: OpenApiResponses): OpenAPIObject {
  const schemas = (doc.components ??= {}).schemas ?? (doc.components.schemas = {});
  for (const [name, schema] of Object.entries(data.components)) {
    if (schemas[name]) throw new Error(`OpenAPI: response schema ${name} collides with a request DTO of the same name`);
    schemas[name] = schema;
  }
  schemas[ERROR_SCHEMA] = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', description: 'stable error code (src/infra/http/error-codes.ts), e.g. VALIDATION_FAILED, AUTH.OUT_OF_SCOPE' },
          message: { type: 'string', description: 'for people (zh-CN or English)' },
          requestId: { type: 'string', description: 'the X-Request-Id of the request, also in the log' },
          details: {
            type: 'object',
            additionalProperties: true,
            description: 'VALIDATION_FAILED: `fields` [{ field, reason, row? }]; 429/503: `retryAfterSeconds`; others per code',
          },
        },
      },
    },
  };
  const suffixed = Object.entries(data.operations).filter(([k]) => k.startsWith('*'));
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(
      ops as Record<
        string,
        {
          operationId?: string;
          summary?: string;
          description?: string;
          responses?: Record<string, Schema>;
          security?: unknown[];
          parameters?: unknown[];
          requestBody?: unknown;
        }
      >,
    )) {
      if (!op?.operationId) continue;
      const id = op.operationId;
      const known = data.operations[id] ?? suffixed.find(([k]) => id.endsWith(k.slice(1)))?.[1];
      const resource = resourceOf(path);
      if (known?.summary) op.summary ||= oneLine(known.summary.replace(/\{resource\}/g, resource));
      if (known?.description) op.description ||= known.description.replace(/\{resource\}/g, resource);
      const responses = (op.responses ??= {});
      if (known) {
        const [ok] = Object.keys(responses).filter((s) => s.startsWith('2'));
        const status = ok ?? (method === 'post' ? '201' : '200');
        const current = (responses[status] ??= { description: '' }) as { description?: string; content?: Record<string, unknown> };
        if (status === '204') current.description ||= 'No content';
        else if (known.empty && !current.content) {
          // Nothing in the body (the route answers with its status alone, or writes its own bytes: described by the route).
          current.description ||= 'No body';
        } else if (known.file && !current.content) {
          current.description ||= 'A CSV (UTF-8 with BOM) or XLSX file, as `format` asks';
          current.content = { [XLSX]: { schema: { type: 'string', format: 'binary' } }, 'text/csv': { schema: { type: 'string', format: 'binary' } } };
        } else if (known.schema && !current.content) {
          current.description ||= 'OK';
          current.content = { 'application/json': { schema: known.schema } };
        }
      }
      const errors: Record<string, string[]> = { ...(known?.errors ?? {}) };
      if (op.parameters?.length || op.requestBody) errors['400'] = [...new Set([ErrorCode.VALIDATION_FAILED, ...(errors['400'] ?? [])])];
      if (op.security?.length) {
        errors['401'] ??= [ErrorCode.AUTH.UNAUTHENTICATED];
        errors['403'] ??= [ErrorCode.AUTH.ROLE_FORBIDDEN];
      }
      for (const [status, codes] of Object.entries(errors).sort(([a], [b]) => Number(a) - Number(b))) {
        if (responses[status]) continue;
        const named = codes.filter(Boolean);
        responses[status] = {
          description: `${ERROR_TEXT[status] ?? 'Error'}${named.length ? ` — codes: ${named.join(', ')}` : ''}`,
          content: { 'application/json': { schema: { $ref: `#/components/schemas/${ERROR_SCHEMA}` } } },
        };
      }
    }
  }
  return doc;
}
