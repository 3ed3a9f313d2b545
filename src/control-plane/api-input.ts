/**
 * Checks on what a control API request carries before any route uses it: the namespace and name in
 * the URL must be DNS labels (they become store keys, file names and backend identifiers), a body's
 * kind and apiVersion must be the URL's, a body over MAX_REQUEST_BYTES is refused before it is read
 * whole, a large body is parsed off the event loop, and a body that does not parse is reported by
 * line and column, never by quoting it back.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { KylixError, quoteInput } from '../errors.js';
import { findKind, type KindInfo } from '../resources/kinds.js';
import { formatBytes, MAX_REQUEST_BYTES } from '../resources/limits.js';
import { API_VERSION, DNS_LABEL_RULE, isDnsLabel, isDnsSubdomain } from '../resources/meta.js';
import { checkObjectSize } from '../resources/validate.js';
import { parseBodyText as parseText, YamlProblem } from '../resources/yaml.js';
import { INLINE_PARSE_BYTES, parsePool } from './parse-pool.js';

/** The path segments before the namespace: /apis/kylix.dev/v1/namespaces/{ns}/{plural}/{name}/… */
const NAMESPACED = ['', 'apis', ...API_VERSION.split('/'), 'namespaces'];

/**
 * Middleware that refuses a URL whose namespace or object name is not a DNS label. It reads the raw
 * path as the client sent it, still percent-encoded and before "." and ".." are resolved, so
 * "a%2fb", "%00" or "../x" is refused rather than decoded or resolved into another path.
 * Names of kinds Kylix writes itself (revisions, events) may be DNS subdomains, as Kubernetes allows.
 */
export function checkUrlNames(): MiddlewareHandler<{ Bindings: HttpBindings }> {
  return async (c, next) => {
    const raw = c.env?.incoming?.url ?? new URL(c.req.url).pathname;
    const segments = (raw.split('?')[0] ?? '').split('/');
    if (segments.some((s) => /^(\.|%2e){1,2}$/i.test(s)))
      throw new KylixError(
        'ERR_BAD_REQUEST',
        'The URL path holds a "." or ".." segment; send the path it stands for.',
      );
    if (NAMESPACED.every((s, i) => segments[i] === s)) {
      const [ns, plural, name] = segments.slice(NAMESPACED.length);
      if (!isDnsLabel(ns)) throw badName('namespace', ns ?? '');
      const info = plural === undefined ? undefined : findKind(plural);
      if (info && name !== undefined) {
        const ok = info.readOnly ? isDnsSubdomain(name) : isDnsLabel(name);
        if (!ok) throw badName(`${info.kind} name`, name);
      }
    }
    await next();
  };
}

function badName(what: string, given: string): KylixError {
  return new KylixError('ERR_BAD_REQUEST', `The ${what} in the URL, ${quoteInput(given)}, is not valid.`, [
    { field: what.endsWith('namespace') ? 'metadata.namespace' : 'metadata.name', message: DNS_LABEL_RULE },
  ]);
}

/**
 * Refuses a body whose kind or apiVersion is not the one its URL is for (a Secret sent to
 * /functions/x would otherwise be written as a Secret). Fields left out are the URL's.
 */
export function checkBodyKind(body: unknown, info: KindInfo): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const { kind, apiVersion } = body as { kind?: unknown; apiVersion?: unknown };
  if (kind !== undefined && kind !== info.kind)
    throw new KylixError(
      'ERR_BAD_REQUEST',
      `The body's kind ${quoteInput(kind)} does not match the URL, which is for ${info.plural} (kind "${info.kind}"). Send it to the URL of its own kind.`,
      [{ field: 'kind', message: `must be "${info.kind}" or left out` }],
    );
  if (apiVersion !== undefined && apiVersion !== API_VERSION)
    throw new KylixError(
      'ERR_BAD_REQUEST',
      `The body's apiVersion ${quoteInput(apiVersion)} does not match the URL, which is for ${API_VERSION}.`,
      [{ field: 'apiVersion', message: `must be "${API_VERSION}" or left out` }],
    );
}

/** How much of a refused body is read and dropped before the connection is cut. */
const DRAIN_BYTES = 16 * 1024 * 1024;

/**
 * Reads and drops the rest of a refused body, up to DRAIN_BYTES, so that the client reads the 413
 * rather than a connection reset; past that the connection is cut.
 */
function drainThenCut(incoming: HttpBindings['incoming'], already: number, limit: number): void {
  let n = already;
  incoming.on('data', (chunk: Buffer) => {
    n += chunk.length;
    // DRAIN_BYTES past the route's own limit (a bundle's is larger than the API's).
    if (n > limit + DRAIN_BYTES) incoming.socket?.destroy();
  });
  incoming.on('error', () => {});
  incoming.resume();
}

