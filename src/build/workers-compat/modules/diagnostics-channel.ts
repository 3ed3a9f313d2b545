/**
 * `node:diagnostics_channel`: named channels libraries publish on (undici, fastify, pino and
 * others do, whether anyone listens or not), tracing channels, and stores bound to a channel, as
 * in Node. The channels live in the function's own instance; nothing outside it subscribes. A
 * subscriber that throws does not stop the publisher (as in Node): its error is logged.
 */
type Subscriber = (message: unknown, name: string | symbol) => void;

/** What bindStore() needs of an AsyncLocalStorage. */
interface Store {
  run<R>(store: unknown, fn: () => R): R;
}

/** One named channel. */
export class Channel {
  readonly name: string | symbol;
  private subscribers: Subscriber[] = [];
  private readonly stores = new Map<Store, ((message: unknown) => unknown) | undefined>();

  constructor(name: string | symbol) {
    this.name = name;
  }

  get hasSubscribers(): boolean {
    return this.subscribers.length > 0 || this.stores.size > 0;
  }

  subscribe(fn: Subscriber): void {
    if (typeof fn !== 'function') throw new TypeError('The "subscription" argument must be of type function');
    this.subscribers = [...this.subscribers, fn];
  }

  unsubscribe(fn: Subscriber): boolean {
    const at = this.subscribers.indexOf(fn);
    if (at < 0) return false;
    this.subscribers = this.subscribers.filter((_, i) => i !== at);
    return true;
  }

  publish(message: unknown): void {
    for (const fn of this.subscribers) {
      try {
        fn(message, this.name);
      } catch (err) {
        console.error(`diagnostics_channel subscriber of "${String(this.name)}" threw:`, err);
      }
    }
  }

  bindStore(store: Store, transform?: (message: unknown) => unknown): void {
    this.stores.set(store, transform);
  }

  unbindStore(store: Store): boolean {
    return this.stores.delete(store);
  }

  /** Runs fn with every bound store set to (the transform of) `data`, then publishes `data`. */
  runStores<R>(data: unknown, fn: (...args: unknown[]) => R, thisArg?: unknown, ...args: unknown[]): R {
    let run = () => {
      this.publish(data);
      return fn.apply(thisArg, args);
    };
    for (const [store, transform] of this.stores) {
      const inner = run;
      run = () => store.run(transform ? transform(data) : data, inner);
    }
    return run();
  }
}

const channels = new Map<string | symbol, Channel>();

/** The channel called `name` (the same object for the same name). */
export function channel(name: string | symbol): Channel {
  let c = channels.get(name);
  if (!c) {
    c = new Channel(name);
    channels.set(name, c);
  }
  return c;
}

export function hasSubscribers(name: string | symbol): boolean {
  return channels.get(name)?.hasSubscribers ?? false;
}

export function subscribe(name: string | symbol, fn: Subscriber): void {
  channel(name).subscribe(fn);
}

export function unsubscribe(name: string | symbol, fn: Subscriber): boolean {
  return channels.get(name)?.unsubscribe(fn) ?? false;
}

const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;
type TraceEvent = (typeof EVENTS)[number];
type Handlers = Partial<Record<TraceEvent, Subscriber>>;

/** The five channels of one traced operation: tracing:<name>:start, :end, :asyncStart, :asyncEnd, :error. */
export class TracingChannel {
  readonly start: Channel;
  readonly end: Channel;
  readonly asyncStart: Channel;
  readonly asyncEnd: Channel;
  readonly error: Channel;

  constructor(nameOrChannels: string | Record<TraceEvent, Channel>) {
    const of = (e: TraceEvent) =>
      typeof nameOrChannels === 'string' ? channel(`tracing:${nameOrChannels}:${e}`) : nameOrChannels[e];
    this.start = of('start');
    this.end = of('end');
    this.asyncStart = of('asyncStart');
    this.asyncEnd = of('asyncEnd');
    this.error = of('error');
  }

  get hasSubscribers(): boolean {
    return EVENTS.some((e) => this[e].hasSubscribers);
  }

  subscribe(handlers: Handlers): void {
    for (const e of EVENTS) if (handlers[e]) this[e].subscribe(handlers[e]);
  }

  unsubscribe(handlers: Handlers): boolean {
    let all = true;
    for (const e of EVENTS) if (handlers[e] && !this[e].unsubscribe(handlers[e])) all = false;
    return all;
  }

  traceSync<R>(
    fn: (...args: unknown[]) => R,
    context: Record<string, unknown> = {},
    thisArg?: unknown,
    ...args: unknown[]
  ): R {
    return this.start.runStores(context, () => {
      try {
        const result = fn.apply(thisArg, args);
        context.result = result;
        return result;
      } catch (err) {
        context.error = err;
        this.error.publish(context);
        throw err;
      } finally {
        this.end.publish(context);
      }
    });
  }

  tracePromise<R>(
    fn: (...args: unknown[]) => Promise<R>,
    context: Record<string, unknown> = {},
    thisArg?: unknown,
    ...args: unknown[]
  ): Promise<R> {
    return this.start.runStores(context, () => {
      try {
        return Promise.resolve(fn.apply(thisArg, args)).then(
          (result) => {
            context.result = result;
            this.asyncStart.publish(context);
            this.asyncEnd.publish(context);
            return result;
          },
          (err) => {
            context.error = err;
            this.error.publish(context);
            this.asyncStart.publish(context);
            this.asyncEnd.publish(context);
            throw err;
          },
        );
      } catch (err) {
        context.error = err;
        this.error.publish(context);
        throw err;
      } finally {
        this.end.publish(context);
      }
    });
  }

  traceCallback<R>(
    fn: (...args: unknown[]) => R,
    position = -1,
    context: Record<string, unknown> = {},
    thisArg?: unknown,
    ...args: unknown[]
  ): R {
    const at = position < 0 ? args.length + position : position;
    const callback = args[at] as (err: unknown, result?: unknown) => unknown;
    if (typeof callback !== 'function')
      throw new TypeError('The "callback" argument must be of type function');
    args[at] = (err: unknown, result?: unknown) => {
      if (err) {
        context.error = err;
        this.error.publish(context);
      } else context.result = result;
      this.asyncStart.runStores(context, () => {
        try {
          return callback.call(thisArg, err, result);
        } finally {
          this.asyncEnd.publish(context);
        }
      });
    };
    return this.traceSync(fn, context, thisArg, ...args);
  }
}

/** The tracing channels of `nameOrChannels`. */
export function tracingChannel(nameOrChannels: string | Record<TraceEvent, Channel>): TracingChannel {
  return new TracingChannel(nameOrChannels);
}

export default { channel, hasSubscribers, subscribe, unsubscribe, tracingChannel, Channel };
