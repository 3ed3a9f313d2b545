/**
 * Waiting on one object through the API's watch (`?watch=true&resourceVersion=…`, one JSON event
 * per line) instead of polling: 1. GET the object, and stop if it is already decided; 2. watch its
 * collection from the object's resourceVersion and decide on each of its events; 3. a stream that
 * ends is watched again from the last version seen, and a version the server no longer remembers
 * (410, ERR_GONE) is watched again without one (the server then lists first); 4. past the deadline
 * it gives up with ERR_TIMEOUT, naming what it waited for.
 */
import { KylixError } from '../errors.js';
import type { KObject } from '../resources/meta.js';
import type { ApiClient } from './client.js';

/** How long to wait before watching again after the server ended a stream. */
const RESUME_PAUSE_MS = 250;

/** The object waited for. */
export interface WatchedObject {
  plural: string;
  namespace: string;
  name: string;
  /** How it is named in messages ("function/hello"). */
  label: string;
}

/** Options of watchUntil. */
export interface WatchUntilOptions {
  timeoutMs: number;
  /** What the object is waited for, for the timeout message ("to become ready"). */
  what: string;
}

/** One line of a watch stream. */
interface WatchLine {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR';
  object: KObject;
}

/**
 * Resolves with `decide`'s first answer other than undefined; `decide` sees the object, or
 * undefined once it is deleted. See the file comment.
 */
export async function watchUntil<T>(
  client: ApiClient,
  target: WatchedObject,
  decide: (object: KObject | undefined) => T | undefined,
  options: WatchUntilOptions,
): Promise<T> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs);
  try {
    // 1. Where it stands now.
    const current = await client
      .json('GET', client.path(target.plural, target.name, target.namespace))
      .then((r) => r.data);
    const now = decide(current);
    if (now !== undefined) return now;
    let version: string | undefined = current.metadata.resourceVersion;
    for (;;) {
      // 2. Its changes from there on.
      const query = `?watch=true${version ? `&resourceVersion=${encodeURIComponent(version)}` : ''}`;
      let res: Response;
      try {
        res = await client.raw('GET', `${client.path(target.plural, undefined, target.namespace)}${query}`, {
          signal: abort.signal,
        });
      } catch (err) {
        // 3. Too old to resume from: the server lists, then watches.
        if (err instanceof KylixError && err.code === 'ERR_GONE' && version !== undefined) {
          version = undefined;
          continue;
        }
        throw err;
      }
      for await (const e of lines(res)) {
        version = e.object.metadata?.resourceVersion ?? version;
        if (e.object.metadata?.name !== target.name) continue;
        const verdict = decide(e.type === 'DELETED' ? undefined : e.object);
        if (verdict !== undefined) return verdict;
      }
      // 3. The stream ended (a restarting server): resume from the last version seen, after a pause.
      await new Promise((r) => setTimeout(r, RESUME_PAUSE_MS));
      if (abort.signal.aborted) throw abort.signal.reason;
    }
  } catch (err) {
    if (abort.signal.aborted)
      throw new KylixError(
        'ERR_TIMEOUT',
        `Gave up waiting for ${target.label} ${options.what} after ${options.timeoutMs / 1000} s; see kylix describe ${target.label.replace('/', ' ')}.`,
      );
    throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** The events of a watch response, one per line. */
async function* lines(res: Response): AsyncGenerator<WatchLine> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line) as WatchLine;
    }
  }
}
