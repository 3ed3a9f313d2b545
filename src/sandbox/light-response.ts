/**
 * The light Response (see web-objects.ts): one made from a string, bytes or nothing keeps its parts,
 * and the serving path reads them directly, with no body stream; the undici Response is made only
 * when the function reads more of it.
 */
import { delegateTo } from './delegate-proto.js';
import { hiddenState } from './hidden-state.js';

const NativeResponse = globalThis.Response;
/** Headers' own methods, taken before any guest code runs: they brand-check their receiver. */
const HEADERS_FOR_EACH = Headers.prototype.forEach;
const HEADERS_SET_COOKIES = Headers.prototype.getSetCookie;
const HEADERS_PROTO = Headers.prototype;

/** A Response made from a string, bytes or nothing, kept as its parts until something needs more. */
interface LightResponseState {
  status: number;
  statusText: string;
  /** Made when the function asks for them, or when the init gave a Headers or a list of pairs. */
  headers?: Headers;
  /**
   * Headers given as a plain record, checked and kept as a flat lowercase [name, value, …] list
   * until something asks for `headers` (then they move into a Headers, and this is cleared).
   */
  flat?: string[];
  body: string | Uint8Array | null;
  real?: Response;
}

const lightResponses = hiddenState<LightResponseState>();
const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** A header name (an RFC 9110 token). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What a header value may not contain, and the whitespace Headers trims from its ends. */
const BAD_VALUE = /[\r\n\0]/;
const EDGE_SPACE = /^[\t ]|[\t ]$/;
const TEXT_PLAIN_UTF8 = 'text/plain;charset=UTF-8';

/** Whether a flat [name, value, …] list has a header of this (lowercase) name. */
function namesHeader(flat: string[], name: string): boolean {
  for (let i = 0; i < flat.length; i += 2) if (flat[i] === name) return true;
  return false;
}

/**
 * A real Headers object (brand-checked by its own methods, so a look-alike is not one) as the flat
 * list it iterates: the snapshot a Response's constructor would copy. Undefined for anything else.
 * Anything without Headers' prototype is turned away before the brand check, which throws for it:
 * a thrown TypeError captures a stack trace, and a plain-object headers argument on every response
 * (Hono's c.json) spent 15 % of the instance's CPU there.
 */
function nativeFlat(init: object): string[] | undefined {
  if (Object.getPrototypeOf(init) !== HEADERS_PROTO) return undefined;
  const out: string[] = [];
  try {
    HEADERS_FOR_EACH.call(init as Headers, (value, name) => {
      if (name !== 'set-cookie') out.push(name, value);
    });
    for (const cookie of HEADERS_SET_COOKIES.call(init as Headers)) out.push('set-cookie', cookie);
  } catch {
    return undefined;
  }
  return out;
}

/**
 * A plain record of headers as the flat list Headers would iterate (names lowercased), or undefined
 * when only the Headers constructor can judge it: not a plain object, a value that is not a string,
 * a name or value Headers would refuse or rewrite, or two names that differ only in case.
 */
function flatRecord(init: object): string[] | undefined {
  const proto = Object.getPrototypeOf(init);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const keys = Object.keys(init);
  if (keys.length > 32) return undefined;
  const out: string[] = [];
  for (const key of keys) {
    const value = (init as Record<string, unknown>)[key];
    if (typeof value !== 'string' || !TOKEN.test(key) || BAD_VALUE.test(value) || EDGE_SPACE.test(value))
      return undefined;
    const name = key.toLowerCase();
    for (let i = 0; i < out.length; i += 2) if (out[i] === name) return undefined;
    out.push(name, value);
  }
  return out;
}

