import zhCN, { type MessageKey } from '../../web/src/i18n/zh-CN';
import { answerText, reasonKey } from '../../web/src/surfaces/duty/provider-answer';

/**
 * A channel test's answer in plain words (web/src/surfaces/duty/provider-answer.ts): each platform's
 * documented codes (the ones providers.ts reads), HTTP statuses and the sender's own codes, rendered
 * with the real zh-CN dictionary.
 */
describe('channel test answers in plain words', () => {
  const t = (key: MessageKey, params: Record<string, string | number> = {}): string => {
    const text = key.split('.').reduce<unknown>((d, k) => (d as Record<string, unknown>)[k], zhCN);
    if (typeof text !== 'string') throw new Error(`no message ${key}`);
    return text.replace(/\{(\w+)\}/g, (_, k: string) => String(params[k]));
  };

  it('explains each platform its own codes', () => {
    expect(reasonKey('dingtalk', '310000').key).toBe('ntf.answer.badSign');
    expect(reasonKey('dingtalk', '300001').key).toBe('ntf.answer.badKey');
    expect(reasonKey('dingtalk', '130101').key).toBe('ntf.answer.busy');
    expect(reasonKey('wecom', '93000').key).toBe('ntf.answer.badKey');
    expect(reasonKey('wecom', '45009').key).toBe('ntf.answer.busy');
    expect(reasonKey('wecom', '40058').key).toBe('ntf.answer.badMessage');
    expect(reasonKey('feishu', '19021').key).toBe('ntf.answer.badSign');
    expect(reasonKey('feishu', '9499').key).toBe('ntf.answer.busy');
    // A code of one platform means nothing on another; an unknown code is a refusal, never a network failure.
    expect(reasonKey('feishu', '310000').key).toBe('ntf.answer.other');
    expect(reasonKey('wecom', '-2').key).toBe('ntf.answer.other');
  });

  it('explains HTTP statuses and the sender’s own codes', () => {
    expect(reasonKey('sms', 'HTTP 401')).toEqual({ key: 'ntf.answer.auth', status: 401 });
    expect(reasonKey('sms', 'HTTP 404')).toEqual({ key: 'ntf.answer.notFound', status: 404 });
    expect(reasonKey('sms', 'HTTP 429')).toEqual({ key: 'ntf.answer.busy', status: 429 });
    expect(reasonKey('sms', 'HTTP 503')).toEqual({ key: 'ntf.answer.down', status: 503 });
    expect(reasonKey('sms', 'HTTP 400')).toEqual({ key: 'ntf.answer.rejected', status: 400 });
    expect(reasonKey('dingtalk', 'HTTP 200')).toEqual({ key: 'ntf.answer.unreadable', status: 200 });
    expect(reasonKey('wecom', 'TIMEOUT').key).toBe('ntf.answer.timeout');
    expect(reasonKey('wecom', 'BLOCKED_ADDRESS').key).toBe('ntf.answer.blocked');
    expect(reasonKey('wecom', 'UNRESOLVED').key).toBe('ntf.answer.unresolved');
    expect(reasonKey('wecom', 'CONFIG').key).toBe('ntf.answer.config');
    for (const code of ['ECONNREFUSED', 'ENOTFOUND', 'NETWORK', 'UND_ERR_SOCKET']) expect(reasonKey('feishu', code).key).toBe('ntf.answer.network');
  });

  it('says it in Chinese, naming the provider', () => {
    expect(answerText(t, 'dingtalk', { ok: true, code: '0' })).toBe('测试消息已送达：钉钉应答成功。');
    expect(answerText(t, 'dingtalk', { ok: false, code: '310000' })).toBe(
      '测试消息未送达：签名不匹配或时间戳无效：请核对加签密钥、服务器时间，以及机器人的安全设置（关键词、IP 白名单）',
    );
    expect(answerText(t, 'sms', { ok: false, code: 'HTTP 503' })).toBe('测试消息未送达：短信/语音网关暂时不可用（HTTP 503），请稍后再试');
    expect(answerText(t, 'feishu', { ok: false, code: 'TIMEOUT' })).toBe('测试消息未送达：飞书没有在规定时间内应答（超时）');
    expect(answerText(t, 'wecom', { ok: false, code: 'UNRESOLVED' })).toBe(
      '测试消息未送达：无法解析企业微信的域名（查询失败或超时），无法确认地址安全，未发送',
    );
  });
});
