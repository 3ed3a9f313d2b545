/**
 * The binding calls that arrive on one instance's channel (RPC frames; the channel is in
 * instance-channel.ts). Each is decoded within its budget of values and bytes, admitted against
 * what the calls in flight already hold (on this channel, and its namespace's share of the node's),
 * run by the revision's hook, and answered with an RPC_RESULT frame whose stream id is the call's.
 * A call over a budget is answered with an error; only a malformed one throws (the channel then
 * ends the sandbox process).
 */
import { type BudgetShare, NamespaceBudget } from '../bindings/namespace-budget.js';
import { KylixError } from '../errors.js';
import { F, HEADER_BYTES, withHeader } from '../sandbox/channel.js';
import type { BindingCall } from '../sandbox/protocol.js';
import { decodePayload, encodeFrame, PayloadTooLarge } from '../sandbox/rpc-codec.js';

/**
 * Values one binding call may make as it is read (rpc-codec.ts counts them, objects that carry a
 * buffer as four): the broker's budget for its arguments (bindings/call-budget.ts says why) and the
 * call's own few. Past it, the call is refused before its values are made.
 */
const MAX_CALL_VALUES = 1_000_000 + 16;
/**
 * What the calls in flight may hold, on one channel and on the whole node: a call holds its values
 * and its bytes while its provider runs (a slow query, a Redis round trip), so without these a few
 * calls each within MAX_CALL_VALUES, or each a frame of one long string, would fill the supervisor's
 * heap. Values cost tens of bytes each; a payload's bytes count twice (a string of them may be
 * two-byte in memory). About 1.5 GB at most on a node.
 */
const MAX_CHANNEL_HELD: Held = { values: 2 * MAX_CALL_VALUES, bytes: 256 * 2 ** 20 };
/**
 * What the binding calls in flight on this node hold, every channel together: at most 8 M values
 * and 1 GiB, one namespace at most half of each (namespace-budget.ts), so one tenant's calls, over
 * however many functions and instances, leave room for everyone else's.
 */
const nodeValues = new NamespaceBudget(8 * MAX_CALL_VALUES);
const nodeBytes = new NamespaceBudget(2 ** 30);
/**
 * A call this small is never refused for the node's budget (only for its own channel's), so one
 * tenant holding the node's budget with large calls cannot stop every other tenant's binding calls.
 */
const SMALL_CALL: Held = { values: 1024, bytes: 64 * 1024 };
const NOTHING: Held = { values: 0, bytes: 0 };

/** What binding calls in flight hold: values as the reader counts them, and twice their payload bytes. */
interface Held {
  values: number;
  bytes: number;
}

/** Whether `held` plus `call` stays within `max`. */
function fits(held: Held, call: Held, max: Held): boolean {
  return held.values + call.values <= max.values && held.bytes + call.bytes <= max.bytes;
}

/** Adds `call` to `held` (`sign` 1), or takes it back (-1). */
function hold(held: Held, call: Held, sign: 1 | -1): void {
  held.values += sign * call.values;
  held.bytes += sign * call.bytes;
}
/**
 * The largest structured clone a call may be (rpc-codec.ts sends only Maps, Sets, class instances
 * and sparse arrays so): it cannot be counted as it is read, so it is bounded by its bytes.
 */
const MAX_CLONE_BYTES = 2 ** 20;

/** Binding calls one instance may have in flight; past it, calls fail at once. */
const MAX_RPC_IN_FLIGHT = 1024;

/**
 * Queued bytes past which a binding result is not sent but refused (ERR_OVERLOADED): the calls read
 * before reading paused (up to MAX_RPC_IN_FLIGHT) could otherwise each queue a result of up to
 * MAX_FRAME_BYTES for an instance that reads none of them.
 */
const MAX_QUEUED_RESULT_BYTES = 16 * 2 ** 20;

/** See the file comment. */
export class BindingCalls {
  private inFlight = 0;
  /** The calls in flight by id, oldest first: what a request's timeout names (waitingOn). */
  private readonly running = new Map<number, { binding: string; op: string; started: number }>();
  /** What the calls in flight on this channel hold (see MAX_CHANNEL_HELD). */
  private readonly held: Held = { values: 0, bytes: 0 };
  /** Its namespace's parts of the node's budgets. */
  private readonly nodeShare: { values: BudgetShare; bytes: BudgetShare };

  constructor(
    /** The revision's binding hook (InstanceHooks.rpc). */
    private readonly hooks: { rpc(call: BindingCall): Promise<unknown> },
    /** Writes a frame to the instance. */
    private readonly write: (bytes: Uint8Array) => void,
    /** Bytes written to the instance and not yet taken by its socket. */
    private readonly queuedBytes: () => number,
    /** The namespace of the instance's revision, whose share of the node's budget its calls take. */
    namespace: string,
  ) {
    this.nodeShare = { values: nodeValues.of(namespace), bytes: nodeBytes.of(namespace) };
  }

