/**
 * Hostile functions trying to reach what they must not: loopback, the cloud metadata address,
 * private ranges, Unix sockets, names that resolve to loopback, redirects into the host, hosts not
 * in their allow-list. Each is a function deployed through the real platform; each test asserts the
 * connection was refused (and never reached the target), and that a neighbour kept answering.
 * The installation here allows 127.0.0.2 explicitly, to show the proxy does connect when allowed.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type Arena, arena } from './harness.js';

/** A function that fetches env.TARGET and says what happened. */
const fetcher = `export default { async fetch(request, env) {
  try {
    const res = await fetch(env.TARGET, { redirect: env.REDIRECT || 'follow' });
    return Response.json({ reached: true, status: res.status, body: (await res.text()).slice(0, 100) });
  } catch (e) {
    return Response.json({ reached: false, error: String(e && e.message), cause: String(e && e.cause && e.cause.message) });
  }
} };`;

const attack = (target: string, allow: string[], extraEnv = '') => ({
  code: fetcher,
  spec: `env:\n  TARGET: "${target}"\n${extraEnv}egress:\n  allow: [${allow.map((a) => JSON.stringify(a)).join(', ')}]`,
});

describe('hostile: reaching the network', () => {
  let a: Arena;
  let hits = 0;
  let loopback: Server;
  let allowed: Server;
  let loopPort = 0;
  let allowedPort = 0;
  before(async () => {
    loopback = createServer((_req, res) => {
      hits++;
      res.end('secret from loopback');
    });
    await new Promise<void>((r) => loopback.listen(0, '127.0.0.1', r));
    loopPort = (loopback.address() as AddressInfo).port;
    allowed = createServer((req, res) => {
      if (req.url === '/redirect') {
        res.writeHead(302, { location: `http://127.0.0.1:${loopPort}/` });
        return res.end();
      }
      res.end(`allowed ${req.headers['x-from'] ?? ''}`);
    });
    await new Promise<void>((r) => allowed.listen(0, '127.0.0.2', r));
    allowedPort = (allowed.address() as AddressInfo).port;
    a = await arena({ isolation: { egressAllowCidrs: ['127.0.0.2/32'] } });
    await a.deploy({
      'to-loopback': attack(`http://127.0.0.1:${loopPort}/`, ['127.0.0.1']),
      'to-metadata': attack('http://169.254.169.254/latest/meta-data/', ['169.254.169.254']),
      'to-private-10': attack('http://10.0.0.1/', ['10.0.0.1']),
      'to-private-172': attack('http://172.16.0.1/', ['172.16.0.1']),
      'to-private-192': attack('http://192.168.1.1/', ['192.168.1.1']),
      'to-localhost-name': attack(`http://localhost:${loopPort}/`, ['localhost']),
      'to-ipv6-loopback': attack(`http://[::1]:${loopPort}/`, ['::1']),
      'to-mapped-ipv6': attack(`http://[::ffff:127.0.0.1]:${loopPort}/`, ['*']),
      'to-decimal-ip': attack(`http://2130706433:${loopPort}/`, ['*']),
      'to-siit-ipv6': attack(`http://[::ffff:0:7f00:1]:${loopPort}/`, ['*']),
      'to-nat64-ipv6': attack(`http://[64:ff9b::7f00:1]:${loopPort}/`, ['*']),
      'to-6to4-ipv6': attack(`http://[2002:7f00:1::1]:${loopPort}/`, ['*']),
      'to-compat-ipv6': attack(`http://[::127.0.0.1]:${loopPort}/`, ['*']),
      'wildcard-loopback': attack(`http://127.0.0.1:${loopPort}/`, ['*']),
      'not-allowed': attack('http://example.com/', []),
      'unix-socket': attack('unix:///var/run/docker.sock', ['*']),
      'file-url': attack('file:///etc/passwd', ['*']),
      'redirect-in': attack(`http://127.0.0.2:${allowedPort}/redirect`, ['127.0.0.2', '127.0.0.1']),
      'allowed-private': attack(`http://127.0.0.2:${allowedPort}/`, ['127.0.0.2']),
    });
  });
  after(async () => {
    await a.close();
    loopback.close();
    allowed.close();
  });

  const refused = (name: string, title: string, cause: RegExp) =>
    it(title, async () => {
      const before = hits;
      const r = await a.json<{ reached: boolean; error: string; cause: string }>(`/${name}`);
      assert.equal(r.reached, false, JSON.stringify(r));
      assert.equal(r.error, 'fetch failed');
      assert.match(r.cause, cause);
      assert.equal(hits, before, 'the loopback server was reached');
      await a.neighbourOk();
    });

  refused('to-loopback', 'refuses loopback, even when listed in spec.egress.allow', /loopback/);
  refused('to-metadata', 'refuses the metadata address 169.254.169.254', /link-local|loopback/);
  refused('to-private-10', 'refuses 10.0.0.0/8', /private/);
  refused('to-private-172', 'refuses 172.16.0.0/12', /private/);
  refused('to-private-192', 'refuses 192.168.0.0/16', /private/);
  refused(
    'to-localhost-name',
    'refuses a host name that resolves to loopback (checked after DNS)',
    /resolves to/,
  );
  refused('to-ipv6-loopback', 'refuses IPv6 loopback', /loopback/);
  refused('to-mapped-ipv6', 'refuses an IPv4-mapped IPv6 loopback address', /loopback/);
  refused('to-siit-ipv6', 'refuses loopback in SIIT form (::ffff:0:7f00:1)', /127\.0\.0\.1 in SIIT form/);
  refused('to-nat64-ipv6', 'refuses loopback behind the NAT64 prefix', /127\.0\.0\.1 in NAT64 form/);
  refused('to-6to4-ipv6', 'refuses loopback inside a 6to4 address', /127\.0\.0\.1 in 6to4 form/);
  refused(
    'to-compat-ipv6',
    'refuses loopback as an IPv4-compatible address',
    /127\.0\.0\.1 in IPv4-compatible/,
  );
  refused('to-decimal-ip', 'refuses loopback written as a decimal number', /loopback/);
  refused('wildcard-loopback', '"*" allows the public internet, never loopback', /loopback/);
  refused(
    'not-allowed',
    'refuses hosts not in spec.egress.allow (deny by default)',
    /not in spec\.egress\.allow/,
  );
  refused(
    'unix-socket',
    'refuses Unix sockets and other schemes',
    /only http: and https:|not supported|fetch failed/,
  );
  refused(
    'redirect-in',
    'checks every redirect hop: an allowed host cannot bounce into loopback',
    /loopback/,
  );

  it('refuses file: URLs', async () => {
    const r = await a.json<{ reached: boolean; body?: string }>('/file-url');
    assert.equal(r.reached, false);
    await a.neighbourOk();
  });

  it('connects through the proxy where the installation allows a private range', async () => {
    const r = await a.json<{ reached: boolean; status: number; body: string }>('/allowed-private');
    assert.deepEqual([r.reached, r.status, r.body], [true, 200, 'allowed ']);
    await a.neighbourOk();
  });

  it('logs refused connections to the function log', async () => {
    const log = a.node.platform.logs.tail('default', 'to-metadata');
    assert.ok(log.some((e) => /refused by the egress proxy/.test(e.message)));
  });
});
