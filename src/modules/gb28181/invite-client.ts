import { randomBytes } from 'node:crypto';
import { parse as parseSdp } from 'sdp-transform';
import { buildRequest, buildResponse, header, parseNameAddr, SipRequest, SipResponse } from './sip-message';
import type { Peer } from './sip-transport';

/**
 * Real-time play (GB/T 28181-2016 §9.2.2): the platform's INVITE client transaction (RFC 3261
 * §17.1.1) with an SDP offer for RTP/PS, the ACK of its 2xx, and the dialog's BYE — in either
 * direction. Kept apart from the registrar and MANSCDP handlers behind a narrow interface (the
 * service hands it responses and in-dialog requests, it hands back bytes to send).
 *
 * Failure directions: no final answer within `timeoutMs` → CANCEL (when the device had answered
 * provisionally) and `timeout`; a 2xx arriving after we gave up is ACKed and at once BYEd, so a
 * device never streams to nobody. 486 → `busy`; other ≥ 300 → `rejected` with the status.
 */
export type MediaTransport = 'udp' | 'tcp-passive' | 'tcp-active';

export interface PlayRequest {
  deviceId: string;
  channelId: string;
  /** 10 decimal digits: 0 (real time) + 5 digits of the SIP domain + 4 of a sequence (GB/T 28181-2016 Annex F). */
  ssrc: string;
  media: { host: string; port: number; transport: MediaTransport };
  timeoutMs: number;
  /**
   * Playback of the device's recording over [start, end) (GB/T 28181-2016 §9.8: `s=Playback`,
   * `u=<channel>:0`, `t=<start> <end>` in Unix seconds, SSRC beginning with 1 — Annex F);
   * absent: real-time play.
   */
  playback?: { start: Date; end: Date };
}

export interface PlayAnswer {
  host: string;
  port: number;
  /** The device's y= (some devices stream with an SSRC of their own), or null. */
  ssrc: string | null;
  setup: string | null;
}

export class InviteError extends Error {
  constructor(
    readonly reason: 'offline' | 'busy' | 'rejected' | 'timeout' | 'bad_answer',
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'InviteError';
  }
}

export interface InviteContext {
  send(peer: Peer, buf: Buffer): void;
  /** Our Via/Contact address and SIP port, domain and id. */
  advertised: () => string;
  port: () => number;
  domain: string;
  platformId: string;
}

interface Dialog {
  callId: string;
  localTag: string;
  remoteTag: string;
  remoteTarget: string;
  from: string;
  to: string;
  cseq: number;
  peer: Peer;
  ended: boolean;
  onEnded: ((why: string) => void)[];
  ack: Buffer;
  /** The device and channel, and whether it plays a recording (ended by the device's MediaStatus 121). */
  deviceId: string;
  channelId: string;
  playback: boolean;
  /** When the dialog was established, and the playback range's length (ms): when its end is due. */
  establishedAt: number;
  rangeMs: number;
}

interface InviteTx {
  branch: string;
  callId: string;
  peer: Peer;
  request: Buffer;
  from: string;
  to: string;
  cseq: number;
  uri: string;
  provisional: boolean;
  done: boolean;
  abandoned: boolean;
  retransmit?: NodeJS.Timeout;
  timeout?: NodeJS.Timeout;
  resolve: (r: { dialog: Dialog; answer: PlayAnswer }) => void;
  reject: (e: InviteError) => void;
  req: PlayRequest;
}

const T1 = 500;
const T2 = 4000;

const hostPort = (peer: Peer) => `${peer.address.includes(':') ? `[${peer.address}]` : peer.address}:${peer.port}`;

/**
 * The SDP offer of a real-time play (GB/T 28181-2016 §9.2.2 and Annex F: `y=` SSRC, PS over RTP
 * payload 96), or of a playback (§9.8.2: `s=Playback`, `u=` the channel, `t=` the range).
 */
