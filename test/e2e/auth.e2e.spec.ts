import { createHash } from 'node:crypto';
import { QUEUE_BOARD_CSP } from '../../src/modules/ops/queue-board';
import { auth, PASSWORD, startApp, TestApp } from '../support/harness';

describe('authentication', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ auth: { loginMaxAttemptsPerAccount: 3, loginMaxAttemptsPerAddress: 1000 } });
  });
  afterAll(() => t.close());

  const login = (username: string, password = PASSWORD) => t.http().post('/api/v1/auth/login').send({ username, password });

  it('logs in with a password and returns a short-lived JWT plus a refresh token', async () => {
    await t.userToken('operator', undefined, 'op.alpha');
    const res = await login('OP.ALPHA').expect(200); // usernames are case-insensitive
    expect(res.body).toMatchObject({ tokenType: 'Bearer', expiresIn: t.config.auth.accessTtlSeconds, user: { username: 'op.alpha', role: 'operator' } });
    const me = await t.http().get('/api/v1/auth/me').set(auth(res.body.accessToken)).expect(200);
    expect(me.body.role).toBe('operator');
    const { rows } = await t.db.query(`SELECT password_hash FROM users WHERE username = 'op.alpha'`);
    expect(rows[0].password_hash).toMatch(/^\$argon2id\$/);
  });

  it('refuses a wrong password with 401 and the same message as an unknown user', async () => {
    const wrong = await login('op.alpha', 'nope-nope-nope').expect(401);
    const unknown = await login('nobody-here', 'nope-nope-nope').expect(401);
    expect(wrong.body.error.code).toBe('AUTH.INVALID_CREDENTIALS');
    expect(unknown.body.error.message).toBe(wrong.body.error.message);
  });

  it('rate-limits failed logins per account (429 with Retry-After), even with the right password after', async () => {
    await t.userToken('operator', undefined, 'op.limited');
    for (let i = 0; i < 3; i++) await login('op.limited', 'wrong-password!').expect(401);
    const blocked = await login('op.limited').expect(429);
    expect(blocked.body.error.code).toBe('AUTH.TOO_MANY_ATTEMPTS');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('counts parallel wrong-password logins before checking them: 15 at once, at most the limit are checked (issue 12 §7)', async () => {
    await t.userToken('operator', undefined, 'op.race');
    const answers = await Promise.all(Array.from({ length: 15 }, () => login('op.race', 'wrong-password!')));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12);
    await login('op.race').expect(429); // the right password too, until the window ends
  });

  it('a good login gives its attempt back: the limit counts failures, not logins', async () => {
    await t.userToken('operator', undefined, 'op.often');
    for (let i = 0; i < 6; i++) await login('op.often').expect(200);
    await login('op.often', 'wrong-password!').expect(401);
    await login('op.often').expect(200);
  });

  it('revokes refresh tokens with the access tokens on a password, role or scope change and on disable (issue 12 §6)', async () => {
    const admin = (await t.userToken('admin')).token;
    for (const change of [{ password: 'another-horse-battery' }, { role: 'supervisor' }, { disabled: true }]) {
      const u = await t.userToken('operator');
      const s = (await login(u.username).expect(200)).body;
      await t.http().patch(`/api/v1/users/${u.userId}`).set(auth(admin)).send(change).expect(200);
      const refused = await t.http().post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken }).expect(401);
      expect(refused.body.error.code).toBe('AUTH.REFRESH_INVALID');
      await t.http().get('/api/v1/auth/me').set(auth(s.accessToken)).expect(401);
    }
  });

  it('takes revocations from Postgres, the truth: one written by another process refuses the token within auth.revocationSyncMs', async () => {
    const u = await t.userToken('operator');
    await t.http().get('/api/v1/auth/me').set(auth(u.token)).expect(200);
    const { jti, exp } = JSON.parse(Buffer.from(u.token.split('.')[1], 'base64url').toString()) as { jti: string; exp: number };
    await t.db.query(`INSERT INTO token_revocations (kind, subject, expires_at) VALUES ('token', $1, to_timestamp($2))`, [jti, exp]);
    const deadline = Date.now() + t.config.auth.revocationSyncMs * 5 + 2000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      status = (await t.http().get('/api/v1/auth/me').set(auth(u.token))).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
  });

  const spentSecondsAgo = (refreshToken: string, seconds: number) =>
    t.db.query(`UPDATE refresh_tokens SET revoked_at = revoked_at - make_interval(secs => $2) WHERE token_hash = $1`, [
      createHash('sha256').update(refreshToken).digest('hex'),
      seconds,
    ]);

  it('a logout never fails for its body: odd refreshToken values and extra fields still end the session (attack pass 8)', async () => {
    await t.userToken('operator', undefined, 'op.oddout');
    for (const body of [{ refreshToken: 123 }, { refreshToken: 'x'.repeat(5000) }, { refreshToken: ['a'] }, { other: true }, []]) {
      const s = (await login('op.oddout').expect(200)).body;
      await t.http().post('/api/v1/auth/logout').set(auth(s.accessToken)).send(body).expect(204);
      expect([JSON.stringify(body).slice(0, 30), (await t.http().get('/api/v1/auth/me').set(auth(s.accessToken))).status]).toEqual([
        JSON.stringify(body).slice(0, 30),
        401,
      ]);
      expect((await t.http().post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken })).status).toBe(401);
    }
  });

  it('a refresh retried moments after it succeeded (a lost answer) is refused without ending any session (attack pass 8 F7)', async () => {
    await t.userToken('operator', undefined, 'op.retry');
    const other = (await login('op.retry').expect(200)).body; // the same user on another desk
    const first = (await login('op.retry').expect(200)).body;
    const renewed = (await t.http().post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken }).expect(200)).body;
    const retry = await t.http().post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken }).expect(401);
    expect(retry.body.error.code).toBe('AUTH.REFRESH_INVALID');
    // Nothing was revoked: the renewed pair and the other desk work on.
    await t.http().get('/api/v1/auth/me').set(auth(renewed.accessToken)).expect(200);
    await t.http().get('/api/v1/auth/me').set(auth(other.accessToken)).expect(200);
    await t.http().post('/api/v1/auth/refresh').send({ refreshToken: renewed.refreshToken }).expect(200);
  });

  it('a refresh racing a logout of its session never outlives the logout (attack pass 8 F1)', async () => {
    await t.userToken('operator', undefined, 'op.race2');
    for (let i = 0; i < 8; i++) {
      const s = (await login('op.race2').expect(200)).body;
      const [refreshed] = await Promise.all([
        t.http().post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken }),
        t
          .http()
          .post('/api/v1/auth/logout')
          .set(auth(s.accessToken))
          .send(i % 2 ? { refreshToken: s.refreshToken } : {})
          .expect(204),
      ]);
      if (refreshed.status !== 200) {
        expect(refreshed.body.error.code).toBe('AUTH.REFRESH_INVALID');
        continue;
      }
      // The refresh went first: what it issued ended with the session.
      expect((await t.http().get('/api/v1/auth/me').set(auth(refreshed.body.accessToken))).status).toBe(401);
      const again = await t.http().post('/api/v1/auth/refresh').send({ refreshToken: refreshed.body.refreshToken }).expect(401);
      expect(again.body.error.code).toBe('AUTH.REFRESH_INVALID');
      const rows = await t.db.query(
        `SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND expires_at > now()`,
        [createHash('sha256').update(s.refreshToken).digest('hex')],
      );
      expect(rows.rows[0].n).toBe(0);
    }
  });

  it('rotates refresh tokens and revokes the family when a spent one is reused', async () => {
    await t.userToken('supervisor', undefined, 'sup.rot');
    const first = (await login('sup.rot').expect(200)).body;
    const second = (await t.http().post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken }).expect(200)).body;
    expect(second.refreshToken).not.toBe(first.refreshToken);
    // Past the retry grace (auth.refreshReuseGraceSeconds): the rotation is moved back in time rather than waited for.
    await spentSecondsAgo(first.refreshToken, t.config.auth.refreshReuseGraceSeconds + 1);
    const reuse = await t.http().post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken }).expect(401);
    expect(reuse.body.error.code).toBe('AUTH.REFRESH_REUSED');
    // the whole family is gone, including the token issued by the rotation
    await t.http().post('/api/v1/auth/refresh').send({ refreshToken: second.refreshToken }).expect(401);
    await t.http().get('/api/v1/auth/me').set(auth(second.accessToken)).expect(401);
  });

  it('logout revokes the access token and the refresh token', async () => {
    await t.userToken('auditor', undefined, 'aud.out');
    const s = (await login('aud.out').expect(200)).body;
    await t.http().post('/api/v1/auth/logout').set(auth(s.accessToken)).send({ refreshToken: s.refreshToken }).expect(204);
    const after = await t.http().get('/api/v1/auth/me').set(auth(s.accessToken)).expect(401);
    expect(after.body.error.code).toBe('AUTH.TOKEN_REVOKED');
    await t.http().post('/api/v1/auth/refresh').send({ refreshToken: s.refreshToken }).expect(401);
  });

  it("logout with only the Bearer ends the whole session: its refresh tokens and its earlier access tokens, not the user's other sessions", async () => {
    // Attack pass 7 F2: a client that logs out without sending its refresh token (the console's silent refresh kept such a session alive).
    await t.userToken('operator', undefined, 'op.out');
    const first = (await login('op.out').expect(200)).body;
    const other = (await login('op.out').expect(200)).body; // the same user on another desk
    const renewed = (await t.http().post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken }).expect(200)).body;
    await t.http().post('/api/v1/auth/logout').set(auth(renewed.accessToken)).send({}).expect(204);
    for (const token of [renewed.accessToken, first.accessToken]) {
      expect((await t.http().get('/api/v1/auth/me').set(auth(token)).expect(401)).body.error.code).toBe('AUTH.TOKEN_REVOKED');
    }
    // Ended, not stolen: the refresh tokens are refused as invalid, without the reuse alarm that would end the other desk's session.
    for (const refreshToken of [renewed.refreshToken, first.refreshToken]) {
      expect((await t.http().post('/api/v1/auth/refresh').send({ refreshToken }).expect(401)).body.error.code).toBe('AUTH.REFRESH_INVALID');
    }
    await t.http().get('/api/v1/auth/me').set(auth(other.accessToken)).expect(200);
    await t.http().post('/api/v1/auth/refresh').send({ refreshToken: other.refreshToken }).expect(200);
  });

  it('serves the queue dashboard (bull-board) to admins only, through a dashboard-only session, under the strict CSP', async () => {
    const board = (cookie?: string, path = '/admin/queues/') => {
      const req = t.http().get(path);
      return cookie ? req.set('Cookie', `shouhu_queue_board=${cookie}`) : req;
    };
    const open = async (accessToken: string) => {
      const opened = await t.http().post('/api/v1/ops/queue-board/session').set(auth(accessToken)).send({}).expect(200);
      const setCookie = opened.headers['set-cookie'][0] as string;
      return { body: opened.body, setCookie, token: decodeURIComponent(/^shouhu_queue_board=([^;]+)/.exec(setCookie)![1]) };
    };
    const change = (method: 'put' | 'post' | 'patch' | 'delete', path: string, cookie: string) =>
      t.http()[method](path).set('Cookie', `shouhu_queue_board=${cookie}`).set('Origin', t.baseUrl);
    // No session: 401, with the CSP all the same.
    const anon = await board().expect(401);
    expect(anon.body.error.code).toBe('AUTH.UNAUTHENTICATED');
    expect(anon.headers['content-security-policy']).toBe(QUEUE_BOARD_CSP);
    // Another role: the console cannot open it (403).
    const op = await t.userToken('operator');
    await t.http().post('/api/v1/ops/queue-board/session').set(auth(op.token)).send({}).expect(403);
    // An admin's console opens it: an HttpOnly, SameSite=Strict cookie for the dashboard's path only, short-lived.
    await t.userToken('admin', undefined, 'board.admin');
    const s = (await login('board.admin').expect(200)).body;
    const opened = await open(s.accessToken);
    expect(opened.body.url).toBe('/admin/queues/');
    expect(opened.setCookie).toMatch(/^shouhu_queue_board=[^;]+; Max-Age=\d+; Path=\/admin\/queues; Expires=[^;]+; HttpOnly; SameSite=Strict$/);
    const maxAge = Number(/Max-Age=(\d+)/.exec(opened.setCookie)![1]);
    expect(maxAge).toBeLessThanOrEqual(t.config.ops.queueBoardTtlSeconds);
    expect(Date.parse(opened.body.expiresAt) - Date.now()).toBeLessThanOrEqual(t.config.ops.queueBoardTtlSeconds * 1000);
    // The cookie is not the session's access token, and neither token works in the other's place.
    expect(opened.token).not.toBe(s.accessToken);
    expect((await board(s.accessToken).expect(401)).body.error.code).toBe('AUTH.TOKEN_INVALID');
    expect((await t.http().get('/api/v1/auth/me').set(auth(opened.token)).expect(401)).body.error.code).toBe('AUTH.TOKEN_INVALID');
    await t.http().post('/api/v1/ops/queue-board/session').set(auth(opened.token)).send({}).expect(401);
    const page = await board(opened.token).expect(200);
    expect(page.headers['content-security-policy']).toBe(QUEUE_BOARD_CSP);
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.text).toContain('<base href="/admin/queues/"');
    expect(page.text).not.toMatch(/style="|<style|fonts\.googleapis/); // nothing the CSP would block
    const queues = await board(opened.token, '/admin/queues/api/queues').expect(200);
    expect(queues.body.queues.map((q: { name: string }) => q.name)).toEqual(expect.arrayContaining(['alarms', 'notifications', 'system']));
    // Changes are audited; adding jobs or wiping a queue is not offered.
    await change('put', '/admin/queues/api/queues/system/pause', opened.token).expect(200);
    await change('put', '/admin/queues/api/queues/system/resume', opened.token).expect(200);
    await change('put', '/admin/queues/api/queues/alarms/obliterate', opened.token).expect(403);
    await change('post', '/admin/queues/api/queues/alarms/add', opened.token).send({ name: 'x' }).expect(403);
    // An allow-list, not a deny-list: other casings, encodings, job schedulers and job edits are refused too (attack pass 2); the protected queues' policy (409): queue-board.e2e.spec.ts.
    for (const [method, path] of [
      ['put', '/admin/queues/api/queues/video/OBLITERATE'],
      ['put', '/admin/queues/api/queues/system/EMPTY'],
      ['put', '/admin/queues/api/queues/system/Concurrency'],
      ['put', '/admin/queues/api/queues/system/%6Fbliterate'],
      ['post', '/admin/queues/api/queues/system/Add'],
      ['put', '/admin/queues/api/queues/system/job-schedulers/retention.purge/remove'],
      ['patch', '/admin/queues/api/queues/system/job-schedulers/retention.purge'],
      ['put', '/admin/queues/api/queues/system/job-schedulers/retention.purge/run'],
      ['patch', '/admin/queues/api/queues/system/123/update-data'],
      ['put', '/admin/queues/api/queues/system/123/delay'],
      ['delete', '/admin/queues/api/queues/system/123'],
    ] as const)
      await change(method, path, opened.token).send({ name: 'evil', data: {} }).expect(403);
    // Cross-site request forgery: a change from another origin, from a page with no origin, or with none at all is refused before anything is done.
    for (const headers of [
      { Origin: 'https://evil.example' },
      { Origin: 'null' },
      { Referer: 'https://evil.example/x' },
      {},
      { Origin: t.baseUrl.replace('127.0.0.1', 'localhost') },
    ]) {
      const refused = await t.http().put('/admin/queues/api/queues/system/pause').set('Cookie', `shouhu_queue_board=${opened.token}`).set(headers).expect(403);
      expect(refused.body.error.message).toMatch(/Cross-origin/);
    }
    // A Referer of this server stands in for a missing Origin.
    await t
      .http()
      .put('/admin/queues/api/queues/system/resume')
      .set('Cookie', `shouhu_queue_board=${opened.token}`)
      .set('Referer', `${t.baseUrl}/admin/queues/`)
      .expect(200);
    const schedulers = await board(opened.token, '/admin/queues/api/job-schedulers').expect(200);
    expect(JSON.stringify(schedulers.body)).toContain('retention.purge');
    const audit = await t.db.query(`SELECT actor_name, after->>'path' AS path FROM audit_log WHERE action = 'queue_board' ORDER BY id`);
    expect(audit.rows.map((r) => [r.actor_name, r.path])).toEqual([
      ['board.admin', '/admin/queues/api/queues/system/pause'],
      ['board.admin', '/admin/queues/api/queues/system/resume'],
      ['board.admin', '/admin/queues/api/queues/system/resume'],
    ]);
    // Logged out: the dashboard token is revoked with the session that opened it.
    await t.http().post('/api/v1/auth/logout').set(auth(s.accessToken)).send({ refreshToken: s.refreshToken }).expect(204);
    expect((await board(opened.token).expect(401)).body.error.code).toBe('AUTH.TOKEN_REVOKED');
    // A dashboard token past its time is refused like an expired session.
    const jwt = await import('jsonwebtoken');
    const stale = jwt.sign(
      {
        usr: 'board.admin',
        role: 'admin',
        sch: null,
        ims: Date.now(),
        pur: 'queue-board',
        sid: '00000000-0000-4000-8000-000000000009',
        exp: Math.floor(Date.now() / 1000) - 5,
      },
      t.config.auth.jwtSecret,
      {
        algorithm: 'HS256',
        subject: '00000000-0000-4000-8000-000000000008',
        jwtid: '00000000-0000-4000-8000-000000000007',
        issuer: 'shouhu',
        audience: 'shouhu:queue-board',
      },
    );
    expect((await board(stale).expect(401)).body.error.code).toBe('AUTH.TOKEN_EXPIRED');
    // A dashboard token of another role (signed with the server's key) is still refused by role.
    const asOperator = jwt.sign(
      {
        usr: 'op',
        role: 'operator',
        sch: null,
        ims: Date.now(),
        pur: 'queue-board',
        sid: '00000000-0000-4000-8000-000000000006',
        exp: Math.floor(Date.now() / 1000) + 60,
      },
      t.config.auth.jwtSecret,
      { algorithm: 'HS256', subject: op.userId, jwtid: '00000000-0000-4000-8000-000000000005', issuer: 'shouhu', audience: 'shouhu:queue-board' },
    );
    expect((await board(asOperator).expect(403)).body.error.code).toBe('AUTH.ROLE_FORBIDDEN');
    // Signed in again: the console opens the dashboard again.
    const s2 = (await login('board.admin').expect(200)).body;
    await board((await open(s2.accessToken)).token).expect(200);
  });

  it('disabling a user revokes their tokens at once', async () => {
    const admin = (await t.userToken('admin')).token;
    const u = await t.userToken('operator', undefined, 'op.disabled');
    await t.http().patch(`/api/v1/users/${u.userId}`).set(auth(admin)).send({ disabled: true }).expect(200);
    await t.http().get('/api/v1/auth/me').set(auth(u.token)).expect(401);
    await login('op.disabled').expect(401);
  });

  it('refuses a school_security token without a school over HTTP, as the console does (issue 12 §8)', async () => {
    const jwt = await import('jsonwebtoken');
    const token = jwt.sign({ usr: 'orphan', role: 'school_security', sch: null, ims: Date.now() }, t.config.auth.jwtSecret, {
      algorithm: 'HS256',
      subject: '00000000-0000-4000-8000-000000000001',
      jwtid: '00000000-0000-4000-8000-000000000002',
      issuer: 'shouhu',
      expiresIn: 60,
    });
    const res = await t.http().get('/api/v1/incidents').set(auth(token)).expect(403);
    expect(res.body.error.code).toBe('AUTH.FORBIDDEN');
  });

  it('rejects forged, malformed and expired tokens', async () => {
    const good = (await t.userToken('operator')).token;
    const [h, p] = good.split('.');
    await t
      .http()
      .get('/api/v1/auth/me')
      .set(auth(`${h}.${p}.forged`))
      .expect(401);
    await t.http().get('/api/v1/auth/me').set({ Authorization: 'Bearer' }).expect(401);
    await t.http().get('/api/v1/auth/me').set({ Authorization: 'Basic abc' }).expect(401);
    const jwt = await import('jsonwebtoken');
    const expired = jwt.sign({ usr: 'x', role: 'admin', sch: null, ims: 0 }, t.config.auth.jwtSecret, {
      subject: '00000000-0000-4000-8000-000000000000',
      issuer: 'shouhu',
      expiresIn: -10,
    });
    const res = await t.http().get('/api/v1/auth/me').set(auth(expired)).expect(401);
    expect(res.body.error.code).toBe('AUTH.TOKEN_EXPIRED');
  });

  it('validates login input with field-level 400s and survives malformed JSON', async () => {
    const res = await t.http().post('/api/v1/auth/login').send({ username: 42 }).expect(400);
    expect(res.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(expect.arrayContaining(['username', 'password']));
    const bad = await t.http().post('/api/v1/auth/login').set('Content-Type', 'application/json').send('{"username":').expect(400);
    expect(bad.body.error.code).toBe('MALFORMED_BODY');
  });

  it('only admins manage users; school_security needs a school; short passwords are refused', async () => {
    const admin = (await t.userToken('admin')).token;
    const op = (await t.userToken('operator')).token;
    await t.http().get('/api/v1/users').set(auth(op)).expect(403);
    const noSchool = await t
      .http()
      .post('/api/v1/users')
      .set(auth(admin))
      .send({ username: 'guard.x', password: PASSWORD, role: 'school_security' })
      .expect(400);
    expect(noSchool.body.error.details.fields[0].field).toBe('schoolId');
    const short = await t.http().post('/api/v1/users').set(auth(admin)).send({ username: 'op.short', password: 'abc', role: 'operator' }).expect(400);
    expect(short.body.error.details.fields[0]).toEqual({ field: 'password', reason: expect.stringContaining('at least') });
    const dup = await t.http().post('/api/v1/users').set(auth(admin)).send({ username: 'OP.ALPHA', password: PASSWORD, role: 'operator' }).expect(409);
    expect(dup.body.error.code).toBe('USER.USERNAME_TAKEN');
    const list = await t.http().get('/api/v1/users').set(auth(admin)).expect(200);
    expect(JSON.stringify(list.body)).not.toContain('argon2');
  });

  it('refuses display names with bidi overrides and other invisible characters (a field-level 400); stored ones are shown stripped', async () => {
    const admin = (await t.userToken('admin')).token;
    const bad = [
      '\u202eevil\u202c 操作员',
      '王\u200e五',
      'a\u2066b\u2069',
      '\u061c李四',
      '张\u200b三',
      '赵\u200d六',
      'x\ny',
      'tab\there',
      '\ufeff钱七',
      '孙\u00ad八',
    ];
    for (const displayName of bad) {
      const r = await t
        .http()
        .post('/api/v1/users')
        .set(auth(admin))
        .send({ username: 'op.bidi', password: PASSWORD, role: 'operator', displayName })
        .expect(400);
      expect(r.body.error.details.fields).toEqual([{ field: 'displayName', reason: expect.stringContaining('invisible') }]);
    }
    const ok = await t
      .http()
      .post('/api/v1/users')
      .set(auth(admin))
      .send({ username: 'op.bidi', password: PASSWORD, role: 'operator', displayName: '王五 Wang' })
      .expect(201);
    const patch = await t.http().patch(`/api/v1/users/${ok.body.id}`).set(auth(admin)).send({ displayName: '\u202eevil\u202c' }).expect(400);
    expect(patch.body.error.details.fields[0].field).toBe('displayName');
    // A name stored before the rule: the user's own profile and the audit log show it without the controls.
    await t.db.query(`UPDATE users SET display_name = $2 WHERE id = $1`, [ok.body.id, '\u202eevil\u202c 操作员']);
    const login = await t.http().post('/api/v1/auth/login').send({ username: 'op.bidi', password: PASSWORD }).expect(200);
    expect(login.body.user.displayName).toBe('evil 操作员');
    const me = await t.http().get('/api/v1/auth/me').set(auth(login.body.accessToken)).expect(200);
    expect(me.body.displayName).toBe('evil 操作员');
    const log = await t.http().get('/api/v1/audit-log').query({ entity: 'user', entityId: ok.body.id }).set(auth(admin)).expect(200);
    const mine = log.body.items.find((i: { actorId: string }) => i.actorId === ok.body.id);
    expect(mine.actorDisplayName).toBe('evil 操作员');
    expect(mine.entityName).toBe('evil 操作员');
  });

  it('changes the own password, checking the current one', async () => {
    const u = await t.userToken('operator', undefined, 'op.pw');
    await t.http().post('/api/v1/auth/password').set(auth(u.token)).send({ currentPassword: 'wrong-one-here', newPassword: 'a-new-long-password' }).expect(400);
    await t.http().post('/api/v1/auth/password').set(auth(u.token)).send({ currentPassword: PASSWORD, newPassword: 'a-new-long-password' }).expect(204);
    await login('op.pw', 'a-new-long-password').expect(200);
    await t.http().get('/api/v1/auth/me').set(auth(u.token)).expect(401); // old sessions end
  });

  it('records logins, failures and user changes in the audit log with the address and request id', async () => {
    const { rows } = await t.db.query(`SELECT action, ip, request_id FROM audit_log WHERE action IN ('login','login_failed') ORDER BY id`);
    expect(rows.length).toBeGreaterThan(3);
    expect(rows.every((r: { ip: string | null; request_id: string | null }) => r.ip && r.request_id)).toBe(true);
  });
});

