/**
 * Parses large request bodies in a worker thread (parse-worker.ts), one at a time, each within
 * MAX_PARSE_MS: the control API shares the event loop with the gateway, and YAML parsing of a
 * 3 MiB body takes seconds even when linear. A body that takes too long is refused and its worker
 * replaced. Small bodies are parsed inline, where a worker round trip would cost more than it saves.
 */
import { Worker } from 'node:worker_threads';
import { KylixError } from '../errors.js';
import { MAX_PARSE_MS } from '../resources/limits.js';
import type { ParseJob, ParseReply } from './parse-worker.js';

/** Bodies up to this size are parsed on the event loop (a few milliseconds at most). */
export const INLINE_PARSE_BYTES = 64 * 1024;

interface Pending {
  job: ParseJob;
  resolve: (r: ParseReply) => void;
  reject: (e: Error) => void;
}

/** The built .js sibling, or from source (tests, tsx) the .ts one behind a bootstrap that registers tsx. */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./parse-worker.js', import.meta.url));
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = new URL('./parse-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(source)}); })`;
  return new Worker(bootstrap, { eval: true });
}

/** One worker, a queue, a time limit per body; see the file comment. */
class ParsePool {
  private worker?: Worker;
  private readonly queue: Pending[] = [];
  private current?: Pending;
  private timer?: NodeJS.Timeout;
  private nextId = 1;

  parse(text: string, format: ParseJob['format']): Promise<ParseReply> {
    return new Promise((resolve, reject) => {
      this.queue.push({ job: { id: this.nextId++, text, format }, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.current) return;
    const pending = this.queue.shift();
    if (!pending) {
      this.worker?.unref();
      return;
    }
    this.current = pending;
    const worker = this.ensureWorker();
    worker.ref();
    worker.postMessage(pending.job);
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.on('message', (m: ParseReply | { started: number } | { ready: true }) => {
      if ('ready' in m) return;
      if ('started' in m) {
        // The limit runs from when the worker takes the body, not while it waits in the queue.
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.timedOut(), MAX_PARSE_MS);
        return;
      }
      const p = this.current;
      if (!p || p.job.id !== m.id) return;
      clearTimeout(this.timer);
      this.current = undefined;
      p.resolve(m);
      this.next();
    });
    const gone = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      clearTimeout(this.timer);
      const p = this.current;
      this.current = undefined;
      p?.reject(err);
      this.next();
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the parse worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private timedOut(): void {
    const worker = this.worker;
    const p = this.current;
    this.worker = undefined;
    this.current = undefined;
    void worker?.terminate();
    p?.reject(
      new KylixError(
        'ERR_BAD_REQUEST',
        `The request body took longer than ${MAX_PARSE_MS / 1000} s to parse, the limit. Send fewer or smaller objects at a time, or send JSON.`,
      ),
    );
    this.next();
  }
}

/** The process's parse pool (one worker, started on first use; it does not keep the process alive). */
export const parsePool = new ParsePool();
