/**
 * What the binding-call red-team suites (hostile/rpc-codec-attack*.test.ts) drive: a supervisor's
 * channel end in this process whose binding calls are recorded, and a child process that holds a
 * supervisor's channel under a small heap while binding calls pile up on it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { InstanceChannel } from '../../src/runtime/instance-channel.js';
import type { BindingCall } from '../../src/sandbox/protocol.js';
import { socketPair } from './socket-pair.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** A supervisor's channel end whose binding calls are recorded and answered by `answer`. */
export async function recordingChannel(
  answer: (call: BindingCall) => Promise<unknown> | unknown = async () => 'ok',
  namespace = 'default',
) {
  const pair = await socketPair();
  const calls: BindingCall[] = [];
  const broken: string[] = [];
  const ch = new InstanceChannel(
    pair.ours,
    {
      rpc: (call) => {
        calls.push(call);
        return answer(call) as Promise<unknown>;
      },
      log: () => undefined,
    },
    (why) => broken.push(why),
    namespace,
  );
  const closed = new Promise<void>((r) => pair.theirs.once('close', () => r()));
  return { ...pair, ch, calls, broken, closed };
}

/** What a child process printed, and how it ended. */
export interface ChildResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a TypeScript snippet in a child node with `flags`; `SRC` in it is the repo's src/ URL. */
export function runChild(code: string, flags: string[], timeoutMs: number): ChildResult {
  const dir = mkdtempSync(join(tmpdir(), 'kylix-rpcatk-child-'));
  const file = join(dir, 'child.mts');
  writeFileSync(file, code.replaceAll('SRC/', `${pathToFileURL(join(ROOT, 'src')).href}/`));
  try {
    const r = spawnSync(process.execPath, ['--import', 'tsx', ...flags, file], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: timeoutMs,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A child with a 512 MiB heap (4 GiB in production, scaled down with the frames) holding a
 * supervisor's channel: every binding call passes the broker's size check and is then held
 * `holdMs`, as by a query behind pg_sleep or a Redis/S3 round trip, so what it decoded stays
 * reachable. `sendJs` writes the calls as the sandbox (`theirs`, with `F` and `frameHeader` in
 * scope). The child prints SURVIVED once `calls` answers came back, or BROKEN if the channel was
 * ended within `timeoutMs`; anything else means the supervisor died.
 */
export function heldCallsChild(
  calls: number,
  holdMs: number,
  sendJs: string,
  timeoutMs: number,
): ChildResult {
  return runChild(
    `
    import { createConnection, createServer } from 'node:net';
    import { checkArgumentSize } from 'SRC/bindings/call-budget.ts';
    import { InstanceChannel } from 'SRC/runtime/instance-channel.ts';
    import { F, frameHeader } from 'SRC/sandbox/channel.ts';
    const server = createServer();
    const path = '/tmp/kylix-held-' + process.pid + '.s';
    await new Promise((r) => server.listen(path, r));
    const accepted = new Promise((r) => server.once('connection', r));
    const theirs = createConnection(path);
    const ours = await accepted;
    server.close();
    let answered = 0;
    new InstanceChannel(ours, {
      rpc: async (call) => {
        checkArgumentSize(call.args, 'db', 'query');
        await new Promise((r) => setTimeout(r, ${holdMs}));
        return 'ok';
      },
      log() {},
    }, (why) => { console.log('BROKEN', why); process.exit(0); });
    theirs.on('data', () => { if (++answered === ${calls}) { console.log('SURVIVED'); process.exit(0); } });
    ${sendJs}
    `,
    ['--max-old-space-size=512'],
    timeoutMs,
  );
}
