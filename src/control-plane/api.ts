/**
 * The control API, shaped like Kubernetes' own so kubectl-style clients work:
 * /apis/kylix.dev/v1/namespaces/{ns}/{plural}[/{name}] with list, watch, create, get, replace,
 * apply (PATCH application/apply-patch+yaml), merge patch and delete; errors are Status objects.
 * Plus what Kylix adds: bundle upload, function logs, a proxy to call a function directly, and
 * re-sealing secret values / rotating their key.
 */
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { type Context, Hono } from 'hono';
import type { Providers } from '../bindings/broker.js';
import { scopedKey } from '../bindings/identity.js';
import { addDashboardRoutes, addDashboardStatic, type HistorySource } from '../dashboard/routes.js';
import { KylixError, quoteInput, toKylixError } from '../errors.js';
import { CATEGORY } from '../kubernetes/crds.js';
import { KINDS } from '../resources/kinds.js';
import { API_GROUP, API_VERSION, type KObject } from '../resources/meta.js';
import { addAccessRoutes } from './api-access.js';
import { addDataRoutes } from './api-data.js';
import { checkBodyKind, checkUrlNames, readBody, readBodyBytes } from './api-input.js';
import { type ApiMetrics, addMetricsRoute, apiMetricsMiddleware } from './api-metrics.js';
import { addOpenApiRoutes } from './api-openapi.js';
import { addSecretKeyRoutes } from './api-secrets.js';
import { includeObjectOf, toTable, wantsTable } from './api-table.js';
import { addTriggerRoutes } from './api-trigger.js';
import type { AuditLog } from './auth/audit.js';
import { accessControl, requestIdOf } from './auth/middleware.js';
import type { TokenStore } from './auth/tokens.js';
import { type BundleStore, bundleTooLarge, checkBundleSize, MAX_BUNDLE_BYTES } from './bundles.js';
import { type LogStore, logFilterOf } from './logs.js';
import { labelSelector, type Registry } from './registry.js';
import type { FunctionEvents, FunctionInvoker, RevisionStatsSource } from './serving.js';
import type { WatchEvent } from './store/interface.js';

/** What the API serves from. */
export interface ApiDeps {
  registry: Registry;
  bundles: BundleStore;
  logs: LogStore;
  gateway: FunctionInvoker;
  runtime: RevisionStatsSource;
  /** The backends behind resources, for the data subresources (kylix kv, sql, queue, bucket). */
  providers: Providers;
  /** The installation's API tokens and audit log; see docs/access.md. */
  access: {
    tokens: TokenStore;
    audit: AuditLog;
    /** Whether every request but health checks needs a token (not in `kylix dev` on loopback). */
    required: boolean;
  };
  version: string;
  /** The node's metrics: GET /metrics, and API requests counted (absent: neither). */
  metrics?: ApiMetrics;
  /** The last hour of each function's figures, for the dashboard's charts. */
  history?: HistorySource;
  /** Runs scheduled() and queue() by hand (`kylix trigger`); absent: no such route. */
  events?: FunctionEvents;
}

const PREFIX = `/apis/${API_VERSION}`;

