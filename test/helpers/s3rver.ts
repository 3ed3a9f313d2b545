/**
 * A real (if simple) S3-compatible server for tests: s3rver in a child process on port 0, which
 * exits with the test process (its stdin closes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Starts s3rver storing under `dir`; resolves with its endpoint, or a reason it could not start. */
export function startS3rver(
  dir: string,
  children: ChildProcess[],
): Promise<{ endpoint?: string; reason?: string }> {
  // s3rver signs its continuation tokens with DES, which OpenSSL 3 only offers through the legacy provider.
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', new URL('./s3rver-child.mjs', import.meta.url).pathname, dir],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines = createInterface({ input: child.stdout! });
  return new Promise((resolve) => {
    lines.once('line', (line) =>
      resolve({ endpoint: `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}` }),
    );
    child.once('exit', (code) => resolve({ reason: `s3rver exited with code ${code}` }));
    child.once('error', (err) => resolve({ reason: err.message }));
  });
}
