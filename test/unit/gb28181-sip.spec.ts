import * as iconv from 'iconv-lite';
import { expectedResponse, ha1, NonceTracker, parseDigest, responseMatches } from '../../src/modules/gb28181/digest';
import { gbTime, incidentTypeOf, parseGbTime } from '../../src/modules/gb28181/gb-codes';
import { decodeBody, detectCharset } from '../../src/modules/gb28181/charset';
import { buildManscdp, parseManscdp, parseXml, XmlError } from '../../src/modules/gb28181/manscdp';
import { scanKeepalive } from '../../src/modules/gb28181/keepalive-fast';
import { AlarmRepeats } from '../../src/modules/gb28181/gb-alarms';
import { storableText } from '../../src/infra/text/storable';
import { buildResponse, parseSip, SipParseError, SipRequest } from '../../src/modules/gb28181/sip-message';

const REG = [
  'REGISTER sip:34020000002000000001@3402000000 SIP/2.0',
  'v: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1234',
  'Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKproxy',
  'f: <sip:34020000001320000001@3402000000>;tag=abc',
  't: <sip:34020000001320000001@3402000000>',
  'i: call-1@10.0.0.5',
  'CSeq: 1 REGISTER',
  'Contact: <sip:34020000001320000001@10.0.0.5:5060>',
  'Subject: a folded',
  '  header value',
  'Expires: 3600',
  'l: 0',
  '',
  '',
].join('\r\n');

const opts = { datagram: true, maxBytes: 8192 };

