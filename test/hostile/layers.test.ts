/**
 * The OS layers underneath the guest realm, checked directly (a probe script in a sandbox, not tenant
 * code), and Kylix running with the layers turned off, as on a host without namespaces or cgroups:
 * it still starts, says which layers are missing, and still enforces the limits it can.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { bubblewrapArgs, probeBubblewrap } from '../../src/runtime/isolation/bubblewrap.js';
import { CgroupManager } from '../../src/runtime/isolation/cgroups.js';
import { resolveNodeRuntime } from '../../src/runtime/isolation/node-runtime.js';
import { doctorReport } from '../../src/server/doctor.js';
import { type Arena, arena } from './harness.js';

const runtime = resolveNodeRuntime();
const bwrap = probeBubblewrap(runtime.path);
const cgroups = new CgroupManager();
cgroups.close();

describe('OS layers', () => {
  it('bubblewrap: no network, no /etc/passwd, no host files, no env, runs as nobody', {
    skip: bwrap.ok ? false : bwrap.reason,
  }, () => {
    const probe = `
      const fs = require('fs'); const out = {};
      out.uid = process.getuid();
      out.passwd = fs.existsSync('/etc/passwd');
      out.repo = fs.existsSync(${JSON.stringify(`${process.cwd()}/package.json`)});
      out.env = Object.keys(process.env).sort().join(',');
      require('net').connect(80, '1.1.1.1').on('error', (e) => { out.net = e.code; console.log(JSON.stringify(out)); });`;
    const args = bubblewrapArgs(
      { nodePath: runtime.path, readOnly: [], readWrite: [], tmpBytes: 1 << 20, env: {} },
      [runtime.path, '-e', probe],
    );
    const out = JSON.parse(execFileSync(bwrap.path!, args, { encoding: 'utf8' })) as Record<string, unknown>;
    assert.deepEqual(out, { uid: 65534, passwd: false, repo: false, env: 'PWD,TZ', net: 'ENETUNREACH' });
  });

  it('cgroups: a sandbox process gets a memory cap the kernel enforces', {
    skip: cgroups.support.ok ? false : cgroups.support.reason,
  }, () => {
    const manager = new CgroupManager();
    const group = manager.create('layers-test');
    assert.ok(group);
    try {
      group.setLimits({ memoryBytes: 64 * 2 ** 20, pids: 64, cpus: 1 });
      // A shell joins the group the way sandbox processes do, then allocates past the cap.
      const writes = group.procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
      let killed = false;
      try {
        execFileSync(
          '/bin/sh',
          [
            '-c',
            `${writes} && exec "$@"`,
            'sh',
            runtime.path,
            '-e',
            'const k = []; for (;;) k.push(Buffer.alloc(16 * 2 ** 20, 1));',
          ],
          {
            stdio: 'ignore',
          },
        );
      } catch (err) {
        killed = (err as { signal?: string }).signal === 'SIGKILL';
      }
      assert.ok(killed, 'the process was not OOM-killed');
      assert.ok(group.oomKilled());
    } finally {
      group.remove();
      manager.close();
    }
  });

  it('kylix doctor names every layer and the runtime Node with its support status', () => {
    const { text } = doctorReport();
    for (const layer of ['namespaces', 'cgroups', 'permission flags', 'runtime node', 'egress proxy'])
      assert.match(text, new RegExp(`(on |OFF)\\s+${layer}`));
    assert.match(text, new RegExp(runtime.version.replace(/\./g, '\\.')));
    assert.match(text, /supported until|END OF LIFE/);
  });

  it('doctor says plainly when the runtime Node is past its end of life', () => {
    const old = resolveNodeRuntime(process.execPath, new Date('2099-01-01'));
    assert.equal(old.supported, false);
    const { text, ok } = doctorReport({ bubblewrap: 'off', cgroups: 'off' });
    assert.equal(ok, false);
    assert.match(text, /OFF\s+namespaces/);
    assert.match(text, /OFF\s+cgroups/);
  });
});

describe('hostile: with namespaces and cgroups off', () => {
  let a: Arena;
  before(async () => {
    a = await arena({ isolation: { bubblewrap: 'off', cgroups: 'off' } });
    await a.deploy({
      'fallback-loop': { spec: 'limits:\n  cpuMs: 100', code: 'export default { fetch() { for (;;) {} } };' },
      'fallback-bomb': {
        spec: 'limits:\n  memoryMiB: 32',
        code: 'const keep = []; export default { fetch() { for (let i = 0; i < 64; i++) { const b = new Uint8Array(32 * 1024 * 1024); b.fill(1); keep.push(b); } return new Response("survived"); } };',
      },
      'fallback-fs': {
        code: "export default { async fetch() { try { await import(['node:', 'fs'].join('')); return new Response('GOT fs'); } catch { return new Response('blocked'); } } };",
      },
    });
  });
  after(() => a.close());

  it('reports the missing layers at start-up', () => {
    assert.deepEqual(
      a.node.platform.isolation.missing().map((l) => l.name),
      ['namespaces', 'cgroups', ...(runtime.supported ? [] : ['runtime node'])],
    );
  });

  it('still stops a CPU loop, an ArrayBuffer bomb and module imports', async () => {
    const loop = await a.get('/fallback-loop');
    assert.equal(loop.status, 503);
    const bomb = await a.get('/fallback-bomb');
    assert.equal(bomb.status, 503);
    assert.equal(((await bomb.json()) as { error: { code: string } }).error.code, 'ERR_MEMORY_LIMIT');
    assert.equal(await (await a.get('/fallback-fs')).text(), 'blocked');
    await a.neighbourOk();
  });

  it('still runs tenant code under Node permission flags', () => {
    const sandboxes = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      // Only this node's own sandbox processes (its children: no bwrap or shell in between here).
      .filter((p) => {
        try {
          return (
            readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(process.pid)
          );
        } catch {
          return false;
        }
      })
      .map((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        } catch {
          return [];
        }
      })
      .filter((argv) => argv.some((x) => x.endsWith('sandbox/host.js')) && !argv.includes('--unshare-all'));
    assert.ok(sandboxes.length > 0, 'no sandbox process found');
    for (const argv of sandboxes)
      assert.ok(
        argv.some((x) => /^--(experimental-)?permission$/.test(x)),
        argv.join(' '),
      );
  });
});
