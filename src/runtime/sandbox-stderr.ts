/**
 * A sandbox process's stderr: kept within bounds on its way to the platform's log, and its tail kept
 * for the exit reason. The process writes what it likes there: only STDERR_CHARS_PER_MINUTE reach
 * the log, so a flood cannot fill the node's disk; what is dropped is counted and reported in one
 * line.
 */
import type { ChildProcess } from 'node:child_process';

/** Characters of a sandbox process's stderr passed to the platform log per minute; the rest is counted. */
const STDERR_CHARS_PER_MINUTE = 64 * 1024;

/** A function that passes stderr text on to `emit` while this minute's allowance lasts (one per process). */
export function stderrLimiter(emit: (text: string) => void): (text: string) => void {
  let window = 0;
  let passed = 0;
  let dropped = 0;
  return (text) => {
    const now = Date.now();
    if (now - window >= 60_000) {
      if (dropped > 0) emit(`kylix: ${dropped} characters of sandbox stderr dropped\n`);
      window = now;
      passed = 0;
      dropped = 0;
    }
    const room = Math.max(0, STDERR_CHARS_PER_MINUTE - passed);
    if (room > 0) emit(text.length > room ? text.slice(0, room) : text);
    passed += Math.min(room, text.length);
    dropped += Math.max(0, text.length - room);
  };
}

/** Characters of a process's stderr kept for its exit reason. */
const TAIL_CHARS = 2000;

/**
 * Sends a process's stderr to `emit` through a stderrLimiter and keeps its last characters: returns
 * what reads them. Each process has its own tail, so what an earlier process wrote after its exit
 * never becomes this one's exit reason.
 */
export function followStderr(child: ChildProcess, emit: (text: string) => void): () => string {
  const toLog = stderrLimiter(emit);
  let tail = '';
  child.stderr?.on('data', (text: string) => {
    tail = (tail + text).slice(-TAIL_CHARS);
    toLog(text);
  });
  return () => tail;
}

/** Why a sandbox process exited, for the instances it ends: its signal or code and its last lines. */
export function exitReason(code: number | null, signal: string | null, stderrTail: string): string {
  const last = stderrTail.trim().split('\n').slice(-3).join(' | ');
  return `sandbox process exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ''}`;
}

/** Why a sandbox process the kernel killed for its memory limit exited. */
export function oomReason(limitMiB: number, peakBytes: number | undefined): string {
  const peak = peakBytes ? ` (peak ${Math.round(peakBytes / 2 ** 20)} MiB)` : '';
  return `the sandbox process used more than its memory limit (${limitMiB} MiB) and was killed${peak}`;
}
