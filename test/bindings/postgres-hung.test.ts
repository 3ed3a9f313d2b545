/**
 * A PostgreSQL server that stops answering with its connections still open (frozen, or cut off
 * by the network): the provider's calls fail with ERR_BACKEND_UNAVAILABLE once the statement's
 * limit, the cancel and HUNG_AFTER_MS have passed, their connections are closed, and calls work
 * again when the server answers. The server is the real one, behind a TCP proxy this test freezes
 * (it stops passing bytes on, both ways, and keeps every socket open).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { openPostgresDatabase, type PostgresDatabaseProvider } from '../../src/bindings/database/postgres.js';
import { HUNG_AFTER_MS } from '../../src/bindings/database/postgres-session.js';
import type { KylixError } from '../../src/errors.js';
import { reachable } from '../helpers/reachable.js';

const pgUrl = process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the hung PostgreSQL test: ${pgDown}`);

/**
 * A TCP proxy to `target` that freeze() stops, both ways, as a SIGSTOPped server would: what is
 * sent waits in the sockets' buffers, and thaw() lets it through.
 */
function freezableProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      if (frozen) s.pause();
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return {
    server,
    freeze() {
      frozen = true;
      for (const s of sockets) s.pause();
    },
    thaw() {
      frozen = false;
      for (const s of sockets) s.resume();
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('a PostgreSQL server that stops answering', { skip: pgDown }, () => {
  const proxy = freezableProxy(new URL(pgUrl));
  const { server } = proxy;
  let db: PostgresDatabaseProvider;
  const ref = { namespace: 'hung', name: `t${process.pid}` };
  const statementTimeoutMs = 300;
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = new URL(pgUrl);
    url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    db = await openPostgresDatabase({ url: url.toString(), statementTimeoutMs });
    await db.ensure(ref);
  });
  after(async () => {
    proxy.thaw();
    await db.purge(ref).catch(() => {});
    await db.close();
    proxy.close();
  });

  it('fails its calls with the reason once the limit, the cancel and the grace have passed, and recovers', async () => {
    // Two connections in the pool, so both calls below run on open ones (a new connection has
    // its own 5 s connect timeout).
    const one = () => db.query(ref, { sql: 'SELECT 1 AS n' });
    for (const r of await Promise.all([one(), one()])) assert.deepEqual(r.rows, [{ n: 1 }]);
    const tx = await db.begin(ref, 60_000);
    proxy.freeze();
    const limit = statementTimeoutMs + 2000 + HUNG_AFTER_MS;
    const started = Date.now();
    const [plain, inTx] = await Promise.allSettled([
      db.query(ref, { sql: 'SELECT 2 AS n' }),
      db.queryInTransaction(tx, { sql: 'SELECT 3 AS n' }),
    ]);
    const took = Date.now() - started;
    for (const r of [plain, inTx]) {
      assert.equal(r.status, 'rejected');
      const err = (r as PromiseRejectedResult).reason as KylixError;
      assert.equal(err.code, 'ERR_BACKEND_UNAVAILABLE', err.message);
      assert.match(err.message, /PostgreSQL did not answer for \d+ s/);
    }
    assert.ok(took >= limit - 100 && took < limit + 3000, `failed after ${took} ms (limit ${limit})`);
    proxy.thaw();
    // The closed connections left the pool; new ones answer.
    assert.deepEqual((await db.query(ref, { sql: 'SELECT 4 AS n' })).rows, [{ n: 4 }]);
  });
});
