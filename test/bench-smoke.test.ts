/**
 * A smoke test of the benchmark harness itself (not a benchmark): one short hello-world round
 * against Kylix and the raw baseline must run end to end, print the table and write its JSON file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('npm run bench -- hello runs one short round and writes its result file', async () => {
  const out = mkdtempSync(join(tmpdir(), 'kylix-bench-smoke-'));
  try {
    const args = [
      '--import',
      'tsx',
      'bench/run.ts',
      'hello',
      '--targets',
      'kylix,raw',
      '--duration',
      '1',
      '--warmup',
      '0',
      '--rounds',
      '1',
      '--connections',
      '8',
      '--no-pin',
      '--out',
      out,
    ];
    const { stdout } = await run(process.execPath, args, { timeout: 60_000 });
    assert.match(stdout, /kylix req\/s/);
    assert.match(stdout, /ratio Kylix\/raw node:http req\/s/);

    const files = readdirSync(out).filter((f) => f.endsWith('.json'));
    assert.equal(files.length, 1);
    const report = JSON.parse(readFileSync(join(out, files[0]!), 'utf8'));
    assert.equal(report.machine.node, process.version);
    const hello = report.scenarios.find((s: { name: string }) => s.name === 'hello');
    assert.equal(hello.status, 'ok');
    const metric = (name: string) =>
      hello.result.metrics.find((m: { name: string }) => m.name === name)?.value;
    assert.ok(metric('kylix req/s') > 0, 'Kylix answered requests');
    assert.ok(metric('raw node:http req/s') > 0, 'the raw baseline answered requests');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
