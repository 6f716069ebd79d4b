import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returningRows } from '../../infra/database/returning';
import { turnBatch } from '../../infra/database/turn-batch';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { AuditService } from '../audit-log';

/** A camera made from a GB/T 28181 device's channel. */
export interface GbDeviceCamera {
  id: string;
  channelId: string;
  schoolId: string;
}

/** Cameras provisioned from GB/T 28181 devices' channels (used by the SIP front end). */
@Injectable()
export class GbProvisioningService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly audit: AuditService,
  ) {}

  /**
   * The cameras (channels) registered under a GB/T 28181 device id, by channel id. The look-ups asked
   * for in one event-loop turn are one query: after a platform restart every device re-registers at
   * once, and a query per device queued 100,000 waiters on the pool (issue 16 §8).
   */
  readonly gbDeviceCameras = turnBatch<string, GbDeviceCamera[]>(
    async (deviceIds) => {
      const rows: (GbDeviceCamera & { deviceId: string })[] = await this.db.query(
        `SELECT device_id AS "deviceId", id, channel_id AS "channelId", school_id AS "schoolId" FROM cameras WHERE device_id = ANY($1::bpchar[]) ORDER BY device_id, channel_id`,
        [deviceIds],
      );
      const byDevice = new Map<string, GbDeviceCamera[]>();
      for (const { deviceId, ...cam } of rows) {
        const list = byDevice.get(deviceId);
        if (list) list.push(cam);
        else byDevice.set(deviceId, [cam]);
      }
      return byDevice;
    },
    () => [],
  );

  /** The ids of the cameras under any of these GB/T 28181 device ids (the SIP server's restart grace). */
  async camerasOfDevices(deviceIds: string[]): Promise<string[]> {
    if (deviceIds.length === 0) return [];
    const rows: { id: string }[] = await this.db.query(`SELECT id FROM cameras WHERE device_id = ANY($1::bpchar[])`, [deviceIds]);
    return rows.map((r) => r.id);
  }

  /**
   * The keepalive settings of a GB/T 28181 device changed (gb_devices.offline_after_seconds): its
   * cameras are marked changed so every process's liveness index reloads them (incremental refresh
   * by updated_at, DeviceStatusService.deviceIndexRows). Returns how many.
   */
  async gbLivenessChanged(deviceId: string, manager?: EntityManager): Promise<number> {
    const rows = returningRows<{ id: string }>(
      await (manager ?? this.db).query(`UPDATE cameras SET updated_at = now() WHERE device_id = $1 RETURNING id`, [deviceId]),
    );
    return rows.length;
  }

  /**
   * Creates cameras for channels a device reported (idempotent on device id + channel id: an
   * existing camera is kept as the operators edited it). Returns every channel's camera id and
   * whether it was created now. Audited in the caller's transaction when given.
   */
  async provisionGbCameras(
    schoolId: string,
    channels: { deviceId: string; channelId: string; name: string; vendor: string; model: string; areaKind?: string; location?: string }[],
    manager?: EntityManager,
  ): Promise<{ id: string; deviceId: string; channelId: string; created: boolean }[]> {
    if (channels.length === 0) return [];
    const run = async (m: EntityManager) => {
      const [school] = await m.query(`SELECT id FROM schools WHERE id = $1`, [schoolId]);
      if (!school) throw Errors.notFound(ErrorCode.SCHOOL.NOT_FOUND, schoolId);
      const created = returningRows<{ id: string; device_id: string; channel_id: string; name: string }>(
        await m.query(
          `INSERT INTO cameras (school_id, device_id, channel_id, name, location, area_kind, vendor, model)
           SELECT $1, v.d, v.c, v.n, v.l, v.k, v.v, v.m
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS v(d, c, n, l, k, v, m)
           ON CONFLICT (device_id, channel_id) DO NOTHING
           RETURNING id, device_id, channel_id, name`,
          [
            schoolId,
            channels.map((c) => c.deviceId),
            channels.map((c) => c.channelId),
            channels.map((c) => (c.name.trim() || c.channelId).slice(0, 200)),
            channels.map((c) => c.location ?? ''),
            channels.map((c) => c.areaKind ?? 'other'),
            channels.map((c) => c.vendor.slice(0, 100)),
            channels.map((c) => c.model.slice(0, 100)),
          ],
        ),
      );
      await this.audit.record(
        m,
        created.map((r) => ({
          action: 'create',
          entity: 'camera',
          entityId: r.id,
          schoolId,
          after: { deviceId: r.device_id, channelId: r.channel_id, name: r.name, source: 'gb28181' },
        })),
      );
      const all: { id: string; device_id: string; channel_id: string }[] = await m.query(
        `SELECT c.id, c.device_id, c.channel_id FROM cameras c JOIN unnest($1::bpchar[], $2::bpchar[]) AS v(d, ch) ON c.device_id = v.d AND c.channel_id = v.ch`,
        [channels.map((c) => c.deviceId), channels.map((c) => c.channelId)],
      );
      const fresh = new Set(created.map((r) => r.id));
      return all.map((r) => ({ id: r.id, deviceId: r.device_id, channelId: r.channel_id, created: fresh.has(r.id) }));
    };
    return manager ? run(manager) : this.db.transaction(run);
  }
}
