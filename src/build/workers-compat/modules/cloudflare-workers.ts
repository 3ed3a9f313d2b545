/**
 * `cloudflare:workers` for functions: the env, module-level waitUntil, and the base classes a
 * module's default export may extend. Durable Objects and Workflows are not offered by Kylix: their
 * classes exist so that a module importing them bundles, and constructing one says so.
 */
import { state } from './state.js';

/** The function's env (vars and bindings), the same object fetch() receives. */
export const env = state.env;

/** Keeps `promise` alive after the response; its failure is logged. */
export function waitUntil(promise: unknown): void {
  state.waitUntil(promise);
}

/** A default export `class extends WorkerEntrypoint { fetch(request) … }` gets ctx and env here. */
export class WorkerEntrypoint<E = Record<string, unknown>> {
  constructor(
    readonly ctx: unknown,
    readonly env: E,
  ) {}
}

/** Base class of RPC targets: plain here, since Kylix has no service bindings. */
export class RpcTarget {}

function unsupported(what: string): never {
  throw new Error(`${what} are not available on Kylix: use a Database or KeyValue binding for state.`);
}

/** Not offered (see the file comment). */
export class DurableObject {
  constructor() {
    unsupported('Durable Objects');
  }
}

/** Not offered (see the file comment). */
export class WorkflowEntrypoint {
  constructor() {
    unsupported('Workflows');
  }
}
