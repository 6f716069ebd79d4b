import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { Errors } from '../../infra/http/errors';
import { malformedInput } from '../../infra/observability/metrics';
import { CurrentDevice, DeviceRoute } from '../auth/decorators';
import type { AuthDevice } from '../auth/roles';
import { CODE_PATTERN, GB_ID_PATTERN } from '../registry/registry.constants';
import { DeviceHealthService } from './device-health.service';
import { alarmKey, cameraKey, IndexedDevice } from './liveness-index';

export type RejectReason = 'malformed' | 'unknown_device' | 'out_of_scope';

/**
 * Heartbeat intake over HTTP (device credentials). The GB/T 28181 SIP front end feeds the same
 * pipeline in-process through DeviceHealthService.recordHeartbeats.
 */
@ApiTags('device-health')
@ApiSecurity('device')
@Controller('device')
export class DeviceIntakeController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: DeviceHealthService,
  ) {}

  /** A camera or alarm button reporting for itself (no body). */
  @DeviceRoute('camera', 'alarm_device')
  @Post('heartbeat')
  @HttpCode(200)
  async heartbeat(@CurrentDevice() device: AuthDevice) {
    const at = new Date();
    const { unknown } = await this.health.recordHeartbeats([device.subjectId!], at);
    if (unknown.length) throw Errors.notFound('device', device.subjectId!);
    return { accepted: 1, at: at.toISOString() };
  }

  /**
   * A gateway / NVR reporting many devices: `{ heartbeats: [{ deviceId, channelId } | { code }] }`.
   * Good entries are accepted; bad ones come back by index with a reason.
   */
  @DeviceRoute('gateway')
  @Post('heartbeats')
  @HttpCode(200)
  async batch(@CurrentDevice() gateway: AuthDevice, @Body() body: unknown) {
    const max = this.health.cfg.maxBatchSize;
    const list = (body as { heartbeats?: unknown } | null)?.heartbeats;
    if (!Array.isArray(list) || list.length === 0)
      throw Errors.validation([{ field: 'heartbeats', reason: 'must be a non-empty array of { deviceId, channelId } or { code }' }]);
    if (list.length > max) throw Errors.validation([{ field: 'heartbeats', reason: `at most ${max} entries per batch` }]);
    const at = new Date();
    const rejected: { index: number; reason: RejectReason }[] = [];
    const accepted: IndexedDevice[] = [];
    let misses: { index: number; key: string }[] = [];
    for (let i = 0; i < list.length; i++) {
      const key = externalKey(list[i]);
      if (key === null) {
        rejected.push({ index: i, reason: 'malformed' });
        continue;
      }
      const d = this.health.index.byExternal(key);
      if (d) this.admit(d, i, gateway, accepted, rejected);
      else misses.push({ index: i, key });
    }
    if (misses.length) {
      await this.health.refreshOnMiss();
      for (const { index, key } of misses) {
        const d = this.health.index.byExternal(key);
        if (d) this.admit(d, index, gateway, accepted, rejected);
        else rejected.push({ index, reason: 'unknown_device' });
      }
      misses = [];
      rejected.sort((a, b) => a.index - b.index);
    }
    const malformed = rejected.filter((r) => r.reason === 'malformed').length;
    if (malformed) malformedInput.inc({ source: 'http', reason: 'heartbeat_entry' }, malformed);
    await this.health.recordResolved(accepted, at.getTime());
    return { accepted: accepted.length, rejected, at: at.toISOString() };
  }

  private admit(d: IndexedDevice, index: number, gateway: AuthDevice, accepted: IndexedDevice[], rejected: { index: number; reason: RejectReason }[]): void {
    if (gateway.schoolId !== null && d.schoolId !== gateway.schoolId) rejected.push({ index, reason: 'out_of_scope' });
    else accepted.push(d);
  }
}

/** The lookup key of one batch entry, or null when it is malformed. */
function externalKey(e: unknown): string | null {
  if (typeof e !== 'object' || e === null) return null;
  const { deviceId, channelId, code } = e as Record<string, unknown>;
  if (typeof deviceId === 'string' && typeof channelId === 'string' && code === undefined)
    return GB_ID_PATTERN.test(deviceId) && GB_ID_PATTERN.test(channelId) ? cameraKey(deviceId, channelId) : null;
  if (typeof code === 'string' && deviceId === undefined && channelId === undefined) return CODE_PATTERN.test(code) ? alarmKey(code) : null;
  return null;
}
