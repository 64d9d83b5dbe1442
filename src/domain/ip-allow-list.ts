import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Range = [Address, number];

/** At most this many entries per list: a list is for a handful of servers, not a firewall. */
export const MAX_ALLOW_LIST_ENTRIES = 100;

export type AllowListEntryResult = { ok: true; cidr: string } | { ok: false; message: string };

/**
 * One allow-list entry, an address or a CIDR range of either family, in canonical CIDR
 * form (`10.0.0.0/8`, `2001:db8::/32`, a single address gets /32 or /128). IPv4 must be
 * four-part decimal: ipaddr.js would also read `127.1` or `0x7f.0.0.1`, which nobody
 * means in an allow-list. An IPv4-mapped IPv6 entry (`::ffff:10.0.0.1`) is stored as IPv4.
 */
export function normaliseAllowListEntry(entry: string): AllowListEntryResult {
  const text = entry.trim();
  const [addressText, bitsText, extra] = text.split('/');
  if (extra !== undefined || !addressText) return { ok: false, message: 'must be an IP address or a CIDR range' };
  let address: Address;
  if (ipaddr.IPv4.isValidFourPartDecimal(addressText)) address = ipaddr.IPv4.parse(addressText);
  else if (ipaddr.IPv6.isValid(addressText) && !addressText.includes('%')) address = ipaddr.IPv6.parse(addressText);
  else return { ok: false, message: 'must be an IP address or a CIDR range' };
  const max = address.kind() === 'ipv4' ? 32 : 128;
  let bits = max;
  if (bitsText !== undefined) {
    if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > max) return { ok: false, message: `prefix length must be 0-${max}` };
    bits = Number(bitsText);
  }
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
    address = (address as ipaddr.IPv6).toIPv4Address();
    bits -= 96;
  }
  const network = networkOf(address, bits);
  return { ok: true, cidr: `${network.toString()}/${bits}` };
}

function networkOf(address: Address, bits: number): Address {
  const bytes = address.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    bytes[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return ipaddr.fromByteArray(bytes);
}

/** A stored range; one that does not parse matches nothing (a bad entry never opens the list). */
function parseRange(cidr: string): Range | null {
  try {
    return ipaddr.parseCIDR(cidr) as Range;
  } catch {
    return null;
  }
}

/**
 * Whether a client address falls in one of the (normalised) ranges. An empty list
 * allows every address. IPv4-mapped IPv6 client addresses (`::ffff:127.0.0.1`, what a
 * dual-stack socket reports for an IPv4 peer) are matched as the IPv4 address they are.
 */
export function ipAllowed(cidrs: readonly string[], clientIp: string | undefined): boolean {
  if (cidrs.length === 0) return true;
  if (!clientIp || !ipaddr.isValid(clientIp)) return false;
  const address = ipaddr.process(clientIp);
  return cidrs.some((cidr) => {
    const range = parseRange(cidr);
    return range !== null && range[0].kind() === address.kind() && address.match(range[0], range[1]);
  });
}

/** Most addresses whose canonical form is remembered (parsing one costs more than the rest of a key check); full, it starts over. */
const MAX_REMEMBERED_IPS = 10_000;
const canonicalIps = new Map<string, string>();

/** The client address as stored and shown: IPv4-mapped IPv6 written as plain IPv4. */
export function canonicalIp(clientIp: string): string {
  let canonical = canonicalIps.get(clientIp);
  if (canonical === undefined) {
    canonical = ipaddr.isValid(clientIp) ? ipaddr.process(clientIp).toString() : clientIp;
    if (canonicalIps.size >= MAX_REMEMBERED_IPS) canonicalIps.clear();
    canonicalIps.set(clientIp, canonical);
  }
  return canonical;
}
