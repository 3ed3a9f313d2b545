/**
 * Keeps a sandbox process's stderr within bounds on its way to the platform's log. The process
 * writes what it likes there: only STDERR_CHARS_PER_MINUTE reach the log, so a flood cannot fill
 * the node's disk; what is dropped is counted and reported in one line.
 */

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
