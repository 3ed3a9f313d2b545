/**
 * The control API's access middleware, run before every route but the health checks:
 * 1. gives the request an id (`kylix-request-id`),
 * 2. finds who sent it from the bearer token (401 for none, unknown, expired or revoked; when the
 *    API is open, as `kylix dev` on loopback runs it, everyone is "dev (loopback)", an admin),
 * 3. checks the role allows the action (403 naming role and namespace; see roles.ts),
 * 4. after the route answers, writes an audit entry for every mutation and invocation, refused
 *    ones included (401s are not logged: anyone could fill the log with them).
 */
import { randomBytes } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import type { KylixError } from '../../errors.js';
import type { AuditEntry } from '../../resources/access.js';
import type { AuditLog } from './audit.js';
import { type Action, authorize, classify, kindOf, type Principal } from './roles.js';
import type { TokenStore } from './tokens.js';

/** The header every API answer carries its request id in (the gateway uses the same). */
export const REQUEST_ID_HEADER = 'kylix-request-id';

/** Who every request is when the API needs no token. */
const DEV: Principal = { id: 'dev', name: 'dev (loopback)', role: 'admin', namespaces: [] };

/** Methods that only read; anything else is audited. */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Names a route learns only while it runs (a created token's id), for the audit entry. */
const auditNames = new WeakMap<Request, string>();

/** Request ids by request, for routes that answer outside Hono (a function's proxy). */
const requestIds = new WeakMap<Request, string>();

/** The id this middleware gave the request (the gateway answers an invocation with the same). */
export function requestIdOf(c: Context): string | undefined {
  return requestIds.get(c.req.raw);
}

/** Lets a route name the object it acted on, when the URL does not. */
export function setAuditName(c: Context, name: string): void {
  auditNames.set(c.req.raw, name);
}

/** The middleware; `tokens` undefined means the API is open. */
export function accessControl(deps: {
  tokens?: TokenStore;
  audit: AuditLog;
  log?: (message: string) => void;
}): MiddlewareHandler<{ Bindings: HttpBindings }> {
  const log = deps.log ?? ((m: string) => console.error(m));
  // The gateway's form: this node's boot id, then a counter (unique per node, cheap, sortable).
  const bootId = randomBytes(4).toString('hex');
  let counter = 0;
  return async (c, next) => {
    const requestId = `${bootId}-a${(++counter).toString(36)}`;
    c.header(REQUEST_ID_HEADER, requestId);
    requestIds.set(c.req.raw, requestId);
    const principal = deps.tokens ? await deps.tokens.authenticate(c.req.header('authorization')) : DEV;
    const raw = c.env?.incoming?.url ?? c.req.url;
    const url = new URL(raw, 'http://api');
    const action = classify(c.req.method, url.pathname, url.searchParams);
    const audited = !READS.has(c.req.method) || action.verb === 'invoke';
    const record = async (code: number, name?: string) => {
      const entry: AuditEntry = {
        time: new Date().toISOString(),
        requestId,
        user: { id: principal.id, name: principal.name, role: principal.role },
        verb: action.verb === 'patch' && isApply(c) ? 'apply' : action.verb,
        resource: action.resource,
        ...kindField(action),
        ...(action.namespace !== undefined ? { namespace: action.namespace } : {}),
        ...(name !== undefined ? { name } : {}),
        path: url.pathname,
        code,
      };
      await deps.audit.append(entry).catch((err) => {
        log(`kylix: writing the audit entry of request ${requestId} failed: ${(err as Error).message}`);
      });
    };
    try {
      authorize(principal, action);
    } catch (err) {
      if (audited) await record((err as KylixError).status, action.name);
      throw err;
    }
    await next();
    if (!audited) return;
    const sent = c.res.headers.get('x-hono-already-sent') !== null;
    const code = sent ? (c.env?.outgoing?.statusCode ?? 200) : c.res.status;
    await record(code, action.name || auditNames.get(c.req.raw) || (await createdName(c, action, code)));
  };
}

function isApply(c: Context): boolean {
  return (c.req.header('content-type') ?? '').startsWith('application/apply-patch');
}

function kindField(action: Action): { kind?: string } {
  if (action.resource === 'tokens') return { kind: 'Token' };
  if (action.scope !== 'namespaced') return {};
  const kind = kindOf(action.resource);
  return kind ? { kind } : {};
}

/** The name of an object a create made, from the answer (only its metadata.name is read). */
async function createdName(c: Context, action: Action, code: number): Promise<string | undefined> {
  if (action.verb !== 'create' || action.scope !== 'namespaced' || code >= 300) return undefined;
  if (action.resource.includes('/') || !(c.res.headers.get('content-type') ?? '').includes('json'))
    return undefined;
  try {
    const body = (await c.res.clone().json()) as { metadata?: { name?: unknown } };
    return typeof body.metadata?.name === 'string' ? body.metadata.name : undefined;
  } catch {
    return undefined;
  }
}