describe('SIP parser', () => {
  it('parses compact forms, Via lists, tags and folded headers', () => {
    const m = parseSip(Buffer.from(REG, 'latin1'), opts) as SipRequest;
    expect(m).toMatchObject({ kind: 'request', method: 'REGISTER', callId: 'call-1@10.0.0.5', cseq: { seq: 1, method: 'REGISTER' } });
    expect(m.via).toEqual({ transport: 'UDP', host: '10.0.0.5', port: 5060, branch: 'z9hG4bK1234', rport: true });
    // RFC 2543 devices send no branch (issue 16 §5): taken, branch ''.
    expect(parseSip(Buffer.from(REG.replace(';branch=z9hG4bK1234', ''), 'latin1'), opts).via).toMatchObject({ host: '10.0.0.5', branch: '' });
    expect(m.vias).toHaveLength(2);
    expect(m.from).toMatchObject({ user: '34020000001320000001', tag: 'abc' });
    expect(m.to.tag).toBeNull();
    expect(m.headers.get('subject')).toEqual(['a folded header value']);
    expect(m.body.length).toBe(0);
  });

  it('builds a response with received/rport, the To tag and every Via', () => {
    const m = parseSip(Buffer.from(REG, 'latin1'), opts) as SipRequest;
    const out = buildResponse(m, 200, { toTag: 't1', source: { address: '192.168.1.9', port: 40000 }, headers: [['Expires', 3600]] }).toString('latin1');
    expect(out.startsWith('SIP/2.0 200 OK\r\n')).toBe(true);
    expect(out).toContain('Via: SIP/2.0/UDP 10.0.0.5:5060;rport=40000;branch=z9hG4bK1234;received=192.168.1.9\r\n');
    expect(out).toContain('Via: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bKproxy\r\n');
    expect(out).toContain('To: <sip:34020000001320000001@3402000000>;tag=t1\r\n');
    expect(out).toContain('CSeq: 1 REGISTER\r\n');
    expect(out.endsWith('Content-Length: 0\r\n\r\n')).toBe(true);
  });

  it('honours Content-Length and keeps GB18030 bytes of the body', () => {
    const body = iconv.encode(
      '<?xml version="1.0"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status><Name>南门</Name></Notify>',
      'gb18030',
    );
    const head = REG.replace('REGISTER sip', 'MESSAGE sip').replace('1 REGISTER', '1 MESSAGE').replace('l: 0', `l: ${body.length}`);
    const m = parseSip(Buffer.concat([Buffer.from(head, 'latin1'), body, Buffer.from('trailing')]), opts);
    expect(m.body.equals(body)).toBe(true);
    const doc = parseManscdp(m.body);
    expect(doc).toMatchObject({ root: 'Notify', cmdType: 'Keepalive', sn: '1', deviceId: '34020000001320000001' });
    expect(doc.el.children.find((c) => c.name === 'Name')?.text).toBe('南门');
  });

  const broken: [string, string, string][] = [
    ['garbage', '\x00\x01\x02 hello', 'no_header_end'],
    ['no Call-ID', REG.replace(/i: call-1@10.0.0.5\r\n/, ''), 'missing_call-id'],
    ['CSeq method mismatch', REG.replace('1 REGISTER', '1 INVITE'), 'cseq_method_mismatch'],
    ['a branch over 128 characters', REG.replace(';branch=z9hG4bK1234', `;branch=z9hG4bK${'a'.repeat(130)}`), 'bad_via_branch'],
    ['bad start line', REG.replace('SIP/2.0\r\n', 'HTTP/1.1\r\n'), 'bad_start_line'],
    ['body shorter than Content-Length', REG.replace('l: 0', 'l: 50'), 'truncated_body'],
    ['two Content-Lengths', REG.replace('l: 0', 'l: 0\r\nContent-Length: 0'), 'duplicate_content-length'],
    ['Content-Length -1', REG.replace('l: 0', 'l: -1'), 'bad_content_length'],
    ['more than 100 headers', REG.replace('l: 0', `${'X-H: v\r\n'.repeat(101)}l: 0`), 'too_many_headers'],
    ['CSeq 2**31', REG.replace('1 REGISTER', '2147483648 REGISTER'), 'bad_cseq'],
    ['a Call-ID over 256 characters', REG.replace('call-1@10.0.0.5', 'c'.repeat(257)), 'bad_call-id'],
    ['header without colon', REG.replace('Expires: 3600', 'Expires 3600'), 'bad_header'],
  ];
  it.each(broken)('refuses %s', (_, text, reason) => {
    expect(() => parseSip(Buffer.from(text, 'latin1'), opts)).toThrow(SipParseError);
    try {
      parseSip(Buffer.from(text, 'latin1'), opts);
    } catch (e) {
      expect((e as SipParseError).reason).toBe(reason);
      // Identified (Via, From, To, Call-ID and CSeq read) faults carry what a 400 needs (attack pass 4 #5); the others cannot be answered.
      const identified = !['no_header_end', 'missing_call-id', 'bad_via_branch', 'bad_start_line', 'bad_header'].includes(reason);
      expect(!!(e as SipParseError).basis).toBe(identified);
    }
  });

  it('refuses oversized messages and requires Content-Length on streams', () => {
    expect(() => parseSip(Buffer.alloc(9000, 65), opts)).toThrow('too_large');
    expect(() => parseSip(Buffer.from(REG.replace('l: 0\r\n', ''), 'latin1'), { datagram: false, maxBytes: 8192 })).toThrow('missing_content-length');
  });
});