/** The parts of a light Response, or undefined when the arguments need the full constructor. */
function lightParts(body: unknown, init: unknown): LightResponseState | undefined {
  if (init !== undefined && init !== null && typeof init !== 'object') return undefined;
  const i = (init ?? {}) as ResponseInit;
  const status = i.status === undefined ? 200 : i.status;
  if (!Number.isInteger(status) || status < 200 || status > 599) return undefined;
  const statusText = i.statusText === undefined ? '' : i.statusText;
  if (typeof statusText !== 'string' || !REASON_PHRASE.test(statusText)) return undefined;
  let bytes: string | Uint8Array | null;
  if (body === undefined || body === null) bytes = null;
  else if (typeof body === 'string') bytes = body;
  else if (body instanceof ArrayBuffer) bytes = new Uint8Array(body.slice(0));
  else if (body instanceof Uint8Array) bytes = new Uint8Array(body);
  else return undefined;
  if (bytes !== null && NULL_BODY_STATUS.has(status)) return undefined;
  const state: LightResponseState = { status, statusText, body: bytes };
  if (i.headers !== undefined) {
    const flat =
      typeof i.headers === 'object' && i.headers !== null
        ? (nativeFlat(i.headers) ?? flatRecord(i.headers))
        : undefined;
    if (flat) {
      if (typeof bytes === 'string' && !namesHeader(flat, 'content-type'))
        flat.push('content-type', TEXT_PLAIN_UTF8);
      state.flat = flat;
      return state;
    }
    state.headers = new Headers(i.headers);
    if (typeof bytes === 'string' && !state.headers.has('content-type'))
      state.headers.set('content-type', TEXT_PLAIN_UTF8);
  }
  return state;
}

function lightHeaders(s: LightResponseState): Headers {
  if (!s.headers) {
    s.headers = new Headers();
    const flat = s.flat;
    s.flat = undefined;
    if (flat)
      for (let i = 0; i < flat.length; i += 2) s.headers.append(flat[i] as string, flat[i + 1] as string);
    else if (typeof s.body === 'string') s.headers.set('content-type', TEXT_PLAIN_UTF8);
  }
  return s.headers;
}

function realResponse(s: LightResponseState): Response {
  s.real ??= new NativeResponse(s.body as BodyInit | null, {
    status: s.status,
    statusText: s.statusText,
    headers: lightHeaders(s),
  });
  return s.real;
}

/** `this` as a native Response: the real one behind a light Response, or itself. */
function nativeOf(o: object): Response {
  const s = lightResponses.get(o);
  return s ? realResponse(s) : (o as Response);
}

/**
 * Whether a body is given as zero bytes the constructor holds (a string, bytes, a Blob or form
 * parameters), not a stream. Workers takes such a body with a null-body status (204, 205, 304) as no
 * body (workerd's Response constructor, kept since its beta; worktop's `reply(204)` and many routers
 * make `new Response('', { status: 204 })`), where the Fetch standard, and undici, throw.
 */
function isEmptyBufferedBody(body: unknown): boolean {
  if (typeof body === 'string') return body.length === 0;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength === 0;
  if (body instanceof Blob) return body.size === 0;
  if (body instanceof URLSearchParams) return body.toString() === '';
  return false;
}

/**
 * The global Response functions see. `new Response(string | bytes | null, init)` makes a light
 * Response: status, headers and the body bytes are read straight from it on the way out, and the
 * undici Response (with its body stream) is made only if the function reads more of it. Anything
 * else is a native Response; both are `instanceof Response`, and subclasses work as usual.
 */
export const KylixResponse = function Response(this: unknown, body?: BodyInit | null, init?: ResponseInit) {
  if (!new.target) throw new TypeError("Class constructor Response cannot be invoked without 'new'");
  if (
    isEmptyBufferedBody(body) &&
    typeof init === 'object' &&
    init !== null &&
    NULL_BODY_STATUS.has(init.status as number)
  )
    body = null;
  const state = lightParts(body, init);
  if (!state) return Reflect.construct(NativeResponse, [body, init], new.target) as Response;
  const response = Object.create(new.target.prototype as object) as Response;
  lightResponses.set(response, state);
  return response;
} as unknown as typeof NativeResponse;