export function playOffer(platformId: string, req: PlayRequest): string {
  const tcp = req.media.transport !== 'udp';
  const ip = req.media.host.includes(':') ? 'IP6' : 'IP4';
  const unix = (d: Date) => Math.floor(d.getTime() / 1000);
  return [
    'v=0',
    `o=${platformId} 0 0 IN ${ip} ${req.media.host}`,
    req.playback ? 's=Playback' : 's=Play',
    ...(req.playback ? [`u=${req.channelId}:0`] : []),
    `c=IN ${ip} ${req.media.host}`,
    req.playback ? `t=${unix(req.playback.start)} ${unix(req.playback.end)}` : 't=0 0',
    `m=video ${req.media.port} ${tcp ? 'TCP/RTP/AVP' : 'RTP/AVP'} 96`,
    'a=recvonly',
    'a=rtpmap:96 PS/90000',
    ...(tcp ? [`a=setup:${req.media.transport === 'tcp-passive' ? 'passive' : 'active'}`, 'a=connection:new'] : []),
    `y=${req.ssrc}`,
    '',
  ].join('\r\n');
}

/** The device's media address and SSRC from its SDP answer (sdp-transform; `y=` read by hand: it is GB-specific). */
export function parseAnswer(body: string): PlayAnswer {
  const sdp = parseSdp(body);
  const m = sdp.media?.find((x) => x.type === 'video') ?? sdp.media?.[0];
  const host = m?.connection?.ip ?? sdp.connection?.ip;
  if (!m || !host || !Number.isInteger(m.port)) throw new InviteError('bad_answer', 'the device answered without a media address');
  const y = /^y=(\d{1,10})\s*$/m.exec(body);
  return { host, port: m.port, ssrc: y ? y[1] : null, setup: (m as { setup?: string }).setup ?? null };
}

export class InviteClient {
  private readonly txs = new Map<string, InviteTx>();
  private readonly dialogs = new Map<string, Dialog>();
  private readonly byes = new Map<string, { timer: NodeJS.Timeout; resend?: NodeJS.Timeout }>();

  constructor(private readonly ctx: InviteContext) {}

  get activeDialogs(): number {
    return this.dialogs.size;
  }

  /** Sends the INVITE; resolves with the dialog once the device's 2xx is ACKed. */
  invite(peer: Peer, req: PlayRequest): Promise<{ bye: () => void; onEnded: (cb: (why: string) => void) => void; answer: PlayAnswer }> {
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const callId = `${randomBytes(8).toString('hex')}@${this.ctx.advertised()}`;
    const localTag = randomBytes(4).toString('hex');
    const uri = `sip:${req.channelId}@${hostPort(peer)}`;
    const from = `<sip:${this.ctx.platformId}@${this.ctx.domain}>;tag=${localTag}`;
    const to = `<sip:${req.channelId}@${this.ctx.domain}>`;
    const request = buildRequest({
      method: 'INVITE',
      uri,
      via: `SIP/2.0/${peer.transport} ${this.ctx.advertised()}:${this.ctx.port()};rport;branch=${branch}`,
      from,
      to,
      callId,
      cseq: 1,
      headers: [
        ['Contact', `<sip:${this.ctx.platformId}@${this.ctx.advertised()}:${this.ctx.port()}>`],
        ['Subject', `${req.channelId}:${req.ssrc},${this.ctx.platformId}:0`],
        ['User-Agent', 'Shouhu'],
      ],
      body: Buffer.from(playOffer(this.ctx.platformId, req), 'latin1'),
      contentType: 'APPLICATION/SDP',
    });
    return new Promise((resolve, reject) => {
      const tx: InviteTx = {
        branch,
        callId,
        peer,
        request,
        from,
        to,
        cseq: 1,
        uri,
        provisional: false,
        done: false,
        abandoned: false,
        resolve: ({ dialog, answer }) =>
          resolve({
            answer,
            bye: () => this.bye(dialog),
            onEnded: (cb) => (dialog.ended ? cb('ended') : dialog.onEnded.push(cb)),
          }),
        reject,
        req,
      };
      this.txs.set(branch, tx);
      tx.timeout = setTimeout(() => this.giveUp(tx, req.timeoutMs), req.timeoutMs);
      tx.timeout.unref();
      this.sendReliably(
        peer,
        request,
        () => !tx.done && !tx.provisional,
        (t) => (tx.retransmit = t),
      );
    });
  }

  private giveUp(tx: InviteTx, ms: number): void {
    if (tx.done) return;
    tx.done = true;
    tx.abandoned = true;
    clearTimeout(tx.retransmit);
    if (tx.provisional) this.ctx.send(tx.peer, this.simple('CANCEL', tx, tx.branch, tx.cseq, tx.to));
    tx.reject(new InviteError('timeout', `no answer to the INVITE within ${ms} ms`));
    // Keep the transaction a while to ACK (and BYE) a late 2xx, or ACK the 487 after the CANCEL.
    setTimeout(() => this.txs.delete(tx.branch), 32_000).unref();
  }