describe('digest (RFC 2617)', () => {
  it('computes the RFC 2617 §3.5 test vector', () => {
    const h1 = ha1('Mufasa', 'testrealm@host.com', 'Circle Of Life');
    const r = expectedResponse(h1, 'GET', {
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      uri: '/dir/index.html',
      qop: 'auth',
      nc: '00000001',
      cnonce: '0a4f113b',
    });
    expect(r).toBe('6629fae49393a05397450978507c4ef1');
    const creds = parseDigest(
      'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    )!;
    expect(creds).toMatchObject({ username: 'Mufasa', qop: 'auth', nc: '00000001' });
    // nc without its leading zeros (issue 16 §5), hashed as sent; nine digits or not hex: refused.
    const short = parseDigest(
      'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=1, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"',
    );
    expect(short).toMatchObject({ nc: '1' });
    expect(responseMatches(h1, 'GET', { ...short!, response: expectedResponse(h1, 'GET', short!) })).toBe(true);
    expect(expectedResponse(h1, 'GET', short!)).not.toBe(expectedResponse(h1, 'GET', { ...short!, nc: '00000001' }));
    for (const nc of ['000000001', 'g1'])
      expect(parseDigest(`Digest username="a", realm="r", nonce="n", uri="u", qop=auth, nc=${nc}, cnonce="c", response="${'0'.repeat(32)}"`)).toBeNull();
    expect(responseMatches(h1, 'GET', creds)).toBe(true);
    expect(responseMatches(ha1('Mufasa', 'testrealm@host.com', 'wrong'), 'GET', creds)).toBe(false);
  });

  it('refuses malformed credentials', () => {
    expect(parseDigest('Basic abc')).toBeNull();
    expect(parseDigest('Digest username="a", realm="r", nonce="n", uri="u"')).toBeNull();
    expect(parseDigest('Digest username="a", realm="r", nonce="n", uri="u", response="zz"')).toBeNull();
  });

  it('tracks nonces: unknown, stale, nonce-count replay', () => {
    let now = 1_000_000;
    const t = new NonceTracker(60_000, () => now);
    const n = t.issue();
    expect(t.check(n, '00000001')).toBe('ok');
    t.commit(n, '00000001');
    expect(t.check(n, '00000001')).toBe('replay');
    expect(t.check(n, '00000002')).toBe('ok');
    expect(t.check(n.slice(0, -1) + (n.endsWith('0') ? '1' : '0'), undefined)).toBe('unknown');
    expect(t.check('not-a-nonce', undefined)).toBe('unknown');
    now += 61_000;
    expect(t.check(n, '00000003')).toBe('stale');
    t.prune();
    expect(t.tracked).toBe(0);
  });

  it('binds a nonce to what it was issued for and takes it once without qop (attack pass 4 #1, #3)', () => {
    const t = new NonceTracker(60_000);
    const n = t.issue('34020000001320000001\n127.0.0.1');
    expect(t.check(n, undefined, '34020000001320000002\n127.0.0.1')).toBe('unknown');
    expect(t.check(n, undefined, '34020000001320000001\n127.0.0.5')).toBe('unknown');
    expect(t.check(n, undefined, '34020000001320000001\n127.0.0.1')).toBe('ok');
    t.commit(n, undefined, '34020000001320000001\n127.0.0.1');
    expect(t.check(n, undefined, '34020000001320000001\n127.0.0.1')).toBe('replay');
    // Nor with qop afterwards.
    expect(t.check(n, '00000001', '34020000001320000001\n127.0.0.1')).toBe('replay');
  });
});

describe('MANSCDP and GB codes', () => {
  it('decodes GB18030 whatever the declaration says, with entities and CDATA', () => {
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><Response><CmdType>Catalog</CmdType><SN>7</SN><DeviceID>34020000001180000001</DeviceID><Name a="x&amp;y">大&lt;门&gt;<![CDATA[<b>]]></Name></Response>';
    const doc = parseManscdp(iconv.encode(xml, 'gb18030'));
    const name = doc.el.children.find((c) => c.name === 'Name')!;
    expect(name.text).toBe('大<门><b>');
    expect(name.attrs.a).toBe('x&y');
  });

  it('chooses the charset by BOM, override, declaration when valid, else detection (issue 16 §1)', () => {
    const doc = (declared: string | null, text: string) => `${declared === null ? '' : `<?xml version="1.0" encoding="${declared}"?>`}<a>${text}</a>`;
    const gb = (s: string) => iconv.encode(s, 'gb18030');
    const u8 = (s: string) => Buffer.from(s, 'utf8');
    // ASCII: no decision to make (the keepalive path).
    expect(detectCharset(u8(doc('GB2312', 'OK'))).charset).toBe('ASCII');
    // Declared UTF-8 and valid; declared UTF-8 but GB bytes (firmware that lies); declared GB2312 with UTF-8 bytes.
    expect(decodeBody(u8(doc('UTF-8', '大门口')))).toBe(doc('UTF-8', '大门口'));
    expect(decodeBody(gb(doc('UTF-8', '大门口')))).toBe(doc('UTF-8', '大门口'));
    expect(decodeBody(u8(doc('GB2312', '有人翻越围墙')))).toBe(doc('GB2312', '有人翻越围墙'));
    expect(decodeBody(u8(doc(null, '东侧围墙')))).toBe(doc(null, '东侧围墙'));
    // GB18030 exact beyond GB2312: two-byte GBK (萳, 喆, 堃), four-byte BMP (㐀) and supplementary (𠀾).
    for (const s of ['萳', '㐀', '𠀾', '喆镕堃', '南大门']) {
      expect(decodeBody(gb(doc('GB2312', s)))).toBe(doc('GB2312', s));
      expect(decodeBody(gb(doc(null, s)))).toBe(doc(null, s));
    }
    // BOMs are stripped (UTF-8 and GB18030's 84 31 95 33).
    expect(decodeBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), u8(doc('UTF-8', '操场'))]))).toBe(doc('UTF-8', '操场'));
    expect(decodeBody(Buffer.concat([Buffer.from([0x84, 0x31, 0x95, 0x33]), gb(doc('GB2312', '操场'))]))).toBe(doc('GB2312', '操场'));
    // Valid in both and reads as GB2312 text: the declaration (GB2312) wins; the device override decides otherwise.
    expect(detectCharset(u8(doc('GB2312', '西楼'))).charset).toBe('GB18030');
    expect(decodeBody(u8(doc('GB2312', '西楼')), 'UTF-8')).toBe(doc('GB2312', '西楼'));
    expect(decodeBody(gb(doc('UTF-8', '喆镕堃')), 'GB18030')).toBe(doc('UTF-8', '喆镕堃'));
    // A BOM-prefixed document parses (it was a 400).
    const bom = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      u8('<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID></Notify>'),
    ]);
    expect(parseManscdp(bom).cmdType).toBe('Alarm');
  });

  it('takes a BOM or an override as a claim: bytes invalid in it are read in the charset they are valid in, and bytes valid in neither are said (import8 F5)', () => {
    const alarm = (desc: string) =>
      `<Notify><CmdType>Alarm</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><AlarmDescription>${desc}</AlarmDescription></Notify>`;
    const desc = (doc: ReturnType<typeof parseManscdp>) => doc.el.children.find((c) => c.name === 'AlarmDescription')!.text;
    const utf8Bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const gbBom = Buffer.from([0x84, 0x31, 0x95, 0x33]);
    // A UTF-8 BOM before GB18030 bytes (the tester's file, as firmware sends it): GB18030, no replacement characters.
    const liar = Buffer.concat([utf8Bom, iconv.encode(alarm('张三丰翻越围墙'), 'gb18030')]);
    expect(detectCharset(liar)).toEqual({ charset: 'GB18030', bomLength: 3 });
    const doc = parseManscdp(liar);
    expect([desc(doc), doc.undecodableAt]).toEqual(['张三丰翻越围墙', undefined]);
    // The GB18030 BOM before UTF-8 bytes; a device override that the bytes contradict.
    expect(desc(parseManscdp(Buffer.concat([gbBom, Buffer.from(alarm('东侧围墙 ✓'), 'utf8')])))).toBe('东侧围墙 ✓');
    expect(desc(parseManscdp(iconv.encode(alarm('操场'), 'gb18030'), 'UTF-8'))).toBe('操场');
    expect(desc(parseManscdp(Buffer.from(alarm('喆镕堃 ✓'), 'utf8'), 'GB18030'))).toBe('喆镕堃 ✓');
    // Valid in neither (a GB18030 body cut by a stray FF byte): still an alarm, but where the bytes went is said.
    const body = iconv.encode(alarm('东门有人'), 'gb18030');
    const broken = Buffer.concat([utf8Bom, body.subarray(0, body.indexOf(0x3c, 100) - 2), Buffer.from([0xff]), body.subarray(body.indexOf(0x3c, 100) - 2)]);
    const lossy = parseManscdp(broken);
    expect(lossy.cmdType).toBe('Alarm');
    expect(lossy.undecodableAt).toBe(broken.indexOf(0xff));
    expect(desc(lossy)).toContain('\uFFFD');
    expect(detectCharset(broken).undecodableAt).toBe(broken.indexOf(0xff));
    // Unassigned four-byte GB18030 (iconv-lite would read FE 39 FE 39 as lone surrogates) counts as undecodable too.
    expect(detectCharset(Buffer.concat([Buffer.from(alarm('门'), 'latin1').subarray(0, 20), Buffer.from([0xfe, 0x39, 0xfe, 0x39])])).undecodableAt).toBe(20);
  });

  it('refuses broken XML and DOCTYPE', () => {
    expect(() => parseXml('<a><b></a>')).toThrow(XmlError);
    expect(() => parseXml('<!DOCTYPE x [<!ENTITY e "x">]><a/>')).toThrow(XmlError);
    expect(() => parseXml('<a>' + '<b>'.repeat(40) + '</b>'.repeat(40) + '</a>')).toThrow('too deep');
    expect(() => parseManscdp(Buffer.from('<Notify><SN>1</SN><DeviceID>34020000001320000001</DeviceID></Notify>'))).toThrow(XmlError);
    expect(() => parseManscdp(Buffer.from('<Notify><CmdType>Keepalive</CmdType'))).toThrow(XmlError);
  });

  it('reads what a registered device sends rather than refusing it: any SN, no DeviceID, text made storable, a broken Alarm salvaged', () => {
    const nul = Buffer.from('<Notify><CmdType>Alarm</CmdType><SN>1732950000123</SN><AlarmDescription>a\0b&#xD800;c</AlarmDescription></Notify>', 'latin1');
    const doc = parseManscdp(nul);
    expect(doc).toMatchObject({ cmdType: 'Alarm', sn: '1732950000123', deviceId: '' });
    expect(doc.el.children.find((c) => c.name === 'AlarmDescription')!.text).toBe('ab\ufffdc');
    expect(parseManscdp(Buffer.from('<Notify><CmdType>Keepalive</CmdType><SN>abc</SN><DeviceID>x</DeviceID></Notify>')).sn).toBe('abc');
    const broken = parseManscdp(
      Buffer.from('<Notify><CmdType>Alarm</CmdType><SN>9</SN><AlarmMethod>5</AlarmMethod><AlarmDescription>x &amp; y</AlarmDescription><Info>'),
    );
    expect(broken.cmdType).toBe('Alarm');
    expect(broken.sn).toBe('9');
    expect(broken.el.children.find((c) => c.name === 'AlarmDescription')!.text).toBe('x & y');
  });

  it('forgets alarm repeats after the window: a rebooted device reusing an SN raises a new alarm, a retransmission within it does not', () => {
    const r = new AlarmRepeats(32_000, 1000);
    const tx = (callId: string, seq = 1) => ({ callId, cseq: { seq } });
    const first = r.eventId('D', 'C', '1', '', tx('a'), 0);
    expect(r.eventId('D', 'C', '1', '', tx('b'), 10_000)).toBe(first); // the same SN again, new transaction
    expect(r.eventId('D', 'C', '2', '', tx('a'), 20_000)).toBe(first); // the same transaction
    expect(r.eventId('D', 'C', '1', '', tx('c'), 40_000)).not.toBe(first); // past the window: a new alarm
    expect(r.eventId('D', 'C', '3', '', tx('d'), 40_000)).not.toBe(r.eventId('D', 'C', '4', '', tx('e'), 40_000));
  });

  it('cuts text for a bounded column without splitting a surrogate pair', () => {
    expect(storableText('ab😀', 3)).toBe('ab');
    expect(storableText('a\0b', 10)).toBe('ab');
    expect(storableText('\ud800x')).toBe('\ufffdx');
    const ok = 'plain';
    expect(storableText(ok)).toBe(ok);
  });

  it('round-trips what the platform builds', () => {
    const doc = parseManscdp(
      buildManscdp('Query', [
        ['CmdType', 'Catalog'],
        ['SN', 5],
        ['DeviceID', '34020000001320000001'],
      ]),
    );
    expect(doc).toMatchObject({ root: 'Query', cmdType: 'Catalog', sn: '5' });
  });

  it('formats and parses GB times in Asia/Shanghai', () => {
    expect(gbTime(new Date('2026-11-28T13:30:00.000Z'))).toBe('2026-11-28T21:30:00.000');
    expect(parseGbTime('2026-11-28T21:30:00')?.toISOString()).toBe('2026-11-28T13:30:00.000Z');
    expect(parseGbTime('2026-11-28 21:30:00.5')?.toISOString()).toBe('2026-11-28T13:30:00.500Z');
    expect(parseGbTime('2026-11-28T21:30:00Z')?.toISOString()).toBe('2026-11-28T21:30:00.000Z');
    expect(parseGbTime('yesterday')).toBeNull();
  });

  it('maps alarm method/type to incident types', () => {
    expect(incidentTypeOf(5, 6)).toBe('intrusion');
    expect(incidentTypeOf(5, 2)).toBe('video_alarm');
    expect(incidentTypeOf(2, 2)).toBe('tamper');
    expect(incidentTypeOf(2, 1)).toBe('device_fault');
    expect(incidentTypeOf(6, 1)).toBe('device_fault');
    expect(incidentTypeOf(1, null)).toBe('other');
  });
});

