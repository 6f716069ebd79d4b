import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../config/config';
import { malformedInput } from '../../infra/observability/metrics';
import { GB_ID_PATTERN } from '../registry';
import { GbAlarms } from './gb-alarms';
import { GbCascade } from './gb-cascade';
import { GbCameras } from './gb-cameras';
import { GbCatalog } from './gb-catalog';
import { GbCommands } from './gb-commands';
import { GbChannelStatus } from './gb-channel-status';
import { fromRegisteredHost, fromRegisteredPeer, GbDeviceStates, LiveRegistration } from './gb-device-states';
import { sipEvents } from './gb28181.metrics';
import { InviteError, PlayAnswer, PlayRequest } from './invite-client';
import { GbKeepalive } from './gb-keepalive';
import { GbRegistrar } from './gb-registrar';
import type { Gb28181Config } from '../../config/sections';
import { sipDomain } from './gb28181.config';
import { scanKeepalive } from './keepalive-fast';
import { childText, ManscdpMessage, parseManscdp, XmlError } from './manscdp';
import { SipClient } from './sip-client';
import { SipEndpoint } from './sip-endpoint';
import { header, parseSip, SipParseError, SipRequest } from './sip-message';
import { Peer } from './sip-transport';
import { SipWorkers } from './sip-workers';

const ALLOW: [string, string] = ['Allow', 'REGISTER, MESSAGE, NOTIFY, OPTIONS, ACK, BYE'];

/** The Warning text of a 400 for each parse fault of an identified request. */
const PARSE_FAULTS: Record<string, string> = {
  truncated_body: 'Content-Length exceeds the body',
  bad_content_length: 'Content-Length must be a non-negative integer',
  'duplicate_content-length': 'more than one Content-Length',
  too_many_headers: 'more than 100 headers',
  bad_cseq: 'CSeq number must be below 2**31',
  cseq_method_mismatch: 'CSeq method differs from the request method',
  'bad_call-id': 'Call-ID longer than 256 characters or holding white space',
};

/**
 * The GB/T 28181 SIP front end: device registration (digest), keepalives into device health,
 * alarms into the alarm pipeline, and the platform's Catalog / DeviceInfo queries whose answers
 * provision channels as registry cameras. Runs in the api role (and all); one process owns the
 * SIP port. This class starts and stops the pieces and routes each message to the one that
 * handles it: REGISTER → GbRegistrar, MESSAGE (MANSCDP, by root and CmdType) → GbKeepalive /
 * GbAlarms / GbCatalog / GbCommands (from a superior platform: GbCascade), responses → SipClient. New methods and commands get a handler and a line here.
 */