  /** A request of this transaction's shape (ACK of a non-2xx, CANCEL) on the same branch. */
  private simple(method: string, tx: InviteTx, branch: string, cseq: number, to: string, uri = tx.uri): Buffer {
    return buildRequest({
      method,
      uri,
      via: `SIP/2.0/${tx.peer.transport} ${this.ctx.advertised()}:${this.ctx.port()};rport;branch=${branch}`,
      from: tx.from,
      to,
      callId: tx.callId,
      cseq,
      body: Buffer.alloc(0),
      contentType: '',
    });
  }

  /** Responses to our INVITEs and BYEs; false when the response is not ours. */
  onResponse(res: SipResponse): boolean {
    if (res.cseq.method === 'BYE') {
      const b = this.byes.get(res.via.branch);
      if (!b) return false;
      if (res.status >= 200) {
        clearTimeout(b.timer);
        clearTimeout(b.resend);
        this.byes.delete(res.via.branch);
      }
      return true;
    }
    if (res.cseq.method === 'CANCEL') return this.txs.has(res.via.branch);
    if (res.cseq.method !== 'INVITE') return false;
    const tx = this.txs.get(res.via.branch);
    if (!tx) {
      // A retransmitted 2xx of an established dialog: ACK it again (RFC 3261 §13.2.2.4).
      const d = this.dialogs.get(res.callId);
      if (d && res.status >= 200 && res.status < 300) this.ctx.send(d.peer, d.ack);
      return !!d;
    }
    if (res.status < 200) {
      tx.provisional = true;
      clearTimeout(tx.retransmit);
      return true;
    }
    const toRaw = header(res, 'to') ?? tx.to;
    if (res.status >= 300) {
      // Non-2xx: ACK within the transaction, same branch (RFC 3261 §17.1.1.3).
      this.ctx.send(tx.peer, this.simple('ACK', tx, tx.branch, tx.cseq, toRaw));
      if (!tx.done) {
        tx.done = true;
        clearTimeout(tx.retransmit);
        clearTimeout(tx.timeout);
        this.txs.delete(tx.branch);
        tx.reject(
          res.status === 486 || res.status === 600
            ? new InviteError('busy', `the device is busy (${res.status})`, res.status)
            : new InviteError('rejected', `the device answered ${res.status} ${res.reason}`, res.status),
        );
      }
      return true;
    }
    // 2xx: a dialog; ACK it (a new transaction, to the remote target from Contact).
    const contact = header(res, 'contact');
    let remoteTarget = tx.uri;
    if (contact) {
      try {
        remoteTarget = parseNameAddr(contact, 'contact').uri;
      } catch {
        // keep the request URI
      }
    }
    const existing = this.dialogs.get(tx.callId);
    if (existing) {
      this.ctx.send(existing.peer, existing.ack);
      return true;
    }
    const dialog: Dialog = {
      callId: tx.callId,
      localTag: tx.from.replace(/^.*;tag=/, ''),
      remoteTag: res.to.tag ?? '',
      remoteTarget,
      from: tx.from,
      to: toRaw,
      cseq: tx.cseq,
      peer: tx.peer,
      ended: false,
      onEnded: [],
      ack: this.simple('ACK', tx, `z9hG4bK${randomBytes(8).toString('hex')}`, tx.cseq, toRaw, remoteTarget),
      deviceId: tx.req.deviceId,
      channelId: tx.req.channelId,
      playback: !!tx.req.playback,
      establishedAt: Date.now(),
      rangeMs: tx.req.playback ? tx.req.playback.end.getTime() - tx.req.playback.start.getTime() : 0,
    };
    this.dialogs.set(tx.callId, dialog);
    this.ctx.send(tx.peer, dialog.ack);
    clearTimeout(tx.retransmit);
    clearTimeout(tx.timeout);
    if (tx.done) {
      // We gave up on it already: the device must not stream to nobody.
      this.bye(dialog);
      return true;
    }
    tx.done = true;
    setTimeout(() => this.txs.delete(tx.branch), 32_000).unref();
    let answer: PlayAnswer;
    try {
      answer = parseAnswer(res.body.toString('latin1'));
    } catch (e) {
      this.bye(dialog);
      tx.reject(e instanceof InviteError ? e : new InviteError('bad_answer', `unreadable SDP answer: ${(e as Error).message}`));
      return true;
    }
    tx.resolve({ dialog, answer });
    return true;
  }

