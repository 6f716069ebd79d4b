import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { Actor, requestContext } from '../../infra/http/request-context';
import { malformedInput } from '../../infra/observability/metrics';
import { storableText } from '../../infra/text/storable';
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
 * Which alarms are repeats of one already taken (the same press): the same transaction (Call-ID and
 * CSeq, RFC 3261 §17.2.2), or the same channel, SN and AlarmTime, within `windowMs`
 * (gb28181.alarmRepeatWindowMs, Timer F). A repeat gets the first one's event id, so the intake folds
 * it; past the window the same SN is a new alarm with a new event id — SNs restart with the device
 * (a reboot, no clock: the same SN and time text again), so they never identify an alarm for ever.
 * In memory (one process owns the SIP port), at most `maxKeys` remembered, oldest forgotten first.
 */
export class AlarmRepeats {
  private readonly seen = new Map<string, { eventId: string; at: number }>();
  private n = 0;

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  /** The event id of this alarm: a repeat's first one, else a new one (`gb28181:<device>:<channel>:<SN>:<first seen, base 36>.<n>`). */
  eventId(deviceId: string, channel: string, sn: string, time: string, tx: { callId: string; cseq: { seq: number } }, now: number): string {
    for (const [k, v] of this.seen) {
      if (now - v.at < this.windowMs && this.seen.size < this.maxKeys) break;
      this.seen.delete(k);
    }
    const byTx = `t\n${deviceId}\n${tx.callId}\n${tx.cseq.seq}`;
    const bySn = sn === '' ? null : `s\n${deviceId}\n${channel}\n${sn}\n${time}`;
    const hit = this.seen.get(byTx) ?? (bySn === null ? undefined : this.seen.get(bySn));
    const entry = hit ?? { eventId: `gb28181:${deviceId}:${channel}:${sn}:${now.toString(36)}.${++this.n}`.slice(0, 200), at: now };
    if (!this.seen.has(byTx)) this.seen.set(byTx, entry);
    if (bySn !== null && !this.seen.has(bySn)) this.seen.set(bySn, entry);
    return entry.eventId;
  }
}

/**
 * Alarm notifications (§9.4) → the alarm pipeline: the incident is committed before the device
 * gets its 200, then the platform confirms with a Response MESSAGE (§9.4.2). No alarm of a
 * registered device is dropped: a channel not placed in a school raises at the device's school, or
 * as an unplaced device alarm the district sees; a missing or 0 AlarmMethod is type `other`.
 * AlarmPriority 1–4 sets the priority (gb28181.alarmPriorities), else the type's priority. Odd
 * fields (AlarmMethod `video` / `5/6` / `-1` / `100`, an AlarmType or AlarmPriority that is not a
 * number, a DeviceID that is not an id) never refuse the alarm: they are named in the note.
 */
@Injectable()
export class GbAlarms {
  private readonly priorities: Gb28181Config['alarmPriorities'];
  private readonly repeats: AlarmRepeats;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly client: SipClient,
    private readonly provisioning: GbProvisioningService,
    private readonly intake: AlarmIntakeService,
  ) {
    this.priorities = config.gb28181.alarmPriorities;
    this.repeats = new AlarmRepeats(config.gb28181.alarmRepeatWindowMs, config.gb28181.alarmRepeatMaxKeys);
  }

  /** An Alarm Notify from a registered device; `key` is its transaction (marked as being worked on). */
  async onAlarm(req: SipRequest, peer: Peer, key: string, state: DeviceState, doc: ManscdpMessage): Promise<void> {
    const el = doc.el;
    // Never lose an alarm for an odd field: what cannot be read is type `other` / the type's priority, and goes into the note.
    const unreadable: string[] = [];
    const odd = (name: string, raw: string) => {
      unreadable.push(`${name}=${raw.slice(0, 40)}`);
      malformedInput.inc({ source: 'sip', reason: `alarm_${name === 'AlarmMethod' ? 'method' : 'field'}` });
    };
    // Missing, empty or 0 (devices that leave it unset): an alarm of no stated method, type `other`.
    const rawMethod = (childText(el, 'AlarmMethod') ?? '').trim();
    const method = /^\d{1,2}$/.test(rawMethod) ? Number(rawMethod) : 0;
    if (rawMethod !== '' && !/^\d{1,2}$/.test(rawMethod)) odd('AlarmMethod', rawMethod);
    const info = child(el, 'Info');
    const rawType = ((info && childText(info, 'AlarmType')) ?? childText(el, 'AlarmType') ?? '').trim();
    const type = /^\d{1,3}$/.test(rawType) ? Number(rawType) : null;
    if (rawType !== '' && type === null) odd('AlarmType', rawType);
    const rawPriority = (childText(el, 'AlarmPriority') ?? '').trim();
    const priority = /^[1-4]$/.test(rawPriority) ? Number(rawPriority) : null;
    if (rawPriority !== '' && priority === null) odd('AlarmPriority', rawPriority);
    const time = childText(el, 'AlarmTime') ?? '';
    const at = parseGbTime(time);
    const channel = GB_ID_PATTERN.test(doc.deviceId) ? doc.deviceId : state.deviceId;
    if (doc.deviceId !== '' && channel !== doc.deviceId) odd('DeviceID', doc.deviceId);
    const cams = await this.provisioning.gbDeviceCameras(state.deviceId);
    const cam = cams.find((c) => c.channelId === channel) ?? (channel === state.deviceId && cams.length === 1 ? cams[0] : undefined);
    const incidentType = incidentTypeOf(method, type);
    const incidentPriority: Priority | undefined = priority === null ? undefined : this.priorities[String(priority) as keyof Gb28181Config['alarmPriorities']];
    const eventId = this.repeats.eventId(state.deviceId, channel, doc.sn, at ? at.toISOString() : time, req, Date.now());
    const note = alarmNote({
      method,
      type,
      priority,
      description: storableText(childText(el, 'AlarmDescription') ?? '', 500),
      time,
      longitude: childText(el, 'Longitude'),
      latitude: childText(el, 'Latitude'),
      unreadable,
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
        this.intake.raiseFromDevice(
          {
            deviceKind: 'camera',
            deviceId: cam.id,
            eventId,
            type: incidentType,
            priority: incidentPriority,
            note,
            // Not floored at the type's default, unlike HTTP device reports and buttons (attack A6): a product decision,
            // kept as it was. A GB/T 28181 device classifies its alarm itself (AlarmPriority 1–4, 一级…四级警情, §A.2.6.4),
            // mapped by the district's table gb28181.alarmPriorities; that level is taken as the device states it.
            // Changing it is the product owner's call — the floor is one option away (priorityFloor 'type').
            priorityFloor: 'none',
          },
          actor,
        ),
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