const lightResponseProto: object = Object.create(NativeResponse.prototype);
delegateTo(lightResponseProto, NativeResponse.prototype, nativeOf);
/** Getters a light Response answers itself; a native one (no state) asks its own getter. */
function ownGetter(key: string, light: (s: LightResponseState) => unknown): void {
  const native = Reflect.getOwnPropertyDescriptor(NativeResponse.prototype, key)?.get as () => unknown;
  Object.defineProperty(lightResponseProto, key, {
    get(this: object) {
      const s = lightResponses.get(this);
      return s ? light(s) : native.call(this);
    },
    configurable: true,
  });
}
ownGetter('status', (s) => s.status);
ownGetter('ok', (s) => s.status >= 200 && s.status <= 299);
ownGetter('statusText', (s) => s.statusText);
ownGetter('headers', (s) => lightHeaders(s));
ownGetter('type', (s) => (s.real ? s.real.type : 'default'));
ownGetter('url', (s) => (s.real ? s.real.url : ''));
ownGetter('redirected', () => false);
ownGetter('bodyUsed', (s) => (s.real ? s.real.bodyUsed : false));
Object.defineProperty(lightResponseProto, 'constructor', {
  value: KylixResponse,
  writable: true,
  configurable: true,
});
Object.defineProperty(KylixResponse, 'prototype', { value: lightResponseProto, writable: false });
Object.setPrototypeOf(KylixResponse, NativeResponse);
Object.defineProperty(KylixResponse, 'json', {
  value: function json(data: unknown, init?: ResponseInit): Response {
    if (init?.headers === undefined)
      return new KylixResponse(JSON.stringify(data), {
        ...init,
        headers: { 'content-type': 'application/json' },
      });
    const headers = new Headers(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new KylixResponse(JSON.stringify(data), { ...init, headers });
  },
  writable: true,
  configurable: true,
});

/** What the serving path needs of a Response made from a string or bytes (and not yet read). */
export interface SimpleResponse {
  status: number;
  statusText: string;
  /** The headers as a flat lowercase [name, value, …] list. */
  headers: string[];
  body: string | Uint8Array | null;
}

/** The parts of a light Response whose body is unread, else undefined (stream it). */
export function simpleResponseOf(response: Response): SimpleResponse | undefined {
  const s = lightResponses.get(response);
  if (!s || s.real?.bodyUsed) return undefined;
  const headers =
    s.flat ?? (s.headers ? flatHeaders(s.headers) : typeof s.body === 'string' ? TEXT_PLAIN_HEAD : []);
  return { status: s.status, statusText: s.statusText, headers, body: s.body };
}

/** The headers of a light Response made from a string with no headers given. */
const TEXT_PLAIN_HEAD = ['content-type', TEXT_PLAIN_UTF8];

/** Flattens Headers to [name, value, …]; set-cookie values stay apart. */
export function flatHeaders(headers: Headers): string[] {
  const out: string[] = [];
  headers.forEach((value, name) => {
    if (name !== 'set-cookie') out.push(name, value);
  });
  for (const cookie of headers.getSetCookie()) out.push('set-cookie', cookie);
  return out;
}

const nativeGetter = (key: string) =>
  Reflect.getOwnPropertyDescriptor(NativeResponse.prototype, key)?.get as (this: Response) => unknown;
const NATIVE_STATUS = nativeGetter('status');
const NATIVE_STATUS_TEXT = nativeGetter('statusText');
const NATIVE_HEADERS = nativeGetter('headers');
const NATIVE_BODY = nativeGetter('body');

/**
 * Whether `value` is a real Response: a light one, or one with undici's internal state (a brand
 * check, not instanceof: an object made with Object.create(Response.prototype) is not one).
 */
export function isResponse(value: unknown): value is Response {
  if (typeof value !== 'object' || value === null) return false;
  if (lightResponses.has(value)) return true;
  try {
    NATIVE_STATUS.call(value as Response);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the serving path sends of a streamed Response, read through the native getters of the real
 * Response behind it: a subclass's own `status` or `headers` getters are not consulted.
 */
export function responseParts(response: Response): {
  status: number;
  statusText: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
} {
  const s = lightResponses.get(response);
  const real = s ? realResponse(s) : response;
  return {
    status: s ? s.status : (NATIVE_STATUS.call(real) as number),
    statusText: s ? s.statusText : (NATIVE_STATUS_TEXT.call(real) as string),
    headers: s ? lightHeaders(s) : (NATIVE_HEADERS.call(real) as Headers),
    body: NATIVE_BODY.call(real) as ReadableStream<Uint8Array> | null,
  };
}
