/**
 * Which outbound connections a function may make: its host must be in spec.egress.allow (deny by
 * default; "*" means the public internet), and every address the host resolves to must be public.
 * Loopback, link-local (169.254.169.254, the cloud metadata address), private, shared, multicast and
 * reserved ranges are refused unless the installation allows them by CIDR, in every textual form:
 * an IPv6 address that embeds an IPv4 one (::ffff:7f00:1, 64:ff9b::a00:1, 2002:a00:1::) is that IPv4
 * address, and any other IPv6 address must be global unicast. The node's own addresses are refused
 * as well, public or not: a function must not reach the node's other ports (its admin API, a
 * backend listening on every interface) through the address the node answers on.
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** IPv4 ranges no function reaches unless the installation says so. */
const NON_PUBLIC_V4: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

/**
 * IPv6 ranges inside global unicast (2000::/3) that are not public: IETF protocol assignments
 * (2001::/23, Teredo among them), documentation (2001:db8::/32, 3fff::/20). Everything outside
 * 2000::/3 (::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8, 100::/64, …) is refused as well.
 */
const NON_PUBLIC_V6: [string, number][] = [
  ['2001::', 23],
  ['2001:db8::', 32],
  ['3fff::', 20],
];

const blockedV4 = new BlockList();
for (const [net, prefix] of NON_PUBLIC_V4) blockedV4.addSubnet(net, prefix, 'ipv4');
const blockedV6 = new BlockList();
for (const [net, prefix] of NON_PUBLIC_V6) blockedV6.addSubnet(net, prefix, 'ipv6');

/**
 * What the installation lets functions reach beyond the public internet: its ranges, and which of
 * them name one address exactly (only such an entry lets a function reach the node itself).
 */
export interface InstallationAllows {
  ranges: BlockList;
  /** Canonical (parseAddress) addresses listed alone or as /32, /128. */
  exact: ReadonlySet<string>;
}

/** Parses "10.0.0.0/8" or "::1/128" (a bare address means just it). */
export function cidrList(cidrs: string[]): InstallationAllows {
  const ranges = new BlockList();
  const exact = new Set<string>();
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/');
    const family = isIP(addr);
    if (!family) throw new Error(`"${c}" is not an IP address or CIDR range`);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    ranges.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6');
    const parsed = parseAddress(addr);
    if (parsed && prefix === (family === 4 ? 32 : 128)) exact.add(parsed.text);
  }
  return { ranges, exact };
}

/** An address in one canonical form: IPv4 dotted quad, or IPv6 as eight 16-bit groups. */
export type ParsedAddress = { family: 4; text: string } | { family: 6; text: string; groups: number[] };

/**
 * Parses any textual form of an IP address: brackets ("[::1]"), a zone id ("fe80::1%eth0"), upper
 * case, zero compression and a trailing dotted quad ("::ffff:1.2.3.4") all come out the same.
 */
export function parseAddress(input: string): ParsedAddress | undefined {
  let a = input.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const family = isIP(a);
  if (family === 4) return { family: 4, text: a };
  if (family !== 6) return undefined;
  let groups: number[] = [];
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  let tailGroups: number[] = [];
  if (quad) {
    const [b0, b1, b2, b3] = quad.slice(1).map(Number) as [number, number, number, number];
    tailGroups = [(b0 << 8) | b1, (b2 << 8) | b3];
    // What is left ends in ":" ("::ffff:") or "::" ("::"); only a lone ":" is a separator to drop.
    a = a.slice(0, quad.index);
    if (!a.endsWith('::')) a = a.slice(0, -1);
  }
  const hex = (part: string) => (part === '' ? [] : part.split(':').map((g) => Number.parseInt(g, 16)));
  const wanted = 8 - tailGroups.length;
  const gap = a.indexOf('::');
  if (gap >= 0) {
    const head = hex(a.slice(0, gap));
    const tail = hex(a.slice(gap + 2));
    groups = [...head, ...new Array<number>(wanted - head.length - tail.length).fill(0), ...tail];
  } else groups = hex(a);
  groups.push(...tailGroups);
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  return { family: 6, text: groups.map((g) => g.toString(16)).join(':'), groups };
}

