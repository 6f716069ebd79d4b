import { HttpStatus, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { DomainError, ErrorCode } from '../../infra/http/errors';
import { storableText } from '../../infra/text/storable';
import { DeviceHealthService } from '../device-health';
import { GbProvisioningService } from '../registry';
import { gbTime, parseGbTime } from './gb-codes';
import { DeviceState, GbDeviceStates } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { Gb28181Store } from './gb28181.store';
import { buildManscdp, child, childText, ManscdpField, ManscdpMessage } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';

/** A DeviceControl command (GB/T 28181-2016 §A.2.3.1) operators send. */
export type ControlCommand =
  | { kind: 'teleboot' }
  | { kind: 'guard'; arm: boolean }
  | { kind: 'reset_alarm'; alarmMethod?: string; alarmType?: string }
  | { kind: 'record'; start: boolean };

/** The DeviceControl element of a command (§A.2.3.1.2–1.5): what the device is told. */
export function controlFields(cmd: ControlCommand): ManscdpField[] {
  switch (cmd.kind) {
    case 'teleboot':
      return [['TeleBoot', 'Boot']];
    case 'guard':
      return [['GuardCmd', cmd.arm ? 'SetGuard' : 'ResetGuard']];
    case 'reset_alarm': {
      // Info narrows the reset to one alarm method / type (§A.2.3.1.4); without it every alarm of the target is reset.
      const info: ManscdpField[] = [];
      if (cmd.alarmMethod) info.push(['AlarmMethod', cmd.alarmMethod]);
      if (cmd.alarmType) info.push(['AlarmType', cmd.alarmType]);
      return info.length
        ? [
            ['AlarmCmd', 'ResetAlarm'],
            ['Info', info],
          ]
        : [['AlarmCmd', 'ResetAlarm']];
    }
    case 'record':
      return [['RecordCmd', cmd.start ? 'Record' : 'StopRecord']];
  }
}

/** A device's keepalive settings from its BasicParam (§A.2.6.8), and what the platform applies of them. */
export interface BasicParam {
  deviceId: string;
  name: string | null;
  expiration: number | null;
  heartBeatInterval: number | null;
  heartBeatCount: number | null;
  /** Seconds of silence before its cameras are offline: interval × count capped at gb28181.heartbeatMaxOfflineSeconds; null when not learned. */
  offlineAfterSeconds: number | null;
}

/** One recording on the device (§A.2.6.9 RecordList Item). */
export interface RecordItem {
  deviceId: string;
  name: string;
  filePath: string;
  address: string;
  startTime: string | null;
  endTime: string | null;
  secrecy: number | null;
  type: string;
  recorderId: string;
  fileSize: number | null;
}

export interface RecordInfoResult {
  deviceId: string;
  channelId: string;
  /**
   * The device's SumNum, raised to the distinct recordings received when it sent more than it
   * declared (a SumNum of 0 with an Item), so that `items.length + omitted <= sumNum` always holds.
   */
  sumNum: number;
  /** Distinct recordings received (repeats of one, e.g. a part sent twice, count once) reached SumNum before gb28181.recordInfoTimeoutMs. */
  complete: boolean;
  items: RecordItem[];
  /** Items past gb28181.recordInfoMaxItems, counted and not listed. */
  omitted: number;
}

/** What a device says of itself or one of its channels in a DeviceStatus Response (GB/T 28181-2016 §A.2.6.5). Words it sends that the standard does not know are null. */
export interface DeviceStatusResult {
  deviceId: string;
  /** The device, or the channel asked about. */
  targetId: string;
  sn: number;
  /** Online: ONLINE / OFFLINE (ON / OFF as some firmware sends them). */
  online: 'ONLINE' | 'OFFLINE' | null;
  /** Status: OK (working) / ERROR, with the device's Reason. */
  status: 'OK' | 'ERROR' | null;
  reason: string | null;
  /** Encode / Record: ON / OFF, absent on devices that do not report them. */
  encode: 'ON' | 'OFF' | null;
  record: 'ON' | 'OFF' | null;
  /** DeviceTime (the device's clock, Asia/Shanghai when it names no zone), ISO 8601 UTC. */
  deviceTime: string | null;
  /** Alarmstatus: each alarm input's DutyStatus (ONDUTY armed, OFFDUTY disarmed, ALARM alarming); at most ALARM_STATUS_KEPT. */
  alarmStatus: { deviceId: string; dutyStatus: 'ONDUTY' | 'OFFDUTY' | 'ALARM' | null }[];
}

/** Alarmstatus items kept of one DeviceStatus answer (an NVR lists one per alarm input; more are left out). */
const ALARM_STATUS_KEPT = 512;

/** A word of a DeviceStatus answer, upper-cased, mapped to the standard's: unknown → null. */
const statusWord = <T extends string>(s: string | undefined, map: Record<string, T>): T | null => map[(s ?? '').trim().toUpperCase()] ?? null;

interface Waiter {
  /** A Response of this device, command type and SN: true when it was the last one awaited. */
  onAnswer: (doc: ManscdpMessage) => boolean;
  fail: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

const gbError = {
  offline: (deviceId: string) => new DomainError(HttpStatus.CONFLICT, ErrorCode.GB28181.NOT_REGISTERED, `设备 ${deviceId} 未注册（离线），无法下发命令`),
  timeout: (deviceId: string, what: string, ms: number) =>
    new DomainError(HttpStatus.GATEWAY_TIMEOUT, ErrorCode.GB28181.DEVICE_TIMEOUT, `设备 ${deviceId} 未在 ${ms} ms 内应答 ${what}`, { timeoutMs: ms }),
  refused: (deviceId: string, what: string, details: Record<string, unknown>) =>
    new DomainError(HttpStatus.BAD_GATEWAY, ErrorCode.GB28181.DEVICE_REFUSED, `设备 ${deviceId} 拒绝了 ${what}`, details),
  notRunning: () => new DomainError(HttpStatus.SERVICE_UNAVAILABLE, ErrorCode.GB28181.SIP_NOT_RUNNING, 'GB/T 28181 SIP 服务未在此进程运行'),
};

/** BasicParam requests remembered per device until answered (the oldest forgotten past it). */
const ASKED_KEPT = 4;

const int = (s: string | undefined, min: number, max: number): number | null => {
  const t = (s ?? '').trim();
  if (!/^\d{1,9}$/.test(t)) return null;
  const n = Number(t);
  return n >= min && n <= max ? n : null;
};

/**
 * What operators ask of a device (issue 16 §6): DeviceControl (TeleBoot, GuardCmd, AlarmCmd
 * ResetAlarm, RecordCmd; §9.3, §A.2.3.1), ConfigDownload BasicParam (§9.5, §A.2.4.7) whose
 * HeartBeatInterval × HeartBeatCount becomes the device's liveness threshold, and RecordInfo
 * (§9.7, §A.2.4.5) assembled from its parts (SumNum). A command is a MESSAGE (the device's 200
 * only says it took it) and its answer a Response MESSAGE with the same SN, matched here
 * (`onResponse`, from SipServer); every wait ends within gb28181.commandTimeoutMs /
 * recordInfoTimeoutMs. Devices speak to the process that runs the SIP server: elsewhere the
 * routes answer 503 GB28181.SIP_NOT_RUNNING.
 */
@Injectable()
export class GbCommands {
  private readonly cfg: Gb28181Config;
  /** Answers awaited, by `deviceId \n CmdType \n SN`. */
  private readonly waiters = new Map<string, Waiter>();
  /**
   * The SNs of the ConfigDownload BasicParam requests sent to each device and not answered yet
   * (the last ASKED_KEPT): only an answer to one of them is learned — also when it comes after its
   * wait. A ConfigDownload "answer" nobody asked for (a device setting its own offline threshold,
   * say 86400 s × 1000 to never be marked offline) is not.
   */
  private readonly askedBasicParam = new Map<string, string[]>();
  running = false;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly states: GbDeviceStates,
    private readonly client: SipClient,
    private readonly store: Gb28181Store,
    private readonly endpoint: SipEndpoint,
    private readonly provisioning: GbProvisioningService,
    private readonly health: DeviceHealthService,
  ) {
    this.cfg = config.gb28181;
  }

  /** The device, registered here, or the route's error (503 not running here, 409 not registered). */
  private registered(deviceId: string): DeviceState {
    if (!this.running) throw gbError.notRunning();
    const s = this.states.devices.get(deviceId);
    if (!s || !s.registered || s.expiresAt <= Date.now() || !s.peer) throw gbError.offline(deviceId);
    return s;
  }

  /**
   * Sends a MANSCDP request and awaits its answer: `collect` sees each Response of this device,
   * command and SN and returns the result once it has all it needs (null = more parts to come).
   * The waiter is in place before the MESSAGE leaves (a device may answer before its 200 arrives).
   * `partial` gives what to answer when time runs out with parts received (null = 504).
   */
  private ask<T>(
    state: DeviceState,
    what: string,
    cmdType: string,
    sn: number,
    body: Buffer,
    o: { timeoutMs: number; collect: (doc: ManscdpMessage) => T | null; partial?: () => T | null; answered?: boolean },
  ): Promise<T> {
    const key = `${state.deviceId}\n${cmdType}\n${sn}`;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        if (w.timer) clearTimeout(w.timer);
        this.waiters.delete(key);
        f();
      };
      const w: Waiter = {
        onAnswer: (doc) => {
          const r = o.collect(doc);
          if (r === null) return false;
          finish(() => resolve(r));
          return true;
        },
        fail: (e) => finish(() => reject(e)),
        timer: null,
      };
      w.timer = setTimeout(() => {
        const r = o.partial?.() ?? null;
        sipEvents.inc({ event: r === null ? 'command_timeout' : 'command_partial' });
        finish(() => (r === null ? reject(gbError.timeout(state.deviceId, what, o.timeoutMs)) : resolve(r)));
      }, o.timeoutMs);
      w.timer.unref();
      this.waiters.set(key, w);
      this.client.sendMessage(state, body).then(
        (status) => {
          if (status >= 200 && status < 300) return;
          sipEvents.inc({ event: 'command_not_taken' });
          if (status === 408) w.fail(gbError.timeout(state.deviceId, what, this.cfg.queryTimeoutMs));
          else if (status === 503 && !this.running) w.fail(gbError.notRunning());
          else if (status === 503) w.fail(gbError.offline(state.deviceId));
          else w.fail(gbError.refused(state.deviceId, what, { sipStatus: status }));
        },
        (e: Error) => w.fail(e),
      );
    });
  }

  /**
   * A DeviceControl command to the device or one of its channels (`targetId`). TeleBoot has no
   * answer (§A.2.3.1.2: the device reboots), so the device's 200 is the result; the others
   * resolve with the device's `<Result>` OK, and a Result ERROR is 502 GB28181.DEVICE_REFUSED.
   */
  async control(deviceId: string, targetId: string, cmd: ControlCommand): Promise<{ deviceId: string; targetId: string; result: 'OK' | 'SENT'; sn: number }> {
    const state = this.registered(deviceId);
    const sn = this.client.nextSn();
    const body = buildManscdp('Control', [['CmdType', 'DeviceControl'], ['SN', sn], ['DeviceID', targetId], ...controlFields(cmd)]);
    const what = `DeviceControl ${controlFields(cmd)[0][1]}`;
    sipEvents.inc({ event: `control_${cmd.kind}` });
    if (cmd.kind === 'teleboot') {
      const status = await this.client.sendMessage(state, body);
      if (status === 408) throw gbError.timeout(deviceId, what, this.cfg.queryTimeoutMs);
      if (status === 503) throw this.running ? gbError.offline(deviceId) : gbError.notRunning();
      if (status < 200 || status >= 300) throw gbError.refused(deviceId, what, { sipStatus: status });
      return { deviceId, targetId, result: 'SENT', sn };
    }
    const result = await this.ask(state, what, 'DeviceControl', sn, body, {
      timeoutMs: this.cfg.commandTimeoutMs,
      collect: (doc) => (childText(doc.el, 'Result') ?? '').trim().toUpperCase(),
    });
    if (result !== 'OK') throw gbError.refused(deviceId, what, { result: storableText(result, 20) || null });
    return { deviceId, targetId, result: 'OK', sn };
  }

  /**
   * ConfigDownload BasicParam (§A.2.4.7): the device's keepalive settings, learned and applied to
   * its cameras' liveness (`learnBasicParam`). Resolves with what the device reported.
   */
  async basicParam(deviceId: string): Promise<BasicParam> {
    const state = this.registered(deviceId);
    return this.queryBasicParam(state);
  }

  private queryBasicParam(state: DeviceState): Promise<BasicParam> {
    const sn = this.client.nextSn();
    const asked = (this.askedBasicParam.get(state.deviceId) ?? []).concat(String(sn)).slice(-ASKED_KEPT);
    this.askedBasicParam.set(state.deviceId, asked);
    const body = buildManscdp('Query', [
      ['CmdType', 'ConfigDownload'],
      ['SN', sn],
      ['DeviceID', state.deviceId],
      ['ConfigType', 'BasicParam'],
    ]);
    return this.ask(state, 'ConfigDownload BasicParam', 'ConfigDownload', sn, body, {
      timeoutMs: this.cfg.commandTimeoutMs,
      collect: (doc) => doc,
    }).then(async (doc) => {
      this.takeAsked(state.deviceId, doc.sn);
      const result = (childText(doc.el, 'Result') ?? 'OK').trim().toUpperCase();
      if (result !== 'OK' || !child(doc.el, 'BasicParam'))
        throw gbError.refused(state.deviceId, 'ConfigDownload BasicParam', { result: storableText(result, 20) || null });
      return this.learnBasicParam(state, doc);
    });
  }

  /**
   * After a (re)registration: the device's BasicParam, best effort (a device that does not answer
   * keeps the liveness default; nothing is retried until it registers again).
   */
  queryOnRegister(state: DeviceState): void {
    if (!this.cfg.basicParamOnRegister || !this.running) return;
    void this.queryBasicParam(state).catch((e) => {
      sipEvents.inc({ event: 'basic_param_failed' });
      if (!(e instanceof DomainError)) this.endpoint.warn(`BasicParam of ${state.deviceId} not learned: ${(e as Error).message}`);
    });
  }

  /**
   * Records a BasicParam answer: HeartBeatInterval and HeartBeatCount as reported, and the silence
   * after which the device's cameras are offline (interval × count, at most
   * gb28181.heartbeatMaxOfflineSeconds); a changed threshold reaches the liveness index of every
   * process (its cameras are marked changed) and this one's at once. Values out of range
   * (interval 1–86400 s, count 1–1000) are not learned. The device's Password is never read.
   */
  private async learnBasicParam(state: DeviceState, doc: ManscdpMessage): Promise<BasicParam> {
    const bp = child(doc.el, 'BasicParam')!;
    const interval = int(childText(bp, 'HeartBeatInterval'), 1, 86400);
    const count = int(childText(bp, 'HeartBeatCount'), 1, 1000);
    const offlineAfter = interval !== null && count !== null ? Math.min(interval * count, this.cfg.heartbeatMaxOfflineSeconds) : null;
    const out: BasicParam = {
      deviceId: state.deviceId,
      name: childText(bp, 'Name') !== undefined ? storableText(childText(bp, 'Name')!, 200) : null,
      expiration: int(childText(bp, 'Expiration'), 0, 10 * 365 * 86400),
      heartBeatInterval: interval,
      heartBeatCount: count,
      offlineAfterSeconds: offlineAfter,
    };
    if (offlineAfter === null) {
      sipEvents.inc({ event: 'basic_param_unusable' });
      return out;
    }
    const changed = await this.store.setHeartbeat(state.deviceId, { interval: interval!, count: count!, offlineAfterSeconds: offlineAfter });
    sipEvents.inc({ event: 'basic_param_learned' });
    if (changed) {
      await this.provisioning.gbLivenessChanged(state.deviceId);
      await this.health.refreshIndex(); // the single-flight path (a load after this commit), never a load beside the periodic one
    }
    return out;
  }

  /**
   * RecordInfo (§A.2.4.5): the recordings of a channel (or the device) between two instants, of a
   * type (all, time, alarm, manual), from all parts of the answer (SumNum, like a Catalog). Parts
   * missing when gb28181.recordInfoTimeoutMs runs out: what arrived, `complete: false`; none: 504.
   */
  async recordInfo(deviceId: string, channelId: string, q: { start: Date; end: Date; type: string }): Promise<RecordInfoResult> {
    const state = this.registered(deviceId);
    const sn = this.client.nextSn();
    const body = buildManscdp('Query', [
      ['CmdType', 'RecordInfo'],
      ['SN', sn],
      ['DeviceID', channelId],
      ['StartTime', gbTime(q.start).slice(0, 19)],
      ['EndTime', gbTime(q.end).slice(0, 19)],
      ['Secrecy', 0],
      ['Type', q.type],
    ]);
    const max = this.cfg.recordInfoMaxItems;
    const acc: RecordInfoResult = { deviceId, channelId, sumNum: -1, complete: false, items: [], omitted: 0 };
    // Distinct recordings: a device repeating a part (or an item) must neither list it twice nor complete the answer with it.
    const seen = new Set<string>();
    const text = (el: Parameters<typeof childText>[0], name: string, len: number) => storableText((childText(el, name) ?? '').trim(), len);
    const time = (s: string | undefined) => parseGbTime(s)?.toISOString() ?? null;
    return this.ask(state, 'RecordInfo', 'RecordInfo', sn, body, {
      timeoutMs: this.cfg.recordInfoTimeoutMs,
      partial: () => (acc.sumNum >= 0 ? acc : null),
      collect: (doc) => {
        const sumNum = int(childText(doc.el, 'SumNum'), 0, 10_000_000);
        if (sumNum === null) return null; // a part we cannot count: not taken
        acc.sumNum = Math.max(acc.sumNum, sumNum);
        for (const item of child(doc.el, 'RecordList')?.children ?? []) {
          if (item.name !== 'Item') continue;
          const filePath = (childText(item, 'FilePath') ?? '').trim();
          const key = filePath
            ? `f\n${filePath}`
            : [
                't',
                (childText(item, 'DeviceID') ?? '').trim(),
                time(childText(item, 'StartTime')),
                time(childText(item, 'EndTime')),
                (childText(item, 'Type') ?? '').trim(),
              ].join('\n');
          if (seen.has(key)) continue;
          seen.add(key);
          if (acc.items.length >= max) {
            acc.omitted++;
            continue;
          }
          acc.items.push({
            deviceId: text(item, 'DeviceID', 20),
            name: text(item, 'Name', 200),
            filePath: text(item, 'FilePath', 500),
            address: text(item, 'Address', 200),
            startTime: time(childText(item, 'StartTime')),
            endTime: time(childText(item, 'EndTime')),
            secrecy: int(childText(item, 'Secrecy'), 0, 9),
            type: text(item, 'Type', 20),
            recorderId: text(item, 'RecorderID', 20),
            fileSize: int(childText(item, 'FileSize'), 0, 999_999_999),
          });
        }
        // More distinct recordings than the device declared: it has sent at least these, SumNum says so too.
        acc.sumNum = Math.max(acc.sumNum, seen.size);
        if (seen.size < acc.sumNum) return null;
        acc.complete = true;
        sipEvents.inc({ event: 'record_info_complete' });
        return acc;
      },
    }).then((r) => {
      r.items.sort((a, b) => (a.startTime ?? '').localeCompare(b.startTime ?? ''));
      return r;
    });
  }

  /**
   * DeviceStatus (§9.5.2, query §A.2.4.4, answer §A.2.6.5): what the device (or one of its channels,
   * `targetId`) says of itself — online, working, encoding, recording, its clock and each alarm
   * input's duty status. Within gb28181.commandTimeoutMs, else 504; a Result other than OK is 502
   * GB28181.DEVICE_REFUSED. The answer also reaches the channel-status handler as any DeviceStatus
   * answer does (SipServer): a channel reported offline is taken offline.
   */
  async deviceStatus(deviceId: string, targetId: string): Promise<DeviceStatusResult> {
    const state = this.registered(deviceId);
    const sn = this.client.nextSn();
    const body = buildManscdp('Query', [
      ['CmdType', 'DeviceStatus'],
      ['SN', sn],
      ['DeviceID', targetId],
    ]);
    sipEvents.inc({ event: 'device_status_asked' });
    const doc = await this.ask(state, 'DeviceStatus', 'DeviceStatus', sn, body, { timeoutMs: this.cfg.commandTimeoutMs, collect: (d) => d });
    const result = (childText(doc.el, 'Result') ?? 'OK').trim().toUpperCase();
    if (result !== 'OK') throw gbError.refused(deviceId, 'DeviceStatus', { result: storableText(result, 20) || null });
    const el = doc.el;
    const alarms = child(el, 'Alarmstatus') ?? child(el, 'AlarmStatus');
    const reason = (childText(el, 'Reason') ?? '').trim();
    return {
      deviceId,
      targetId,
      sn,
      online: statusWord(childText(el, 'Online'), { ONLINE: 'ONLINE', ON: 'ONLINE', OFFLINE: 'OFFLINE', OFF: 'OFFLINE' }),
      status: statusWord(childText(el, 'Status'), { OK: 'OK', ON: 'OK', ERROR: 'ERROR' }),
      reason: reason ? storableText(reason, 200) : null,
      encode: statusWord(childText(el, 'Encode'), { ON: 'ON', OFF: 'OFF' }),
      record: statusWord(childText(el, 'Record'), { ON: 'ON', OFF: 'OFF' }),
      deviceTime: parseGbTime(childText(el, 'DeviceTime'))?.toISOString() ?? null,
      alarmStatus: (alarms?.children ?? [])
        .filter((c) => c.name === 'Item')
        .slice(0, ALARM_STATUS_KEPT)
        .map((item) => ({
          deviceId: storableText((childText(item, 'DeviceID') ?? '').trim(), 20),
          dutyStatus: statusWord(childText(item, 'DutyStatus'), { ONDUTY: 'ONDUTY', OFFDUTY: 'OFFDUTY', ALARM: 'ALARM' }),
        })),
    };
  }

  /** Whether `sn` is an unanswered BasicParam request of ours to the device; it is answered now (one answer per request). */
  private takeAsked(deviceId: string, sn: string): boolean {
    const asked = this.askedBasicParam.get(deviceId);
    const i = asked?.indexOf(String(sn)) ?? -1;
    if (i < 0) return false;
    asked!.splice(i, 1);
    if (asked!.length === 0) this.askedBasicParam.delete(deviceId);
    return true;
  }

  /**
   * A Response MESSAGE of a registered device (already answered 200): handed to the command
   * awaiting it. A BasicParam answering a request of ours that nobody awaits any more (it came
   * after the wait) is still learned; one answering no request of ours (device + CmdType + SN) is not.
   * Returns false when it is no answer to a command of ours (the caller treats it as before).
   * A DeviceStatus answer is only handed to an operator's query waiting for it (false otherwise:
   * the housekeeping queries' answers are not awaited here); SipServer gives every one to the
   * channel-status handler as well.
   */
  onResponse(state: DeviceState, doc: ManscdpMessage): boolean {
    if (doc.cmdType !== 'DeviceControl' && doc.cmdType !== 'ConfigDownload' && doc.cmdType !== 'RecordInfo' && doc.cmdType !== 'DeviceStatus') return false;
    const w = this.waiters.get(`${state.deviceId}\n${doc.cmdType}\n${doc.sn}`);
    if (!w && doc.cmdType === 'DeviceStatus') return false;
    if (w) {
      try {
        w.onAnswer(doc);
      } catch (e) {
        w.fail(e as Error);
      }
      return true;
    }
    sipEvents.inc({ event: 'command_answer_unmatched' });
    if (doc.cmdType === 'ConfigDownload' && child(doc.el, 'BasicParam') && (childText(doc.el, 'Result') ?? 'OK').trim().toUpperCase() === 'OK') {
      if (!this.takeAsked(state.deviceId, doc.sn)) {
        sipEvents.inc({ event: 'basic_param_unrequested' });
        return true;
      }
      this.learnBasicParam(state, doc).catch((e) => this.endpoint.warn(`BasicParam of ${state.deviceId} not saved: ${(e as Error).message}`));
    }
    return true;
  }

  /** Shutdown: every command still waiting ends (503). */
  stop(): void {
    this.running = false;
    for (const w of [...this.waiters.values()]) w.fail(gbError.notRunning());
    this.waiters.clear();
  }
}
