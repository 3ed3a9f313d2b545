/**
 * Logs as a user meets them: `kylix logs` filtered by time, level and revision, as lines or JSON;
 * and the platform's own log as JSON lines with a level when its output is not a terminal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { logsCommand, sinceTime } from '../../src/cli/commands/logs.js';
import type { KylixError } from '../../src/errors.js';
import { createPlatformLogger, jsonByDefault } from '../../src/observability/logger.js';
import type { LogEntry } from '../../src/resources/api-types.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { tempDir } from '../helpers/temp-dir.js';

const BIN = fileURLToPath(new URL('../../bin/kylix.js', import.meta.url));

describe('kylix logs', () => {
  let node: TestNode;
  let dir: string;
  /** `kylix logs chatty …` as printed lines. */
  const logs = async (flags: Parameters<typeof logsCommand>[2]) => {
    const lines: string[] = [];
    await logsCommand(node.client, 'chatty', flags, (l) => lines.push(l));
    return lines;
  };
  const source = (tag: string) =>
    `export default { fetch() { console.log('${tag} plain'); console.warn('${tag} careful'); console.error('${tag} broken'); return new Response('ok'); } };\n`;

  before(async () => {
    node = await startNode();
    dir = writeProject({
      'kylix.yaml': functionManifest('chatty', './c.ts', ['/chatty']),
      'c.ts': source('one'),
    });
    await apply(node, dir);
    await fetch(node.url('/chatty'));
    writeFileSync(join(dir, 'c.ts'), source('two'));
    await apply(node, dir);
    await fetch(node.url('/chatty'));
    await eventually(async () => (await logs({})).some((l) => l.includes('two broken')));
  });
  after(async () => {
    await node.destroy();
  });

  it('--level shows that level and above', async () => {
    const warn = await logs({ level: 'warn' });
    assert.ok(warn.some((l) => l.includes('one careful')));
    assert.ok(warn.some((l) => l.includes('two broken')));
    assert.ok(!warn.some((l) => l.includes('plain')), warn.join('\n'));
    const error = await logs({ level: 'error' });
    assert.deepEqual(
      error.map((l) => l.replace(/^.*\] /, '')),
      ['one broken', 'two broken'],
    );
  });

  it('--revision shows one revision; --tail counts after the filters', async () => {
    const two = await logs({ revision: '2', level: 'warn' });
    assert.ok(two.length >= 2 && two.every((l) => l.includes('two ')), two.join('\n'));
    const last = await logs({ revision: '1', tail: '1' });
    assert.equal(last.length, 1);
  });

  it('--since keeps the newer lines; -o json prints the entries', async () => {
    assert.deepEqual(await logs({ since: '2099-01-01T00:00:00Z' }), []);
    const json = await logs({ since: '1h', output: 'json', level: 'error' });
    const entries = json.map((l) => JSON.parse(l) as LogEntry);
    assert.deepEqual(
      entries.map((e) => [e.level, e.revision, e.message]),
      [
        ['error', 1, 'one broken'],
        ['error', 2, 'two broken'],
      ],
    );
  });

  it('understands durations and times, and refuses anything else', () => {
    const now = Date.parse('2026-01-02T12:00:00Z');
    assert.equal(sinceTime('90s', now), '2026-01-02T11:58:30.000Z');
    assert.equal(sinceTime('1h30m', now), '2026-01-02T10:30:00.000Z');
    assert.equal(sinceTime('2026-01-01T00:00:00Z', now), '2026-01-01T00:00:00.000Z');
    assert.throws(
      () => sinceTime('yesterday', now),
      (e: KylixError) => e.code === 'ERR_BAD_REQUEST',
    );
  });

  it('the API refuses a level or revision it does not know', async () => {
    for (const query of ['level=loud', 'revision=first', 'sinceTime=soon']) {
      await assert.rejects(
        node.client.raw('GET', `${node.client.path('functions', 'chatty')}/log?${query}`),
        (e: KylixError) => e.code === 'ERR_BAD_REQUEST',
      );
    }
  });
});

describe('platform log', () => {
  it('is JSON lines with a level off a terminal, human lines on one', () => {
    assert.equal(jsonByDefault({}, false), true);
    assert.equal(jsonByDefault({}, true), false);
    assert.equal(jsonByDefault({ KYLIX_LOG_FORMAT: 'text' }, false), false);
    const chunks: string[] = [];
    const logger = createPlatformLogger({
      json: true,
      destination: { write: (c: string) => chunks.push(c) } as unknown as NodeJS.WritableStream,
    });
    logger.log('warn', 'sandbox layers off', { layersOff: ['cgroups'] });
    logger.log('debug', 'not shown at the default level');
    assert.equal(chunks.length, 1);
    const line = JSON.parse(chunks[0] as string) as Record<string, unknown>;
    assert.equal(line.level, 'warn');
    assert.equal(line.message, 'sandbox layers off');
    assert.deepEqual(line.layersOff, ['cgroups']);
    assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T/);
  });

  it('kylix dev writes JSON lines when its output is a pipe', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'dev', '--port', '0', '--api-port', '0', '--data-dir', tempDir('logs-dev')],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KYLIX_LOG_FORMAT: '' } },
    );
    let out = '';
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (/"gatewayUrl"/.test(out)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`kylix dev exited (${code}):\n${out}`)));
      });
    } finally {
      child.kill();
    }
    const records = out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string; message: string; apiUrl?: string });
    assert.ok(records.every((r) => typeof r.level === 'string' && typeof r.message === 'string'));
    assert.match(records.find((r) => r.apiUrl)?.apiUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
