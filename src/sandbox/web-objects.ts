/**
 * Fast, sealed Request and Response objects for the hot path. A function gets a light Request that
 * answers url, method, headers and signal without building an undici Request, and makes the real one
 * only when something else is asked for. Its state sits in a WeakMap, so nothing of Node's (the
 * IncomingMessage, the socket) is reachable from it by reflection. Responses made from a string or
 * bytes are remembered, so the bridge can write them without reading a stream.
 */
const NativeRequest = globalThis.Request;
const NativeResponse = globalThis.Response;

interface LightState {
  method: string;
  url: string;
  /** Flat [name, value, …] list, as the gateway framed it. */
  rawHeaders: string[];
  signal: AbortSignal;
  headers?: Headers;
  real?: Request;
  makeBody: () => ReadableStream<Uint8Array> | undefined;
}

const light = new WeakMap<object, LightState>();
/** Body inits of responses made from a string or bytes, written without a stream. */
const simpleBodies = new WeakMap<Response, string | Uint8Array>();

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
      body: method === 'GET' || method === 'HEAD' ? undefined : s.makeBody(),
      signal: s.signal,
      duplex: 'half',
    } as RequestInit);
  }
  return s.real;
}

/** The global Request functions see: a light request passed to it (or to fetch) is unwrapped. */
class KylixRequest extends NativeRequest {
  constructor(input: RequestInfo | URL, init?: RequestInit) {
    const s = typeof input === 'object' && input !== null ? light.get(input) : undefined;
    super(s ? realOf(s) : input, init);
  }
}

const lightProto: object = Object.create(KylixRequest.prototype);
for (const key of Reflect.ownKeys(NativeRequest.prototype)) {
  if (key === 'constructor') continue;
  const d = Reflect.getOwnPropertyDescriptor(NativeRequest.prototype, key);
  if (!d) continue;
  if (typeof d.value === 'function') {
    const method = d.value as (...args: unknown[]) => unknown;
    Object.defineProperty(lightProto, key, {
      value(this: object, ...args: unknown[]) {
        return method.apply(realOf(stateOf(this)), args);
      },
      writable: true,
      configurable: true,
    });
  } else if (d.get) {
    const get = d.get;
    Object.defineProperty(lightProto, key, {
      get(this: object) {
        return get.call(realOf(stateOf(this)));
      },
      configurable: true,
    });
  }
}
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
      return stateOf(this).signal;
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
 * A light Request for a request the gateway framed (see the file comment): `target` is its path
 * and query, `rawHeaders` a flat [name, value, …] list; makeBody is called at most once, on demand.
 */
export function lightRequest(
  method: string,
  target: string,
  rawHeaders: string[],
  signal: AbortSignal,
  makeBody: () => ReadableStream<Uint8Array> | undefined,
): Request {
  const req = Object.create(lightProto) as Request;
  let host = 'localhost';
  for (let i = 0; i + 1 < rawHeaders.length; i += 2)
    if (rawHeaders[i]?.toLowerCase() === 'host') host = rawHeaders[i + 1] ?? host;
  // A Host header the URL parser refuses (the client's to send) must not fail the request.
  let url = `http://${host}${target}`;
  if (!URL.canParse(url)) url = `http://localhost${target}`;
  light.set(req, { method, url, rawHeaders, signal, makeBody });
  return req;
}

/** The global Response functions see: remembers string and byte bodies for the fast path. */
class KylixResponse extends NativeResponse {
  constructor(body?: BodyInit | null, init?: ResponseInit) {
    super(body, init);
    if (typeof body === 'string') simpleBodies.set(this, body);
    else if (body instanceof Uint8Array) simpleBodies.set(this, new Uint8Array(body));
    else if (body instanceof ArrayBuffer) simpleBodies.set(this, new Uint8Array(body.slice(0)));
  }

  static override json(data: unknown, init?: ResponseInit): Response {
    const headers = new Headers(init?.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new KylixResponse(JSON.stringify(data), { ...init, headers });
  }
}

/** The body to write directly, when the response was made from a string or bytes and is unread. */
export function simpleBodyOf(response: Response): string | Uint8Array | undefined {
  return response.bodyUsed ? undefined : simpleBodies.get(response);
}

/** Whether `value` is a Response of any kind (made before or after the globals were replaced). */
export function isResponse(value: unknown): value is Response {
  return value instanceof NativeResponse;
}

/** Installs the Request and Response classes above as globals. */
export function installWebObjects(): void {
  Object.defineProperty(globalThis, 'Request', { value: KylixRequest, writable: true, configurable: true });
  Object.defineProperty(globalThis, 'Response', { value: KylixResponse, writable: true, configurable: true });
}
