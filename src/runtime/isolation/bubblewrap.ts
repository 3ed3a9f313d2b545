/**
 * The OS-level sandbox: bubblewrap puts each sandbox process in new user, pid, mount, ipc, uts,
 * cgroup and network namespaces, as user nobody, with only the Node runtime, the sandbox code and
 * the process's own folder mounted (read-only except the socket folder), and a size-capped /tmp.
 * No JS-level sandbox is a security boundary; this is.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** The uid and gid tenant code runs as inside the sandbox (nobody). */
export const SANDBOX_UID = 65534;

/** Finds bwrap on PATH (or at KYLIX_BWRAP). */
export function findBubblewrap(): string | undefined {
  const explicit = process.env.KYLIX_BWRAP;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const p = join(dir, 'bwrap');
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** What a sandbox process may see, besides the system libraries. */
export interface BubblewrapMounts {
  /** The Node binary that runs the sandbox (bound read-only at its own path). */
  nodePath: string;
  /** Folders bound read-only at their own paths (the sandbox code, the process's code folder). */
  readOnly: string[];
  /** Folders bound read-write at their own paths (the process's socket folder). */
  readWrite: string[];
  /** Size cap of the private /tmp. */
  tmpBytes: number;
  /** Environment of the sandbox process (everything else is cleared). */
  env: Record<string, string>;
}

/** The system folders Node needs: bound read-only, or re-created as symlinks where they are links. */
function systemMounts(): string[] {
  const args = ['--ro-bind', '/usr', '/usr'];
  for (const p of ['/lib', '/lib64', '/lib32', '/bin', '/sbin']) {
    if (!existsSync(p)) continue;
    const st = lstatSync(p);
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(p), p);
    else args.push('--ro-bind', p, p);
  }
  return args;
}

/** The bwrap arguments that run `command` in a fresh sandbox; see the file comment. */
export function bubblewrapArgs(mounts: BubblewrapMounts, command: string[]): string[] {
  const args = [
    '--unshare-all',
    '--uid',
    String(SANDBOX_UID),
    '--gid',
    String(SANDBOX_UID),
    '--cap-drop',
    'ALL',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'kylix',
    ...systemMounts(),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--size',
    String(mounts.tmpBytes),
    '--tmpfs',
    '/tmp',
  ];
  if (!mounts.nodePath.startsWith('/usr/')) args.push('--ro-bind', mounts.nodePath, mounts.nodePath);
  for (const p of mounts.readOnly) args.push('--ro-bind', p, p);
  for (const p of mounts.readWrite) args.push('--bind', p, p);
  args.push('--chdir', '/', '--clearenv');
  // Without TZ, Node probes for /etc/localtime on first Date use and the first response is slower.
  for (const [k, v] of Object.entries({ TZ: 'UTC', ...mounts.env })) args.push('--setenv', k, v);
  args.push('--', ...command);
  return args;
}

/** Whether bwrap can start a sandbox here; the reason when not. */
export function probeBubblewrap(nodePath: string): {
  ok: boolean;
  path?: string;
  version?: string;
  reason: string;
} {
  const bwrap = findBubblewrap();
  if (!bwrap)
    return { ok: false, reason: 'bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)' };
  let version = '';
  try {
    version = execFileSync(bwrap, ['--version'], { encoding: 'utf8', timeout: 5000 }).trim();
  } catch {}
  try {
    const args = bubblewrapArgs({ nodePath, readOnly: [], readWrite: [], tmpBytes: 1 << 20, env: {} }, [
      nodePath,
      '-e',
      "require('net').connect(1, '1.1.1.1').on('error', (e) => { process.stdout.write(e.code + ' ' + process.getuid()); })",
    ]);
    const out = execFileSync(bwrap, args, {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (!out.startsWith('ENETUNREACH') && !out.startsWith('ENETDOWN'))
      return { ok: false, path: bwrap, version, reason: `the sandbox still had a network (${out.trim()})` };
    return {
      ok: true,
      path: bwrap,
      version,
      reason: `${version || 'bwrap'}: user, pid, mount, ipc, uts and network namespaces`,
    };
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim();
    return {
      ok: false,
      path: bwrap,
      version,
      reason: `bwrap cannot create namespaces here (${stderr.split('\n')[0]}); allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run in a container with them`,
    };
  }
}
