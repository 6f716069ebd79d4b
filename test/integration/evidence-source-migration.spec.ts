import { randomUUID } from 'node:crypto';
import { EvidenceSource1764324500000 } from '../../src/infra/database/migrations/1764324500000-EvidenceSource';
import { useMigrationDatabase } from '../support/migration-db';

/**
 * The migration that keeps an evidence picture's source fills the rows taken before it from what is
 * known, and guesses nothing: an alarm photo (no camera) was uploaded; an incident's camera picture
 * takes the source its own `evidence` timeline entry recorded (not another incident's entry naming
 * the same id); anything else is 'unknown'. After it, an insert must name a source, one of four.
 */
describe('migration EvidenceSource', () => {
  const m = useMigrationDatabase();
  const runner = m.runner;

  it('fills older rows from what is known and then requires a source on every insert', async () => {
    const school = randomUUID();
    const camera = randomUUID();
    await new EvidenceSource1764324500000().down(runner); // the table as it was before
    const incident = async () =>
      (
        await m.client.query(
          `INSERT INTO incidents (type, priority, source, school_id, status, first_press_at, last_press_at)
           VALUES ('other', 'P3', 'staff', $1, 'raised', now(), now()) RETURNING id`,
          [school],
        )
      ).rows[0].id as string;
    const picture = async (cameraId: string | null, purpose: string, refId: string | null) =>
      (
        await m.client.query(
          `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, ref_id, captured_at)
           VALUES ($1, $2, $3, repeat('0', 64), 1, 1, 1, $4, $5, now()) RETURNING id`,
          [cameraId, school, `test/${randomUUID()}`, purpose, refId],
        )
      ).rows[0].id as string;
    const entry = (incidentId: string, data: object) =>
      m.client.query(`INSERT INTO incident_timeline (incident_id, actor_type, actor_name, action, data) VALUES ($1, 'system', 'system', 'evidence', $2)`, [
        incidentId,
        data,
      ]);

    const inc = await incident();
    const other = await incident();
    const viaUri = await picture(camera, 'alarm.raise', inc);
    const viaStream = await picture(camera, 'alarm.raise+10s', inc);
    const noSource = await picture(camera, 'alarm.raise', inc); // an entry from before the timeline said the source
    const elsewhere = await picture(camera, 'alarm.raise', inc); // only another incident's entry names it
    const photo = await picture(null, 'alarm.photo', inc);
    const manual = await picture(camera, 'manual', null);
    const checkin = await picture(camera, 'post.checkin', randomUUID());
    const oddRef = await picture(camera, 'alarm.raise', 'inc-1'); // a ref that is no uuid: no cast error, just unknown
    await entry(inc, { evidenceId: viaUri, source: 'snapshot_uri' });
    await entry(inc, { evidenceId: viaStream, source: 'stream' });
    await entry(inc, { evidenceId: noSource });
    await entry(other, { evidenceId: elsewhere, source: 'stream' });

    await new EvidenceSource1764324500000().up(runner);

    const rows = new Map(
      (await m.client.query(`SELECT id, source FROM video_evidence`)).rows.map((r: { id: string; source: string }) => [r.id, r.source] as const),
    );
    expect(Object.fromEntries([viaUri, viaStream, noSource, elsewhere, photo, manual, checkin, oddRef].map((id) => [id, rows.get(id)]))).toEqual({
      [viaUri]: 'snapshot_uri',
      [viaStream]: 'stream',
      [noSource]: 'unknown',
      [elsewhere]: 'unknown',
      [photo]: 'upload',
      [manual]: 'unknown',
      [checkin]: 'unknown',
      [oddRef]: 'unknown',
    });
    // No default is left behind: an insert that does not say where its picture came from fails, as does a made-up source.
    await expect(picture(camera, 'manual', null)).rejects.toThrow(/null value in column "source"/);
    await expect(
      m.client.query(
        `INSERT INTO video_evidence (camera_id, school_id, storage_key, sha256, bytes, width, height, purpose, captured_at, source)
         VALUES ($1, $2, 'test/x', repeat('0', 64), 1, 1, 1, 'manual', now(), 'guess')`,
        [camera, school],
      ),
    ).rejects.toThrow(/video_evidence_source_ck/);
  });
});
