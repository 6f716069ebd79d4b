import { Injectable } from '@nestjs/common';
import { Actor, requestContext } from '../../infra/http/request-context';
import { malformedInput } from '../../infra/observability/metrics';
import { AlarmIntakeService } from '../alarms';
import { GB_ID_PATTERN, GbProvisioningService } from '../registry';
import { alarmNote, incidentTypeOf, parseGbTime } from './gb-codes';
import { DeviceState } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { buildManscdp, child, childText, ManscdpMessage } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';
import { SipRequest } from './sip-message';
import { Peer } from './sip-transport';

/**
 * Alarm notifications (§9.4) → the alarm pipeline: the incident is committed before the device
 * gets its 200, then the platform confirms with a Response MESSAGE (§9.4.2).
 */
@Injectable()
export class GbAlarms {
  constructor(
    private readonly endpoint: SipEndpoint,
    private readonly client: SipClient,
    private readonly provisioning: GbProvisioningService,
    private readonly intake: AlarmIntakeService,
  ) {}

  /** An Alarm Notify from a registered device; `key` is its transaction (marked as being worked on). */
  async onAlarm(req: SipRequest, peer: Peer, key: string, state: DeviceState, doc: ManscdpMessage): Promise<void> {
    const el = doc.el;
    const method = Number(childText(el, 'AlarmMethod'));
    if (!Number.isInteger(method) || method < 1 || method > 99) {
      malformedInput.inc({ source: 'sip', reason: 'alarm_method' });
      return this.endpoint.reply(req, peer, 400, 'alarm', key);
    }
    const info = child(el, 'Info');
    const rawType = (info && childText(info, 'AlarmType')) ?? childText(el, 'AlarmType');
    const type = rawType && /^\d{1,3}$/.test(rawType) ? Number(rawType) : null;
    const rawPriority = childText(el, 'AlarmPriority');
    const priority = rawPriority && /^[1-4]$/.test(rawPriority) ? Number(rawPriority) : null;
    const time = childText(el, 'AlarmTime') ?? '';
    const at = parseGbTime(time);
    const channel = GB_ID_PATTERN.test(doc.deviceId) ? doc.deviceId : state.deviceId;
    const cams = await this.provisioning.gbDeviceCameras(state.deviceId);
    const cam = cams.find((c) => c.channelId === channel) ?? (channel === state.deviceId && cams.length === 1 ? cams[0] : undefined);
    if (!cam) {
      // The device did its part; nobody can act on an alarm from a channel not placed in a school yet.
      sipEvents.inc({ event: 'alarm_unplaced' });
      this.endpoint.reply(req, peer, 200, 'alarm', key);
      return this.sendAlarmResponse(state, doc.sn);
    }
    const actor: Actor = { type: 'device', id: cam.id, name: `GB28181 ${state.deviceId}` };
    const incidentType = incidentTypeOf(method, type);
    await requestContext.run({ requestId: `sip-${req.callId}`.slice(0, 100), ip: peer.address, actor }, () =>
      this.intake.raiseFromDevice(
        {
          deviceKind: 'camera',
          deviceId: cam.id,
          // Deterministic: a device repeating the alarm (new transaction, same SN and time) folds into the same incident.
          eventId: `gb28181:${state.deviceId}:${channel}:${doc.sn}:${at ? at.toISOString() : time}`,
          type: incidentType,
          note: alarmNote({
            method,
            type,
            priority,
            description: (childText(el, 'AlarmDescription') ?? '').slice(0, 500),
            time,
            longitude: childText(el, 'Longitude'),
            latitude: childText(el, 'Latitude'),
          }),
        },
        actor,
      ),
    );
    this.endpoint.reply(req, peer, 200, 'alarm', key);
    this.sendAlarmResponse(state, doc.sn);
  }

  /** §9.4.2: the platform confirms an alarm notification with a Response MESSAGE. */
  private sendAlarmResponse(state: DeviceState, sn: string): void {
    const body = buildManscdp('Response', [
      ['CmdType', 'Alarm'],
      ['SN', sn],
      ['DeviceID', state.deviceId],
      ['Result', 'OK'],
    ]);
    void this.client.sendMessage(state, body);
  }
}
