/**
 * The API of scoped access, admin only (the access middleware refuses everyone else):
 * GET/POST /apis/kylix.dev/v1/tokens, GET/DELETE /apis/kylix.dev/v1/tokens/{id} (DELETE revokes),
 * GET /apis/kylix.dev/v1/audit?since=&namespace=&limit=.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { z } from 'zod';
import { KylixError } from '../errors.js';
import { type AuditEntryList, ROLES, type TokenObject } from '../resources/access.js';
import { API_VERSION, dnsLabel } from '../resources/meta.js';
import { parseBody } from './api-input.js';
import { type AuditLog, auditQuery } from './auth/audit.js';
import { setAuditName } from './auth/middleware.js';
import type { TokenStore } from './auth/tokens.js';

const PREFIX = `/apis/${API_VERSION}`;

/** The longest TTL a token may have: ten years (any longer is "no TTL"). */
const MAX_TTL_SECONDS = 10 * 365 * 86400;

const tokenRequest = z
  .strictObject({
    apiVersion: z.literal(API_VERSION).optional(),
    kind: z.literal('Token').optional(),
    spec: z.strictObject({
      description: z.string().max(253).optional(),
      role: z.enum(ROLES),
      namespaces: z.array(dnsLabel).max(100).optional(),
      expirationSeconds: z.number().int().min(1).max(MAX_TTL_SECONDS).optional(),
    }),
  })
  .superRefine((body, ctx) => {
    const n = body.spec.namespaces?.length ?? 0;
    if (body.spec.role !== 'admin' && n === 0)
      ctx.addIssue({
        code: 'custom',
        path: ['spec', 'namespaces'],
        message: `an ${body.spec.role} token needs at least one namespace`,
      });
    if (body.spec.role === 'admin' && n > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['spec', 'namespaces'],
        message: 'an admin token acts in every namespace; leave namespaces out',
      });
  });

/** Adds the token and audit routes to the API app. */
export function addAccessRoutes(
  app: Hono<{ Bindings: HttpBindings }>,
  tokens: TokenStore,
  audit: AuditLog,
): void {
  app.get(`${PREFIX}/tokens`, async (c) =>
    c.json({ apiVersion: API_VERSION, kind: 'TokenList', items: await tokens.list() }),
  );
  app.post(`${PREFIX}/tokens`, async (c) => {
    const parsed = tokenRequest.safeParse(parseBody(await c.req.text(), 'json'));
    if (!parsed.success)
      throw new KylixError(
        'ERR_MANIFEST_INVALID',
        'The token request is not valid.',
        parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message })),
      );
    const { spec } = parsed.data;
    const created: TokenObject = await tokens.create({
      description: spec.description ?? '',
      role: spec.role,
      namespaces: spec.namespaces ?? [],
      expirationSeconds: spec.expirationSeconds,
    });
    setAuditName(c, created.metadata.name);
    // The secret is in this answer only: never cache it.
    c.header('cache-control', 'no-store');
    return c.json(created, 201);
  });
  app.get(`${PREFIX}/tokens/:id`, async (c) => {
    const found = (await tokens.list()).find((t) => t.metadata.name === c.req.param('id'));
    if (!found) throw new KylixError('ERR_NOT_FOUND', 'There is no token with that id.');
    return c.json(found);
  });
  app.delete(`${PREFIX}/tokens/:id`, async (c) => c.json(await tokens.revoke(c.req.param('id'))));

  app.get(`${PREFIX}/audit`, async (c) => {
    const q = auditQuery(new URL(c.req.url).searchParams);
    const list: AuditEntryList = {
      apiVersion: API_VERSION,
      kind: 'AuditEntryList',
      items: await audit.query(q),
    };
    return c.json(list);
  });
}
