/**
 * The crash harness of the durability tests: a child process writes as fast as it can and prints
 * one line per acknowledged write; once `minAcked` lines have arrived it is killed with SIGKILL.
 * The test then reopens the store and checks that every acknowledged write is there.
 */
import { spawn } from 'node:child_process';

/** Runs `script` (an ES module, run with tsx) and resolves with the acknowledged lines. */
export function ackedBeforeKill(
  script: string,
  minAcked: number,
  env: NodeJS.ProcessEnv = {},
): Promise<string[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const acked: string[] = [];
  let buffer = '';
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      // Only whole lines were acknowledged; a cut-off last line is not.
      buffer = lines.pop() ?? '';
      acked.push(...lines);
      if (acked.length >= minAcked && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve(acked));
  });
}