@Injectable()
export class SipServer {
  private readonly cfg: Gb28181Config;
  private readonly domain: string;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
    private readonly states: GbDeviceStates,
    private readonly client: SipClient,
    private readonly registrar: GbRegistrar,
    private readonly keepalive: GbKeepalive,
    private readonly alarms: GbAlarms,
    private readonly catalog: GbCatalog,
    private readonly channels: GbChannelStatus,
    private readonly commands: GbCommands,
    private readonly cascade: GbCascade,
    private readonly workers: SipWorkers,
    private readonly cameras: GbCameras,
  ) {
    this.cfg = config.gb28181;
    this.domain = sipDomain(this.cfg);
  }

  get port(): number {
    return this.endpoint.port;
  }

  get running(): boolean {
    return this.endpoint.running;
  }

  /** A device's registration as this process sees it (null: never seen). */
  live(deviceId: string): LiveRegistration | null {
    return this.states.live(deviceId);
  }

  /**
   * Real-time play of a channel of a registered device (GB/T 28181 §9.2): INVITE where the device
   * last spoke from, ACK; the dialog ends with `bye()` or the device's BYE (`onEnded`). Rejects with
   * InviteError (`offline` when it is not registered here).
   */
  invite(req: PlayRequest): Promise<{ answer: PlayAnswer; bye: () => void; onEnded: (cb: (why: string) => void) => void }> {
    const s = this.states.devices.get(req.deviceId);
    if (!this.running || !s || !s.registered || s.expiresAt <= Date.now())
      return Promise.reject(new InviteError('offline', `device ${req.deviceId} is not registered`));
    return this.client.invite({ deviceId: req.deviceId, peer: s.peer }, req);
  }

  async start(): Promise<void> {
    const n = await this.states.load();
    // A restart is not an outage of the devices: their cameras get a grace before the sweep may call them offline (wvp-GB28181-pro #814).
    if (this.cfg.restartGraceSeconds > 0)
      await this.cameras
        .restartGrace(Date.now() + this.cfg.restartGraceSeconds * 1000)
        .catch((e) => this.endpoint.warn(`restart grace not applied: ${(e as Error).message}`));
    await this.endpoint.start(
      (buf, peer) => this.onMessage(buf, peer),
      (buf, peer) => this.onOversized(buf, peer),
    );
    // More SIP processes on the same socket (gb28181.processes): keepalives of UDP devices are answered by all of them.
    await this.workers.start((ids) => this.keepalive.onRemote(ids));
    const t = setInterval(
      () => void this.housekeeping().catch((e) => this.endpoint.warn(`housekeeping failed: ${(e as Error).message}`)),
      this.cfg.housekeepingMs,
    );
    t.unref();
    this.timers.push(t);
    this.commands.running = true;
    this.cascade.start();
    this.endpoint.log(
      `SIP server on ${this.cfg.host}:${this.port} (UDP+TCP), domain ${this.domain}, ${n} registration(s) resumed, ${1 + this.workers.serving} SIP process(es)`,
    );
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.cascade.stop(); // withdraws our registrations upward while the socket is open
    this.keepalive.stopTimer();
    this.catalog.stop();
    this.commands.stop();
    this.client.stop();
    await this.workers.stop();
    await this.endpoint.stop();
    await this.keepalive.flush().catch(() => undefined);
    await this.states.flushRegistrations().catch(() => undefined);
  }

  /** Expired registrations go offline; nonce counts and rate-limit buckets are pruned; registration state is written. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    await this.registrar.expireDue(now);
    this.channels.queryInDoubt(now);
    this.endpoint.prune(now);
    await this.states.flushRegistrations();
  }

  // ------------------------------------------------------------------ dispatch

  /** A UDP datagram over gb28181.maxMessageBytes: a request is answered 513 (RFC 3261 §21.5.11; the device may retry over TCP). */
  private onOversized(buf: Buffer, peer: Peer): void {
    try {
      const msg = parseSip(buf, { datagram: true, maxBytes: buf.length });
      if (msg.kind === 'request' && msg.method !== 'ACK') this.endpoint.reply(msg, peer, 513, 'too_large', null);
    } catch {
      // Not even a SIP header: counted as too_large by the transport, nothing to answer.
    }
  }

  private onMessage(buf: Buffer, peer: Peer): void {
    const maxBytes = peer.transport === 'UDP' ? this.cfg.maxMessageBytes : this.cfg.maxTcpMessageBytes;
    const ka = scanKeepalive(buf, maxBytes);
    if (ka && this.keepalive.onFast(ka, peer)) return;
    let msg;
    try {
      msg = parseSip(buf, { datagram: peer.transport === 'UDP', maxBytes });
    } catch (e) {
      malformedInput.inc({ source: 'sip', reason: e instanceof SipParseError ? e.reason : 'parse' });
      // A request that can be identified but is malformed (a datagram whose body is shorter than its Content-Length, RFC
      // 3261 §18.3; a bad or doubled Content-Length, > 100 headers, CSeq out of range or naming another method, an
      // over-long Call-ID): 400 with what was wrong, so the device knows (attack pass 4 #5). Unidentifiable ones are dropped.
      if (e instanceof SipParseError && e.basis && e.method !== 'ACK')
        this.endpoint.reply(e.basis, peer, 400, 'malformed', null, [['Warning', `399 shouhu "${PARSE_FAULTS[e.reason] ?? 'malformed request'}"`]]);
      return;
    }
    try {
      if (msg.kind === 'response') return this.client.onResponse(msg);
      if (msg.method === 'ACK') return;
      const key =
        msg.method === 'MESSAGE' || msg.method === 'REGISTER' || msg.method === 'NOTIFY' || msg.method === 'SUBSCRIBE'
          ? this.endpoint.txKey(msg, msg.method, peer)
          : null;
      // A retransmission: the same answer again, or nothing while the first is being worked on.
      if (key !== null && this.endpoint.retransmitted(key, peer)) return;
      // The per-device limit is spent only by what is known to come from the device: a REGISTER once its digest is verified
      // (GbRegistrar; before that it counts against its source, attack pass 4 #4), a MANSCDP body in onManscdp once its
      // source is the registration's and its CmdType known (an Alarm has a budget of its own, attack A3).
      switch (msg.method) {
        case 'REGISTER':
          if (!this.registrar.admit(msg, peer, key!)) return;
          this.endpoint.working(key!);
          this.registrar.onRegister(msg, peer, key!).catch((e) => this.endpoint.fail(msg, peer, key, 'register', e));
          return;
        case 'MESSAGE':
        case 'NOTIFY': // in our Catalog subscription (§9.11.2): a MANSCDP body like a MESSAGE's
          this.onManscdp(msg, peer, key!);
          return;
        case 'SUBSCRIBE': {
          // A superior platform subscribing to our Catalog changes or alarms (issue 16 §7); devices do not subscribe to us.
          const superior = this.cascade.superiorOf(msg.from.user, peer);
          if (superior) return this.cascade.onSubscribe(superior, msg, peer, key!);
          this.endpoint.reply(msg, peer, 405, 'other', null, [ALLOW]);
          return;
        }
        case 'OPTIONS':
          this.endpoint.reply(msg, peer, 200, 'options', null, [ALLOW]);
          return;
        case 'BYE': {
          // A device ending a live-play dialog; a BYE we know nothing of gets 481.
          const answer = this.client.onDialogRequest(msg, peer);
          if (answer) this.endpoint.send(peer, answer);
          else this.endpoint.reply(msg, peer, 481, 'bye', null);
          return;
        }
        default:
          this.endpoint.reply(msg, peer, 405, 'other', null, [ALLOW]);
      }
    } catch (e) {
      this.endpoint.fail(msg.kind === 'request' ? msg : null, peer, null, 'dispatch', e);
    }
  }

  private onManscdp(req: SipRequest, peer: Peer, key: string): void {
    const id = req.from.user;
    if (!GB_ID_PATTERN.test(id)) return this.endpoint.reply(req, peer, 400, 'message', key);
    const ct = header(req, 'content-type');
    if (!ct || !/^application\/manscdp\+xml\b/i.test(ct)) return this.endpoint.reply(req, peer, 415, 'message', key, [['Accept', 'Application/MANSCDP+xml']]);
    const state = this.states.devices.get(id);
    let doc: ManscdpMessage;
    try {
      doc = parseManscdp(req.body, state?.charset);
    } catch (e) {
      malformedInput.inc({ source: 'sip', reason: e instanceof XmlError ? 'manscdp' : 'body' });
      return this.endpoint.reply(req, peer, 400, 'message', key);
    }
    // Bytes valid in neither UTF-8 nor GB18030 (charset.ts): the message is still taken — an alarm is not lost for a
    // bad byte of its description — with U+FFFD where they were, and never silently: counted and logged.
    if (doc.undecodableAt !== undefined) {
      malformedInput.inc({ source: 'sip', reason: 'undecodable_bytes' });
      this.endpoint.warn(
        `GB28181 ${doc.cmdType} from ${id}: body byte ${doc.undecodableAt} is neither UTF-8 nor GB18030 (BOM, declaration and gb_devices.charset considered); read with U+FFFD in its place`,
      );
    }
    // A superior platform we cascade to (issue 16 §7): its queries about us and its answers to our alarms.
    const superior = this.cascade.superiorOf(id, peer);
    if (superior) return this.cascade.onMessage(superior, req, peer, key, doc);
    const now = Date.now();
    const keepalive = doc.cmdType === 'Keepalive';
    // Unlike some platforms, nothing is accepted from a device that is not registered (§9.1)…
    // Refusals to a source that is not the registration's are never cached: the key names the source, and a retransmission is
    // simply refused again — nothing a stranger sends can become the answer to the device's own request (attack pass 4 #2).
    if (!state || !state.registered || state.expiresAt <= now) return this.endpoint.reply(req, peer, 403, keepalive ? 'keepalive' : 'message', null);
    // …nor from anywhere but where it registered: a forged From cannot raise alarms, keep a dead device online or create cameras.
    if (!fromRegisteredPeer(state, peer)) {
      if (!fromRegisteredHost(state, peer)) {
        sipEvents.inc({ event: 'message_wrong_source' });
        this.endpoint.warn(`GB28181 ${doc.cmdType} naming ${id} from ${peer.transport} ${peer.address}:${peer.port}, not its registration: refused (403)`);
        return this.endpoint.reply(req, peer, 403, keepalive ? 'keepalive' : 'message', null);
      }
      // Its own IP on another port or connection (NAT rebinding, TCP reconnect; attack A9): taken, and our requests follow it there.
      const from = state.peer!;
      state.peer = peer;
      this.states.touch(id);
      sipEvents.inc({ event: 'message_source_moved' });
      this.endpoint.warn(
        `GB28181 ${id} moved from ${from.transport} ${from.address}:${from.port} to ${peer.transport} ${peer.address}:${peer.port} (its ${doc.cmdType}): contact moved`,
      );
    }
    const alarm = /^alarm$/i.test(doc.cmdType) && doc.root !== 'Query' && doc.root !== 'Control';
    // The per-device limit, after the source is known to be the device's: an Alarm spends its own budget, never the keepalives' (attack A3).
    if (this.endpoint.deviceLimited(state, req, peer, alarm)) return;
    if (doc.root === 'Notify' && keepalive) return this.keepalive.onKeepalive(req, peer, state, now, doc.el);
    // An Alarm under any root a device sends (Notify, or Response as some firmwares do): never dropped (§9.4).
    if (alarm) {
      this.endpoint.working(key);
      this.alarms.onAlarm(req, peer, key, state, doc).catch((e) => this.endpoint.fail(req, peer, key, 'alarm', e));
      return;
    }
    if (doc.root === 'Notify' && doc.cmdType === 'Catalog') {
      // A channel's change (§9.11.2), by NOTIFY in our Catalog subscription or by MESSAGE.
      this.endpoint.reply(req, peer, 200, 'catalog_notify', key);
      this.channels.onCatalogNotify(state, doc.el).catch((e) => this.endpoint.warn(`catalog notify of ${id} not applied: ${(e as Error).message}`));
      return;
    }
    if (doc.root === 'Response' && doc.cmdType === 'Catalog') {
      this.endpoint.reply(req, peer, 200, 'catalog', key);
      return this.catalog.onCatalogPart(state, doc);
    }
    if (doc.root === 'Response' && doc.cmdType === 'DeviceStatus') {
      this.endpoint.reply(req, peer, 200, 'device_status', key);
      // To an operator's query awaiting it (GET …/status), if any, and in every case to the channel status it reports.
      this.commands.onResponse(state, doc);
      this.channels.onDeviceStatus(state, doc).catch((e) => this.endpoint.warn(`DeviceStatus of ${id} not applied: ${(e as Error).message}`));
      return;
    }
    // Answers to operators' commands and queries (issue 16 §6): DeviceControl Result, ConfigDownload, RecordInfo parts.
    if (doc.root === 'Response' && (doc.cmdType === 'DeviceControl' || doc.cmdType === 'ConfigDownload' || doc.cmdType === 'RecordInfo')) {
      this.endpoint.reply(req, peer, 200, 'command_answer', key);
      this.commands.onResponse(state, doc);
      return;
    }
    if (doc.root === 'Response' && doc.cmdType === 'DeviceInfo') {
      this.endpoint.reply(req, peer, 200, 'device_info', key);
      return this.catalog.onDeviceInfo(state, doc);
    }
    // The end of a recording being played back (§9.8.2, NotifyType 121): that playback ends (BYE), its viewers are told.
    if (doc.root === 'Notify' && doc.cmdType === 'MediaStatus') {
      this.endpoint.reply(req, peer, 200, 'media_status', key);
      if (childText(doc.el, 'NotifyType')?.trim() === '121') this.client.mediaEnded(req.callId, id, childText(doc.el, 'DeviceID')?.trim());
      return;
    }
    // Other notifications (MobilePosition…) are acknowledged and not used.
    this.endpoint.reply(req, peer, 200, 'message_other', key);
  }
}
