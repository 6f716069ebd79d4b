import { scrub } from '../../src/modules/audit-log/audit.service';

describe('audit log scrub (issue 12: no secret reaches the audit log, at any depth)', () => {
  it('redacts secret-looking keys in nested objects and arrays, whatever their case or separators', () => {
    const out = scrub({
      username: 'op1',
      passwordHash: '$argon2id$…',
      settings: { webhook: { secret: 's3', apiKey: 'k' }, rows: [{ sip_password: 'p', name: '北门' }] },
      device: { 'access-token': 't', qrToken: 'q', PrivateKey: 'x', credentials: { user: 'u' } },
      when: new Date('2026-11-30T00:00:00Z'),
    });
    expect(out).toEqual({
      username: 'op1',
      passwordHash: '[redacted]',
      settings: { webhook: { secret: '[redacted]', apiKey: '[redacted]' }, rows: [{ sip_password: '[redacted]', name: '北门' }] },
      device: { 'access-token': '[redacted]', qrToken: '[redacted]', PrivateKey: '[redacted]', credentials: '[redacted]' },
      when: new Date('2026-11-30T00:00:00Z'),
    });
    expect(JSON.stringify(out)).not.toMatch(/argon2|s3|"p"|"t"|"q"|"x"/);
  });

  it('cuts trees deeper than it reads instead of copying them whole', () => {
    let deep: Record<string, unknown> = { password: 'leak' };
    for (let i = 0; i < 50; i++) deep = { child: deep };
    expect(JSON.stringify(scrub(deep))).not.toContain('leak');
    expect(JSON.stringify(scrub(deep))).toContain('[too deep]');
  });

  it('is null for nothing', () => {
    expect(scrub(null)).toBeNull();
    expect(scrub(undefined)).toBeNull();
  });
});