describe('keepalive fast path', () => {
  const body =
    '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>7</SN>\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n';
  const ka = (b: string = body, lines: string[] = []) =>
    Buffer.from(
      [
        'MESSAGE sip:34020000002000000001@3402000000 SIP/2.0',
        'Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKka1',
        'From: "南门" <sip:34020000001320000001@3402000000>;tag=9',
        'To: <sip:34020000002000000001@3402000000>',
        'Call-ID:  ka-1@10.0.0.5 ',
        'CSeq: 20 MESSAGE',
        'Content-Type: Application/MANSCDP+xml',
        'Max-Forwards: 70',
        ...lines,
        `Content-Length: ${Buffer.byteLength(b, 'latin1')}`,
        '',
        b,
      ].join('\r\n'),
      'latin1',
    );
  const respOpts = { toTag: 'abcd', source: { address: '10.9.9.9', port: 40000 } };

  it('recognises a plain Keepalive and answers byte for byte as the general parser would', () => {
    const buf = ka();
    const fast = scanKeepalive(buf, 8192)!;
    expect(fast).not.toBeNull();
    const full = parseSip(buf, opts) as SipRequest;
    expect(parseManscdp(full.body)).toMatchObject({ root: 'Notify', cmdType: 'Keepalive' });
    expect(fast.from.user).toBe(full.from.user);
    expect(buildResponse(fast, 200, respOpts).toString('latin1')).toBe(buildResponse(full, 200, respOpts).toString('latin1'));
    // a millisecond-timestamp SN (some firmwares): still the fast path
    expect(scanKeepalive(ka(body.replace('<SN>7</SN>', '<SN>1732950000123</SN>')), 8192)).not.toBeNull();
    // without the optional Status and the declaration, still the fast path
    expect(scanKeepalive(ka('<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID></Notify>'), 8192)).not.toBeNull();
  });

  it('leaves anything unusual to the general parser', () => {
    const other = (b: string, lines: string[] = []) => expect(scanKeepalive(ka(b, lines), 8192)).toBeNull();
    other(body.replace('<Status>OK</Status>', '<Status>OK</Status><Info>x</Info>')); // another element
    other(body.replace('<Notify>', '<Notify><Name>南门</Name>')); // non-ASCII text
    other(body.replace('Keepalive', 'Alarm'));
    other(body.replace('<SN>7</SN>', '<SN>x</SN>')); // not digits: the general path (which keeps it as text)
    other(body.replace('</Notify>', '</Notify')); // malformed XML
    other(body, ['User-Agent: a', 'User-Agent: b']); // duplicate header
    other(body, ['Subject: x']); // a header it does not know
    other(body, ['v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKp']); // compact form
    const plain = ka().toString('latin1');
    const not = (s: string) => expect(scanKeepalive(Buffer.from(s, 'latin1'), 8192)).toBeNull();
    not(
      plain.replace(
        'Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKka1',
        'Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKka1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKp',
      ),
    );
    not(plain.replace('To: <', 'To:\r\n <')); // folding
    not(plain.replace('CSeq:', 'cseq:'));
    not(plain.replace(/Content-Length: \d+\r\n/, '')); // no Content-Length
    not(plain.replace('CSeq: 20 MESSAGE', 'CSeq: 20 REGISTER'));
    not(plain.replace(/\r\n/g, '\n')); // bare LF
    expect(scanKeepalive(ka(), 100)).toBeNull(); // oversized
    expect(scanKeepalive(Buffer.from(REG, 'latin1'), 8192)).toBeNull();
  });
});
