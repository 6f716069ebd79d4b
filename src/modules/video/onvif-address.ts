import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { withinMs } from '../../infra/lifecycle/shutdown';
import { embeddedIPv4, hextets } from '../../infra/net/ip-ranges';

/**
 * Where an ONVIF probe may connect (attack pass: the probe reached 127.0.0.1:5432, Redis, ::1 and
 * 169.254.169.254 on an admin's word — a port scanner and a reader of the metadata service).
 * Cameras live on private networks, so private addresses are the normal case; what no camera has is
 * refused whatever the allow list says: loopback, link-local (169.254/16 — the cloud metadata
 * service —, fe80::/10), unspecified (0/8, ::), multicast and reserved (240/4, broadcast). And the
 * address must be in video.onvifAllowedNetworks (default RFC 1918, CGNAT 100.64/10, RFC 4193
 * fc00::/7; add '0.0.0.0/0' / '::/0' for cameras on public addresses). An entry lying inside one of
 * the refused ranges (e.g. '127.0.0.0/8' in tests, whose fake cameras run on loopback) names it
 * explicitly and lets it through; a wide entry such as '0.0.0.0/0' does not.
 * A name is resolved here and the probe connects to the address checked (never resolved again:
 * no window for a DNS answer to change in between); every address the name has must pass.
 */
const REFUSED: { net: string; bits: number; family: 4 | 6; what: string }[] = [
  { net: '0.0.0.0', bits: 8, family: 4, what: 'an unspecified ("this network") address' },
  { net: '127.0.0.0', bits: 8, family: 4, what: 'a loopback address (this machine)' },
  { net: '169.254.0.0', bits: 16, family: 4, what: 'a link-local address (e.g. the cloud metadata service)' },
  { net: '224.0.0.0', bits: 4, family: 4, what: 'a multicast address' },
  { net: '240.0.0.0', bits: 4, family: 4, what: 'a reserved or broadcast address' },
  { net: '::', bits: 128, family: 6, what: 'the unspecified address' },
  { net: '::1', bits: 128, family: 6, what: 'a loopback address (this machine)' },
  { net: 'fe80::', bits: 10, family: 6, what: 'a link-local address' },
  { net: 'ff00::', bits: 8, family: 6, what: 'a multicast address' },
];

const fam = (f: 4 | 6) => (f === 4 ? 'ipv4' : 'ipv6');

function within(address: string, family: 4 | 6, net: string, bits: number): boolean {
  const l = new BlockList();
  l.addSubnet(net, bits, fam(family));
  return l.check(address, fam(family));
}

/** One allow-list entry ('10.20.0.0/16', '192.168.1.64', 'fd00::/8') as network, bits and family; null when malformed. */
export function parseNetwork(entry: string): { net: string; bits: number; family: 4 | 6 } | null {
  const [net, bits, more] = entry.trim().split('/');
  const family = isIP(net ?? '');
  if (more !== undefined || (family !== 4 && family !== 6)) return null;
  const max = family === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return null;
  const b = bits === undefined ? max : Number(bits);
  return b <= max ? { net, bits: b, family } : null;
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d, how a dual-stack socket names an IPv4 peer) as the IPv4 address it is. */
function unmapped(address: string): string {
  const h = hextets(address);
  return h && h.slice(0, 5).every((x) => x === 0) && h[5] === 0xffff ? embeddedIPv4(address)[0] : address;
}

/** Why `address` (an IP literal) may not be probed, or null when it may. */
export function refusedAddress(address: string, allowed: readonly string[]): string | null {
  const a = unmapped(address.replace(/^\[|\]$/g, ''));
  const family = isIP(a) as 0 | 4 | 6;
  if (!family) return `${address} is not an IP address`;
  const nets = allowed.map(parseNetwork).filter((n): n is NonNullable<typeof n> => !!n && n.family === family);
  for (const r of REFUSED) {
    if (r.family !== family || !within(a, family, r.net, r.bits)) continue;
    const named = nets.some((n) => n.bits >= r.bits && within(n.net, family, r.net, r.bits) && within(a, family, n.net, n.bits));
    if (!named) return `${a} is ${r.what}`;
  }
  // A private IPv4 address must not hide behind a translation prefix (NAT64, 6to4, Teredo) either.
  if (family === 6) for (const v4 of embeddedIPv4(a)) if (REFUSED.some((r) => r.family === 4 && within(v4, 4, r.net, r.bits))) return `${a} carries ${v4}`;
  if (!nets.some((n) => within(a, family, n.net, n.bits))) return `${a} is outside video.onvifAllowedNetworks (${allowed.join(', ') || 'empty'})`;
  return null;
}

/** How long a name lookup may take. */
const LOOKUP_MS = 3000;

/**
 * The address to probe `host` at: the literal itself, or what the name resolves to — every address
 * checked (refusedAddress), the first one used. `refused`: why not; `unresolved`: the name has no address.
 */
export async function onvifAddress(host: string, allowed: readonly string[]): Promise<{ address: string } | { refused: string } | { unresolved: string }> {
  const bare = host.replace(/^\[|\]$/g, '');
  if (isIP(bare)) {
    const why = refusedAddress(bare, allowed);
    return why ? { refused: why } : { address: unmapped(bare) };
  }
  const found = await withinMs(
    lookup(bare, { all: true, verbatim: true }).catch((e: NodeJS.ErrnoException) => `${e.code ?? 'ENOTFOUND'} ${bare}`),
    LOOKUP_MS,
  );
  if (found === 'timeout') return { unresolved: `EAI_AGAIN ${bare}: no DNS answer within ${LOOKUP_MS} ms` };
  if (typeof found === 'string') return { unresolved: found };
  if (!found.length) return { unresolved: `ENOTFOUND ${bare}` };
  for (const f of found) {
    const why = refusedAddress(f.address, allowed);
    if (why) return { refused: `${bare} resolves to ${why}` };
  }
  return { address: unmapped(found[0].address) };
}
