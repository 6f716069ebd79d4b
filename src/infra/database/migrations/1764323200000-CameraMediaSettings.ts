import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A camera's media settings beyond its stream address (issue 15): the ONVIF service it answers on
 * (host, port, account; the password AES-256-GCM encrypted with video.credentialKey — ONVIF's
 * UsernameToken digest and RTSP digest auth need the password itself, unlike GB/T 28181's HA1),
 * what the last probe found (device information, profile, snapshot URI), and the RTSP playback URL
 * template of the recorder that keeps its recordings (Hikvision / Dahua NVRs). Kept apart from
 * `cameras` so that the camera rows other modules read and broadcast never carry a credential.
 */
export class CameraMediaSettings1764323200000 implements MigrationInterface {
  name = 'CameraMediaSettings1764323200000';
  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE camera_media_settings (
        camera_id uuid PRIMARY KEY REFERENCES cameras(id) ON DELETE CASCADE,
        onvif_host text,
        onvif_port integer CHECK (onvif_port BETWEEN 1 AND 65535),
        onvif_username text,
        onvif_password_enc text,
        onvif_profile_token text,
        snapshot_url text NOT NULL DEFAULT '',
        playback_url_template text NOT NULL DEFAULT '',
        last_probe jsonb,
        probed_at timestamptz,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE camera_media_settings`);
  }
}
