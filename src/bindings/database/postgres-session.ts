/**
 * What one tenant connection of the PostgreSQL provider does around a call: a statement's
 * parameters and lastval(), the session's reset after the call, and the hang-up of a connection
 * whose server stopped answering (a frozen or partitioned PostgreSQL keeps the TCP connection open
 * and sends nothing: without it, a call waited for the function's own timeout, which then blamed
 * the function, and its pooled connection stayed taken for good).
 */
import type { PoolClient } from 'pg';
import { KylixError } from '../../errors.js';
import { lastvalOf, toResult } from './common.js';
import type { SqlResult, Statement } from './interface.js';

/**
 * How long past its own limit a statement (or a session reset) may go unanswered before its
 * connection is taken as hung and closed: the server cancels a statement at its statement_timeout,
 * the provider sends a cancel 2 s later, and both need the server to be running.
 */
export const HUNG_AFTER_MS = 5_000;

/**
 * A watch on one connection: closes it if `ms` pass before done(), so what it was running fails
 * (a hung server answers nothing, not even an error).
 */
export class HangUp {
  private fired = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    client: PoolClient,
    private readonly ms: number,
  ) {
    this.timer = setTimeout(() => {
      this.fired = true;
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    }, ms);
  }

  /** `work`'s result; its error is the hang's (hungUp) when the watch closed the connection meanwhile. */
  async watch<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw this.done() ? hungUp(this.ms) : err;
    }
  }

  /** Stops the watch; true if it had closed the connection. */
  done(): boolean {
    clearTimeout(this.timer);
    return this.fired;
  }
}

/** The error of a call whose connection was closed because the server stopped answering. */
function hungUp(ms: number): KylixError {
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `PostgreSQL did not answer for ${Math.round(ms / 1000)} s (not even a cancel), so its connection was closed; check that the server is running and reachable.`,
  );
}

/** node-postgres sends a Buffer as bytea but JSON-encodes any other Uint8Array: pass bytes as Buffers. */
export function params(statement: Statement): unknown[] {
  return (statement.params ?? []).map((p) =>
    p instanceof Uint8Array && !Buffer.isBuffer(p) ? Buffer.from(p.buffer, p.byteOffset, p.byteLength) : p,
  );
}

/** Runs one statement on `client`, with lastval() when the statement asks for it. */
export async function run(client: PoolClient, statement: Statement): Promise<SqlResult> {
  const result = toResult(await client.query(statement.sql, params(statement)));
  if (statement.lastRowId)
    result.lastRowId = await lastvalOf(txStatus(client) === 'T', (sql) => client.query(sql));
  return result;
}

/** The connection's transaction state: I idle, T in a transaction, E in a failed one. */
export function txStatus(client: PoolClient): string | null {
  return (client as unknown as { getTransactionStatus(): string | null }).getTransactionStatus();
}

/**
 * Ends whatever a call left open and resets the session (settings, role, temp tables, prepared
 * statements, cursors, LISTENs, advisory locks), so nothing reaches the next call on this
 * connection. False if the connection could not be reset: the pool then discards it.
 */
export async function resetSession(client: PoolClient): Promise<boolean> {
  const hang = new HangUp(client, HUNG_AFTER_MS);
  try {
    if (txStatus(client) !== 'I') await client.query('ROLLBACK');
    await client.query('DISCARD ALL');
    return !hang.done();
  } catch {
    hang.done();
    return false;
  }
}
