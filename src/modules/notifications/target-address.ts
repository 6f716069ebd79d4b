import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { withinMs } from '../../infra/lifecycle/shutdown';

/**
 * Where a notification channel may send (attack note A16): a channel's webhook is set by an admin
 * and then POSTed to by the service, so without a check it reaches what only the service can reach
 * — the cloud metadata service (169.254.169.254), Redis or Postgres on loopback, the intranet.
 * Providers (WeCom, DingTalk, Feishu, an SMS operator's gateway) are public services, so
 * loopback, private (RFC 1918, RFC 4193), link-local, carrier-grade NAT (RFC 6598), benchmarking
 * (RFC 2544), multicast and reserved addresses are refused unless notifications.allowPrivateTargets
 * (a gateway inside the bureau's own network; the tests' fake providers on loopback).
 *
 * Checked when a channel is saved (literal address or name resolving there → 400 naming
 * webhookUrl) and again before every send (the name may resolve elsewhere by then → the attempt
 * fails with code BLOCKED_ADDRESS, not retried). The send then resolves the name once more itself,
 * so a DNS answer changed between the two lookups is not caught (documented residual risk).
 */
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** The 8 hextets of an IPv6 literal (with or without a dotted IPv4 tail), or null when it is not one. */
function hextets(address: string): number[] | null {
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

/**
 * True when `address` (IPv4 or IPv6 literal) is one a provider cannot have. An IPv6 address that
 * embeds an IPv4 one (mapped, compatible, NAT64, 6to4, Teredo — embeddedIPv4) is refused when any
 * IPv4 it carries is.
 */
export function isPrivateAddress(address: string): boolean {
  const v = isIP(address);
  if (v === 4) return blocked.check(address, 'ipv4');
  if (v !== 6) return false;
  if (blocked.check(address, 'ipv6')) return true;
  return embeddedIPv4(address).some((a) => blocked.check(a, 'ipv4'));
}

/** How long a name lookup may take before the check gives up on it (the send's own timeout then decides). */
const LOOKUP_MS = 2000;

/**
 * Why `url` may not be sent to, or null when it may. A name that does not resolve (now) is not
 * refused here: sending to it fails on its own, as for any unreachable provider.
 */
export async function refusedTarget(url: URL, allowPrivate: boolean): Promise<string | null> {
  if (allowPrivate) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return isPrivateAddress(host) ? `${host} is a private, loopback or reserved address` : null;
  if (/^localhost\.?$/i.test(host) || /\.localhost\.?$/i.test(host)) return `${host} is the service's own machine`;
  const found = await withinMs(
    lookup(host, { all: true }).catch(() => []),
    LOOKUP_MS,
  );
  if (found === 'timeout') return null;
  const bad = found.find((a) => isPrivateAddress(a.address));
  return bad ? `${host} resolves to ${bad.address}, a private, loopback or reserved address` : null;
}