/** The IPv4 address in the last 32 bits of eight groups, or in groups i and i+1. */
function v4At(g: number[], i = 6): string {
  const hi = g[i] ?? 0;
  const lo = g[i + 1] ?? 0;
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * The IPv4 address an IPv6 address stands for, and whether the IPv6 form is routable as such:
 * IPv4-mapped, SIIT, NAT64 (well-known prefix), 6to4 and IPv4-compatible forms. Undefined for
 * addresses that embed none (or that embed one in a way that cannot be known, refused elsewhere).
 */
function embeddedV4(g: number[]): { v4: string; form: string; routable: boolean } | undefined {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return { v4: v4At(g), form: 'IPv4-mapped', routable: true };
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return { v4: v4At(g), form: 'SIIT', routable: true };
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return { v4: v4At(g), form: 'NAT64', routable: true };
  if (g[0] === 0x2002) return { v4: v4At(g, 1), form: '6to4', routable: true };
  // :: and ::1 are the unspecified and loopback addresses, not IPv4-compatible ones.
  if (zeros(0, 6) && !(g[6] === 0 && (g[7] ?? 0) <= 1))
    return { v4: v4At(g), form: 'IPv4-compatible', routable: false };
  return undefined;
}

const NOT_PUBLIC =
  'a loopback, link-local, private or reserved address; functions may only reach public addresses';
const OWN = "this node's own address; functions reach the node's services only through their bindings";

/** How long the node's own address list is kept before it is read again (interfaces can change). */
const OWN_ADDRESSES_TTL_MS = 5_000;
let ownCache: { at: number; set: ReadonlySet<string> } | undefined;

/**
 * The node's own addresses, canonical (parseAddress), read from its interfaces at most every 5 s
 * (by a monotonic clock: a wall clock stepped back would keep a stale list).
 */
export function nodeOwnAddresses(now = performance.now()): ReadonlySet<string> {
  if (ownCache && now >= ownCache.at && now - ownCache.at < OWN_ADDRESSES_TTL_MS) return ownCache.set;
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces()))
    for (const i of list ?? []) {
      const parsed = parseAddress(i.address);
      if (parsed) set.add(parsed.text);
    }
  ownCache = { at: now, set };
  return set;
}

/**
 * Why an address may not be reached, or undefined when it may. IPv6 forms that embed an IPv4
 * address are judged as that address; other IPv6 addresses must be global unicast. One of the
 * node's own addresses (`own`, its interfaces by default), public or in a range the installation
 * allows, is refused too, unless the installation lists that very address.
 */
export function addressRefusal(
  address: string,
  installationAllows?: InstallationAllows,
  own: ReadonlySet<string> = nodeOwnAddresses(),
): string | undefined {
  const parsed = parseAddress(address);
  if (!parsed) return `${address} is not an IP address`;
  const judged = publicRefusal(address, parsed, installationAllows?.ranges);
  if (judged !== undefined && judged !== PUBLIC) return judged;
  const exact = installationAllows?.exact;
  if (own.has(parsed.text) && !exact?.has(parsed.text)) return `${address} is ${OWN}`;
  const embedded = parsed.family === 6 ? embeddedV4(parsed.groups) : undefined;
  if (embedded && own.has(embedded.v4) && !exact?.has(embedded.v4))
    return `${address} is ${embedded.v4} in ${embedded.form} form, ${OWN}`;
  return undefined;
}

/** What publicRefusal says of a public address the installation did not allow by range. */
const PUBLIC = 'public';

/** Why a non-public address is refused; undefined when the installation allows it; PUBLIC otherwise. */
function publicRefusal(
  address: string,
  parsed: ParsedAddress,
  installationAllows?: BlockList,
): string | undefined {
  if (parsed.family === 4) {
    if (installationAllows?.check(parsed.text, 'ipv4')) return undefined;
    return blockedV4.check(parsed.text, 'ipv4') ? `${address} is ${NOT_PUBLIC}` : PUBLIC;
  }
  if (installationAllows?.check(parsed.text, 'ipv6')) return undefined;
  const g = parsed.groups;
  const embedded = embeddedV4(g);
  if (embedded) {
    if (installationAllows?.check(embedded.v4, 'ipv4')) return undefined;
    if (blockedV4.check(embedded.v4, 'ipv4'))
      return `${address} is ${embedded.v4} in ${embedded.form} form, ${NOT_PUBLIC}`;
    if (embedded.routable) return PUBLIC;
    return `${address} is a deprecated ${embedded.form} IPv6 address; functions may only reach public addresses`;
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1)
    return `${address} is in the local-use NAT64 prefix 64:ff9b:1::/48; functions may only reach public addresses`;
  if (g[0] === 0x2001 && g[1] === 0)
    return `${address} is a Teredo tunnel address; functions may only reach public addresses`;
  const globalUnicast = ((g[0] ?? 0) & 0xe000) === 0x2000;
  if (!globalUnicast || blockedV6.check(parsed.text, 'ipv6')) return `${address} is ${NOT_PUBLIC}`;
  return PUBLIC;
}

/**
 * The sentence a refused fetch() carries: which spec.egress.allow entry would let the function reach
 * `host` (the exact name, or a wildcard for its siblings).
 */
export function egressAllowHint(host: string): string {
  const h = host
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  const parent = isIP(h) ? '' : h.split('.').slice(1).join('.');
  const wildcard = parent.includes('.') ? `, or "*.${parent}" for every host under ${parent}` : '';
  return `To allow it, add "${h}" to the Function's spec.egress.allow (egress: { allow: ["${h}"] })${wildcard}; "*" allows the whole public internet.`;
}

/** Whether `host` is in the allow-list: exact names, "*.example.com" for subdomains, "*" for all. */
export function hostAllowed(host: string, allow: readonly string[]): boolean {
  const h = host
    .toLowerCase()
    .replace(/\.$/, '')
    .replace(/^\[(.*)\]$/, '$1');
  return allow.some((entry) => {
    const e = entry.toLowerCase();
    if (e === '*') return true;
    if (e.startsWith('*.')) return h.endsWith(e.slice(1)) && h.length > e.length - 1;
    return h === e;
  });
}
