import { createHmac } from 'node:crypto';
import { MAX_ESCALATION_LEVELS } from '../../src/config/sections';
import { makeValidationPipe } from '../../src/infra/http/validation';
import { signLink, verifyLink } from '../../src/modules/notifications/ack-links';
import { maskUrl } from '../../src/modules/notifications/channels.service';
import { CreateChannelDto, LEVEL_CHANNELS_MAX, LEVEL_TARGETS_MAX, UpdatePolicyDto } from '../../src/modules/notifications/dto';
import { renderMessage, shanghaiDateTime, waitedZh } from '../../src/modules/notifications/message';
import { buildRequest, dingtalkSign, feishuSign, fillTemplate, readAnswer, sendOnce, withoutUrlSecrets } from '../../src/modules/notifications/providers';
import { embeddedIPv4, isPrivateAddress, LOOKUP_MS, refusedTarget } from '../../src/modules/notifications/target-address';

const INCIDENT_ID = '3f2b8c1e-0d4a-4e5f-9a7b-123456789abc';
const incident = {
  incidentId: INCIDENT_ID,
  schoolName: '甲小学',
  location: '北门\n岗亭',
  type: 'intrusion',
  priority: 'P1',
  firstPressAt: '2026-11-30T05:00:00.000Z',
  drill: false,
} as never;
const msg = renderMessage({
  incident,
  level: 1,
  recipient: '张主管（值班主管）',
  phone: '13800000001',
  link: 'https://x/console/ack/t',
  now: new Date('2026-11-30T05:00:35Z'),
});
const opts = { timeoutMs: 1000, allowPrivateTargets: false, idempotencyKey: 'k', now: new Date(1764478835123), mentionMobiles: ['13800000001'] };

