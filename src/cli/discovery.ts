/**
 * How the CLI finds a running `kylix dev` on whatever ports it took, with no flags (as wrangler
 * does): dev writes where it listens into `dev.json` in its data folder and into the user's runtime
 * folder ($XDG_RUNTIME_DIR/kylix, else <tmp>/kylix-<uid>), and removes both when it stops. The CLI
 * looks for `.kylix/dev.json` from the current folder upwards first (the project's own dev), then
 * for the newest dev of this user. A file whose process is gone is ignored.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** What a running `kylix dev` tells the CLI. */
export interface DevDiscovery {
  pid: number;
  apiUrl: string;
  gatewayUrl: string;
  dataDir: string;
}

const FILE = 'dev.json';

/** The user's folder of running devs. */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'kylix') : join(tmpdir(), `kylix-${uid}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function read(file: string): DevDiscovery | undefined {
  try {
    const d = JSON.parse(readFileSync(file, 'utf8')) as DevDiscovery;
    return typeof d.apiUrl === 'string' && Number.isInteger(d.pid) && alive(d.pid) ? d : undefined;
  } catch {
    return undefined;
  }
}

/** Records a running dev (see the file comment); returns what removes the records again. */
export function announceDev(d: DevDiscovery): () => void {
  const text = `${JSON.stringify(d, null, 2)}\n`;
  const own = join(d.dataDir, FILE);
  const shared = join(runtimeDir(), `dev-${d.pid}.json`);
  writeFileSync(own, text, { mode: 0o600 });
  try {
    mkdirSync(dirname(shared), { recursive: true, mode: 0o700 });
    writeFileSync(shared, text, { mode: 0o600 });
  } catch {
    // the project's own record is enough for the CLI in that project
  }
  return () => {
    for (const f of [own, shared]) rmSync(f, { force: true });
  };
}

/** The dev of the project around `cwd` (its `.kylix/dev.json`, or KYLIX_DATA_DIR's), if running. */
export function findProjectDev(
  cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): DevDiscovery | undefined {
  if (env.KYLIX_DATA_DIR) return read(join(resolve(env.KYLIX_DATA_DIR), FILE));
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const found = existsSync(join(dir, '.kylix', FILE)) ? read(join(dir, '.kylix', FILE)) : undefined;
    if (found) return found;
    if (dirname(dir) === dir) return undefined;
  }
}

/** The newest running dev of this user, wherever it was started. */
export function findAnyDev(env: NodeJS.ProcessEnv = process.env): DevDiscovery | undefined {
  const dir = runtimeDir(env);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^dev-\d+\.json$/.test(n));
  } catch {
    return undefined;
  }
  const byAge = names
    .map((n) => ({
      file: join(dir, n),
      mtime: statSync(join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0,
    }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const { file } of byAge) {
    const d = read(file);
    if (d) return d;
  }
  return undefined;
}