  /** One call (an RPC frame's payload); throws if it is malformed. */
  onCall(id: number, payload: Uint8Array): void {
    let decoded: { value: unknown; values: number };
    try {
      decoded = decodePayload(payload, { maxValues: MAX_CALL_VALUES, maxCloneBytes: MAX_CLONE_BYTES });
    } catch (err) {
      if (!(err instanceof PayloadTooLarge)) throw err;
      this.reply(id, {
        ok: false,
        error: { code: 'ERR_BINDING_TOO_LARGE', message: `A binding call ${err.message}.` },
      });
      return;
    }
    const raw = decoded.value as BindingCall;
    if (
      typeof raw !== 'object' ||
      raw === null ||
      typeof raw.binding !== 'string' ||
      typeof raw.op !== 'string' ||
      !Array.isArray(raw.args)
    )
      throw new Error('a malformed binding call');
    // Only what a call is: anything else it carried is not held while it runs.
    const call: BindingCall = { binding: raw.binding, op: raw.op, args: raw.args };
    const size: Held = { values: decoded.values, bytes: 2 * payload.byteLength };
    if (this.inFlight >= MAX_RPC_IN_FLIGHT) {
      this.reply(id, {
        ok: false,
        error: {
          code: 'ERR_BINDING_BAD_ARGUMENTS',
          message: `more than ${MAX_RPC_IN_FLIGHT} binding calls in flight at once; await some before making more`,
        },
      });
      return;
    }
    const small = fits(NOTHING, size, SMALL_CALL);
    const { values, bytes } = this.nodeShare;
    if (
      !fits(this.held, size, MAX_CHANNEL_HELD) ||
      (!small && !(values.fits(size.values) && bytes.fits(size.bytes)))
    ) {
      this.reply(id, {
        ok: false,
        error: {
          code: 'ERR_OVERLOADED',
          message:
            'The binding calls in flight hold too much already (values or bytes); await some before making more.',
        },
      });
      return;
    }
    this.inFlight++;
    this.running.set(id, { binding: call.binding, op: call.op, started: performance.now() });
    hold(this.held, size, 1);
    values.take(size.values);
    bytes.take(size.bytes);
    const settled = () => {
      this.inFlight--;
      this.running.delete(id);
      hold(this.held, size, -1);
      values.give(size.values);
      bytes.give(size.bytes);
    };
    // A hook that throws at once settles like one that rejects (and one that answers at once, like
    // one that resolves): what the call held is given back either way.
    let running: Promise<unknown>;
    try {
      running = Promise.resolve(this.hooks.rpc(call));
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (value) => {
        settled();
        this.reply(id, { ok: true, value });
      },
      (err: unknown) => {
        settled();
        this.reply(id, { ok: false, error: wireError(err) });
      },
    );
  }

  /**
   * The oldest binding call still running, as `env.DB.query() (29.9 s)`, or undefined: a request
   * that ran out of time while its instance waited on a backend is told so, not only blamed.
   */
  waitingOn(): string | undefined {
    for (const c of this.running.values()) {
      const name = c.binding === '#caches' ? 'caches' : `env.${c.binding}`;
      return `${name}.${c.op}() (running for ${((performance.now() - c.started) / 1000).toFixed(1)} s)`;
    }
    return undefined;
  }

  /** Sends a binding call's result (RPC_RESULT). */
  private reply(id: number, result: { ok: boolean; value?: unknown; error?: unknown }): void {
    if (result.ok && this.queuedBytes() > MAX_QUEUED_RESULT_BYTES)
      result = {
        ok: false,
        error: {
          code: 'ERR_OVERLOADED',
          message: `The instance has not read binding results of more than ${MAX_QUEUED_RESULT_BYTES / 2 ** 20} MiB yet; await the calls in flight before making more.`,
        },
      };
    let out: Uint8Array;
    try {
      out = encodeFrame(HEADER_BYTES, result);
    } catch (err) {
      out = encodeFrame(HEADER_BYTES, {
        ok: false,
        error:
          err instanceof PayloadTooLarge
            ? { code: 'ERR_BINDING_TOO_LARGE', message: `The result ${err.message}.` }
            : { code: 'ERR_INTERNAL', message: 'the result could not be sent' },
      });
    }
    this.write(withHeader(out, F.RPC_RESULT, id));
  }
}

/** A binding call's failure as the function sees it: code, message, and for SQL the SQLSTATE. */
function wireError(err: unknown): { code?: string; message: string; sqlState?: string } {
  if (err instanceof KylixError) {
    const sqlState = (err as { sqlState?: unknown }).sqlState;
    return {
      code: err.code,
      message: err.message,
      sqlState: typeof sqlState === 'string' ? sqlState : undefined,
    };
  }
  return { message: err instanceof Error ? err.message : String(err) };
}
