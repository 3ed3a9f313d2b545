/**
 * The page's client of the control API: same origin, the token (when the node asks for one) kept
 * in sessionStorage for this tab only and sent as a Bearer header, errors turned into the API's
 * own Status message.
 */

const TOKEN_KEY = 'kylix-token';
const NAMESPACE_KEY = 'kylix-namespace';

/** The API's prefix for the kylix.dev kinds. */
export const GROUP = '/apis/kylix.dev/v1';

/** A failed API call: the Status object's message, its HTTP code and Kylix error code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** A Kubernetes-style object as the API returns it. */
export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    creationTimestamp?: string;
    resourceVersion?: string;
    generation?: number;
  };
  spec?: Record<string, unknown>;
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Whoever listens is told when the API refused the token (the page then asks for one). */
let onUnauthorized: () => void = () => {};

/** Sets what happens on a 401. */
export function whenUnauthorized(fn: () => void): void {
  onUnauthorized = fn;
}

/** The token this tab uses, if any. */
export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keeps (or forgets, with null) the token for this tab. */
export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The namespace the page shows. */
export function namespace(): string {
  return sessionStorage.getItem(NAMESPACE_KEY) || 'default';
}

/** Chooses the namespace the page shows. */
export function setNamespace(ns: string): void {
  sessionStorage.setItem(NAMESPACE_KEY, ns);
}

/** The path of a namespaced object or list. */
export function path(plural: string, name?: string, sub?: string): string {
  const ns = encodeURIComponent(namespace());
  return `${GROUP}/namespaces/${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}

/** fetch() with the token and the API's errors thrown as ApiError. */
export async function request(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set('authorization', `Bearer ${t}`);
  const res = await fetch(url, { ...init, headers });
  if (res.ok) return res;
  let message = `${res.status} ${res.statusText}`;
  let code: string | undefined;
  try {
    const body = (await res.json()) as { message?: string; details?: { code?: string } };
    message = body.message ?? message;
    code = body.details?.code;
  } catch {
    // Not a Status object: keep the status line.
  }
  if (res.status === 401) onUnauthorized();
  throw new ApiError(message, res.status, code);
}

/** GET (or another method with a JSON body) returning JSON. */
export async function json<T>(url: string, method = 'GET', body?: unknown, contentType?: string): Promise<T> {
  const res = await request(url, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': contentType ?? 'application/json' } }),
  });
  const text = await res.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** The items of a list. */
export async function list(plural: string, selector?: string): Promise<KObject[]> {
  const query = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
  return (await json<{ items: KObject[] }>(`${path(plural)}${query}`)).items;
}

/**
 * Reads newline-delimited JSON from a streaming answer (a followed log), calling `each` per line,
 * until the stream ends or `signal` aborts.
 */
export async function streamLines(
  url: string,
  each: (value: unknown) => void,
  signal: AbortSignal,
): Promise<void> {
  const res = await request(url, { signal });
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) each(JSON.parse(line));
        nl = buffered.indexOf('\n');
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}

/** The Ready condition of an object: True, False or Unknown, with its reason. */
export function readiness(o: KObject): { status: string; reason?: string; message?: string } {
  const c = o.status?.conditions?.find((x) => x.type === 'Ready');
  return c ? { status: c.status, reason: c.reason, message: c.message } : { status: 'Unknown' };
}

/** "3m", "2h", "5d" since an ISO time. */
export function age(iso?: string): string {
  if (!iso) return '';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
