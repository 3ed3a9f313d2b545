/**
 * The light Request a function gets (see web-objects.ts): it answers url, method, headers and signal
 * from the gateway's frame without building an undici Request, and makes the real one only when
 * something else is asked for. Its state sits in a private field (hidden-state.ts), so nothing of
 * Node's (the request's frame, the channel) is reachable from it by reflection.
 */
import { delegateTo } from './delegate-proto.js';
import { hiddenState } from './hidden-state.js';

const NativeRequest = globalThis.Request;

interface LightState {
  method: string;
  url: string;
  /** Flat [name, value, …] list, as the gateway framed it. */
  rawHeaders: string[];
  /** Where the signal and the body come from, each made on first use (most functions ask for neither). */
  source: RequestSource;
  headers?: Headers;
  real?: Request;
  /** request.cf: empty (Kylix has no edge metadata to give), made when first asked for. */
  cf?: Record<string, unknown>;
}

/** What a light Request asks of the call it belongs to, on first use. */
export interface RequestSource {
  /** The request's AbortSignal. */
  signal(): AbortSignal;
  /** The request body (called at most once), or undefined for a GET or HEAD. */
  body(): ReadableStream<Uint8Array> | undefined;
}

const light = hiddenState<LightState>();
/**
 * A host (and port) that always makes a valid URL with any path the gateway forwards: DNS labels
 * whose last one starts with a letter (so it is never read as an IPv4 address), a port under 10000.
 * Anything else (an IP, a long port) is left to the URL parser.
 */
const PLAIN_HOST = /^([a-z0-9-]{1,63}\.){0,8}[a-z][a-z0-9-]{0,62}(:[0-9]{1,4})?$/i;

function headersOf(raw: string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    if (name.startsWith(':')) continue;
    try {
      headers.append(name, raw[i + 1] ?? '');
    } catch {}
  }
  return headers;
}

function stateOf(o: object): LightState {
  const s = light.get(o);
  if (!s) throw new TypeError('Illegal invocation');
  return s;
}

function realOf(s: LightState): Request {
  if (!s.real) {
    const method = s.method;
    s.real = new NativeRequest(s.url, {
      method,
      headers: s.headers ?? headersOf(s.rawHeaders),
      body: method === 'GET' || method === 'HEAD' ? undefined : s.source.body(),
      signal: s.source.signal(),
      duplex: 'half',
    } as RequestInit);
  }
  return s.real;
}

/** The global Request functions see: a light request passed to it (or to fetch) is unwrapped. */
export class KylixRequest extends NativeRequest {
  constructor(input: RequestInfo | URL, init?: RequestInit) {
    const s = typeof input === 'object' && input !== null ? light.get(input) : undefined;
    super(s ? realOf(s) : input, init);
  }
}

const lightProto: object = Object.create(KylixRequest.prototype);
delegateTo(lightProto, NativeRequest.prototype, (self) => realOf(stateOf(self)));
Object.defineProperties(lightProto, {
  url: {
    get: function (this: object) {
      return stateOf(this).url;
    },
    configurable: true,
  },
  method: {
    get: function (this: object) {
      return stateOf(this).method;
    },
    configurable: true,
  },
  signal: {
    get: function (this: object) {
      return stateOf(this).source.signal();
    },
    configurable: true,
  },
  cf: {
    get: function (this: object) {
      const s = stateOf(this);
      s.cf ??= {};
      return s.cf;
    },
    configurable: true,
  },
  headers: {
    get: function (this: object) {
      const s = stateOf(this);
      if (s.real) return s.real.headers;
      s.headers ??= headersOf(s.rawHeaders);
      return s.headers;
    },
    configurable: true,
  },
});

/**
 * A light Request for a request the gateway framed (see the file comment): `host` is the host it
 * was routed by, `target` its path and query, `rawHeaders` a flat [name, value, …] list.
 */
export function lightRequest(
  method: string,
  host: string,
  target: string,
  rawHeaders: string[],
  source: RequestSource,
): Request {
  const req = Object.create(lightProto) as Request;
  light.set(req, { method, url: `${origin(host)}${target}`, rawHeaders, source });
  return req;
}

let lastHost: string | undefined;
let lastOrigin = '';

/**
 * The origin request.url starts with. A Host header the URL parser refuses (the client's to send)
 * must not fail the request: such a host becomes localhost. A plain host name (the usual case)
 * needs no parser's opinion, and an instance sees the same host again and again: the last is kept.
 */
function origin(host: string): string {
  if (host === lastHost) return lastOrigin;
  let value = `http://${host}`;
  if (!PLAIN_HOST.test(host) && !URL.canParse(`${value}/`)) value = 'http://localhost';
  lastHost = host;
  lastOrigin = value;
  return value;
}

/** Whether `value` is a Request: a light one or a native one. */
export function isRequest(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (light.has(value) || value instanceof NativeRequest);
}
