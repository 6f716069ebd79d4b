import { MigrationInterface, QueryRunner } from 'typeorm';
import { addMonths, boundsSql, defaultPartitionName, monthOf, parseYyyymm, partitionName, PARTITIONED_TABLES } from '../partitions';

/**
 * The audit log and device transitions become partitioned by month on their time column `at`
 * (issue 17 §3): retention then drops a whole month's partition — no million-row DELETE, no vacuum
 * debt, no long lock beside alarm intake (which writes audit rows in its own transactions). Rows,
 * column defaults (the same id sequence), CHECKs and every index are kept under their names; the
 * primary key becomes (id, at) — a partitioned table's keys must contain the partition key; ids
 * still come from one sequence. One partition per month present in the data plus this month and
 * the next two (the retention job keeps creating ahead), and a DEFAULT partition for anything else
 * (rows dated beyond that, a device clock years ahead).
 *
 * Not converted (docs/OPERATIONS.md): incident_presses — its UNIQUE (device_id, device_event_id,
 * repeat_no) is the exactly-once guarantee of a press retried on several processes, and a
 * partitioned unique key must contain the time, so a retry stamped a moment later would pass;
 * presses are kept with their incident (foreign key, years) anyway. console_events — the live
 * feed reads by seq (`seq > $1 ORDER BY seq`), which partitions by time cannot prune, and its
 * window is hours: the batched prune by seq keeps it small.
 *
 * Copies every row once, with the tables locked until it commits: on a large installation run it
 * in a maintenance window.
 */
export class PartitionAuditAndTransitions1764321230000 implements MigrationInterface {
  name = 'PartitionAuditAndTransitions1764321230000';

  async up(q: QueryRunner): Promise<void> {
    for (const { table, column } of PARTITIONED_TABLES) await toPartitioned(q, table, column);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const { table } of PARTITIONED_TABLES) await toPlain(q, table);
  }
}

async function indexDefs(q: QueryRunner, table: string): Promise<string[]> {
  const rows: { indexdef: string }[] = await q.query(
    `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = $1 AND indexname <> $2 ORDER BY indexname`,
    [table, `${table}_pkey`],
  );
  // A partitioned table's own index reads `ON ONLY t`; on a plain table it is the same index.
  return rows.map((r) => r.indexdef.replace(' ON ONLY ', ' ON '));
}

async function serialSequence(q: QueryRunner, table: string): Promise<string> {
  const [{ seq }]: { seq: string }[] = await q.query(`SELECT pg_get_serial_sequence($1, 'id') AS seq`, [table]);
  // Kept through the swap (it would be dropped with the old table), owned by the new one after.
  await q.query(`ALTER SEQUENCE ${seq} OWNED BY NONE`);
  return seq;
}

async function toPartitioned(q: QueryRunner, table: string, column: string): Promise<void> {
  const indexes = await indexDefs(q, table);
  const seq = await serialSequence(q, table);
  await q.query(
    `CREATE TABLE ${table}_new (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (${column})`,
  );
  const present: { m: string }[] = await q.query(`SELECT DISTINCT to_char(${column} AT TIME ZONE 'Asia/Shanghai', 'YYYYMM') AS m FROM ${table}`);
  // Months ahead of the horizon (a device clock in 2099) stay in the DEFAULT partition, as the job would leave them.
  const now = monthOf(new Date());
  const horizon = partitionName(table, addMonths(now, 2));
  const months = [...present.map((r) => parseYyyymm(r.m)), now, addMonths(now, 1), addMonths(now, 2)].filter((m) => partitionName(table, m) <= horizon);
  const byName = new Map(months.map((m) => [partitionName(table, m), m]));
  for (const [name, m] of byName) await q.query(`CREATE TABLE ${name} PARTITION OF ${table}_new ${boundsSql(m)}`);
  await q.query(`CREATE TABLE ${defaultPartitionName(table)} PARTITION OF ${table}_new DEFAULT`);
  await q.query(`INSERT INTO ${table}_new SELECT * FROM ${table}`);
  await q.query(`DROP TABLE ${table}`);
  await q.query(`ALTER TABLE ${table}_new RENAME TO ${table}`);
  await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_pkey PRIMARY KEY (id, ${column})`);
  for (const def of indexes) await q.query(def);
  await q.query(`ALTER SEQUENCE ${seq} OWNED BY ${table}.id`);
  await q.query(`ANALYZE ${table}`);
}

async function toPlain(q: QueryRunner, table: string): Promise<void> {
  const indexes = await indexDefs(q, table);
  const seq = await serialSequence(q, table);
  await q.query(`CREATE TABLE ${table}_old (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)`);
  await q.query(`INSERT INTO ${table}_old SELECT * FROM ${table}`);
  await q.query(`DROP TABLE ${table}`);
  await q.query(`ALTER TABLE ${table}_old RENAME TO ${table}`);
  await q.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_pkey PRIMARY KEY (id)`);
  for (const def of indexes) await q.query(def);
  await q.query(`ALTER SEQUENCE ${seq} OWNED BY ${table}.id`);
}
