import { isIP } from 'node:net';

/**
 * IP address helpers shared by the checks of where the service connects to on an admin's word:
 * notification webhooks (modules/notifications/target-address.ts) and ONVIF probes
 * (modules/video/onvif-address.ts).
 */

/** The 8 hextets of an IPv6 literal (with or without a dotted IPv4 tail), or null when it is not one. */
export function hextets(address: string): number[] | null {
  if (isIP(address) !== 6) return null;
  let a = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dotted) {
    const [b0, b1, b2, b3] = dotted.slice(1).map(Number);
    a = `${a.slice(0, dotted.index)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  const all = [...h, ...fill, ...t].map((x) => parseInt(x, 16));
  return all.length === 8 && all.every((x) => x >= 0 && x <= 0xffff) ? all : null;
}

const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * The IPv4 addresses an IPv6 address carries, so a private IPv4 cannot hide behind a
 * translation prefix (a NAT64 gateway, 6to4 or Teredo relay on the path would deliver to it):
 * IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 (RFC 4291 §2.5.5), NAT64 well-known
 * 64:ff9b::/96 (RFC 6052) and local-use 64:ff9b:1::/48 (RFC 8215, IPv4 in the last 32 bits as
 * the /96 layout used in practice), 6to4 2002::/16 (RFC 3056, bits 16–47) and Teredo 2001::/32
 * (RFC 4380: server in bits 32–63, client obfuscated — inverted — in the last 32 bits).
 * Hand-written: ipaddr.js is only a transitive dependency here, not one of ours.
 */
export function embeddedIPv4(address: string): string[] {
  const h = hextets(address);
  if (!h) return [];
  const zeros = (from: number, to: number) => h.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && h[5] === 0xffff) return [v4(h[6], h[7])];
  if (zeros(0, 6) && (h[6] !== 0 || h[7] > 1)) return [v4(h[6], h[7])]; // ::/96 except :: and ::1 (judged as IPv6)
  if (h[0] === 0x64 && h[1] === 0xff9b && zeros(2, 6)) return [v4(h[6], h[7])];
  if (h[0] === 0x64 && h[1] === 0xff9b && h[2] === 1) return [v4(h[6], h[7])];
  if (h[0] === 0x2002) return [v4(h[1], h[2])];
  if (h[0] === 0x2001 && h[1] === 0) return [v4(h[2], h[3]), v4(h[6] ^ 0xffff, h[7] ^ 0xffff)];
  return [];
}
