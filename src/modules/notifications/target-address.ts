import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { withinMs } from '../../infra/lifecycle/shutdown';
import { embeddedIPv4 } from '../../infra/net/ip-ranges';

export { embeddedIPv4 };

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
