/**
 * The hostile suite's harness: a real node, a neighbour function in another namespace that must keep
 * answering through every attack, and helpers to deploy attack functions through the real API.
 */
import assert from 'node:assert/strict';
import type { KylixError } from '../../src/errors.js';
import type { IsolationOptions } from '../../src/runtime/isolation/isolation.js';
import { apply, startNode, type TestNode, writeProject } from '../helpers/platform.js';

/** One attack function: its code and extra spec lines (limits, egress, env), indented under spec. */
export interface Attack {
  code: string;
  spec?: string;
}

/** A node under attack. */
export interface Arena {
  node: TestNode;
  /** GET (or `init`) a path on the gateway. */
  get(path: string, init?: RequestInit): Promise<Response>;
  /** GET a path and parse its JSON body, asserting 200. */
  json<T = Record<string, unknown>>(path: string): Promise<T>;
  /** Asserts the neighbour (another namespace, another function) still answers promptly and correctly. */
  neighbourOk(): Promise<void>;
  /** Deploys attack functions, each at /<name> and /<name>/*; resolves when they are ready. */
  deploy(attacks: Record<string, Attack>): Promise<void>;
  close(): Promise<void>;
}

/** Code every attack may use: `attempt(fn)` says what an escape attempt got, without throwing. */
export const PRELUDE = `
const describe = (v) => v === undefined ? 'undefined' : v === null ? 'null' : (typeof v === 'object' || typeof v === 'function') ? 'GOT ' + (Object.prototype.toString.call(v)) : 'GOT ' + String(v).slice(0, 200);
const attempt = async (f) => { try { return describe(await f()); } catch (e) { return 'blocked: ' + String(e && e.message).slice(0, 200); } };
`;

/** The neighbour's env var: no attack may find it. */
export const NEIGHBOUR_CANARY = 'neighbour-canary-5d1e9b';

function manifest(name: string, file: string, spec = '', namespace?: string): string {
  return [
    'apiVersion: kylix.dev/v1',
    'kind: Function',
    'metadata:',
    `  name: ${name}`,
    ...(namespace ? [`  namespace: ${namespace}`] : []),
    'spec:',
    `  source: ./${file}`,
    '  routes:',
    `    - path: /${name}`,
    `    - path: /${name}/*`,
    ...spec
      .split('\n')
      .filter(Boolean)
      .map((l) => `  ${l}`),
  ].join('\n');
}

/** Starts a node with a neighbour function deployed. */
export async function arena(options: { isolation?: IsolationOptions } = {}): Promise<Arena> {
  const node = await startNode({ isolation: options.isolation });
  const dir = writeProject({
    'kylix.yaml': manifest(
      'neighbour',
      'n.js',
      `env:\n  NEIGHBOUR_SECRET: ${NEIGHBOUR_CANARY}`,
      'neighbours',
    ),
    'n.js': "export default { fetch() { return new Response('ok'); } };",
  });
  await apply(node, dir);
  const get = (path: string, init?: RequestInit) => fetch(node.url(path), init);
  return {
    node,
    get,
    async json<T>(path: string) {
      const res = await get(path);
      const text = await res.text();
      assert.equal(res.status, 200, `${path} answered ${res.status}: ${text}`);
      return JSON.parse(text) as T;
    },
    async neighbourOk() {
      const res = await get('/neighbour', { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'ok');
    },
    async deploy(attacks) {
      const files: Record<string, string> = {};
      const docs: string[] = [];
      for (const [name, a] of Object.entries(attacks)) {
        files[`${name}.js`] = `${PRELUDE}\n${a.code}`;
        docs.push(manifest(name, `${name}.js`, a.spec));
      }
      files['kylix.yaml'] = docs.join('\n---\n');
      const { ok, applied } = await apply(node, writeProject(files)).catch((err: KylixError) => {
        throw new Error(`${err.message}\n${err.causes?.map((c) => `${c.field}: ${c.message}`).join('\n')}`);
      });
      if (!ok) {
        const failed: string[] = [];
        for (const fn of applied) {
          const obj = await node.client.get('functions', fn.name);
          const ready = obj.status?.conditions?.find((c) => c.type === 'Ready');
          if (ready?.status !== 'True') failed.push(`${fn.name}: ${ready?.message}`);
        }
        assert.fail(`attack functions did not all start:\n${failed.join('\n')}`);
      }
    },
    close: () => node.destroy(),
  };
}

/** Asserts that every attempt in `results` was blocked (threw, or found nothing). */
export function assertAllBlocked(results: Record<string, string>): void {
  if (process.env.KYLIX_HOSTILE_DEBUG) console.log(JSON.stringify(results, null, 1));
  for (const [what, got] of Object.entries(results))
    assert.ok(!got.startsWith('GOT'), `${what} was not blocked: ${got}`);
}
