import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { Injectable } from '@nestjs/common';
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
 * fails with code BLOCKED_ADDRESS, not retried). A name that cannot be checked (no answer in time,
 * no address) is refused the same way, but retried at send time (UNRESOLVED). The send then resolves
 * the name once more itself, so a DNS answer changed between the two lookups is not caught
 * (documented residual risk).
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

/** How long a name lookup may take (ms) before the check gives up on it, and with it on the send. */
export const LOOKUP_MS = 2000;

/** Every address a host name has (node:dns lookup, all: true): what the check asks; TargetResolver wraps it. */
export type ResolveAll = (host: string) => Promise<{ address: string }[]>;

export const systemResolve: ResolveAll = (host) => lookup(host, { all: true, verbatim: true });

/**
 * How the notifications module resolves webhook host names for the check: the system resolver, one provider
 * (notifications.module.ts) so that the tests can put a slow or failing one in its place (they have no DNS to rely on).
 */
@Injectable()
export class TargetResolver {
  resolve(host: string): Promise<{ address: string }[]> {
    return systemResolve(host);
  }
}

export interface TargetCheckOptions {
  /** Default: the system resolver. */
  resolve?: ResolveAll;
  /** Default LOOKUP_MS. */
  lookupMs?: number;
}

/**
 * Whether `url` may be sent to: null when it may; `refused` when it names or resolves to an address a
 * provider cannot have; `unresolved` when its name could not be checked — the lookup failed, found
 * nothing or took longer than LOOKUP_MS. That is refused too (fail closed): it used to pass, so a name
 * whose DNS answered slowly (a resolver an attacker controls answering after 2 s) was sent to unchecked,
 * the send resolving it again itself (attack pass 10 #3). Saving such a URL is a 400; a send is not made
 * and counts as a failed attempt that may be retried (a DNS outage passes).
 */
export async function refusedTarget(url: URL, allowPrivate: boolean, o: TargetCheckOptions = {}): Promise<{ refused: string } | { unresolved: string } | null> {
  if (allowPrivate) return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return isPrivateAddress(host) ? { refused: `${host} is a private, loopback or reserved address` } : null;
  if (/^localhost\.?$/i.test(host) || /\.localhost\.?$/i.test(host)) return { refused: `${host} is the service's own machine` };
  const ms = o.lookupMs ?? LOOKUP_MS;
  const found = await withinMs(
    (o.resolve ?? systemResolve)(host).catch((e: NodeJS.ErrnoException) => `${e.code ?? 'ENOTFOUND'} ${host}`),
    ms,
  );
  if (found === 'timeout') return { unresolved: `${host}: no DNS answer within ${ms} ms, so its address could not be checked` };
  if (typeof found === 'string') return { unresolved: `${found}: the lookup failed, so its address could not be checked` };
  if (!found.length) return { unresolved: `${host} has no address, so it could not be checked` };
  const bad = found.find((a) => isPrivateAddress(a.address));
  return bad ? { refused: `${host} resolves to ${bad.address}, a private, loopback or reserved address` } : null;
}
