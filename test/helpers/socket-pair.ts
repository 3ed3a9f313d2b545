/** Two connected sockets (a Unix socket pair through a throwaway server), for driving a channel by hand. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** `ours` is the supervisor's end, `theirs` the sandbox's (its write errors are ignored: a hung-up peer is what the tests expect). */
export async function socketPair(): Promise<{ ours: Socket; theirs: Socket; done(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'kylix-pair-'));
  const path = join(dir, 's');
  const server = createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const theirs = createConnection(path);
  const ours = await accepted;
  server.close();
  theirs.on('error', () => undefined);
  return {
    ours,
    theirs,
    done() {
      ours.destroy();
      theirs.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
