/**
 * How many sandbox processes may boot at once: a thousand functions applied together would
 * otherwise start a thousand processes at once, and on a small machine none of them would get far.
 */
import { availableParallelism } from 'node:os';

/** Sandbox processes booting at once, at most. */
const MAX_BOOTING = Math.max(2, availableParallelism());
let booting = 0;
const waitingToBoot: (() => void)[] = [];

/** Waits for a boot slot; the returned function gives it back (to the next waiter, if any). */
export async function bootSlot(): Promise<() => void> {
  if (booting < MAX_BOOTING) booting++;
  else await new Promise<void>((resolve) => waitingToBoot.push(resolve));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const next = waitingToBoot.shift();
    if (next) next();
    else booting--;
  };
}
