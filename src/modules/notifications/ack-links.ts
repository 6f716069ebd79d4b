import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The link in a message: `<publicBaseUrl>/console/ack/<token>`. The token names an incident and an
 * expiry and is signed (HMAC-SHA256 with notifications.linkSecret, truncated to 128 bits — enough
 * against forgery for a link that lives half an hour, and short enough for an SMS):
 *
 *   <incident uuid, 16 bytes base64url>.<expiry, unix seconds base36>.<signature, base64url>
 *
 * The link grants nothing by itself: the console asks for a login first, then resolves the token
 * (GET /notifications/links/:token) and opens the incident, where the person acknowledges it.
 */
export type LinkCheck = { ok: true; incidentId: string; expiresAt: Date } | { ok: false; reason: 'invalid' | 'expired' };

const b64u = (b: Buffer) => b.toString('base64url');

function mac(secret: string, id: string, exp: string): Buffer {
  return createHmac('sha256', secret).update(`ack-link.v1.${id}.${exp}`).digest().subarray(0, 16);
}

export function signLink(secret: string, incidentId: string, expiresAt: Date): string {
  const id = b64u(Buffer.from(incidentId.replace(/-/g, ''), 'hex'));
  const exp = Math.floor(expiresAt.getTime() / 1000).toString(36);
  return `${id}.${exp}.${b64u(mac(secret, id, exp))}`;
}

export function verifyLink(secret: string, token: string, now = new Date()): LinkCheck {
  const m = /^([A-Za-z0-9_-]{22})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{22})$/.exec(token);
  if (!m) return { ok: false, reason: 'invalid' };
  const [, id, exp, sig] = m;
  const given = Buffer.from(sig, 'base64url');
  const want = mac(secret, id, exp);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return { ok: false, reason: 'invalid' };
  const expiresAt = new Date(parseInt(exp, 36) * 1000);
  if (expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired' };
  const hex = Buffer.from(id, 'base64url').toString('hex');
  const incidentId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { ok: true, incidentId, expiresAt };
}
