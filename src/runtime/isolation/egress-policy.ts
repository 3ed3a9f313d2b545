/**
 * Which outbound connections a function may make: its host must be in spec.egress.allow (deny by
 * default; "*" means the public internet), and every address the host resolves to must be public.
 * Loopback, link-local (169.254.169.254, the cloud metadata address), private, shared, multicast and
 * reserved ranges are refused unless the installation allows them by CIDR.
 */
import { BlockList, isIP } from 'node:net';

/** Ranges no function reaches unless the installation says so. */
const NON_PUBLIC: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
  ['100::', 64, 'ipv6'],
  ['2001:db8::', 32, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

const blocked = new BlockList();
for (const [net, prefix, family] of NON_PUBLIC) blocked.addSubnet(net, prefix, family);

/** Parses "10.0.0.0/8" or "::1/128" (a bare address means just it) into a BlockList. */
export function cidrList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr = '', bits] = c.split('/');
    const family = isIP(addr);
    if (!family) throw new Error(`"${c}" is not an IP address or CIDR range`);
    list.addSubnet(
      addr,
      bits === undefined ? (family === 4 ? 32 : 128) : Number(bits),
      family === 4 ? 'ipv4' : 'ipv6',
    );
  }
  return list;
}

/** An IPv4-mapped IPv6 address ("::ffff:127.0.0.1") as the IPv4 address it is. */
function unmap(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1] ?? address;
}

/** Why an address may not be reached, or undefined when it may. */
export function addressRefusal(address: string, installationAllows?: BlockList): string | undefined {
  const a = unmap(address);
  const family = isIP(a);
  if (!family) return `${address} is not an IP address`;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (installationAllows?.check(a, type)) return undefined;
  if (blocked.check(a, type))
    return `${address} is a loopback, link-local, private or reserved address; functions may only reach public addresses`;
  return undefined;
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
