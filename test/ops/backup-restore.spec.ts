import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import request from 'supertest';
import { bootstrap } from '../../src/bootstrap';
import { JOBS, JobName } from '../../src/infra/queue/queue.catalogue';
import { QueueService } from '../../src/infra/queue/queue.service';
import { TestConsole } from '../support/console-client';
import { auth, createDatabase, deleteRedisPrefix, releaseDatabase, seedMinimal, startApp, testConfig, TestApp } from '../support/harness';

/**
 * Backup and restore as docs/OPERATIONS.md tells it (issue 17 §4): `pg_dump -Fc` of a running
 * system's database, `pg_restore` into a new, empty database, the service started on it with an
 * empty Redis (the old system and its Redis are gone). Postgres holds everything: a console
 * resumes with its last seq and misses nothing, an older seq is replayed from the restored
 * console_events, new events continue the seq, and the alarm jobs pending at the backup are still
 * pending in the restored outbox (which hands them to the new Redis).
 */
describe('backup (pg_dump) and restore (pg_restore) onto an empty Redis', () => {
  jest.setTimeout(180_000);
  let t: TestApp | undefined;
  let restored: { url: string; name: string } | undefined;
  let app2: INestApplication | undefined;
  let prefix2: string | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'shouhu-backup-'));
  const consoles: TestConsole[] = [];

  afterAll(async () => {
    for (const c of consoles) c.close();
    await app2?.close();
    if (prefix2) await deleteRedisPrefix(prefix2);
    await t?.close();
    if (restored) await releaseDatabase(restored.name);
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores a dump of the running system; a console resumes with its last seq', async () => {
    t = await startApp();
    const admin = (await t.userToken('admin')).token;
    const seed = await seedMinimal(t, admin);
    const op = (await t.userToken('operator')).token;
    const c1 = new TestConsole(t.baseUrl, op);
    consoles.push(c1);
    await c1.ready();
    const ids: string[] = [];
    for (const location of ['北门', '南门', '操场']) {
      const res = await t.http().post('/api/v1/incidents').set(auth(op)).send({ schoolId: seed.schoolA.id, type: 'intrusion', location }).expect(201);
      ids.push(res.body.id);
    }
    await c1.until(() => ids.every((id) => c1.events.some((e) => e.type === 'incident.raised' && e.payload.incidentId === id)), 'the three alarms');
    const lastSeq = c1.lastSeq;
    const raisedSeqs = c1.events.filter((e) => e.type === 'incident.raised').map((e) => e.seq);
    c1.close();

    // The backup, taken while the service runs (pg_dump reads one consistent snapshot).
    const file = join(dir, 'shouhu.dump');
    execFileSync('pg_dump', ['--format=custom', '--no-owner', `--file=${file}`, `--dbname=${t.config.database.url}`]);
    const pendingRows = (await t.db.query(`SELECT job_name, job_id FROM alarm_outbox WHERE done_at IS NULL`)).rows as { job_name: JobName; job_id: string }[];
    const pending = pendingRows.map((r) => r.job_id);
    expect(pending.length).toBeGreaterThan(0); // escalations not yet due are pending

    // The old system is gone: its database dropped, its Redis keys deleted.
    await t.close();
    t = undefined;

    restored = await createDatabase();
    execFileSync('pg_restore', ['--no-owner', '--exit-on-error', '--single-transaction', `--dbname=${restored.url}`, file]);
    const config = testConfig(restored.url); // a fresh, empty Redis prefix
    prefix2 = config.redis.keyPrefix;
    // Re-dispatch far away: only the resync on the first connection can hand the lost timers to the new Redis in time.
    config.alarms.outbox.redispatchAfterMs = 600_000;
    app2 = (await bootstrap(config)) as INestApplication;
    const url2 = `http://127.0.0.1:${(app2.getHttpServer().address() as AddressInfo).port}`;

    // Nothing missed: resumed (no snapshot) at its last seq, no event replayed.
    const c2 = new TestConsole(url2, op, { lastSeq });
    consoles.push(c2);
    await c2.ready();
    expect(c2.snapshots).toEqual([]);
    expect(c2.events).toEqual([]);
    expect(c2.lastSeq).toBe(lastSeq);

    // A console that had seen less gets the rest replayed from the restored console_events.
    const c3 = new TestConsole(url2, op, { lastSeq: raisedSeqs[0] });
    consoles.push(c3);
    await c3.ready();
    expect(c3.snapshots).toEqual([]);
    expect(c3.events.filter((e) => e.type === 'incident.raised').map((e) => e.payload.incidentId)).toEqual(ids.slice(1));
    expect(c3.lastSeq).toBe(lastSeq);

    // The restored system goes on: the incidents are there, a new alarm continues the seq.
    const list = await request(app2.getHttpServer()).get('/api/v1/incidents').set(auth(op)).expect(200);
    const listed = (list.body.items ?? list.body) as { id: string }[];
    expect(ids.every((id) => listed.some((i) => i.id === id))).toBe(true);
    const next = await request(app2.getHttpServer())
      .post('/api/v1/incidents')
      .set(auth(op))
      .send({ schoolId: seed.schoolA.id, type: 'fire', location: '食堂' })
      .expect(201);
    await c2.until(() => c2.events.some((e) => e.payload.incidentId === next.body.id), 'the new alarm');
    expect(c2.events[0].seq).toBe(lastSeq + 1);
    expect(c2.reorders).toEqual([]);

    // What Redis held is rebuilt from Postgres: the alarm jobs pending at the backup are still pending
    // in the restored outbox, which hands them to the new Redis (docs/OPERATIONS.md: when).
    const db = new Client({ connectionString: restored.url });
    await db.connect();
    const { rows } = await db.query(`SELECT job_id FROM alarm_outbox WHERE job_id = ANY($1) AND done_at IS NULL ORDER BY job_id`, [pending]);
    await db.end();
    expect(rows.map((r) => r.job_id).sort()).toEqual([...pending].sort());
    // …and hands them to the new, empty Redis at its first connection, not a re-dispatch period later.
    const queue = app2.get(QueueService);
    const deadline = Date.now() + 10_000;
    const missing = async () => {
      const found = await Promise.all(pendingRows.map((r) => queue.queue(JOBS[r.job_name].queue).getJob(r.job_id)));
      return pendingRows.filter((_, i) => !found[i]).map((r) => r.job_id);
    };
    while ((await missing()).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await missing()).toEqual([]);
  });
});
