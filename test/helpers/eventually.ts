/**
 * Waiting for a condition that comes true asynchronously (a route removed after a delete, a pool
 * scaled down, a consumer's ack) where no event is exposed to wait on.
 */

/** Polls `check` every `intervalMs` until it is true; fails after `ms`. */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  ms = 8000,
  intervalMs = 15,
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`condition not met within ${ms} ms`);
}
