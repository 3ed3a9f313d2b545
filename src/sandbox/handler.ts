/**
 * The shape of a function module's handler and of the ctx argument it gets, as on Workers (the
 * instance's server and the module-shape adapters share them).
 */

/** The Workers-style handler object a module exports by default. */
export interface Handler {
  fetch?(request: Request, env: Record<string, unknown>, ctx: ExecutionContext): Response | Promise<Response>;
  queue?(batch: unknown, env: Record<string, unknown>, ctx: ExecutionContext): unknown;
  scheduled?(event: unknown, env: Record<string, unknown>, ctx: ExecutionContext): unknown;
}

/** The ctx argument: waitUntil keeps work alive after the response, as on Workers. */
export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
  passThroughOnException(): void;
}
