/**
 * Responses are built from an allow-list per resource, never from an entity or a raw row: a
 * column added later (a hash, a token) stays out of every answer until someone lists it.
 */
export function pick<T extends object, K extends keyof T>(row: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (k in row) out[k] = row[k];
  return out;
}

/**
 * The view function of an allow-list: `viewOf<User>()(['id', 'username'])(row)` keeps only those keys.
 * Curried so the keys are inferred as literals: the view's type is then exactly what is sent (the
 * OpenAPI document is derived from it: scripts/openapi-responses.js).
 */
export const viewOf =
  <T extends object>() =>
  <K extends keyof T>(keys: readonly K[]) =>
  (row: T): Pick<T, K> =>
    pick(row, keys);