/** The 413 for a control API body over MAX_REQUEST_BYTES. */
function requestTooLarge(bytes: number | undefined): KylixError {
  return new KylixError(
    'ERR_BODY_TOO_LARGE',
    `The request body is ${bytes === undefined ? 'larger than' : `${(bytes / 2 ** 20).toFixed(1)} MiB, over`} the control API's limit of ${formatBytes(MAX_REQUEST_BYTES)}. Objects are limited further, to 1.5 MiB each: keep large data in a Bucket or Database.`,
  );
}

/**
 * Reads a request body, refusing it with a 413 (`tooLarge`) as soon as it is known to exceed `limit`:
 * by its Content-Length before reading anything, or, for a chunked body, by counting while reading.
 * Nothing more is kept: the rest is read and dropped, up to DRAIN_BYTES, then the connection is cut.
 */
export async function readBodyBytes(
  c: Context,
  limit = MAX_REQUEST_BYTES,
  tooLarge: (bytes: number | undefined) => KylixError = requestTooLarge,
): Promise<Buffer> {
  const declared = c.req.header('content-length');
  const incoming = (c.env as Partial<HttpBindings> | undefined)?.incoming;
  if (declared !== undefined && Number(declared) > limit) {
    if (incoming) drainThenCut(incoming, 0, limit);
    throw tooLarge(Number(declared));
  }
  if (!incoming) {
    // Not behind a Node server (app.request in tests): the web stream, counted the same way.
    const chunks: Buffer[] = [];
    let n = 0;
    const reader = c.req.raw.body?.getReader();
    for (;;) {
      const r = await reader?.read();
      if (!r || r.done) break;
      n += r.value.byteLength;
      if (n > limit) {
        await reader?.cancel();
        throw tooLarge(undefined);
      }
      chunks.push(Buffer.from(r.value));
    }
    return Buffer.concat(chunks);
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const done = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      n += chunk.length;
      if (n <= limit) {
        chunks.push(chunk);
        return;
      }
      chunks.length = 0;
      done();
      drainThenCut(incoming, n, limit);
      reject(tooLarge(undefined));
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      done();
      reject(new KylixError('ERR_BAD_REQUEST', `The request body could not be read: ${err.message}.`));
    };
    if (incoming.readableEnded) return resolve(Buffer.alloc(0));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}

/**
 * Reads and parses a request body as YAML or JSON (see the file comment). A syntax error says where
 * it is and what kind of error it is, but never repeats the body: it may hold secret values.
 */
export async function readBody(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  const text = (await readBodyBytes(c)).toString('utf8');
  return parseBodyText(text, type.includes('yaml') ? 'yaml' : 'json');
}

/** Parses a body's text: inline when small, else in the parse worker. */
export async function parseBodyText(text: string, format: 'yaml' | 'json'): Promise<unknown> {
  if (text.length <= INLINE_PARSE_BYTES) return checked(parseBody(text, format));
  const reply = await parsePool.parse(text, format);
  if ('json' in reply) return JSON.parse(reply.json);
  if ('refused' in reply)
    throw new KylixError(reply.refused.code, reply.refused.message, [
      { field: reply.refused.field, message: reply.refused.why },
    ]);
  throw syntaxError(format, reply.syntax ?? undefined);
}

/** A parsed body after the depth and size checks the worker makes for large ones. */
function checked(value: unknown): unknown {
  checkObjectSize(value);
  return value;
}

function syntaxError(format: 'yaml' | 'json', where: string | undefined): KylixError {
  return new KylixError(
    'ERR_BAD_REQUEST',
    `The request body is not valid ${format === 'yaml' ? 'YAML' : 'JSON'}${where ? ` (${where})` : ''}. Fix it and send it again.`,
  );
}

/** Parses a small request body as YAML or JSON, on the event loop; errors as readBody's. */
export function parseBody(text: string, format: 'yaml' | 'json'): unknown {
  try {
    return parseText(text, format);
  } catch (err) {
    throw syntaxError(format, format === 'yaml' ? yamlWhere(err) : jsonWhere(err, text));
  }
}

/** The YAML error's code (BAD_INDENT, …) and position, without the parser's excerpt of the text. */
function yamlWhere(err: unknown): string | undefined {
  return err instanceof YamlProblem ? err.where : undefined;
}

/** Where JSON.parse stopped, from its "at position N" (V8 quotes the text in other messages, so they are not used). */
function jsonWhere(err: unknown, text: string): string | undefined {
  const message = (err as Error).message ?? '';
  if (/Unexpected end of JSON input/.test(message)) return 'it ends too soon';
  const m = /at position (\d+)/.exec(message);
  if (!m) return undefined;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  return `at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
}
