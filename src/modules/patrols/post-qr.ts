import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The signed, rotating payload of a protection post's QR code (护学岗签到码, attack F8b).
 *
 * A post used to carry one fixed token that every API reader could see, so a guard could check
 * in from home. Now the API never returns a post's token: the bureau prints (or shows on a
 * gatehouse screen) a code made here, `SHQR1.<postId>.<window>.<signature>`, where `window` counts
 * patrols.postQrWindowMinutes-long periods on the Asia/Shanghai clock (a 1440-minute window is one
 * Shanghai day, so a printed sheet never expires in the middle of the morning arrival window) and
 * the signature is HMAC-SHA256 over the post id, the window and the post's own secret token,
 * keyed by patrols.postQrSecret (or a key derived from auth.jwtSecret), cut to 128 bits. A
 * check-in takes a code of the current window or of the patrols.postQrGraceWindows before it.
 * A photo of the sheet is therefore good only until the sheet is due to be replaced; the gate
 * camera's picture at check-in (video module) is the evidence that the person was there.
 */
export const POST_QR_PREFIX = 'SHQR1';
const SHANGHAI_OFFSET_MS = 8 * 3_600_000;
const SIG_BYTES = 16;
const PAYLOAD = /^SHQR1\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d{1,12})\.([A-Za-z0-9_-]{22})$/;

/** The key codes are signed with: patrols.postQrSecret, else one derived from auth.jwtSecret (never the JWT key itself). */
export function postQrKey(configured: string, jwtSecret: string): Buffer {
  return configured ? Buffer.from(configured, 'utf8') : createHmac('sha256', jwtSecret).update('shouhu post-qr key v1').digest();
}

/** The window (index) an instant falls in, for windows of `windowMinutes` on the Asia/Shanghai clock. */
export function qrWindowOf(at: Date, windowMinutes: number): number {
  return Math.floor((at.getTime() + SHANGHAI_OFFSET_MS) / (windowMinutes * 60_000));
}

/** Start and end instants of a window. */
export function qrWindowBounds(window: number, windowMinutes: number): { from: Date; until: Date } {
  const ms = windowMinutes * 60_000;
  return { from: new Date(window * ms - SHANGHAI_OFFSET_MS), until: new Date((window + 1) * ms - SHANGHAI_OFFSET_MS) };
}

function signature(key: Buffer, postId: string, window: number, postToken: string): Buffer {
  return createHmac('sha256', key).update(`post-qr\n${postId}\n${window}\n${postToken}`).digest().subarray(0, SIG_BYTES);
}

/** The QR payload of a post for one window. */
export function signPostQr(key: Buffer, postId: string, window: number, postToken: string): string {
  return `${POST_QR_PREFIX}.${postId}.${window}.${signature(key, postId, window, postToken).toString('base64url')}`;
}

/** What a scanned text claims (post id, window, signature), or null when it is not a payload of ours. */
export function parsePostQr(text: string): { postId: string; window: number; sig: Buffer } | null {
  const m = PAYLOAD.exec(text.trim());
  if (!m) return null;
  return { postId: m[1], window: Number(m[2]), sig: Buffer.from(m[3], 'base64url') };
}

/** Is the signature right for this post, window and token (constant time)? */
export function postQrSignatureOk(key: Buffer, claim: { postId: string; window: number; sig: Buffer }, postToken: string): boolean {
  const want = signature(key, claim.postId, claim.window, postToken);
  return claim.sig.length === want.length && timingSafeEqual(claim.sig, want);
}