describe('notifications: messages, signatures, links', () => {
  it('writes the message in Chinese with Asia/Shanghai times and the waiting time', () => {
    expect(shanghaiDateTime('2026-11-30T17:30:05Z')).toBe('2026-12-01 01:30:05');
    expect(waitedZh(35_000)).toBe('35 秒');
    expect(waitedZh(185_000)).toBe('3 分 05 秒');
    expect(waitedZh(7_500_000)).toBe('2 小时 05 分');
    expect(msg.lines).toEqual([
      '学校：甲小学',
      '位置：北门 岗亭',
      '类型：入侵（P1）',
      '报警时间：2026-11-30 13:00:00（北京时间）',
      '已 35 秒 无人确认',
      '通知：张主管（值班主管）',
    ]);
    expect(msg.text).toContain('https://x/console/ack/t');
  });

  it('signs DingTalk in the query (timestamp ms, HMAC-SHA256 of "ts\\nsecret", base64, URL-encoded)', () => {
    const secret = 'SECabc';
    const req = buildRequest({ kind: 'dingtalk', webhookUrl: 'https://oapi.dingtalk.com/robot/send?access_token=T', secret, template: null }, msg, opts);
    const u = new URL(req.url);
    expect(u.searchParams.get('access_token')).toBe('T');
    expect(u.searchParams.get('timestamp')).toBe('1764478835123');
    const want = createHmac('sha256', secret).update(`1764478835123\n${secret}`).digest('base64');
    expect(u.searchParams.get('sign')).toBe(want);
    expect(req.url).toContain(`sign=${encodeURIComponent(want)}`);
    expect(dingtalkSign(secret, 1764478835123)).toBe(want);
    expect(JSON.parse(req.body)).toMatchObject({ msgtype: 'markdown', at: { atMobiles: ['13800000001'], isAtAll: false } });
  });

  it('signs Feishu in the body (timestamp s, HMAC-SHA256 keyed by "ts\\nsecret" over nothing, base64)', () => {
    const req = buildRequest({ kind: 'feishu', webhookUrl: 'https://open.feishu.cn/open-apis/bot/v2/hook/x', secret: 's3', template: null }, msg, opts);
    const body = JSON.parse(req.body);
    expect(body.timestamp).toBe('1764478835');
    expect(body.sign).toBe(createHmac('sha256', '1764478835\ns3').update('').digest('base64'));
    expect(feishuSign('s3', 1764478835)).toBe(body.sign);
    expect(body.msg_type).toBe('post');
    expect(body.content.post.zh_cn.content.at(-1)).toEqual([{ tag: 'a', text: '打开报警并确认', href: 'https://x/console/ack/t' }]);
  });

  it('keeps WeCom markdown within 4096 bytes and fills SMS templates as data', () => {
    const long = { ...msg, lines: [...msg.lines, '很长'.repeat(3000)] };
    const req = buildRequest({ kind: 'wecom', webhookUrl: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k', secret: '', template: null }, long, opts);
    expect(Buffer.byteLength(JSON.parse(req.body).markdown.content, 'utf8')).toBeLessThanOrEqual(4096);
    expect(fillTemplate({ to: '{{phone}}', body: ['{{text}}', 3], x: '{{nope}}' }, { phone: '1"3', text: 'a\nb' })).toEqual({
      to: '1"3',
      body: ['a\nb', 3],
      x: '{{nope}}',
    });
    const sms = buildRequest({ kind: 'sms', webhookUrl: 'https://gw/sms', secret: 'k'.repeat(16), template: null }, msg, opts);
    expect(sms.headers['X-Shouhu-Signature']).toBe(`sha256=${createHmac('sha256', 'k'.repeat(16)).update(`1764478835123.${sms.body}`).digest('hex')}`);
  });

  it('reads answers: robot codes decide, transient ones are retried', () => {
    expect(readAnswer('wecom', 200, '{"errcode":0,"errmsg":"ok"}')).toMatchObject({ ok: true });
    expect(readAnswer('wecom', 200, '{"errcode":45009,"errmsg":"api freq out of limit"}')).toMatchObject({ ok: false, retryable: true, code: '45009' });
    expect(readAnswer('dingtalk', 200, '{"errcode":310000,"errmsg":"sign not match"}')).toMatchObject({ ok: false, retryable: false });
    expect(readAnswer('feishu', 200, '{"code":19021,"msg":"sign match fail"}')).toMatchObject({ ok: false, retryable: false });
    expect(readAnswer('feishu', 200, '{"StatusCode":0,"StatusMessage":"success"}')).toMatchObject({ ok: true });
    expect(readAnswer('sms', 503, 'down')).toMatchObject({ ok: false, retryable: true, code: 'HTTP 503' });
    expect(readAnswer('sms', 400, 'bad')).toMatchObject({ ok: false, retryable: false });
  });

  it('never shows what a non-provider answered (A16): a JSON message field, else only the size', () => {
    expect(readAnswer('sms', 500, '{"message":"gateway overloaded"}').detail).toBe('gateway overloaded');
    expect(readAnswer('sms', 500, 'redis_version:7.0.15\r\nrole:master').detail).toBe('(33 bytes)');
    expect(readAnswer('wecom', 200, '{"ok":true,"instance":"i-0abc"}').detail).toBe('no answer code (31 bytes)');
    expect(readAnswer('wecom', 200, 'ami-id\nhostname').detail).toBe('unreadable answer (15 bytes)');
  });

  it('refuses private, loopback, link-local and reserved webhook targets unless allowed (A16)', async () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.31.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
    ])
      expect([a, isPrivateAddress(a)]).toEqual([a, true]);
    for (const a of ['8.8.8.8', '101.226.4.6', '2400:3200::1', '172.32.0.1']) expect([a, isPrivateAddress(a)]).toEqual([a, false]);
    // An IPv6 address carrying a private IPv4 (a NAT64 gateway, 6to4 or Teredo relay would deliver to it) is judged by that IPv4.
    for (const a of [
      '64:ff9b::7f00:1', // NAT64 well-known prefix, 127.0.0.1
      '64:ff9b::127.0.0.1',
      '64:ff9b:1::a00:1', // NAT64 local-use prefix, 10.0.0.1
      '2002:7f00:1::', // 6to4, 127.0.0.1
      '2002:a9fe:a9fe::1', // 6to4, 169.254.169.254
      '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo, client 127.0.0.1 (inverted)
      '2001:0:a00:1::1', // Teredo, server 10.0.0.1
      '::127.0.0.1', // IPv4-compatible
      '::a9fe:a9fe',
      '::ffff:7f00:1', // IPv4-mapped, hex form
    ])
      expect([a, isPrivateAddress(a)]).toEqual([a, true]);
    for (const a of ['64:ff9b::808:808', '2002:808:808::1', '::8.8.8.8', '2001:0:808:808:0:0:f7f7:f7f7', '2001:db8::1'])
      expect([a, isPrivateAddress(a)]).toEqual([a, false]);
    expect(embeddedIPv4('2001:0:4136:e378:8000:63bf:80ff:fffe')).toEqual(['65.54.227.120', '127.0.0.1']);
    const refused = (re: RegExp) => ({ refused: expect.stringMatching(re) });
    expect(await refusedTarget(new URL('http://[64:ff9b::7f00:1]:3192/'), false)).toEqual(refused(/64:ff9b::7f00:1/));
    expect(await refusedTarget(new URL('http://[2002:7f00:1::]:3192/'), false)).toEqual(refused(/2002:7f00:1::/));
    expect(await refusedTarget(new URL('http://169.254.169.254/latest/meta-data/'), false)).toEqual(refused(/169\.254\.169\.254/));
    expect(await refusedTarget(new URL('http://[::1]:6379/'), false)).toEqual(refused(/::1/));
    expect(await refusedTarget(new URL('http://localhost:6379/'), false)).toEqual(refused(/localhost/));
    expect(await refusedTarget(new URL('http://127.0.0.1:6379/'), true)).toBeNull();
    expect(await refusedTarget(new URL('https://8.8.8.8/robot/send'), false)).toBeNull();
    // Checked again at send time: nothing is sent, and the attempt is not retried.
    const answer = await sendOnce({ kind: 'wecom', webhookUrl: 'http://127.0.0.1:9/cgi-bin/webhook/send?key=k', secret: '', template: null }, msg, opts);
    expect(answer).toMatchObject({ ok: false, retryable: false, code: 'BLOCKED_ADDRESS' });
  });

  it('refuses a webhook whose name cannot be checked: a lookup that fails, finds nothing or answers too late (attack pass 10 #3)', async () => {
    // Injected resolvers: the test machine has no DNS to rely on. The names are never looked up for real.
    const answering =
      (addresses: string[], afterMs = 0) =>
      (host: string) =>
        new Promise<{ address: string }[]>((resolve) => setTimeout(() => resolve(addresses.map((address) => ({ address }))), afterMs).unref()).then((a) => {
          asked.push(host);
          return a;
        });
    const asked: string[] = [];
    const url = new URL('https://hook.provider.test/robot/send?key=k');
    expect(await refusedTarget(url, false, { resolve: answering(['8.8.8.8']) })).toBeNull();
    expect(await refusedTarget(url, false, { resolve: answering(['8.8.8.8', '10.0.0.8']) })).toEqual({ refused: expect.stringContaining('10.0.0.8') });
    expect(asked).toEqual(['hook.provider.test', 'hook.provider.test']);
    // Answering after the wait (a public address, or the metadata service) was "pass" before: unchecked, then sent.
    const late = await refusedTarget(url, false, { resolve: answering(['169.254.169.254'], 500), lookupMs: 50 });
    expect(late).toEqual({ unresolved: 'hook.provider.test: no DNS answer within 50 ms, so its address could not be checked' });
    const failing = () => Promise.reject(Object.assign(new Error('queryA ENOTFOUND'), { code: 'ENOTFOUND' }));
    expect(await refusedTarget(url, false, { resolve: failing })).toEqual({
      unresolved: expect.stringMatching(/^ENOTFOUND hook\.provider\.test: .*could not be checked$/),
    });
    expect(await refusedTarget(url, false, { resolve: answering([]) })).toEqual({ unresolved: expect.stringContaining('could not be checked') });
    // Private targets allowed (a gateway in the bureau's own network): nothing is looked up.
    expect(await refusedTarget(url, true, { resolve: failing })).toBeNull();
    // At send time the default wait (LOOKUP_MS) applies: a resolver that never answers fails the attempt, nothing is sent, and it may be retried.
    const never = () => new Promise<{ address: string }[]>(() => undefined);
    const t0 = Date.now();
    const slow = await sendOnce({ kind: 'wecom', webhookUrl: url.toString(), secret: '', template: null }, msg, { ...opts, resolve: never });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LOOKUP_MS - 50);
    expect(slow).toEqual({
      ok: false,
      retryable: true,
      code: 'UNRESOLVED',
      detail: `hook.provider.test: no DNS answer within ${LOOKUP_MS} ms, so its address could not be checked: not sent`,
    });
    expect(await sendOnce({ kind: 'wecom', webhookUrl: url.toString(), secret: '', template: null }, msg, { ...opts, resolve: failing })).toMatchObject({
      ok: false,
      retryable: true,
      code: 'UNRESOLVED',
    });
  });

  it('signs links that expire and cannot be forged', () => {
    const now = new Date('2026-11-30T05:00:00Z');
    const tok = signLink('secret-1', INCIDENT_ID, new Date(now.getTime() + 1800_000));
    expect(tok.length).toBeLessThan(60);
    expect(verifyLink('secret-1', tok, now)).toMatchObject({ ok: true, incidentId: INCIDENT_ID });
    expect(verifyLink('secret-2', tok, now)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyLink('secret-1', tok, new Date(now.getTime() + 1801_000))).toEqual({ ok: false, reason: 'expired' });
    const [id, exp, sig] = tok.split('.');
    expect(verifyLink('secret-1', `${id}.${(parseInt(exp, 36) + 3600).toString(36)}.${sig}`, now)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyLink('secret-1', 'garbage', now)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('masks webhook keys', () => {
    expect(maskUrl('https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa')).toBe(
      'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…5aaa',
    );
    expect(maskUrl('https://open.feishu.cn/open-apis/bot/v2/hook/abcdefghijklmnopqrstuvwxyz')).toBe('https://open.feishu.cn/open-apis/bot/v2/hook/…wxyz');
  });

  it('provider answers and errors quote no URL secrets: user name, password, query (keys, timestamps, signatures), fragment (attack pass 9 #2)', async () => {
    const text =
      'Request cannot be constructed from a URL that includes credentials: https://u:p@oapi.dingtalk.com/robot/send?access_token=TOPSECRET&timestamp=1&sign=abc#x and http://h/p';
    const out = withoutUrlSecrets(text);
    expect(out).toBe('Request cannot be constructed from a URL that includes credentials: https://oapi.dingtalk.com/robot/send?… and http://h/p');
    for (const secret of ['TOPSECRET', 'u:p@', 'sign=abc', 'timestamp']) expect(out).not.toContain(secret);
    // sendOnce's own failures go through it: a URL fetch cannot take.
    const a = await sendOnce(
      { kind: 'wecom', webhookUrl: 'https://user:pw@8.8.8.8/cgi-bin/webhook/send?key=SECRETKEY', secret: '', template: null },
      msg,
      opts,
    );
    expect(a).toMatchObject({ ok: false, code: 'NETWORK' });
    expect(a.detail).toContain('https://8.8.8.8/cgi-bin/webhook/send?…');
    expect(a.detail).not.toContain('SECRETKEY');
    expect(a.detail).not.toContain('pw@');
  });

  it('refuses a policy with too many levels, targets or channels, and a huge SMS template, before looking at any item (attack pass 10 #1)', async () => {
    const pipe = makeValidationPipe();
    const fields = async (body: unknown, metatype: new () => object = UpdatePolicyDto) =>
      pipe.transform(body, { type: 'body', metatype }).then(
        () => 'accepted',
        (e: { details?: { fields?: unknown } }) => e.details?.fields,
      );
    // Items that count every look at them: class-transformer and class-validator walked each one (3,000 levels: ~4 s).
    let looks = 0;
    const trap = new Proxy({}, { get: () => (looks++, undefined), ownKeys: () => (looks++, []), has: () => (looks++, false) });
    const target = { kind: 'duty', dutyRole: 'duty_supervisor' };
    const level = { targets: [target], channelIds: null };
    expect(await fields({ levels: Array(3000).fill(trap) })).toEqual([
      { field: 'levels', reason: `levels must contain no more than ${MAX_ESCALATION_LEVELS} elements` },
    ]);
    // Within a level too, named as the pipe names nested fields; every oversized array is named at once.
    expect(await fields({ levels: [level, { targets: Array(5000).fill(trap), channelIds: Array(5000).fill(trap) }] })).toEqual([
      { field: 'levels.1.targets', reason: `targets must contain no more than ${LEVEL_TARGETS_MAX} elements` },
      { field: 'levels.1.channelIds', reason: `channelIds must contain no more than ${LEVEL_CHANNELS_MAX} elements` },
    ]);
    expect(looks).toBe(0);
    // A template is free-form JSON: measured as text on the raw body, not copied key by key first.
    const template = { rows: Array.from({ length: 1000 }, (_, i) => ({ i, text: '{{text}}' })) };
    expect(await fields({ kind: 'sms', name: '短信网关', webhookUrl: 'https://sms.example.com/send', template }, CreateChannelDto)).toEqual([
      { field: 'template', reason: 'must be at most 8192 characters as JSON' },
    ]);
    // At the bounds, everything is validated as before, items included.
    expect(await fields({ levels: Array(MAX_ESCALATION_LEVELS).fill(level) })).toBe('accepted');
    expect(await fields({ levels: [{ targets: Array(LEVEL_TARGETS_MAX).fill(target), channelIds: [] }] })).toBe('accepted');
    expect(await fields({ levels: [level, { targets: [{ kind: 'duty', dutyRole: 'janitor' }] }] })).toEqual([
      { field: 'levels.1.targets.0.dutyRole', reason: expect.stringContaining('dutyRole must be one of') },
    ]);
  });
});
