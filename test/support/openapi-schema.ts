import Ajv, { type ValidateFunction } from 'ajv';

/** An OpenAPI 3.0 document as far as these checks read it. */
export interface OpenApiDoc {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown> };
}
export interface OpenApiOperation {
  operationId: string;
  summary?: string;
  description?: string;
  security?: unknown[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}

/**
 * OpenAPI 3.0's `nullable: true` turned into JSON Schema (`anyOf` with `{ type: 'null' }`), and its
 * `#/components/schemas/X` references kept, so Ajv (JSON Schema draft-07) checks what @nestjs/swagger
 * and scripts/openapi-responses.js emit exactly as a client generator reads it.
 */
export function toJsonSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(toJsonSchema);
  if (!s || typeof s !== 'object') return s;
  const { nullable, ...rest } = s as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (k === 'properties' || k === 'patternProperties') out[k] = Object.fromEntries(Object.entries(v as object).map(([p, x]) => [p, toJsonSchema(x)]));
    else if (k === 'example' || k === 'examples') continue;
    else out[k] = toJsonSchema(v);
  }
  if (!nullable) return out;
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  return { anyOf: [out, { type: 'null' }] };
}

/** A validator of the JSON answer `status` of `method path`, against the document's own schema. */
export function responseValidator(doc: OpenApiDoc, method: string, path: string, status = '200'): ValidateFunction {
  const op = doc.paths[path]?.[method];
  const schema = op?.responses[status]?.content?.['application/json']?.schema;
  if (!schema) throw new Error(`${method.toUpperCase()} ${path} declares no JSON schema for ${status}`);
  const ajv = new Ajv({ strict: false, allErrors: true, formats: { 'date-time': dateTime, binary: true, uuid: true, email: true, uri: true } });
  ajv.addSchema({ components: { schemas: toJsonSchema(doc.components.schemas) } }, 'doc');
  return ajv.compile(rebase(toJsonSchema(schema)) as object);
}

const dateTime = (v: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(v) && !Number.isNaN(Date.parse(v));

/** `#/components/…` inside an operation's schema points into the document registered as 'doc'. */
function rebase(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(rebase);
  if (!s || typeof s !== 'object') return s;
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `doc${v}` : rebase(v)]));
}