describe('login limits behind a reverse proxy (http.trustProxy names the proxies: issue 12 §7)', () => {
  let t: TestApp;
  beforeAll(async () => {
    // The test client connects over loopback: loopback is the proxy, the address is the right-most other one.
    t = await startApp({
      http: { trustProxy: 'loopback' },
      auth: { loginMaxAttemptsPerAccount: 3, loginMaxAttemptsPerAccountGlobal: 8, loginMaxAttemptsPerAddress: 1000 },
    });
  });
  afterAll(() => t.close());

  const login = (username: string, forwardedFor: string, password = PASSWORD) =>
    t.http().post('/api/v1/auth/login').set('X-Forwarded-For', forwardedFor).send({ username, password });

  it('counts the address the proxy saw; what the client wrote into the header cannot dodge the limit or lock out others', async () => {
    const { username } = await t.userToken('operator', undefined, 'op.proxied');
    // An attacker at 203.0.113.7 rotates a forged left-most entry: still one (account, address) pair.
    for (let i = 0; i < 3; i++) await login(username, `198.51.100.${i}, 203.0.113.7`, 'wrong-password!').expect(401);
    const blocked = await login(username, '198.51.100.99, 203.0.113.7').expect(429);
    expect(blocked.body.error.code).toBe('AUTH.TOO_MANY_ATTEMPTS');
    // The owner, behind the same proxy from another address, still gets in.
    await login(username, '192.0.2.10').expect(200);
    // The limit was counted against the address the proxy saw, not the forged ones.
    const { rows } = await t.db.query(`SELECT count(*)::int AS n FROM login_attempts WHERE key = $1`, [`pair:${username}|203.0.113.7`]);
    expect(rows[0].n).toBe(1);
  });

  it('the slower per-account limit still stops an attacker who owns many addresses', async () => {
    const { username } = await t.userToken('operator', undefined, 'op.sprayed');
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await login(username, `203.0.113.${100 + i}`, 'wrong-password!')).status);
    expect(statuses.slice(0, 8).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(8)).toEqual([429, 429]);
  });

  it('never leaves the district without an enabled admin: the last one cannot be demoted or disabled, even by two admins at once (attack pass 9 #3)', async () => {
    const a1 = await t.userToken('admin');
    const a2 = await t.userToken('admin');
    // Only these two are enabled admins now (the others are switched off for this case and back afterwards).
    const { rows: others } = await t.db.query(`UPDATE users SET disabled = true WHERE role = 'admin' AND NOT disabled AND id <> ALL($1::uuid[]) RETURNING id`, [
      [a1.userId, a2.userId],
    ]);
    try {
      // Each demotes the other at the same moment: one wins, the other is refused (or finds its own token void).
      const [r1, r2] = await Promise.all([
        t.http().patch(`/api/v1/users/${a2.userId}`).set(auth(a1.token)).send({ role: 'operator' }),
        t.http().patch(`/api/v1/users/${a1.userId}`).set(auth(a2.token)).send({ role: 'operator' }),
      ]);
      expect([r1.status, r2.status].filter((s) => s === 200)).toHaveLength(1);
      const { rows } = await t.db.query(`SELECT id FROM users WHERE role = 'admin' AND NOT disabled AND id = ANY($1::uuid[])`, [[a1.userId, a2.userId]]);
      expect(rows).toHaveLength(1);
      const last = rows[0].id === a1.userId ? a1 : a2;
      const token = (await t.http().post('/api/v1/auth/login').send({ username: last.username, password: PASSWORD }).expect(200)).body.accessToken;
      for (const change of [{ role: 'supervisor' }, { disabled: true }]) {
        const r = await t.http().patch(`/api/v1/users/${last.userId}`).set(auth(token)).send(change).expect(409);
        expect(r.body.error.code).toBe('USER.LAST_ADMIN');
      }
      // Other changes of the last admin are fine.
      await t.http().patch(`/api/v1/users/${last.userId}`).set(auth(token)).send({ displayName: '最后的管理员' }).expect(200);
    } finally {
      await t.db.query(`UPDATE users SET disabled = false WHERE id = ANY($1::uuid[])`, [others.map((o: { id: string }) => o.id)]);
    }
  });
});