/** A Kubernetes Status object for an error. */
export function statusOf(err: KylixError): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason,
    code: err.status,
    details: {
      code: err.code,
      ...(err.causes.length
        ? {
            causes: err.causes.map((c) => ({
              field: c.field,
              message: c.message,
              reason: 'FieldValueInvalid',
            })),
          }
        : {}),
    },
  };
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Builds the API app. */
export function createApi(deps: ApiDeps): Hono<{ Bindings: HttpBindings }> {
  const { registry } = deps;
  const app = new Hono<{ Bindings: HttpBindings }>();

  app.onError((err, c) => {
    const e = toKylixError(err);
    if (e.code === 'ERR_INTERNAL') console.error('kylix api: unexpected error:', err);
    return c.json(statusOf(e), e.status as 400);
  });
  app.notFound((c) =>
    c.json(
      statusOf(
        new KylixError('ERR_NOT_FOUND', `There is no API at ${c.req.method} ${quoteInput(c.req.path, 200)}.`),
      ),
      404,
    ),
  );

  app.use('*', apiMetricsMiddleware(deps.metrics));
  app.get('/healthz', (c) => c.text('ok'));
  app.get('/readyz', (c) => c.text('ok'));
  // The dashboard's page and assets (no data in them) load without a token; the page then asks for one.
  addDashboardStatic(app);

  // Who is asking, whether their role allows it, and an audit entry for every mutation.
  const { tokens, audit, required } = deps.access;
  app.use('*', accessControl({ tokens: required ? tokens : undefined, audit }));
  app.use('*', checkUrlNames());
  addAccessRoutes(app, tokens, audit);
  addMetricsRoute(app, deps.metrics);
  // What kubectl downloads to validate, patch and explain (docs/kubernetes.md).
  addOpenApiRoutes(app, deps.version);

  app.get('/version', (c) =>
    c.json({
      gitVersion: `v${deps.version}`,
      platform: `${process.platform}/${process.arch}`,
      nodeVersion: process.version,
    }),
  );
  // The core group is not served; an empty version list tells kubectl so without an error.
  app.get('/api', (c) => c.json({ kind: 'APIVersions', versions: [], serverAddressByClientCIDRs: [] }));
  app.get('/apis', (c) =>
    c.json({
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [
        {
          name: API_GROUP,
          versions: [{ groupVersion: API_VERSION, version: 'v1' }],
          preferredVersion: { groupVersion: API_VERSION, version: 'v1' },
        },
      ],
    }),
  );
  app.get(PREFIX, (c) =>
    c.json({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: API_VERSION,
      resources: Object.values(KINDS).map((k) => ({
        name: k.plural,
        singularName: k.singular,
        namespaced: true,
        kind: k.kind,
        shortNames: k.shortNames,
        categories: [CATEGORY],
        verbs: k.readOnly
          ? ['get', 'list', 'watch']
          : ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      })),
    }),
  );

  // Bundles: content-addressed uploads from `kylix apply`.
  app.on('HEAD', '/kylix/v1/bundles/:digest', async (c) =>
    c.body(null, (await deps.bundles.has(c.req.param('digest'))) ? 200 : 404),
  );
  app.post('/kylix/v1/bundles', async (c) => {
    // Checked before and while reading, so an oversized upload is not held in memory.
    const code = await readBodyBytes(c, MAX_BUNDLE_BYTES, bundleTooLarge);
    checkBundleSize(code.length);
    const digest = await deps.bundles.put(code, c.req.header('kylix-digest'));
    return c.json({ digest }, 201);
  });

  // Logs of a function (every node's, on a fleet): JSON lines, optionally followed, filtered by
  // time, level and revision.
  app.get(`${PREFIX}/namespaces/:ns/functions/:name/log`, async (c) => {
    const { ns, name } = c.req.param();
    const raw = Number(c.req.query('tailLines') ?? 100);
    const tail = Number.isFinite(raw) ? raw : 100;
    const follow = c.req.query('follow') === 'true';
    const filter = logFilterOf(c.req.query('sinceTime'), c.req.query('level'), c.req.query('revision'));
    if (!follow)
      return c.body(
        (await deps.logs.read(ns, name, tail, filter)).map((e) => `${JSON.stringify(e)}\n`).join(''),
        200,
        {
          'content-type': 'application/x-ndjson',
        },
      );
    let stop = () => {};
    const stream = new ReadableStream<string>({
      start(controller) {
        stop = deps.logs.subscribe(
          ns,
          name,
          tail,
          filter,
          (e) => controller.enqueue(`${JSON.stringify(e)}\n`),
          (err) => controller.error(err),
        );
      },
      cancel() {
        stop();
      },
    });
    return c.body(stream.pipeThrough(new TextEncoderStream()), 200, {
      'content-type': 'application/x-ndjson',
      'cache-control': 'no-store',
    });
  });

  addDataRoutes(app, registry, deps.providers);
  if (deps.events) addTriggerRoutes(app, registry, deps.events);
  addSecretKeyRoutes(app, registry);
  addDashboardRoutes(app, { registry, providers: deps.providers, history: deps.history });

  // Live figures per revision: instances, requests in flight, recent cold starts (p50/p99).
  app.get(`${PREFIX}/namespaces/:ns/functions/:name/stats`, async (c) => {
    const { ns, name } = c.req.param();
    await registry.get('Function', ns, name);
    const revisions = await registry.list('Revision', ns, `kylix.dev/function=${name}`);
    const out = revisions.flatMap((r) => {
      const number = (r.spec as { number: number }).number;
      const stats = deps.runtime.stats(`${ns}/${name}/${number}`);
      if (!stats) return [];
      const sorted = [...stats.coldStarts].sort((a, b) => a - b);
      const pct = (p: number) =>
        sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
      return [
        {
          revision: number,
          instances: stats.instances,
          inFlight: stats.inFlight,
          coldStarts: sorted.length,
          coldStartP50Ms: pct(50),
          coldStartP99Ms: pct(99),
        },
      ];
    });
    return c.json({ kind: 'FunctionStats', apiVersion: API_VERSION, revisions: out });
  });

  // Call a function without knowing its route, as Kubernetes' service proxy does.
  app.all(`${PREFIX}/namespaces/:ns/functions/:name/proxy/*`, async (c) => {
    const { ns, name } = c.req.param();
    await registry.get('Function', ns, name);
    const base = `${PREFIX}/namespaces/${ns}/functions/${name}/proxy`;
    const raw = c.env.incoming.url ?? '';
    const path = raw.slice(raw.indexOf(base) + base.length) || '/';
    await deps.gateway.dispatch(
      c.env.incoming,
      c.env.outgoing,
      scopedKey(ns, name),
      path.startsWith('/') ? path : `/${path}`,
      requestIdOf(c),
    );
    return RESPONSE_ALREADY_SENT;
  });

  const list = async (c: Context, namespace: string | undefined) => {
    const info = registry.kindFor(c.req.param('plural') ?? '');
    const selector = c.req.query('labelSelector');
    if (c.req.query('watch') === 'true' || c.req.query('watch') === '1')
      return watch(c, info.kind, namespace, selector);
    const version = await registry.store.currentVersion();
    const items = (await registry.list(info.kind, namespace, selector)).map((o) => registry.present(o));
    if (wantsTable(c.req.header('accept')))
      return c.json(
        toTable(info.kind, items, {
          include: includeObjectOf(c.req.query('includeObject')),
          resourceVersion: version,
        }),
      );
    return c.json({
      apiVersion: API_VERSION,
      kind: `${info.kind}List`,
      metadata: { resourceVersion: version },
      items,
    });
  };

  const watch = async (
    c: Context,
    kind: string,
    namespace: string | undefined,
    selector: string | undefined,
  ) => {
    const match = labelSelector(selector);
    const since = c.req.query('resourceVersion');
    // The version first, then the list: a write in between is then in both (harmless), never in neither.
    const from = since ?? (await registry.store.currentVersion());
    const initial = since ? [] : await registry.list(kind, namespace, selector);
    let close = () => {};
    // kubectl get -w asks for Table rows; the first event carries the column definitions.
    const table = wantsTable(c.req.header('accept'));
    const include = includeObjectOf(c.req.query('includeObject'));
    let first = true;
    const encode = (e: WatchEvent) => {
      const object = registry.present(e.object);
      const out = table ? toTable(kind, [object], { include, columns: first }) : object;
      first = false;
      return `${JSON.stringify({ type: e.type, object: out })}\n`;
    };
    // Throws ERR_GONE before the stream starts, so the client gets a proper 410.
    const events: WatchEvent[] = [];
    let sink: ((e: WatchEvent) => void) | undefined;
    const w = registry.store.watch(from, (e) => {
      if (
        e.object.kind !== kind ||
        (namespace && e.object.metadata.namespace !== namespace) ||
        !match(e.object.metadata.labels)
      )
        return;
      if (sink) sink(e);
      else events.push(e);
    });
    close = () => w.close();
    const stream = new ReadableStream<string>({
      start(controller) {
        for (const o of initial) controller.enqueue(encode({ type: 'ADDED', object: o }));
        for (const e of events) controller.enqueue(encode(e));
        sink = (e) => controller.enqueue(encode(e));
      },
      cancel() {
        close();
      },
    });
    c.env.incoming.on('close', () => close());
    return c.body(stream.pipeThrough(new TextEncoderStream()), 200, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
    });
  };

  app.get(`${PREFIX}/:plural`, (c) => list(c, undefined));
  app.get(`${PREFIX}/namespaces/:ns/:plural`, (c) => list(c, c.req.param('ns')));

  const writable = (plural: string) => {
    const info = registry.kindFor(plural);
    if (info.readOnly)
      throw new KylixError(
        'ERR_BAD_REQUEST',
        `${info.plural} are written by Kylix itself and cannot be changed through the API.`,
      );
    return info;
  };

  app.post(`${PREFIX}/namespaces/:ns/:plural`, async (c) => {
    const info = writable(c.req.param('plural'));
    const body = (await readBody(c)) as KObject;
    checkBodyKind(body, info);
    if (body && typeof body === 'object' && body.kind === undefined) body.kind = info.kind;
    const { object } = await registry.write(c.req.param('ns'), body, 'create');
    return c.json(registry.present(object), 201);
  });

  app.get(`${PREFIX}/namespaces/:ns/:plural/:name`, async (c) => {
    const info = registry.kindFor(c.req.param('plural'));
    const object = registry.present(await registry.get(info.kind, c.req.param('ns'), c.req.param('name')));
    if (wantsTable(c.req.header('accept')))
      return c.json(toTable(info.kind, [object], { include: includeObjectOf(c.req.query('includeObject')) }));
    return c.json(object);
  });

  const nameMustMatch = (body: unknown, name: string) => {
    const given = (body as { metadata?: { name?: unknown } } | null)?.metadata?.name;
    if (given !== undefined && given !== name) {
      throw new KylixError(
        'ERR_MANIFEST_INVALID',
        `metadata.name ${quoteInput(given)} does not match the URL's name "${name}".`,
        [{ field: 'metadata.name', message: `must be "${name}"` }],
      );
    }
  };

  app.put(`${PREFIX}/namespaces/:ns/:plural/:name`, async (c) => {
    const info = writable(c.req.param('plural'));
    const body = await readBody(c);
    checkBodyKind(body, info);
    nameMustMatch(body, c.req.param('name'));
    const { object } = await registry.write(c.req.param('ns'), body, 'replace');
    return c.json(registry.present(object));
  });

  app.patch(`${PREFIX}/namespaces/:ns/:plural/:name`, async (c) => {
    const info = writable(c.req.param('plural'));
    const { ns, name } = c.req.param();
    const type = c.req.header('content-type') ?? '';
    const body = await readBody(c);
    checkBodyKind(body, info);
    nameMustMatch(body, name);
    let result: Awaited<ReturnType<Registry['write']>>;
    if (type.startsWith('application/apply-patch')) {
      // dryRun=All (as Kubernetes): validated and admitted, not stored; `kylix apply` checks every
      // document this way before it writes any.
      result = await registry.write(ns, body, 'apply', undefined, c.req.query('dryRun') === 'All');
    } else {
      const current = registry.present(await registry.get(info.kind, ns, name));
      const { status: _status, ...rest } = current;
      result = await registry.write(ns, mergePatch(rest, body), 'replace');
    }
    c.header('kylix-apply-result', result.created ? 'created' : result.changed ? 'configured' : 'unchanged');
    return c.json(registry.present(result.object), result.created ? 201 : 200);
  });

  app.delete(`${PREFIX}/namespaces/:ns/:plural/:name`, async (c) => {
    const info = writable(c.req.param('plural'));
    const rv = c.req.query('resourceVersion');
    if (c.req.query('purge') === 'true')
      await registry.markForPurge(info.kind, c.req.param('ns'), c.req.param('name'));
    const gone = await registry.delete(info.kind, c.req.param('ns'), c.req.param('name'), rv);
    return c.json(registry.present(gone));
  });

  return app;
}
