import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { ApiSecurity, ApiTags } from '@nestjs/swagger';
import { ErrorCode, Errors } from '../../infra/http/errors';
import { malformedInput } from '../../infra/observability/metrics';
import { CurrentDevice, DeviceRoute } from '../../infra/access/decorators';
import type { AuthDevice } from '../../infra/access/roles';
import { DeviceHealthService } from './device-health.service';

/**
 * Heartbeat intake over HTTP (device credentials). The GB/T 28181 SIP front end feeds the same
 * pipeline in-process through DeviceHealthService.recordHeartbeats.
 */
@ApiTags('device-health')
@ApiSecurity('device')
@Controller('device')
export class DeviceIntakeController {
  constructor(private readonly health: DeviceHealthService) {}

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
    const max = this.health.maxBatchSize;
    const list = (body as { heartbeats?: unknown } | null)?.heartbeats;
    if (!Array.isArray(list) || list.length === 0)
      throw Errors.validation([{ field: 'heartbeats', reason: 'must be a non-empty array of { deviceId, channelId } or { code }' }]);
    if (list.length > max) throw Errors.validation([{ field: 'heartbeats', reason: `at most ${max} entries per batch` }]);
    const at = new Date();
    const r = await this.health.recordGatewayHeartbeats(list, gateway.schoolId, at);
    const malformed = r.rejected.filter((x) => x.reason === 'malformed').length;
    if (malformed) malformedInput.inc({ source: 'http', reason: 'heartbeat_entry' }, malformed);
    return { accepted: r.accepted, rejected: r.rejected, at: at.toISOString() };
  }
}
