import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { expectedResponse, ha1 } from '../../src/modules/gb28181/digest';
import { Gb28181Store } from '../../src/modules/gb28181/gb28181.store';
import { header, parseSip, SipResponse } from '../../src/modules/gb28181/sip-message';
import { createButton, press } from '../support/devices';
import { GB_PLATFORM, GbSite, startGbSite } from '../support/gb-site';
import { auth, TestApp } from '../support/harness';
import { until } from '../support/processes';

/**
 * GB/T 28181 registrar and transaction layer against the attack pass 4 findings (#1–#5; #6, the
 * cascade's To, is in gb28181-cascade-events.spec.ts): a REGISTER flood for made-up ids, an alarm
 * lost to a stranger's cached refusal, a replayed REGISTER, a device's budget spent by others,
 * malformed requests dropped in silence. Every peer is a raw SIP UA over UDP (node:dgram) on its
 * own loopback address, as the attacker's scripts were.
 */
const PASSWORD = 'sipsec-pass-1';
const DOMAIN = GB_PLATFORM.slice(0, 10);
const URI = `sip:${GB_PLATFORM}@${DOMAIN}`;
/** Small here so the cases reach them quickly (defaults 200/s burst 2000, 4 look-ups). */
const REG_PER_SECOND = 20;
const REG_BURST = 40;
const LOOKUPS = 2;
const DEVICE_BURST = 20;
let seq = 0;
const deviceIdOf = (n: number) => `3402000000118${String(30000000 + n).slice(1)}`;
const rid = () => randomBytes(6).toString('hex');

/** A raw SIP UA on its own socket: requests with the transaction fields chosen by the test, requests from the platform answered 200. */
class RawUa {
  private sock!: dgram.Socket;
  port = 0;
  private readonly waiting = new Map<string, (r: SipResponse) => void>();
  lastAuth = '';
  callId = `${rid()}@ua`;
  cseq = 1;

  constructor(
    readonly id: string,
    readonly address = '127.0.0.1',
    private readonly sipPort = 0,
  ) {}

