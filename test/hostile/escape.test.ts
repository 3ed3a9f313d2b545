/**
 * Hostile functions trying to leave the guest realm: prototype walks, stack-trace tricks, host-realm
 * errors and promises, module loading, the file system, env and secrets, processes and threads.
 * Each is a function deployed through the real platform; each test asserts the attempt was blocked
 * and that a neighbour function in another namespace kept answering.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../src/build/digest.js';
import { type Arena, arena, assertAllBlocked, NEIGHBOUR_CANARY } from './harness.js';

const handler = (body: string) =>
  `export default { async fetch(request, env) { const r = {}; ${body}; return Response.json(r); } };`;
// Built at run time, so the bundler cannot see (and refuse) the specifier: as an attacker would.
const dyn = (spec: string) => `import([${JSON.stringify(spec)}].join(''))`;

describe('hostile: escaping the guest realm', () => {
  let a: Arena;
  before(async () => {
    process.env.KYLIX_SUPERVISOR_CANARY = 'supervisor-canary-77c2';
    a = await arena();
    const { data: neighbour } = await a.node.client.json<{ spec: { bundle: string } }>(
      'GET',
      a.node.client.path('functions', 'neighbour', 'neighbours'),
    );
    const neighbourBundle = `${a.node.dataDir}/bundles/${neighbour.spec.bundle.slice(7)}.mjs`;
    await a.deploy({
      'proto-walk': {
        code: handler(`
          r.fromObject = await attempt(() => ({}).constructor.constructor('return process')());
          r.fromArrow = await attempt(() => (() => {}).constructor('return globalThis.process')());
          r.fromGlobalThis = await attempt(() => Function('return this')().process);
          r.typeofProcess = typeof process === 'undefined' ? 'undefined' : 'GOT process';
          r.fromRequest = await attempt(() => request.constructor.constructor('return process')());
          r.fromEnv = await attempt(() => env.constructor.constructor('return process')());`),
      },
      'request-internals': {
        code: handler(`
          const seen = [];
          const walk = (o, depth) => { if (!o || depth > 3 || seen.includes(o)) return; seen.push(o);
            for (const k of Reflect.ownKeys(o)) { let v; try { v = o[k]; } catch { continue; } if (v && (typeof v === 'object' || typeof v === 'function')) walk(v, depth + 1); } };
          walk(request, 0);
          r.nodeObject = seen.some((o) => typeof o.pipe === 'function' || 'socket' in o || typeof o.setEncoding === 'function') ? 'GOT a Node stream' : 'undefined';
          // Light requests and responses keep their state in a private field: reflection lists nothing.
          const keys = [request, new Response('x', { headers: { a: 'b' } })].flatMap((o) => [...Reflect.ownKeys(o), ...Object.getOwnPropertySymbols(o)]);
          r.ownKeys = keys.length === 0 ? 'undefined' : 'GOT ' + keys.map(String).join(',');
          const body = await new Request('http://x/', { method: 'POST', body: 'abc' }).arrayBuffer();
          r.bodyIsPlain = body instanceof ArrayBuffer ? 'undefined' : 'GOT ' + typeof body;`),
      },
      'request-body-chunks': {
        code: handler(`
          const reader = request.body.getReader();
          const { value } = await reader.read();
          r.chunkProto = Object.getPrototypeOf(value) === Uint8Array.prototype ? 'undefined' : 'GOT ' + value.constructor.name;`),
      },
      'prepare-stack-trace': {
        code: handler(`
          const frames = [];
          Error.prepareStackTrace = (err, callsites) => { frames.push(...callsites); return 'x'; };
          try { new URL('not a url'); } catch (e) { e.stack; }
          try { structuredClone(() => {}); } catch (e) { e.stack; }
          try { await fetch(':bad'); } catch (e) { e.stack; }
          Error.prepareStackTrace = undefined;
          r.frames = String(frames.length);
          for (const [i, c] of frames.entries()) {
            const t = c.getThis?.(); const f = c.getFunction?.();
            r['this' + i] = await attempt(() => t && t.constructor && t.constructor.constructor('return process')());
            r['fn' + i] = await attempt(() => f && f.constructor('return process')());
            if (t && typeof t === 'object' && ('process' in t || 'binding' in t)) r['host' + i] = 'GOT host object';
          }
          delete r.frames;`),
      },
      'host-errors': {
        code: handler(`
          try { new URL('::'); } catch (e) { r.urlError = await attempt(() => e.constructor.constructor('return process')()); }
          try { atob('*'); } catch (e) { r.domException = await attempt(() => e.constructor.constructor('return process')()); }
          try { await crypto.subtle.digest('nope', new Uint8Array(1)); } catch (e) { r.cryptoError = await attempt(() => e.constructor.constructor('return process')()); }`),
      },
      'host-promises': {
        code: handler(`
          const p = crypto.subtle.digest('SHA-256', new Uint8Array(1));
          r.digestPromise = await attempt(() => p.constructor.constructor('return process')());
          const q = new Response('x').text();
          r.bodyPromise = await attempt(() => q.constructor.constructor.call(null, 'return process')());
          r.thenable = await attempt(() => new Promise((res) => res({ then(ok) { ok(this.constructor.constructor('return process')()); } })));`),
      },
      'process-binding': {
        code: handler(`
          r.binding = await attempt(() => globalThis.process.binding('fs'));
          r.getBuiltin = await attempt(() => globalThis.process.getBuiltinModule('node:fs'));
          r.linkedBinding = await attempt(() => globalThis.process._linkedBinding('fs'));
          r.buffer = await attempt(() => Buffer.from('x').constructor.constructor('return process')());`),
      },
      'require-and-module': {
        code: handler(`
          r.require = await attempt(() => globalThis['req' + 'uire']);
          r.module = await attempt(() => globalThis['mod' + 'ule']);
          r.createRequire = await attempt(async () => (await ${dyn('node:module')}).createRequire('/')('fs'));`),
      },
      'import-node-fs': {
        code: handler(`
          r.nodeFs = await attempt(() => ${dyn('node:fs')});
          r.bareFs = await attempt(() => ${dyn('fs')});
          r.fsPromises = await attempt(() => ${dyn('node:fs/promises')});`),
      },
      'import-other': {
        code: handler(`
          r.dataUrl = await attempt(() => ${dyn("data:text/javascript,export default globalThis.process = 'x'")});
          r.etcPasswd = await attempt(() => ${dyn('file:///etc/passwd')});
          r.relative = await attempt(() => ${dyn('./host.js')});
          r.sandboxHost = await attempt(() => ${dyn('node:inspector')});
          r.importMetaResolve = await attempt(() => import.meta.resolve && import.meta.resolve(['node:', 'fs'].join('')) && ${dyn('node:fs')});`),
      },
      'eval-import': {
        code: handler(`
          r.indirectEval = await attempt(() => (0, eval)("import('node:fs')"));
          r.newFunction = await attempt(() => new Function("return import('node:os')")());
          r.asyncFunction = await attempt(async () => (async () => {}).constructor("return await import('node:child_process')")());`),
      },
      'read-etc-passwd': {
        code: handler(`
          r.fetchFile = await attempt(async () => (await fetch('file:///etc/passwd')).text());
          r.importFs = await attempt(async () => (await ${dyn('node:fs')}).readFileSync('/etc/passwd', 'utf8'));
          r.wasiImport = await attempt(() => ${dyn('node:wasi')});`),
      },
      'env-leak': {
        code: handler(`
          const everything = JSON.stringify({ env, keys: Object.getOwnPropertyNames(globalThis), navigator: globalThis.navigator && String(globalThis.navigator.userAgent) });
          r.neighbourSecret = everything.includes('${NEIGHBOUR_CANARY}') ? 'GOT neighbour secret' : 'undefined';
          r.supervisorEnv = everything.includes('supervisor-canary') ? 'GOT supervisor env' : 'undefined';
          r.envKeys = Object.keys(env).length === 0 ? 'undefined' : 'GOT ' + Object.keys(env).join(',');`),
      },
      'child-process': {
        code: handler(`
          r.import = await attempt(async () => (await ${dyn('node:child_process')}).execSync('id').toString());
          r.spawnSync = await attempt(() => globalThis.process.binding('spawn_sync'));`),
      },
      'worker-threads': {
        code: handler(`
          r.globalWorker = await attempt(() => globalThis.Worker);
          r.import = await attempt(async () => new (await ${dyn('node:worker_threads')}).Worker('1', { eval: true }));
          r.broadcast = await attempt(() => globalThis.BroadcastChannel && new BroadcastChannel('kylix'));`),
      },
      'web-globals': {
        code: `export default { async fetch() {
          const want = ['fetch', 'Request', 'Response', 'Headers', 'URL', 'ReadableStream', 'TextEncoder', 'TextDecoder', 'structuredClone', 'setTimeout', 'console', 'WebAssembly', 'AbortController'];
          const missing = want.filter((n) => typeof globalThis[n] === 'undefined');
          const bytes = crypto.getRandomValues(new Uint8Array(8));
          const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode('x'));
          return Response.json({ missing, random: bytes.length, digest: digest.byteLength });
        } };`,
      },
    });
    // The data-folder attack is told where the neighbour's bundle lies, as if it had guessed.
    const { writeProject, apply } = await import('../helpers/platform.js');
    await apply(
      a.node,
      writeProject({
        'kylix.yaml': `apiVersion: kylix.dev/v1\nkind: Function\nmetadata:\n  name: read-bundle\nspec:\n  source: ./f.js\n  routes:\n    - path: /read-bundle\n  env:\n    TARGET: "${neighbourBundle}"\n    STATE: "${a.node.dataDir}/state"`,
        'f.js': `${(await import('./harness.js')).PRELUDE}\n${handler(`
          r.importBundle = await attempt(() => import(env.TARGET));
          r.fetchBundle = await attempt(async () => (await fetch('file://' + env.TARGET)).text());
          r.fetchState = await attempt(async () => (await fetch('file://' + env.STATE)).text());`)}`,
      }),
    );
  });
  after(async () => {
    delete process.env.KYLIX_SUPERVISOR_CANARY;
    await a.close();
  });

  const blocked = (name: string, title: string) =>
    it(title, async () => {
      assertAllBlocked(await a.json(`/${name}`));
      await a.neighbourOk();
    });

  blocked('proto-walk', 'a prototype walk from any object finds no host Function or process');
  it('a Request exposes no Node object, and body chunks are plain Uint8Arrays', async () => {
    assertAllBlocked(await a.json('/request-internals'));
    const res = await a.get('/request-body-chunks', { method: 'POST', body: 'hello' });
    assertAllBlocked((await res.json()) as Record<string, string>);
    await a.neighbourOk();
  });
  blocked('prepare-stack-trace', 'Error.prepareStackTrace call sites leak no host this or function');
  blocked('host-errors', 'errors thrown by the host realm lead nowhere');
  blocked('host-promises', 'promises made by the host realm lead nowhere');
  blocked('process-binding', 'process.binding, getBuiltinModule and _linkedBinding are unreachable');
  blocked('require-and-module', 'require, module and createRequire are unreachable');
  blocked('import-node-fs', "dynamic import('node:fs') is refused");
  blocked('import-other', 'data: URLs, files and other built-ins cannot be imported');
  blocked('eval-import', 'import() from eval, new Function and AsyncFunction is refused');
  blocked('read-etc-passwd', 'reading /etc/passwd fails every way');
  blocked('read-bundle', "the data folder and another namespace's bundle cannot be read");
  blocked('env-leak', "a function sees only its own env: no neighbour's secret, no supervisor env");
  blocked('child-process', 'child processes cannot be started');
  blocked('worker-threads', 'workers and cross-thread channels cannot be made');

  it('a module importing a Node built-in is refused at start-up, even when uploaded pre-bundled', async () => {
    const code = Buffer.from(
      "import { readFileSync } from 'node:fs';\nexport default { fetch() { return new Response(readFileSync('/etc/passwd')); } };\n",
    );
    const digest = digestOf(code);
    await a.node.client.raw('POST', '/kylix/v1/bundles', {
      body: code,
      headers: { 'content-type': 'application/javascript', 'kylix-digest': digest },
    });
    await a.node.client.raw('POST', a.node.client.path('functions'), {
      body: JSON.stringify({
        apiVersion: 'kylix.dev/v1',
        kind: 'Function',
        metadata: { name: 'static-import' },
        spec: { source: 'x.js', bundle: digest, routes: [{ path: '/static-import' }] },
      }),
      headers: { 'content-type': 'application/json' },
    });
    let message = '';
    for (let i = 0; i < 100 && !message; i++) {
      const fn = await a.node.client.get('functions', 'static-import');
      const ready = fn.status?.conditions?.find((c) => c.type === 'Ready');
      if (ready?.status === 'False' && ready.reason === 'RevisionFailed') message = ready.message ?? '';
      else await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(message, /cannot import "node:fs"/);
    assert.notEqual((await a.get('/static-import')).status, 200);
    await a.neighbourOk();
  });

  it('still offers the Web-standard globals', async () => {
    const r = await a.json<{ missing: string[]; random: number; digest: number }>('/web-globals');
    assert.deepEqual(r.missing, []);
    assert.equal(r.random, 8);
    assert.equal(r.digest, 32);
  });
});
