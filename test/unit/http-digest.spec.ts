import { basicAuthorization, CameraAuthMemory, digestAuthorization, parseChallenges, strongest } from '../../src/modules/video/http-digest';

/**
 * HTTP authentication towards cameras' snapshot URIs (src/modules/video/http-digest.ts): the Digest
 * answers of RFC 7616 §3.9.1 and RFC 2617 §3.5 (their published examples), challenge parsing as
 * cameras send it, and the per-camera memory of what each asked last — bounded, per origin, counting
 * nonces up in hex.
 */
const MUFASA = { username: 'Mufasa', password: 'Circle of Life' };
const field = (header: string, name: string) => new RegExp(`(?:^Digest |, )${name}=("?)([^",]*)\\1`).exec(header)?.[2];

describe('HTTP Digest for snapshot URIs', () => {
  it('answers the examples of RFC 7616 §3.9.1 (MD5, SHA-256) and RFC 2617 §3.5', () => {
    const rfc7616 = (algorithm: string) =>
      parseChallenges([
        `Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=${algorithm}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
      ]).digest[0];
    const cnonce = 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ';
    const md5 = digestAuthorization(rfc7616('MD5'), MUFASA, 'GET', '/dir/index.html', 1, cnonce);
    expect(field(md5, 'response')).toBe('8ca523f5e9506fed4657c9700eebdbec');
    expect(md5).toContain('qop=auth, ');
    expect(md5).toContain('nc=00000001');
    expect(md5).toContain('opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"');
    expect(md5).toContain('algorithm=MD5');
    const sha = digestAuthorization(rfc7616('SHA-256'), MUFASA, 'GET', '/dir/index.html', 1, cnonce);
    expect(field(sha, 'response')).toBe('753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');

    const [rfc2617] = parseChallenges([
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    ]).digest; // RFC 2617's password is written "Circle Of Life"
    expect(field(digestAuthorization(rfc2617, { username: 'Mufasa', password: 'Circle Of Life' }, 'GET', '/dir/index.html', 1, '0a4f113b'), 'response')).toBe(
      '6629fae49393a05397450978507c4ef1',
    );
  });

  it('reads challenges as cameras send them, and answers only what it can', () => {
    // Two challenges in one header value, a comma inside a quoted string, escapes, Basic after Digest.
    const one = parseChallenges(['Digest realm="a, \\"b\\"", nonce="n1", qop="auth", Basic realm="cam"']);
    expect(one.basic).toBe(true);
    expect(one.digest).toEqual([{ realm: 'a, "b"', nonce: 'n1', qop: 'auth', userhash: false, stale: false }]);
    // Without qop: RFC 2069's answer (no nc, no cnonce).
    const legacy = parseChallenges(['Digest realm="r", nonce="n"']).digest[0];
    const answer = digestAuthorization(legacy, MUFASA, 'GET', '/snap?ch=1', 7);
    expect(answer).not.toMatch(/nc=|cnonce=|qop=/);
    expect(answer).toContain('uri="/snap?ch=1"');
    // What cannot be answered is left out: auth-int only, an unknown algorithm, -sess without qop, no nonce.
    expect(
      parseChallenges([
        'Digest realm="r", nonce="n", qop="auth-int"',
        'Digest realm="r", nonce="n", algorithm=SHA-1',
        'Digest realm="r", nonce="n", algorithm=MD5-sess',
        'Digest realm="r", qop="auth"',
        'Negotiate YIIabc==',
      ]),
    ).toEqual({ digest: [], basic: false });
    // stale and userhash (RFC 7616 §3.4.4: the username hashed with the realm).
    const hashed = parseChallenges(['Digest realm="r", nonce="n", qop=auth, stale=TRUE, userhash=true, algorithm=SHA-256']).digest[0];
    expect(hashed).toMatchObject({ stale: true, userhash: true, algorithm: 'SHA-256' });
    const withHash = digestAuthorization(hashed, MUFASA, 'GET', '/', 1);
    expect(withHash).toContain('userhash=true');
    expect(withHash).not.toContain('Mufasa');
    // A quote or backslash in the account name stays inside its quoted string.
    expect(digestAuthorization(legacy, { username: 'a"b\\', password: 'x' }, 'GET', '/', 1)).toContain('username="a\\"b\\\\"');
    // Several offered: the strongest we hash (Hikvision offers MD5 and SHA-256).
    const offered = parseChallenges(['Digest realm="r", nonce="m", qop="auth", algorithm=MD5', 'Digest realm="r", nonce="s", qop="auth", algorithm=SHA-256']);
    expect(strongest(offered.digest)?.nonce).toBe('s');
    expect(basicAuthorization(MUFASA)).toBe(`Basic ${Buffer.from('Mufasa:Circle of Life').toString('base64')}`);
  });

  it('remembers per camera what it asked, for its origin only, counting the nonce up in hex, the most recently used `max` cameras', () => {
    const memory = new CameraAuthMemory(2);
    const u = new URL('http://10.0.0.5/ISAPI/Streaming/channels/101/picture');
    const [challenge] = parseChallenges(['Digest realm="IP Camera", nonce="abc", qop="auth"']).digest;
    expect(memory.authorization('cam-1', u, MUFASA)).toBeUndefined(); // nothing asked yet
    memory.remember('cam-1', u, { scheme: 'digest', challenge }); // answered with nc 1
    const counts = Array.from({ length: 16 }, () => field(memory.authorization('cam-1', u, MUFASA)!, 'nc'));
    expect(counts.slice(0, 3)).toEqual(['00000002', '00000003', '00000004']);
    expect(counts.slice(8, 10)).toEqual(['0000000a', '0000000b']);
    expect(field(memory.authorization('cam-1', u, MUFASA)!, 'nonce')).toBe('abc');
    // Another origin (a moved snapshot URI, another port) gets no account before it asks.
    expect(memory.authorization('cam-1', new URL('http://10.0.0.6/ISAPI/Streaming/channels/101/picture'), MUFASA)).toBeUndefined();
    expect(memory.authorization('cam-1', new URL('http://10.0.0.5:8080/x'), MUFASA)).toBeUndefined();
    // Basic: sent at once next time.
    memory.remember('cam-2', u, { scheme: 'basic' });
    expect(memory.authorization('cam-2', u, MUFASA)).toBe(basicAuthorization(MUFASA));
    // Bounded: a third camera pushes out the one used least recently (cam-1 was used before cam-2).
    memory.remember('cam-3', u, { scheme: 'basic' });
    expect(memory.size).toBe(2);
    expect(memory.authorization('cam-1', u, MUFASA)).toBeUndefined();
    expect(memory.authorization('cam-2', u, MUFASA)).toBeDefined();
    // Use refreshes: cam-2 was just used, so cam-3 goes when cam-4 comes.
    memory.remember('cam-4', u, { scheme: 'basic' });
    expect([memory.authorization('cam-2', u, MUFASA) !== undefined, memory.authorization('cam-3', u, MUFASA) !== undefined]).toEqual([true, false]);
    memory.forget('cam-2');
    expect(memory.authorization('cam-2', u, MUFASA)).toBeUndefined();
    // 0: nothing kept (two requests per picture, as before).
    const none = new CameraAuthMemory(0);
    none.remember('cam-1', u, { scheme: 'basic' });
    expect([none.size, none.authorization('cam-1', u, MUFASA)]).toEqual([0, undefined]);
  });
});
