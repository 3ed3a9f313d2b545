/**
 * The log line each request gets (method, path, status, duration, cold or warm), made once per
 * request on the gateway's hot path: so it is built by a template, not by JSON.stringify of a
 * nested object, and the time string is made at most once per millisecond.
 */
import type { Invocation } from '../gateway/gateway.js';
import type { LogEntry } from '../resources/api-types.js';

/** What the gateway reports of one finished request. */
export type InvocationFacts = Omit<Invocation, 'errorCode'>;

let lastMs = -1;
let lastIso = '';

/** new Date().toISOString(), reused within the same millisecond (requests finish many per ms). */
export function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** The invocation's log entry, its function, and the entry as one JSON line (no newline). */
export function invocationEntry(i: InvocationFacts): {
  namespace: string;
  name: string;
  entry: LogEntry;
  json: string;
} {
  const slash = i.functionKey.indexOf('/');
  const namespace = slash === -1 ? i.functionKey : i.functionKey.slice(0, slash);
  const name = slash === -1 ? '' : i.functionKey.slice(slash + 1);
  const ms = Math.round(i.durationMs);
  const time = isoNow();
  const message = `${i.method} ${i.path} ${i.status} ${ms}ms ${i.cold ? `cold (waited ${i.startupMs}ms for an instance)` : 'warm'}`;
  const invocation = { status: i.status, durationMs: ms, cold: i.cold, startupMs: i.startupMs };
  const entry: LogEntry = {
    time,
    level: 'info',
    message,
    revision: i.revision,
    requestId: i.requestId,
    source: 'platform',
    invocation,
  };
  // Field for field what JSON.stringify(entry) gives; only the message (it holds the client's
  // path) and the request id need escaping.
  const json = `{"time":"${time}","level":"info","message":${JSON.stringify(message)},"revision":${i.revision},"requestId":${JSON.stringify(i.requestId)},"source":"platform","invocation":{"status":${i.status},"durationMs":${ms},"cold":${i.cold},"startupMs":${i.startupMs}}}`;
  return { namespace, name, entry, json };
}