  /** A BYE (or other in-dialog request) from the device; the response to send, or null when not ours. */
  onRequest(req: SipRequest, peer: Peer): Buffer | null {
    if (req.method !== 'BYE') return null;
    const d = this.dialogs.get(req.callId);
    if (!d) return null;
    this.end(d, 'the device sent BYE');
    return buildResponse(req, 200, { toTag: d.localTag, source: { address: peer.address, port: peer.port } });
  }

  /**
   * The device's MediaStatus 121 (§9.8.2: the recording is played to its end): the playback's
   * dialog is ended and BYEd, as the standard asks of the platform. The dialog is the one of the
   * MESSAGE's Call-ID when it was sent inside it. Sent outside (many devices do), it names no
   * session: only playbacks of that device (and channel, when named) whose range is due to have
   * played — within max(5 s, 20 %) of its length since the dialog began — are ended, so one
   * recording's end never stops another viewer's longer one (attack finding); a playback that is
   * not due plays on, and ends by itself at video.playbackOverrunSeconds past its range.
   * Returns how many were ended.
   */
  mediaEnded(callId: string, deviceId: string, channelId?: string, now = Date.now()): number {
    const inDialog = this.dialogs.get(callId);
    const due = (d: Dialog) => now - d.establishedAt >= d.rangeMs - Math.max(5000, d.rangeMs * 0.2);
    const targets = inDialog?.playback
      ? [inDialog]
      : [...this.dialogs.values()].filter(
          (d) =>
            d.playback &&
            due(d) &&
            (d.deviceId === deviceId || d.channelId === deviceId) &&
            (!channelId || channelId === deviceId || d.channelId === channelId),
        );
    for (const d of targets) {
      for (const cb of d.onEnded.splice(0)) cb('the recording ended (MediaStatus 121)');
      this.bye(d);
    }
    return targets.length;
  }

  private end(d: Dialog, why: string): void {
    if (d.ended) return;
    d.ended = true;
    this.dialogs.delete(d.callId);
    for (const cb of d.onEnded) cb(why);
  }

  /** Ends a dialog from our side (BYE, retransmitted over UDP until answered or 4 s). */
  private bye(d: Dialog): void {
    if (d.ended) return;
    this.end(d, 'BYE sent');
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const buf = buildRequest({
      method: 'BYE',
      uri: d.remoteTarget,
      via: `SIP/2.0/${d.peer.transport} ${this.ctx.advertised()}:${this.ctx.port()};rport;branch=${branch}`,
      from: d.from,
      to: d.to,
      callId: d.callId,
      cseq: ++d.cseq,
      body: Buffer.alloc(0),
      contentType: '',
    });
    const entry: { timer: NodeJS.Timeout; resend?: NodeJS.Timeout } = { timer: setTimeout(() => this.byes.delete(branch), 4 * T2) };
    entry.timer.unref();
    this.byes.set(branch, entry);
    this.sendReliably(
      d.peer,
      buf,
      () => this.byes.has(branch),
      (t) => (entry.resend = t),
    );
  }

  /**
   * Sends a request; over UDP retransmits it from T1 doubling up to T2 while `pending()` holds
   * (RFC 3261 §17.1.1.2 Timer A / §17.1.2.2 Timer E). `timer` receives each pending timeout.
   */
  private sendReliably(peer: Peer, buf: Buffer, pending: () => boolean, timer: (t: NodeJS.Timeout) => void): void {
    if (peer.transport === 'UDP') {
      let interval = T1;
      const again = () => {
        if (!pending()) return;
        this.ctx.send(peer, buf);
        interval = Math.min(interval * 2, T2);
        const t = setTimeout(again, interval);
        t.unref();
        timer(t);
      };
      const t = setTimeout(again, interval);
      t.unref();
      timer(t);
    }
    this.ctx.send(peer, buf);
  }

  /** Shutdown: every dialog gets its BYE (best effort), pending INVITEs fail. */
  close(): void {
    for (const d of [...this.dialogs.values()]) this.bye(d);
    for (const tx of this.txs.values()) {
      clearTimeout(tx.retransmit);
      clearTimeout(tx.timeout);
      if (!tx.done) {
        tx.done = true;
        tx.reject(new InviteError('offline', 'the SIP server is stopping'));
      }
    }
    this.txs.clear();
  }
}
