/**
 * Refusing a request cheaply, and keeping refusals from eating the node. A refusal is the error
 * JSON every platform error has, written from precomputed parts (no error object, no
 * JSON.stringify), with Retry-After. Under a flood, clients that ignore Retry-After ask again at
 * once, and refusing them could take all the CPU the admitted requests need; so past a budget of
 * refusals per second, a refused keep-alive connection is not read again for a while: its sockets
 * wait in a shared wheel of slots (one timer for all), each slot resuming at most the budget's
 * share, and never later than the Retry-After delay.
 */

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import { ERROR_CODES } from '../errors.js';
import type { Refusal } from './concurrency.js';
import { markPlatformError, REQUEST_ID } from './errors.js';

/** Seconds a refused client is told to wait. */
export const RETRY_AFTER_S = 1;
/** Refusals per second per core answered without slowing their connection (env KYLIX_REFUSALS_PER_S). */
const REFUSALS_PER_S = (Number(process.env.KYLIX_REFUSALS_PER_S) || 1000) * availableParallelism();
/** The wheel's tick. */
const TICK_MS = 50;
/** Slots of the wheel: a paused connection is read again within Retry-After. */
const SLOTS = (RETRY_AFTER_S * 1000) / TICK_MS;

/** What a refusal says, per code; the function's name is added to the 429 message. */
function messageOf(code: Refusal, name: string): string {
  if (code === 'ERR_OVERLOADED')
    return 'This node is serving all the requests it can. Retry after the Retry-After delay.';
  if (code === 'ERR_NAMESPACE_LIMIT')
    return `The functions of ${name}'s namespace are serving all the requests one namespace may at once on this node (its share, KYLIX_NAMESPACE_SHARE of the node's limit). Retry after the Retry-After delay.`;
  return `${name} is serving all the requests it can (its adaptive limit, at most spec.limits.maxConcurrency). Retry after the Retry-After delay, or raise the limit.`;
}

/** The JSON body before the request id, per code and function: made once. */
const prefixes = new Map<string, string>();
function bodyPrefix(code: Refusal, name: string): string {
  const key = `${code}\u0000${name}`;
  let p = prefixes.get(key);
  if (p === undefined) {
    p = `{"error":{"code":"${code}","message":${JSON.stringify(messageOf(code, name))},"requestId":"`;
    if (prefixes.size > 10_000) prefixes.clear();
    prefixes.set(key, p);
  }
  return p;
}

/** See the file comment. */
export class RefusalPacer {
  private readonly wheel: Socket[][] = Array.from({ length: SLOTS }, () => []);
  private cursor = 0;
  private paused = 0;
  private timer?: NodeJS.Timeout;
  /** Refusals in the current tick, and the tick they count for. */
  private refusedThisTick = 0;
  private tickStart = 0;
  private readonly perTick: number;

  constructor(
    refusalsPerS = REFUSALS_PER_S,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perTick = Math.max(1, Math.round((refusalsPerS * TICK_MS) / 1000));
  }

  /** Connections waiting to be read again. */
  get pausedConnections(): number {
    return this.paused;
  }

  /** Answers `code` for the function `name`; see the file comment. */
  refuse(res: ServerResponse, code: Refusal, name: string, requestId: string): void {
    const body = `${bodyPrefix(code, name)}${requestId}"}}`;
    markPlatformError(res, code);
    res.writeHead(ERROR_CODES[code].status, [
      'content-type',
      'application/json; charset=utf-8',
      'content-length',
      String(body.length),
      'cache-control',
      'no-store',
      'retry-after',
      String(RETRY_AFTER_S),
      REQUEST_ID,
      requestId,
    ]);
    res.end(body);
    const now = this.now();
    if (now - this.tickStart >= TICK_MS) {
      this.tickStart = now;
      this.refusedThisTick = 0;
    }
    if (++this.refusedThisTick <= this.perTick) return;
    const socket = res.socket;
    // Paused once the response is out (pausing earlier is undone when the response finishes).
    if (socket && res.shouldKeepAlive) res.once('finish', () => this.pause(socket));
  }

  /** Closes the wheel: every paused connection is read again. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const slot of this.wheel) for (const s of slot.splice(0)) s.resume();
    this.paused = 0;
  }

  private pause(socket: Socket): void {
    if (socket.destroyed) return;
    // The first slot with room, counting from the next tick; the last one when all are full.
    let slot = this.wheel[(this.cursor + SLOTS - 1) % SLOTS]!;
    for (let i = 1; i < SLOTS; i++) {
      const s = this.wheel[(this.cursor + i) % SLOTS]!;
      if (s.length < this.perTick) {
        slot = s;
        break;
      }
    }
    socket.pause();
    slot.push(socket);
    this.paused++;
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
  }

  private tick(): void {
    this.cursor = (this.cursor + 1) % SLOTS;
    const due = this.wheel[this.cursor]!;
    if (due.length > 0) {
      this.wheel[this.cursor] = [];
      this.paused -= due.length;
      for (const s of due) if (!s.destroyed) s.resume();
    }
    if (this.paused === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