  async bind(): Promise<this> {
    this.sock = dgram.createSocket('udp4');
    this.sock.on('message', (buf, rinfo) => {
      let m;
      try {
        m = parseSip(buf, { datagram: true, maxBytes: 65535 });
      } catch {
        // A response our own parser refuses (the 400 to CSeq 2**31 echoes that CSeq): its status, Call-ID, CSeq and Warning read plainly.
        const text = buf.toString('latin1');
        const f = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(text)?.[1]?.trim();
        const status = /^SIP\/2\.0 (\d{3})/.exec(text)?.[1];
        const warning = f('Warning');
        if (status)
          this.waiting.get(`${f('Call-ID')}\n${parseInt(f('CSeq') ?? '', 10)}`)?.({
            status: Number(status),
            headers: new Map(warning ? [['warning', [warning]]] : []),
          } as SipResponse);
        return;
      }
      if (m.kind === 'response') {
        if (m.status >= 200) this.waiting.get(`${m.callId}\n${m.cseq.seq}`)?.(m);
        return;
      }
      if (m.method === 'ACK') return;
      const ok = `SIP/2.0 200 OK\r\n${m.vias.map((v) => `Via: ${v}\r\n`).join('')}From: ${m.from.raw}\r\nTo: ${m.to.raw};tag=ua\r\nCall-ID: ${m.callId}\r\nCSeq: ${m.cseq.seq} ${m.cseq.method}\r\nContent-Length: 0\r\n\r\n`;
      this.sock.send(ok, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.sock.bind(0, this.address, () => r()));
    this.port = this.sock.address().port;
    return this;
  }

  close(): void {
    this.sock.close();
  }

  /** Sends raw bytes; resolves with the final answer to (callId, cseq), or null within `ms`. */
  sendRaw(buf: Buffer | string, callId: string, cseq: number, ms = 2000): Promise<SipResponse | null> {
    return new Promise((resolve) => {
      const k = `${callId}\n${cseq}`;
      const t = setTimeout(() => {
        this.waiting.delete(k);
        resolve(null);
      }, ms);
      this.waiting.set(k, (r) => {
        clearTimeout(t);
        this.waiting.delete(k);
        resolve(r);
      });
      this.sock.send(buf, this.sipPort, '127.0.0.1');
    });
  }

  build(
    method: string,
    o: { callId?: string; cseq?: number; branch?: string; headers?: [string, string | number][]; body?: string; from?: string } = {},
  ): Buffer {
    const body = o.body ?? '';
    const head =
      `${method} ${URI} SIP/2.0\r\nVia: SIP/2.0/UDP ${this.address}:${this.port};rport;branch=${o.branch ?? `z9hG4bK${rid()}`}\r\n` +
      `From: <sip:${o.from ?? this.id}@${DOMAIN}>;tag=${rid()}\r\nTo: <sip:${method === 'REGISTER' ? (o.from ?? this.id) : GB_PLATFORM}@${DOMAIN}>\r\n` +
      `Call-ID: ${o.callId ?? this.callId}\r\nCSeq: ${o.cseq ?? this.cseq++} ${method}\r\nMax-Forwards: 70\r\n` +
      (o.headers ?? []).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
      (body ? 'Content-Type: Application/MANSCDP+xml\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    return Buffer.from(head, 'latin1');
  }

  async request(method: string, o: Parameters<RawUa['build']>[1] = {}): Promise<SipResponse | null> {
    const callId = o.callId ?? this.callId;
    const cseq = o.cseq ?? this.cseq++;
    return this.sendRaw(this.build(method, { ...o, callId, cseq }), callId, cseq);
  }

  private regHeaders(extra: [string, string | number][] = []): [string, string | number][] {
    return [['Contact', `<sip:${this.id}@${this.address}:${this.port}>`], ['Expires', 3600], ...extra];
  }

  /** REGISTER, 401, REGISTER with credentials (qop=auth, or the RFC 2069 form without qop); the final status. */
  async register(o: { qop?: boolean; password?: string } = {}): Promise<number> {
    const first = await this.request('REGISTER', { headers: this.regHeaders() });
    if (first?.status !== 401) return first?.status ?? 0;
    const nonce = /nonce="([^"]+)"/.exec(header(first, 'www-authenticate')!)![1];
    const h1 = ha1(this.id, DOMAIN, o.password ?? PASSWORD);
    const cnonce = rid();
    const c = o.qop === false ? { nonce, uri: URI } : { nonce, uri: URI, qop: 'auth', nc: '00000001', cnonce };
    const response = expectedResponse(h1, 'REGISTER', c);
    this.lastAuth =
      `Digest username="${this.id}", realm="${DOMAIN}", nonce="${nonce}", uri="${URI}", response="${response}", algorithm=MD5` +
      (o.qop === false ? '' : `, qop=auth, nc=00000001, cnonce="${cnonce}"`);
    return (await this.request('REGISTER', { headers: this.regHeaders([['Authorization', this.lastAuth]]) }))?.status ?? 0;
  }

  async keepalive(sn: number): Promise<number> {
    const body = `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>${sn}</SN>\r\n<DeviceID>${this.id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n`;
    return (await this.request('MESSAGE', { body }))?.status ?? 0;
  }
}

describe('GB/T 28181 registrar and transactions under attack (attack pass 4)', () => {
  let site: GbSite;
  let t: TestApp;
  let admin: string;
  let schoolId: string;
  const uas: RawUa[] = [];

  beforeAll(async () => {
    site = await startGbSite({
      password: PASSWORD,
      seed: true,
      gb28181: {
        queryTimeoutMs: 1000,
        housekeepingMs: 200,
        catalogSubscribeSeconds: 0,
        basicParamOnRegister: false,
        deviceRateLimitPerSecond: 2,
        deviceRateLimitBurst: DEVICE_BURST,
        registerRateLimitPerSecond: REG_PER_SECOND,
        registerRateLimitBurst: REG_BURST,
        registerLookupConcurrency: LOOKUPS,
        registerLookupQueue: 8,
      },
    });
    ({ t, admin } = site);
    schoolId = site.seed!.schoolA.id;
    countReads();
  });

  afterAll(async () => {
    for (const u of uas) u.close();
    await site?.close();
  });

  const ua = async (id: string, address = '127.0.0.1') => {
    const u = await new RawUa(id, address, site.sipPort).bind();
    uas.push(u);
    return u;
  };
  /** A device placed at school A and registered by a raw UA from `address`. */
  const device = async (address = '127.0.0.1', o: { qop?: boolean } = {}) => {
    const id = deviceIdOf(++seq);
    await t.http().patch(`/api/v1/gb28181/devices/${id}`).set(auth(admin)).send({ schoolId }).expect(200);
    const u = await ua(id, address);
    expect(await u.register(o)).toBe(200);
    return u;
  };
  /** Device rows read (gb_devices by id): what REGISTERs cost the database. */
  let reads = 0;
  const countReads = () => {
    const store = t.app.get(Gb28181Store);
    const device = store.device.bind(store);
    store.device = (id: string) => {
      reads++;
      return device(id);
    };
  };

  it('#1: a REGISTER flood for made-up ids costs bounded database reads, and an HTTP press during it answers promptly', async () => {
    const button = await createButton(t, admin, { schoolId, code: 'SIPSEC-1' });
    // The attack as found: one nonce, then REGISTERs for random ids with it and a zero response — the nonce is bound to the
    // id and address it was issued for, so none of them reaches the device look-up.
    const a = await ua('34020000001320000999', '127.0.0.6');
    const first = await a.request('REGISTER', {
      headers: [
        ['Contact', `<sip:x@127.0.0.6:${a.port}>`],
        ['Expires', 3600],
      ],
    });
    const nonce = /nonce="([^"]+)"/.exec(header(first!, 'www-authenticate')!)![1];
    const randomId = () => `3402000000132${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
    const authz = (id: string, n: string) =>
      `Digest username="${id}", realm="${DOMAIN}", nonce="${n}", uri="${URI}", response="${'0'.repeat(32)}", algorithm=MD5`;
    const socks = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<dgram.Socket>((res) => {
            const s = dgram.createSocket('udp4');
            s.bind(0, '127.0.0.6', () => res(s));
          }),
      ),
    );
    const codes: Record<string, number> = {};
    const regOf = (s: dgram.Socket, id: string, extra: string) =>
      `REGISTER ${URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.6:${s.address().port};rport;branch=z9hG4bK${rid()}\r\nFrom: <sip:${id}@${DOMAIN}>;tag=1\r\nTo: <sip:${id}@${DOMAIN}>\r\nCall-ID: ${rid()}\r\nCSeq: 2 REGISTER\r\nContact: <sip:${id}@127.0.0.6:${s.address().port}>\r\nExpires: 3600\r\n${extra}Content-Length: 0\r\n\r\n`;
    for (const s of socks)
      s.on('message', (b) => {
        const text = b.toString('latin1');
        const status = text.slice(8, 11);
        codes[status] = (codes[status] ?? 0) + 1;
        // The stronger flood: answer each 401 at once with its own (id-bound) nonce and a wrong response.
        const n = /nonce="([^"]+)"/.exec(text)?.[1];
        const id = /From: <sip:(\d{20})@/.exec(text)?.[1];
        if (status === '401' && n && id && !text.includes('Authorization') && Math.random() < 0.5)
          s.send(regOf(s, id, `Authorization: ${authz(id, n)}\r\n`), site.sipPort, '127.0.0.1');
      });
    const before = reads;
    const started = Date.now();
    let sent = 0;
    const flood = setInterval(() => {
      for (let i = 0; i < 20; i++) {
        const s = socks[sent++ % socks.length];
        const id = randomId();
        // Half with the one nonce of the attack as found, half without credentials (their 401s are answered above).
        s.send(regOf(s, id, sent % 2 ? `Authorization: ${authz(id, nonce)}\r\n` : ''), site.sipPort, '127.0.0.1');
      }
    }, 10);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const res = await press(t.baseUrl, button, `sipsec-flood-${rid()}`, 10_000);
      const took = Date.now() - t0;
      expect(res.status).toBeLessThan(300);
      // Promptly: well under the request pool's wait (the press used to get 503 UNAVAILABLE.DATABASE after 5–6 s).
      expect(took).toBeLessThan(3000);
      await new Promise((r) => setTimeout(r, 1000));
    } finally {
      clearInterval(flood);
    }
    await new Promise((r) => setTimeout(r, 500));
    for (const s of socks) s.close();
    const seconds = (Date.now() - started) / 1000;
    const flooded = reads - before;
    // Up to 2,000 REGISTER/s sent (as fast as this process, which also runs the server, gets to send them); reads are bounded
    // by what the per-source limit admits (burst + rate × time), not by the flood.
    expect(sent).toBeGreaterThan(300);
    expect(flooded).toBeLessThanOrEqual(REG_BURST + REG_PER_SECOND * seconds);
    expect(codes['503']).toBeGreaterThan(0);
    expect(await site.metric('shouhu_gb28181_events_total', { event: 'register_source_limited' })).toBeGreaterThan(0);
  });

  it('#1: a made-up id is read once within gb28181.unknownIdCacheSeconds, however often it is tried', async () => {
    const id = '34020000001320001234';
    const u = await ua(id, '127.0.0.7');
    const before = reads;
    for (let i = 0; i < 5; i++) expect(await u.register({ password: 'wrong' })).toBe(403);
    expect(reads - before).toBe(1);
  });

  it('#2: a stranger using a device’s next transaction fields gets 403, and the device’s own alarm with them is still taken', async () => {
    const dev = await device();
    const stranger = await ua(dev.id, '127.0.0.2');
    const channel = `${dev.id.slice(0, 10)}131${dev.id.slice(15, 20)}01`;
    const alarm = `<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Alarm</CmdType>\r\n<SN>77</SN>\r\n<DeviceID>${channel}</DeviceID>\r\n<AlarmPriority>1</AlarmPriority>\r\n<AlarmMethod>5</AlarmMethod>\r\n</Notify>\r\n`;
    const fields = { callId: `predictable-${rid()}`, cseq: 20, branch: `z9hG4bK${rid()}`, body: alarm };
    expect((await stranger.request('MESSAGE', fields))?.status).toBe(403);
    expect((await dev.request('MESSAGE', fields))?.status).toBe(200);
    await until(
      async () =>
        ((await t.http().get('/api/v1/incidents').query({ limit: 500 }).set(auth(admin)).expect(200)).body.items as { location: string }[]).some((i) =>
          i.location.includes(channel),
        ),
      10000,
      'the device’s alarm as an incident',
    );
  });

  it('#3: a captured REGISTER without qop replayed (new Call-ID, from elsewhere or from the device’s host) is challenged, never 200', async () => {
    const victim = await device('127.0.0.1', { qop: false });
    const attacker = await ua(victim.id, '127.0.0.5');
    const replay = (u: RawUa) =>
      u.request('REGISTER', {
        callId: `${rid()}@replay`,
        cseq: 7,
        headers: [
          ['Contact', `<sip:${victim.id}@${u.address}:${u.port}>`],
          ['Expires', 3600],
          ['Authorization', victim.lastAuth],
        ],
      });
    expect((await replay(attacker))?.status).toBe(401);
    // From the victim's own address too: without qop a nonce is taken once.
    const sameHost = await ua(victim.id, '127.0.0.1');
    const r = await replay(sameHost);
    expect(r?.status).toBe(401);
    expect(header(r!, 'www-authenticate')).toContain('stale=true');
    expect(await victim.keepalive(1)).toBe(200);
    expect(await attacker.keepalive(2)).toBe(403);
    // RFC 3261 §10.3: under the registration's Call-ID a CSeq not above the registration's does not update it, even authenticated.
    victim.cseq = 1;
    expect(await victim.register({ qop: false })).toBe(400);
    victim.cseq = 100;
    expect(await victim.register()).toBe(200);
  });

  it('#4: REGISTERs without credentials naming a device, from elsewhere, do not spend its budget', async () => {
    const victim = await device();
    const attacker = await ua(victim.id, '127.0.0.3');
    const statuses = await Promise.all(
      Array.from({ length: 60 }, () =>
        attacker.request('REGISTER', {
          callId: rid(),
          cseq: 1,
          headers: [
            ['Contact', `<sip:${victim.id}@127.0.0.3:${attacker.port}>`],
            ['Expires', 3600],
          ],
        }),
      ),
    );
    expect(statuses.every((s) => s?.status === 401 || s?.status === 503)).toBe(true);
    const answers: number[] = [];
    for (let i = 0; i < DEVICE_BURST - 4; i++) answers.push(await victim.keepalive(10 + i));
    expect(answers.filter((s) => s === 200).length).toBe(answers.length);
  });

  it('#5: an identified malformed request is answered 400, not dropped', async () => {
    const dev = await device();
    const ka = `<?xml version="1.0"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>1</SN>\r\n<DeviceID>${dev.id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n`;
    const len = Buffer.byteLength(ka);
    const msg = (o: { cl?: string[]; extra?: string; cseqLine?: string; callId?: string; cseq?: number }) => {
      const callId = o.callId ?? rid();
      const cseq = o.cseq ?? 5;
      const text =
        `MESSAGE ${URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${dev.port};rport;branch=z9hG4bK${rid()}\r\nFrom: <sip:${dev.id}@${DOMAIN}>;tag=1\r\n` +
        `To: <sip:${GB_PLATFORM}@${DOMAIN}>\r\nCall-ID: ${callId}\r\nCSeq: ${o.cseqLine ?? `${cseq} MESSAGE`}\r\nContent-Type: Application/MANSCDP+xml\r\n${o.extra ?? ''}` +
        (o.cl ?? [String(len)]).map((c) => `Content-Length: ${c}\r\n`).join('') +
        `\r\n${ka}`;
      return { buf: Buffer.from(text, 'latin1'), callId, cseq };
    };
    const cases: [string, ReturnType<typeof msg>][] = [
      ['Content-Length -1', msg({ cl: ['-1'] })],
      ['Content-Length 1e3', msg({ cl: ['1e3'] })],
      ['two Content-Length', msg({ cl: [String(len), '3'] })],
      ['120 headers', msg({ extra: Array.from({ length: 120 }, (_, i) => `X-H${i}: v\r\n`).join('') })],
      ['CSeq method mismatch', msg({ cseqLine: '5 INVITE' })],
      ['CSeq 2^31', msg({ cseq: 2 ** 31, cseqLine: `${2 ** 31} MESSAGE` })],
      ['Call-ID of 300 characters', msg({ callId: 'x'.repeat(300) })],
    ];
    for (const [what, m] of cases) {
      const r = await dev.sendRaw(m.buf, m.callId, m.cseq);
      expect([what, r?.status]).toEqual([what, 400]);
      expect(header(r!, 'warning')).toMatch(/^399 shouhu /);
    }
    // The device is not the worse for it.
    expect(await dev.keepalive(2)).toBe(200);
  });
});
