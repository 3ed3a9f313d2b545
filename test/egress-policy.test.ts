/**
 * The egress policy against every textual disguise of a non-public address: IPv4-mapped, SIIT,
 * NAT64, 6to4, Teredo, IPv4-compatible, and non-global IPv6, each in compressed, expanded,
 * upper-case, bracketed and zone-id forms.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addressRefusal,
  cidrList,
  nodeOwnAddresses,
  parseAddress,
} from '../src/runtime/isolation/egress-policy.js';

/** Every way to write the same IPv6 address that the parser must see through. */
function spellings(v6: string): string[] {
  const expanded = parseAddress(v6);
  assert.ok(expanded, v6);
  return [
    v6,
    v6.toUpperCase(),
    `[${v6}]`,
    `${v6}%eth0`,
    `[${v6.toUpperCase()}%25lo]`.replace('%25', '%'),
    expanded.text,
    expanded.text
      .split(':')
      .map((g) => g.padStart(4, '0'))
      .join(':'),
  ];
}

const refusedV6 = [
  // IPv4-mapped, dotted and hex
  '::ffff:127.0.0.1',
  '::ffff:7f00:1',
  '::ffff:7f00:0001',
  '0:0:0:0:0:ffff:7f00:1',
  '::ffff:169.254.169.254',
  '::ffff:a9fe:a9fe',
  '::ffff:10.0.0.1',
  '::ffff:192.168.1.1',
  '::ffff:0.0.0.0',
  '::ffff:100.64.0.1',
  // SIIT
  '::ffff:0:127.0.0.1',
  '::ffff:0:7f00:1',
  '::ffff:0:a9fe:a9fe',
  // NAT64 well-known and local-use
  '64:ff9b::127.0.0.1',
  '64:ff9b::7f00:1',
  '64:ff9b::a00:1',
  '64:ff9b::169.254.169.254',
  '64:ff9b:1::8.8.8.8',
  '64:ff9b:1:abcd::1',
  // 6to4 with a non-public IPv4 inside
  '2002:7f00:1::',
  '2002:7f00:1::1',
  '2002:a9fe:a9fe::1',
  '2002:c0a8:101:1::1',
  '2002:a00:1:ffff:ffff:ffff:ffff:ffff',
  // Teredo
  '2001::1',
  '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  // IPv4-compatible
  '::127.0.0.1',
  '::7f00:1',
  '::8.8.8.8',
  '::10.0.0.1',
  // Non-global IPv6
  '::',
  '::1',
  '0:0:0:0:0:0:0:1',
  'fc00::1',
  'fd00:ec2::254',
  'fe80::1',
  'fe80::a9fe:a9fe',
  'febf:ffff::1',
  'fec0::1',
  'ff02::1',
  'ff0e::1',
  '2001:db8::1',
  '2001:db8:ffff::1',
  '100::1',
  '100::ffff:1',
  '3fff::1',
  '2001:10::1',
  '1::1',
  '4000::1',
  '::2:3:4:5:6:7:8',
];

const allowedV6 = [
  '2606:4700:4700::1111',
  '2a00:1450:4001:80b::200e',
  '::ffff:8.8.8.8',
  '::ffff:808:808',
  '64:ff9b::8.8.8.8',
  '2002:808:808::1',
];

describe('egress policy: addresses', () => {
  it('parses every textual form of an address to one canonical text', () => {
    const canonical = '0:0:0:0:0:ffff:7f00:1';
    for (const s of [
      '::ffff:127.0.0.1',
      '::FFFF:7F00:1',
      '[::ffff:7f00:1]',
      '::ffff:7f00:1%eth0',
      '0000:0000:0000:0000:0000:ffff:7f00:0001',
      '0:0::ffff:127.0.0.1',
    ])
      assert.equal(parseAddress(s)?.text, canonical, s);
    assert.equal(parseAddress('1::1.2.3.4')?.text, '1:0:0:0:0:0:102:304');
    assert.equal(parseAddress('1:2:3:4:5:6:1.2.3.4')?.text, '1:2:3:4:5:6:102:304');
    assert.equal(parseAddress('not-an-ip'), undefined);
    assert.equal(parseAddress('::ffff:1.2.3.256'), undefined);
  });

  it('refuses non-public IPv4', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.255.254',
      '10.0.0.1',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '192.0.2.1',
      '198.18.0.1',
      '192.88.99.1',
    ])
      assert.ok(addressRefusal(a), a);
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1'])
      assert.equal(addressRefusal(a), undefined, a);
  });

  it(`refuses ${refusedV6.length} non-public IPv6 addresses in every spelling`, () => {
    for (const a of refusedV6)
      for (const s of spellings(a)) assert.ok(addressRefusal(s), `${s} (from ${a}) was allowed`);
  });

  it('allows public IPv6, and IPv6 forms of public IPv4 that route to it', () => {
    for (const a of allowedV6)
      for (const s of spellings(a)) assert.equal(addressRefusal(s), undefined, `${s} (from ${a})`);
  });

  it('names the IPv4 address an embedding form stands for', () => {
    assert.match(addressRefusal('::ffff:7f00:1') ?? '', /127\.0\.0\.1 in IPv4-mapped form/);
    assert.match(addressRefusal('64:ff9b::a9fe:a9fe') ?? '', /169\.254\.169\.254 in NAT64 form/);
    assert.match(addressRefusal('2002:a00:1::1') ?? '', /10\.0\.0\.1 in 6to4 form/);
    assert.match(addressRefusal('2001::1') ?? '', /Teredo/);
  });

  it('an installation allow-list covers an address in every form, and nothing else', () => {
    const allow = cidrList(['127.0.0.2/32', 'fd00::/8']);
    for (const s of [
      '127.0.0.2',
      '::ffff:127.0.0.2',
      '::ffff:7f00:2',
      '[::ffff:0:7f00:2]',
      '64:ff9b::7f00:2',
    ])
      assert.equal(addressRefusal(s, allow), undefined, s);
    assert.equal(addressRefusal('fd00::1%eth0', allow), undefined);
    for (const s of ['127.0.0.1', '::ffff:7f00:1', '2002:7f00:1::', 'fc00::1'])
      assert.ok(addressRefusal(s, allow), s);
  });

  it("refuses the node's own addresses, public ones too, in every form, unless the installation allows them", () => {
    // A node with a public address: "*" must not reach its other ports through it.
    const own = new Set(['93.184.216.34', '2a01:4f8:0:0:0:0:0:1']);
    for (const s of [
      '93.184.216.34',
      '::ffff:93.184.216.34',
      '64:ff9b::5db8:d822',
      '2a01:4f8::1',
      '[2A01:4F8::0:1]',
    ])
      assert.match(addressRefusal(s, undefined, own) ?? '', /this node's own address/, s);
    for (const s of ['93.184.216.35', '2a01:4f8::2'])
      assert.equal(addressRefusal(s, undefined, own), undefined, s);
    assert.equal(addressRefusal('93.184.216.34', cidrList(['93.184.216.34']), own), undefined);
    // Read from the interfaces: this machine's loopback is among them.
    assert.ok(nodeOwnAddresses().has('127.0.0.1'));
    assert.ok(nodeOwnAddresses(Date.now() + 60_000).has('127.0.0.1'));
  });

  it('refuses what is not an address at all', () => {
    for (const s of ['', 'localhost', '127.1', '0x7f000001', '::ffff:127.0.0.1.1', '[::1', 'fe80::1%'])
      assert.ok(addressRefusal(s), JSON.stringify(s));
  });
});
