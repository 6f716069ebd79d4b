import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Where an evidence picture came from (`video_evidence.source`): 'snapshot_uri' (the camera's own
 * JPEG from its ONVIF snapshot URI), 'stream' (a frame of its stream: ffmpeg over RTSP, or a
 * GB/T 28181 INVITE), 'upload' (a photo a person sent from a phone). Until now only the answer of
 * the capture and the metric shouhu_video_snapshot_sources_total said it; a picture read back weeks
 * later (an auditor, a retried job's earlier picture) could not.
 *
 * Rows from before: camera-less rows are alarm photos ('upload'); an incident's camera pictures take
 * the source their timeline entry recorded (`evidence` entries carry it since the snapshot URI
 * work); the rest are 'unknown' — said so, never guessed. The default exists only to fill those rows
 * without rewriting the table (a constant default is instant on Postgres ≥ 11) and is dropped: every
 * insert must name its source.
 */
export class EvidenceSource1764324500000 implements MigrationInterface {
  name = 'EvidenceSource1764324500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE video_evidence ADD COLUMN source text NOT NULL DEFAULT 'unknown'`);
    await q.query(`UPDATE video_evidence SET source = 'upload' WHERE camera_id IS NULL`);
    // Through the timeline's (incident_id, id) index: only incident pictures, each joined to its own incident's entries.
    await q.query(`
      UPDATE video_evidence e SET source = t.data->>'source'
        FROM incident_timeline t
       WHERE e.camera_id IS NOT NULL AND e.purpose LIKE 'alarm.raise%'
         AND e.ref_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
         AND t.incident_id = (CASE WHEN e.ref_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN e.ref_id::uuid END)
         AND t.action = 'evidence' AND t.data->>'evidenceId' = e.id::text
         AND t.data->>'source' IN ('snapshot_uri', 'stream')`);
    await q.query(`ALTER TABLE video_evidence ALTER COLUMN source DROP DEFAULT`);
    await q.query(`ALTER TABLE video_evidence ADD CONSTRAINT video_evidence_source_ck CHECK (source IN ('snapshot_uri', 'stream', 'upload', 'unknown'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE video_evidence DROP COLUMN source`);
  }
}
