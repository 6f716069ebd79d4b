/**
 * Numbered parameters for a statement composed from several parts (e.g. one data-modifying CTE
 * per table, each written by the module that owns the table): `p.add(value)` appends a value
 * and returns its placeholder (`$n`); `p.values` goes to `query(sql, p.values)`.
 */
export class SqlParams {
  readonly values: unknown[] = [];

  add = (value: unknown): string => {
    this.values.push(value);
    return `$${this.values.length}`;
  };
}
