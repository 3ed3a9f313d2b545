/**
 * The room the embedded stores keep on the node's data disk for the platform. A function's write
 * (a KeyValue put, a queue send, a bucket put or part) is refused while the disk holding it has less
 * free than the reserve, so that a tenant filling the disk leaves room for the platform's own state
 * and for deleting things; the reserve is KYLIX_DISK_RESERVE_MIB, else 5 % of the disk up to 1 GiB.
 */
import { statfsSync } from 'node:fs';
import { KylixError } from '../errors.js';

/** How long one reading of a disk's free space is trusted. */
const FRESH_MS = 1000;
const GIB = 2 ** 30;
const MIB = 2 ** 20;

const readings = new Map<string, { at: number; free: number; total: number }>();

/** The disk's free and total bytes, read at most once a second per folder. */
function room(dir: string): { free: number; total: number } | undefined {
  const now = Date.now();
  let r = readings.get(dir);
  if (!r || now - r.at > FRESH_MS) {
    try {
      const s = statfsSync(dir);
      r = { at: now, free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      return undefined;
    }
    if (readings.size > 1000) readings.clear();
    readings.set(dir, r);
  }
  return r;
}

/** The reserve for a disk of `total` bytes. */
export function reserveFor(total: number): number {
  const configured = Number(process.env.KYLIX_DISK_RESERVE_MIB);
  if (Number.isFinite(configured) && configured >= 0 && process.env.KYLIX_DISK_RESERVE_MIB)
    return configured * MIB;
  return Math.min(GIB, total * 0.05);
}

/** Whether `dir`'s disk has less free than the reserve now (a reading taken for it, not one a second old). */
export function inReserve(dir: string): boolean {
  readings.delete(dir);
  const r = room(dir);
  return r !== undefined && r.free < reserveFor(r.total);
}

/**
 * Throws when a function's write of `bytes` into `dir` would leave less than the reserve free
 * (`what` names the store in the message). A disk that cannot be read is let be: the write itself
 * then says what is wrong.
 */
export function checkDiskRoom(dir: string, bytes: number, what: string): void {
  const r = room(dir);
  if (!r) return;
  const reserve = reserveFor(r.total);
  if (r.free - bytes >= reserve) {
    // Admitted: taken from the reading until the next one, so writes admitted within one reading
    // cannot together go past the reserve.
    r.free -= bytes;
    return;
  }
  throw new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `${what} is refusing writes: the node's data disk has ${Math.round(r.free / MIB)} MiB free, under the ${Math.round(reserve / MIB)} MiB kept for the platform (KYLIX_DISK_RESERVE_MIB). Delete data, or give the node more disk.`,
  );
}
