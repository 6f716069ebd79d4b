/**
 * Monthly range partitions of the high-volume time-stamped tables (issue 17 §3): their names and
 * bounds, shared by the migration that converts the tables and the retention job that keeps them.
 *
 * A month is a calendar month in Asia/Shanghai (UTC+8 all year: China has had no daylight saving
 * time since 1991), so a partition holds the records of one month as the district reads its
 * reports. Partitions are named `<table>_pYYYYMM`; rows outside every month partition (a device
 * clock in 2099, a backfill from before the first partition, a month not yet created) land in
 * `<table>_default`, so an insert never fails for a missing partition. The job moves such rows
 * into their month's partition when it creates it, and deletes them when they are past retention.
 */

/** The partitioned tables: the time column is the partition key (and part of the primary key). */
export const PARTITIONED_TABLES = [
  { table: 'audit_log', column: 'at' },
  { table: 'device_transitions', column: 'at' },
] as const;

export type PartitionedTable = (typeof PARTITIONED_TABLES)[number]['table'];

const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

/** A calendar month in Asia/Shanghai. */
export interface Month {
  year: number;
  /** 1–12 */
  month: number;
}

/** The Asia/Shanghai month an instant falls in. */
export function monthOf(at: Date): Month {
  const local = new Date(at.getTime() + SHANGHAI_OFFSET_MS);
  return { year: local.getUTCFullYear(), month: local.getUTCMonth() + 1 };
}

export function addMonths(m: Month, n: number): Month {
  const i = m.year * 12 + (m.month - 1) + n;
  return { year: Math.floor(i / 12), month: (i % 12) + 1 };
}

/** The first instant of the month (midnight Asia/Shanghai). */
export function monthStart(m: Month): Date {
  return new Date(Date.UTC(m.year, m.month - 1, 1) - SHANGHAI_OFFSET_MS);
}

/** `<table>_pYYYYMM` */
export function partitionName(table: string, m: Month): string {
  return `${table}_p${String(m.year).padStart(4, '0')}${String(m.month).padStart(2, '0')}`;
}

export function defaultPartitionName(table: string): string {
  return `${table}_default`;
}

/** The month of a partition this module named, or null for any other name (left alone). */
export function parsePartitionName(table: string, name: string): Month | null {
  const m = new RegExp(`^${table}_p(\\d{4})(\\d{2})$`).exec(name);
  if (!m) return null;
  const month = Number(m[2]);
  return month >= 1 && month <= 12 ? { year: Number(m[1]), month } : null;
}

/** `YYYYMM` (what `to_char(at AT TIME ZONE 'Asia/Shanghai', 'YYYYMM')` gives) as a month. */
export function parseYyyymm(s: string): Month {
  return { year: Number(s.slice(0, 4)), month: Number(s.slice(4, 6)) };
}

/** `FOR VALUES FROM (…) TO (…)` of a month, as timestamptz literals with the +08 offset. */
export function boundsSql(m: Month): string {
  return `FOR VALUES FROM ('${literal(m)}') TO ('${literal(addMonths(m, 1))}')`;
}

function literal(m: Month): string {
  return `${String(m.year).padStart(4, '0')}-${String(m.month).padStart(2, '0')}-01 00:00:00+08`;
}
