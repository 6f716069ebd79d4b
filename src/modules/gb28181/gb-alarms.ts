import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { Actor, requestContext } from '../../infra/http/request-context';
import { malformedInput } from '../../infra/observability/metrics';
import { AlarmIntakeService, type Priority, unplacedChannelKey } from '../alarms';
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
 * gets its 200, then the platform confirms with a Response MESSAGE (§9.4.2). No alarm of a
 * registered device is dropped: a channel not placed in a school raises at the device's school, or
 * as an unplaced device alarm the district sees; a missing or 0 AlarmMethod is type `other`.
 * AlarmPriority 1–4 sets the priority (gb28181.alarmPriorities), else the type's priority.
 */
@Injectable()
export class GbAlarms {
  private readonly priorities: Gb28181Config['alarmPriorities'];

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly client: SipClient,
    private readonly provisioning: GbProvisioningService,
    private readonly intake: AlarmIntakeService,
  ) {
    this.priorities = config.gb28181.alarmPriorities;
  }

  /** An Alarm Notify from a registered device; `key` is its transaction (marked as being worked on). */
  async onAlarm(req: SipRequest, peer: Peer, key: string, state: DeviceState, doc: ManscdpMessage): Promise<void> {
    const el = doc.el;
    // Missing, empty or 0 (devices that leave it unset): an alarm of no stated method, type `other`.
    const rawMethod = (childText(el, 'AlarmMethod') ?? '').trim();
    const method = rawMethod === '' ? 0 : Number(rawMethod);
    if (!/^\d{1,2}$/.test(rawMethod || '0') || !Number.isInteger(method) || method < 0 || method > 99) {
      malformedInput.inc({ source: 'sip', reason: 'alarm_method' });
      return this.endpoint.reply(req, peer, 400, 'alarm', key);
    }
    const info = child(el, 'Info');
    const rawType = (info && childText(info, 'AlarmType')) ?? childText(el, 'AlarmType');
    const type = rawType && /^\d{1,3}$/.test(rawType) ? Number(rawType) : null;
    const rawPriority = (childText(el, 'AlarmPriority') ?? '').trim();
    const priority = /^[1-4]$/.test(rawPriority) ? Number(rawPriority) : null;
    const time = childText(el, 'AlarmTime') ?? '';
    const at = parseGbTime(time);
    const channel = GB_ID_PATTERN.test(doc.deviceId) ? doc.deviceId : state.deviceId;
    const cams = await this.provisioning.gbDeviceCameras(state.deviceId);
    const cam = cams.find((c) => c.channelId === channel) ?? (channel === state.deviceId && cams.length === 1 ? cams[0] : undefined);
    const incidentType = incidentTypeOf(method, type);
    const incidentPriority: Priority | undefined = priority === null ? undefined : this.priorities[String(priority) as keyof Gb28181Config['alarmPriorities']];
    // Deterministic: a device repeating the alarm (new transaction, same SN and time) folds into the same incident.
    const eventId = `gb28181:${state.deviceId}:${channel}:${doc.sn}:${at ? at.toISOString() : time}`.slice(0, 200);
    const note = alarmNote({
      method,
      type,
      priority,
      description: (childText(el, 'AlarmDescription') ?? '').slice(0, 500),
      time,
      longitude: childText(el, 'Longitude'),
      latitude: childText(el, 'Latitude'),
    });
    const name = `GB28181 ${state.deviceId}`;
    const requestId = `sip-${req.callId}`.slice(0, 100);
    if (!cam) {
      // A channel not placed in a school yet: raised at the device's school, or for the district to place.
      sipEvents.inc({ event: 'alarm_unplaced' });
      const actor: Actor = { type: 'device', id: unplacedChannelKey(state.deviceId, channel), name };
      await requestContext.run({ requestId, ip: peer.address, actor }, () =>
        this.intake.raiseFromUnplacedGbChannel(
          { gbDeviceId: state.deviceId, channelId: channel, schoolId: state.schoolId, eventId, type: incidentType, priority: incidentPriority, note },
          actor,
        ),
      );
    } else {
      const actor: Actor = { type: 'device', id: cam.id, name };
      await requestContext.run({ requestId, ip: peer.address, actor }, () =>
        this.intake.raiseFromDevice({ deviceKind: 'camera', deviceId: cam.id, eventId, type: incidentType, priority: incidentPriority, note }, actor),
      );
    }
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
