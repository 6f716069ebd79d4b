import { Body, Controller, HttpCode, Inject, Post } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { malformedInput } from '../../infra/observability/metrics';
import { CurrentDevice, DeviceRoute } from '../../infra/access/decorators';
import type { AuthDevice } from '../../infra/access/roles';
import { CODE_PATTERN } from '../registry/registry.constants';
import { DeviceHealthService } from './device-health.service';

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
    if (unknown.length) throw Errors.notFound(ErrorCode.DEVICE.NOT_FOUND, device.subjectId!);
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
    let r = this.resolve(list, gateway);
    if (r.misses) {
      await this.health.refreshOnMiss();
      r = this.resolve(list, gateway); // after the await: slots of a reloaded index differ
    }
    const malformed = r.rejected.filter((x) => x.reason === 'malformed').length;
    if (malformed) malformedInput.inc({ source: 'http', reason: 'heartbeat_entry' }, malformed);
    await this.health.recordSlots(r.accepted, at.getTime());
    return { accepted: r.accepted.length, rejected: r.rejected, at: at.toISOString() };
  }

  /** Index slots of the good entries, and the bad ones by index with a reason (in order). */
  private resolve(list: unknown[], gateway: AuthDevice): { accepted: number[]; rejected: { index: number; reason: RejectReason }[]; misses: number } {
    const index = this.health.index;
    const accepted: number[] = [];
    const rejected: { index: number; reason: RejectReason }[] = [];
    let misses = 0;
    for (let i = 0; i < list.length; i++) {
      const e = list[i];
      let slot: number;
      if (isCameraEntry(e)) slot = index.slotOfCamera(e.deviceId, e.channelId);
      else if (isAlarmEntry(e)) slot = index.slotOfAlarm(e.code);
      else {
        rejected.push({ index: i, reason: 'malformed' });
        continue;
      }
      if (slot < 0) {
        rejected.push({ index: i, reason: 'unknown_device' });
        misses++;
      } else if (gateway.schoolId !== null && index.schoolId(slot) !== gateway.schoolId) rejected.push({ index: i, reason: 'out_of_scope' });
      else accepted.push(slot);
    }
    return { accepted, rejected, misses };
  }
}

/** `{ deviceId, channelId }`, both 20-digit GB/T 28181 ids, nothing else (a hand check: this runs per entry). */
function isCameraEntry(e: unknown): e is { deviceId: string; channelId: string } {
  if (typeof e !== 'object' || e === null) return false;
  const { deviceId, channelId, code } = e as Record<string, unknown>;
  return code === undefined && isGbId(deviceId) && isGbId(channelId);
}

/** `{ code }` matching CODE_PATTERN, nothing else. */
function isAlarmEntry(e: unknown): e is { code: string } {
  if (typeof e !== 'object' || e === null) return false;
  const { deviceId, channelId, code } = e as Record<string, unknown>;
  return deviceId === undefined && channelId === undefined && typeof code === 'string' && CODE_PATTERN.test(code);
}

/** Same as GB_ID_PATTERN (/^\d{20}$/), without a regex call per id. */
function isGbId(v: unknown): v is string {
  if (typeof v !== 'string' || v.length !== 20) return false;
  for (let i = 0; i < 20; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}
