/**
 * The dashboard's last hour (observability/history.ts) fed by real PlatformMetrics, on a clock the
 * test moves; and the SQL console's statement checks (the READ ONLY transaction behind them is
 * tested against PGlite in test/integration/dashboard.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkReadOnlyStatement } from '../src/dashboard/read-only-sql.js';
import { MetricsHistory } from '../src/observability/history.js';
import { PlatformMetrics, type RequestRecord } from '../src/observability/metrics.js';

function setup(instances = 0) {
  let now = 1_000_000;
  const metrics = new PlatformMetrics({
    *revisions() {
      yield { key: 'shop/api/1', instances, starting: 0, inFlight: 0 };
    },
  });
  const history = new MetricsHistory(metrics.registry, {
    intervalMs: 10_000,
    windowMs: 60_000,
    now: () => now,
  });
  const request = (r: Partial<RequestRecord> = {}) =>
    metrics.request({
      functionKey: 'shop/api',
      revision: 1,
      status: 200,
      durationMs: 5,
      cold: false,
      startupMs: 0,
      ...r,
    });
  return { history, request, tick: (ms = 10_000) => (now += ms) };
}

describe('metrics history', () => {
  it('turns counters into one point per interval: rates, errors, cold starts, percentiles, instances', async () => {
    const { history, request, tick } = setup(2);
    await history.sample();
    for (let i = 0; i < 18; i++) request({ durationMs: 4 });
    request({ durationMs: 800, status: 504, errorCode: 'ERR_TIMEOUT' });
    request({ durationMs: 300, cold: true, startupMs: 250 });
    tick();
    await history.sample();
    tick();
    await history.sample();
    const s = await history.series('shop', 'api');
    assert.deepEqual(s.requestsPerSecond, [0, 2, 0]);
    assert.deepEqual(s.errors, [0, 1, 0]);
    assert.deepEqual(s.coldStarts, [0, 1, 0]);
    assert.deepEqual(s.instances, [2, 2, 2]);
    assert.equal(s.p50Ms[0], null, 'no request, no percentile');
    const p50 = s.p50Ms[1] ?? 0;
    const p99 = s.p99Ms[1] ?? 0;
    assert.ok(p50 > 2.5 && p50 <= 5, `p50 ${p50} is in the 2.5–5 ms bucket`);
    assert.ok(p99 > 500 && p99 <= 1000, `p99 ${p99} is in the 0.5–1 s bucket`);
    assert.equal(s.p50Ms[2], null);
    assert.equal(s.time[1], (1_000_000 + 10_000) / 1000);
    assert.deepEqual(await history.series('shop', 'other'), { ...emptySeries(), intervalSeconds: 10 });
  });

  it('adds the partial interval since the last sample, so new traffic shows at once', async () => {
    const { history, request, tick } = setup();
    await history.sample();
    for (let i = 0; i < 5; i++) request();
    tick(5000);
    const s = await history.series('shop', 'api');
    assert.deepEqual(s.requestsPerSecond, [0, 1]);
    // Not kept: the next sample covers the whole interval.
    tick(5000);
    await history.sample();
    assert.deepEqual((await history.series('shop', 'api')).requestsPerSecond, [0, 0.5]);
  });

  it('keeps one window per function and drops the oldest points', async () => {
    const { history, request, tick } = setup();
    for (let i = 0; i < 10; i++) {
      request();
      tick();
      await history.sample();
    }
    const s = await history.series('shop', 'api');
    assert.equal(s.time.length, 6, 'a 60 s window of 10 s samples');
    assert.equal(s.time.at(-1), (1_000_000 + 100_000) / 1000);
  });
});

function emptySeries() {
  return {
    time: [],
    requestsPerSecond: [],
    errors: [],
    coldStarts: [],
    p50Ms: [],
    p95Ms: [],
    p99Ms: [],
    instances: [],
    inFlight: [],
  };
}

describe('SQL console statement checks', () => {
  it('lets one reading statement through', () => {
    for (const sql of [
      'SELECT 1',
      'select * from t;',
      "SELECT ';' AS semi, $$ ; $$ AS body -- ; comment\n",
      'WITH x AS (SELECT 1) SELECT * FROM x',
      'EXPLAIN SELECT 1',
      '(SELECT 1) UNION (SELECT 2)',
      '/* leading ; comment */ SHOW search_path',
    ])
      assert.doesNotThrow(() => checkReadOnlyStatement(sql), sql);
  });

  it('refuses a second statement and statements that are not reads', () => {
    for (const sql of [
      'SELECT 1; DELETE FROM t',
      "SELECT 'a'; COMMIT; INSERT INTO t VALUES (1)",
      'COMMIT',
      'SET TRANSACTION READ WRITE',
      'SET transaction_read_only = off',
      'INSERT INTO t VALUES (1)',
      'DROP TABLE t',
      '',
    ])
      assert.throws(() => checkReadOnlyStatement(sql), { code: 'ERR_BAD_REQUEST' }, sql);
  });
});
