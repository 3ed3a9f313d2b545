/**
 * Checks on what a control API request carries before any route uses it: the namespace and name in
 * the URL must be DNS labels (they become store keys, file names and backend identifiers), a body's
 * kind and apiVersion must be the URL's, and a body that does not parse is reported by line and
 * column, never by quoting it back.
 */
import type { HttpBindings } from '@hono/node-server';
import type { MiddlewareHandler } from 'hono';
import { parse as parseYaml } from 'yaml';
import { KylixError, quoteInput } from '../errors.js';
import { findKind, type KindInfo } from '../resources/kinds.js';
import { API_VERSION, DNS_LABEL_RULE, isDnsLabel, isDnsSubdomain } from '../resources/meta.js';

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

/**
 * Parses a request body as YAML or JSON. A syntax error says where it is (line and column) and what
 * kind of error it is, but never repeats the body: it may hold secret values.
 */
export function parseBody(text: string, format: 'yaml' | 'json'): unknown {
  try {
    return format === 'yaml' ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    const where = format === 'yaml' ? yamlWhere(err) : jsonWhere(err, text);
    throw new KylixError(
      'ERR_BAD_REQUEST',
      `The request body is not valid ${format === 'yaml' ? 'YAML' : 'JSON'}${where ? ` (${where})` : ''}. Fix it and send it again.`,
    );
  }
}

/** The yaml package's error code (BAD_INDENT, …) and position, without its excerpt of the text. */
function yamlWhere(err: unknown): string | undefined {
  const e = err as { code?: unknown; linePos?: { line: number; col: number }[] };
  const at = e.linePos?.[0];
  const code = typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code) ? `${e.code} ` : '';
  return at ? `${code}at line ${at.line}, column ${at.col}` : code.trim() || undefined;
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
