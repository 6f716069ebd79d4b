import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '../../config/config';
import type { Gb28181Config } from '../../config/sections';
import { sipDomain } from './gb28181.config';
import { SipEndpoint } from './sip-endpoint';
import { InviteClient, InviteError, PlayAnswer, PlayRequest } from './invite-client';
import { buildRequest, header, SipRequest, SipResponse } from './sip-message';
import { Peer } from './sip-transport';

/** Where a platform request goes: a device id and where it last spoke from (null = unreachable). */
export interface SipTarget {
  deviceId: string;
  peer: Peer | null;
}

interface ClientTx {
  resolve: (status: number, res?: SipResponse) => void;
  retransmit?: NodeJS.Timeout;
  timeout: NodeJS.Timeout;
}

const T1 = 500;
const T2 = 4000;

/**
 * The platform's client transactions: the one place that sends a request to a device and awaits
 * its response (RFC 3261 §17.1.2), with the MANSCDP SN counter. Responses arriving at the
 * endpoint are matched here by Via branch.
 */
@Injectable()
export class SipClient {
  private readonly cfg: Gb28181Config;
  private readonly domain: string;
  private readonly pending = new Map<string, ClientTx>();
  private sn = Math.floor(Math.random() * 100000);
  /** Real-time play (§9.2): the INVITE client transaction, its ACK and the dialog's BYE (invite-client.ts). */
  private readonly invites: InviteClient;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly endpoint: SipEndpoint,
  ) {
    this.cfg = config.gb28181;
    this.domain = sipDomain(this.cfg);
    this.invites = new InviteClient({
      send: (peer, buf) => this.endpoint.send(peer, buf),
      advertised: () => this.endpoint.advertised,
      port: () => this.endpoint.port,
      domain: this.domain,
      platformId: this.cfg.platformId,
    });
  }

  /**
   * INVITE for real-time play of a channel (SDP offer: RTP/PS payload 96, y= SSRC), ACK of the
   * 2xx; resolves with the device's answer and the dialog (`bye()`, `onEnded`). Rejects with
   * InviteError: `offline` (no reachable peer), `busy` (486), `rejected`, `timeout`, `bad_answer`.
   */
  invite(target: SipTarget, req: PlayRequest): Promise<{ answer: PlayAnswer; bye: () => void; onEnded: (cb: (why: string) => void) => void }> {
    if (!target.peer || !this.endpoint.reachable(target.peer)) return Promise.reject(new InviteError('offline', `device ${target.deviceId} is not reachable`));
    return this.invites.invite(target.peer, req);
  }

  /** The device's MediaStatus 121: its playback dialog(s) end (InviteClient.mediaEnded). */
  mediaEnded(callId: string, deviceId: string, channelId?: string): number {
    return this.invites.mediaEnded(callId, deviceId, channelId);
  }

  /** A request inside one of our dialogs (the device's BYE): the response to send, or null when it is not ours. */
  onDialogRequest(req: SipRequest, peer: Peer): Buffer | null {
    return this.invites.onRequest(req, peer);
  }

  /** The next MANSCDP command sequence number (SN). */
  nextSn(): number {
    this.sn = (this.sn + 1) % 1_000_000_000;
    return this.sn;
  }

  /**
   * A MESSAGE to the device where it last spoke from, as a non-INVITE client transaction
   * (RFC 3261 §17.1.2: retransmitted over UDP from T1 up to T2 until answered or timed out).
   * Resolves with the final status, 408 on timeout, 503 when the device cannot be reached.
   */
  sendMessage(target: SipTarget, body: Buffer): Promise<number> {
    return this.request(target, { method: 'MESSAGE', body }).then((r) => (typeof r === 'number' ? r : r.status));
  }

  /**
   * SUBSCRIBE to the device's Catalog changes (GB/T 28181-2016 §9.11.1; RFC 6665): `Event: Catalog`,
   * the Catalog query as body. A refresh reuses the Call-ID and From tag with the next CSeq.
   * Resolves with the status and the Expires the device granted (null when it did not say).
   */
  async subscribe(
    target: SipTarget,
    s: { callId: string; fromTag: string; cseq: number; expires: number; sn: number },
  ): Promise<{ status: number; expires: number | null }> {
    const body = Buffer.from(
      `<?xml version="1.0" encoding="GB2312"?>\r\n<Query>\r\n<CmdType>Catalog</CmdType>\r\n<SN>${s.sn}</SN>\r\n<DeviceID>${target.deviceId}</DeviceID>\r\n</Query>\r\n`,
      'latin1',
    );
    const r = await this.request(target, {
      method: 'SUBSCRIBE',
      body,
      callId: s.callId,
      fromTag: s.fromTag,
      cseq: s.cseq,
      headers: [
        ['Event', `Catalog;id=${s.sn}`],
        ['Expires', s.expires],
        ['Contact', `<sip:${this.cfg.platformId}@${this.endpoint.advertised}:${this.endpoint.port}>`],
      ],
    });
    if (typeof r === 'number') return { status: r, expires: null };
    const granted = header(r, 'expires');
    return { status: r.status, expires: granted && /^\d{1,10}$/.test(granted) ? Number(granted) : null };
  }

  /**
   * A request to the device where it last spoke from, as a non-INVITE client transaction
   * (RFC 3261 §17.1.2: retransmitted over UDP from T1 up to T2 until answered or timed out).
   * Resolves with the final response, 408 on timeout, 503 when the device cannot be reached.
   */
  private request(
    target: SipTarget,
    r: { method: string; body: Buffer; callId?: string; fromTag?: string; cseq?: number; headers?: [string, string | number][] },
  ): Promise<SipResponse | number> {
    const peer = target.peer;
    if (!peer || !this.endpoint.reachable(peer)) return Promise.resolve(503);
    const advertised = this.endpoint.advertised;
    const branch = `z9hG4bK${randomBytes(8).toString('hex')}`;
    const buf = buildRequest({
      method: r.method,
      uri: `sip:${target.deviceId}@${peer.address.includes(':') ? `[${peer.address}]` : peer.address}:${peer.port}`,
      via: `SIP/2.0/${peer.transport} ${advertised}:${this.endpoint.port};rport;branch=${branch}`,
      from: `<sip:${this.cfg.platformId}@${this.domain}>;tag=${r.fromTag ?? randomBytes(4).toString('hex')}`,
      to: `<sip:${target.deviceId}@${this.domain}>`,
      callId: r.callId ?? `${randomBytes(8).toString('hex')}@${advertised}`,
      cseq: r.cseq ?? 1,
      headers: [['User-Agent', 'Shouhu'], ...(r.headers ?? [])],
      body: r.body,
      contentType: 'Application/MANSCDP+xml',
    });
    return this.transact(peer, buf, branch, this.cfg.queryTimeoutMs);
  }

  /**
   * Sends a request built by the caller (its top Via carries `branch`) as a non-INVITE client
   * transaction (RFC 3261 §17.1.2: over UDP retransmitted from T1 doubling up to T2) and resolves
   * with the final response, 408 after `timeoutMs`, 503 when the peer cannot be reached. Used by the
   * requests above and by the cascade's requests upward (REGISTER, MESSAGE to a superior platform).
   */
  transact(peer: Peer, buf: Buffer, branch: string, timeoutMs: number): Promise<SipResponse | number> {
    if (!this.endpoint.reachable(peer)) return Promise.resolve(503);
    return new Promise<SipResponse | number>((resolve) => {
      const tx: ClientTx = {
        resolve: (status, res) => {
          clearTimeout(tx.timeout);
          if (tx.retransmit) clearTimeout(tx.retransmit);
          this.pending.delete(branch);
          resolve(res ?? status);
        },
        timeout: setTimeout(() => tx.resolve(408), timeoutMs),
      };
      tx.timeout.unref();
      if (peer.transport === 'UDP') {
        let interval = T1;
        const again = () => {
          this.endpoint.send(peer, buf);
          interval = Math.min(interval * 2, T2);
          tx.retransmit = setTimeout(again, interval);
          tx.retransmit.unref();
        };
        tx.retransmit = setTimeout(again, interval);
        tx.retransmit.unref();
      }
      this.pending.set(branch, tx);
      this.endpoint.send(peer, buf);
    });
  }

  /** A response from a device: a provisional one stops retransmissions, a final one ends its transaction. */
  onResponse(res: SipResponse): void {
    if (this.invites.onResponse(res)) return;
    const tx = this.pending.get(res.via.branch);
    if (!tx) return;
    if (res.status < 200) {
      if (tx.retransmit) clearTimeout(tx.retransmit);
      tx.retransmit = undefined;
      return;
    }
    tx.resolve(res.status, res);
  }

  /** Shutdown: every transaction still waiting ends with 503. */
  stop(): void {
    this.invites.close(); // BYE every live dialog while the socket is still open
    for (const tx of this.pending.values()) {
      clearTimeout(tx.timeout);
      if (tx.retransmit) clearTimeout(tx.retransmit);
      tx.resolve(503);
    }
    this.pending.clear();
  }
}
