/**
 * The three ways a Function gives its code (source bundled by kylix apply, code inline, bundle by
 * reference) and how a node gets hold of each: the schema's one-way-only rule and limits, and
 * BundleStore.ensure fetching by URL and refusing bytes whose digest differs.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../src/build/digest.js';
import { BundleStore, codeDigestOf } from '../src/control-plane/bundles.js';
import type { KylixError } from '../src/errors.js';
import { MAX_INLINE_CODE_BYTES } from '../src/resources/limits.js';
import { validateObject } from '../src/resources/validate.js';
import { tempDir } from './helpers/temp-dir.js';

const fn = (spec: Record<string, unknown>) => ({
  apiVersion: 'kylix.dev/v1',
  kind: 'Function',
  metadata: { name: 'f' },
  spec: { routes: [{ path: '/f' }], ...spec },
});

function causes(spec: Record<string, unknown>): Record<string, string> {
  try {
    validateObject(fn(spec));
  } catch (err) {
    return Object.fromEntries((err as KylixError).causes.map((c) => [c.field, c.message]));
  }
  return {};
}

const CODE = 'export default { fetch: () => new Response("inline") };';
const HEX = 'a'.repeat(64);

describe('a Function’s code', () => {
  it('is given exactly one way: source, code, or bundle', () => {
    assert.deepEqual(causes({ source: './a.ts' }), {});
    assert.deepEqual(
      causes({ source: './a.ts', bundle: `sha256:${HEX}` }),
      {},
      'kylix apply records the digest',
    );
    assert.deepEqual(causes({ code: CODE }), {});
    assert.deepEqual(causes({ bundle: { url: 'https://cdn.example/f.mjs', sha256: HEX } }), {});
    assert.deepEqual(causes({ bundle: { sha256: `sha256:${HEX}` } }), {});
    assert.match(causes({ code: CODE, source: './a.ts' })['spec.code'] ?? '', /one way only/);
    assert.match(causes({ code: CODE, bundle: { sha256: HEX } })['spec.code'] ?? '', /one way only/);
    assert.match(
      causes({ source: './a.ts', bundle: { url: 'https://x.example/a.mjs', sha256: HEX } })[
        'spec.bundle.url'
      ] ?? '',
      /one way only/,
    );
    assert.match(causes({})['spec.source'] ?? '', /^is required/);
  });

  it('has limits: inline code at most 128 KiB, a digest of 64 hex digits, an http(s) URL', () => {
    assert.match(
      causes({ code: 'x'.repeat(MAX_INLINE_CODE_BYTES + 1) })['spec.code'] ?? '',
      /at most 128 KiB/,
    );
    assert.match(
      causes({ bundle: { sha256: 'abc' } })['spec.bundle.sha256'] ?? '',
      /64 lowercase hex digits/,
    );
    assert.match(
      causes({ bundle: { url: 'file:///etc/passwd', sha256: HEX } })['spec.bundle.url'] ?? '',
      /http:\/\/ or https:\/\//,
    );
  });

  describe('on a node', () => {
    let server: ReturnType<typeof createServer>;
    let base = '';
    const served = Buffer.from('export default { fetch: () => new Response("by url") };');
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/f.mjs') res.end(served);
        else res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => server.close());

    it('writes inline code as its own bundle', async () => {
      const store = new BundleStore(tempDir('bundles'));
      const digest = await store.ensure({ code: CODE });
      assert.equal(digest, digestOf(CODE));
      assert.equal(codeDigestOf({ code: CODE }), digest);
      assert.equal(readFileSync(store.path(digest!), 'utf8'), CODE);
    });

    it('fetches a bundle by URL once and keeps it only when its digest matches', async () => {
      const store = new BundleStore(tempDir('bundles'));
      const good = digestOf(served);
      assert.equal(await store.ensure({ bundle: { url: `${base}/f.mjs`, sha256: good.slice(7) } }), good);
      assert.ok(existsSync(store.path(good)));
      await assert.rejects(
        store.ensure({ bundle: { url: `${base}/f.mjs`, sha256: HEX } }),
        (e: KylixError) =>
          e.code === 'ERR_NOT_READY' && /has digest sha256:[0-9a-f]{64}, not sha256:a{64}/.test(e.message),
      );
      assert.equal(existsSync(store.path(`sha256:${HEX}`)), false);
      await assert.rejects(
        store.ensure({ bundle: { url: `${base}/missing.mjs`, sha256: HEX } }),
        (e: KylixError) => e.code === 'ERR_NOT_READY' && /HTTP 404/.test(e.message),
      );
      await assert.rejects(
        store.ensure({ bundle: { sha256: HEX } }),
        (e: KylixError) => e.code === 'ERR_NOT_READY' && /kylix apply/.test(e.message),
      );
    });
  });
});
