/**
 * One Kylix node: state store, control API, Function controller, runtime and gateway, wired
 * together. `kylix dev` and `kylix server` start one; tests start one on port 0.
 */
import type { Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { BindingBroker } from './bindings/broker.js';
import { nameOf, namespaceOf } from './bindings/identity.js';
import { BackendOutages } from './bindings/outages.js';
import type { Provider } from './bindings/provider.js';
import { createProviders } from './bindings/providers.js';
import { ALL_BINDING_KINDS, implicitBinding } from './bindings/registry.js';
import { StackMapper } from './build/source-map.js';
import { type Installation, loadInstallation } from './config/installation.js';
import { checkRouteConflicts } from './control-plane/admission.js';
import { createApi } from './control-plane/api.js';
import { type AdminBootstrap, bootstrapAdmin } from './control-plane/auth/bootstrap.js';
import { openAuditLog } from './control-plane/auth/open-audit.js';
import { TokenStore } from './control-plane/auth/tokens.js';
import { BundleStore } from './control-plane/bundles.js';
import { FunctionController } from './control-plane/controllers/functions.js';
import { ResourceController } from './control-plane/controllers/resources.js';
import { LogStore } from './control-plane/logs.js';
import { Registry } from './control-plane/registry.js';
import { SecretBox } from './control-plane/secrets.js';
import { SharedLogs, sharedLogsPlace } from './control-plane/shared-logs.js';
import { openStateStore } from './control-plane/store/open.js';
import type { ControllerObserver } from './control-plane/work-queue.js';
import { assetCall, isAssetCall } from './gateway/assets.js';
import { Gateway, type Invocation, type RefusalHook } from './gateway/gateway.js';
import { MetricsHistory } from './observability/history.js';
import { invocationEntry } from './observability/invocation-record.js';
import { createPlatformLogger, type PlatformLevel } from './observability/logger.js';
import { PlatformMetrics } from './observability/metrics.js';
import { queueStatsReader } from './observability/queue-stats.js';
import { TracedGateway } from './observability/traced-gateway.js';
import { RequestTracing } from './observability/tracing.js';
import type { RevisionTarget } from './resources/serving.js';
import type { EgressRequest } from './runtime/isolation/egress-proxy.js';
import { Isolation, type IsolationOptions } from './runtime/isolation/isolation.js';
import { NamespaceSandbox } from './runtime/namespace-sandbox.js';
import { Runtime } from './runtime/runtime.js';
import type { ConsumerOptions } from './triggers/queue-consumer.js';
import { startTriggers } from './triggers/triggers.js';
import { VERSION } from './version.js';

/** Where and how a node runs. */
export interface PlatformOptions {
  dataDir: string;
  gatewayHost: string;
  gatewayPort: number;
  apiHost: string;
  apiPort: number;
  /**
   * When set, the control API requires a token, and this is the installation's bootstrap admin
   * token (KYLIX_ADMIN_TOKEN): the shared store's admin record is set to it.
   */
  token?: string;
  /**
   * When set (and `token` is not), the control API requires a token, and the bootstrap admin token
   * is kept in this file: made on the installation's first start, see control-plane/auth/bootstrap.ts.
   */
  adminTokenFile?: string;
  /** Where the platform's own diagnostics go (not functions' logs); level defaults to info. */
  log?: (message: string, level?: PlatformLevel, fields?: Record<string, unknown>) => void;
  /** How tenant code is isolated (bubblewrap, cgroups, runtime Node, egress exceptions). */
  isolation?: IsolationOptions;
  /** Start with the gateway closed (openGateway() opens it): `kylix dev` deploys first, then takes requests. */
  holdGateway?: boolean;
  /** `kylix dev`: `GET /__scheduled?cron=…` runs the routed function's scheduled() (wrangler dev's test route). */
  testScheduled?: boolean;
  /** Which backend serves each resource kind; embedded for all when absent. */
  installation?: Installation;
  /** Queue consumer tunables (lease, backoff); the defaults suit production. */
  consumer?: Partial<ConsumerOptions>;
  /** Serve the control API over HTTPS with this certificate and key (PEM); see src/server/tls.ts. */
  apiTls?: { cert: string; key: string };
}

/** A running node. */
export interface Platform {
  /** The gateway's address once it listens ('' while held). */
  readonly gatewayUrl: string;
  /** Starts the gateway listening, if it was held; resolves with its address. */
  openGateway(): Promise<string>;
  apiUrl: string;
  registry: Registry;
  controller: FunctionController;
  logs: LogStore;
  /** The isolation layers in force (for start-up output and doctor). */
  isolation: Isolation;
  runtime: Runtime;
  gateway: Gateway;
  /** What start-up did about the bootstrap admin token (a new one to show, or a warning). */
  admin: AdminBootstrap;
  /**
   * 1. stops accepting requests, 2. lets in-flight ones finish (at most `graceMs`), 3. stops every
   * instance, 4. closes the store.
   */
  close(graceMs?: number): Promise<void>;
}

/** Where a function's logs and bundles sit under the data folder. */
export function dataPaths(dataDir: string) {
  return {
    state: join(dataDir, 'state'),
    bundles: join(dataDir, 'bundles'),
    logs: join(dataDir, 'logs'),
    keys: join(dataDir, 'keys'),
  };
}

/**
 * A binding's kind (keyValue, database, queue, bucket) in a revision, "cache" for the Workers
 * `caches` every function has, or "unknown" when it has none.
 */
function bindingKind(bindings: RevisionTarget['bindings'], name: string): string {
  if (implicitBinding(name)) return 'cache';
  const b = Object.hasOwn(bindings, name) ? bindings[name] : undefined;
  if (!b || 'secret' in b) return 'unknown';
  for (const key in b) if (Object.hasOwn(b, key)) return key;
  return 'unknown';
}

function urlOf(addr: AddressInfo, scheme = 'http'): string {
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `${scheme}://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${addr.port}`;
}

/** 1. open the store, 2. build the runtime and gateway, 3. reconcile, 4. listen. */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  const log =
    options.log ??
    (() => {
      const logger = createPlatformLogger();
      return (m: string, level: PlatformLevel = 'info', fields?: Record<string, unknown>) =>
        logger.log(level, m, fields);
    })();
  const paths = dataPaths(options.dataDir);
  const installation = options.installation ?? loadInstallation(undefined, {});
  const secretBox = SecretBox.load(join(paths.keys, 'secrets.key'), installation.secrets?.keys);
  const { store, sharedBundles } = await openStateStore(
    installation.backends.state,
    paths.state,
    secretBox,
    (m) => log(m, 'warn'),
  );
  const registry = new Registry(store, secretBox);
  if (installation.backends.state.provider === 'postgres' && !installation.secrets?.keys?.length)
    log(
      "kylix: the state store is shared (PostgreSQL), but the secret key is this node's own file; other nodes cannot open the secrets it seals. Give every node the same keys (KYLIX_SECRET_KEYS or secrets.keys; see docs/operations.md).",
      'warn',
    );
  registry.addAdmission(checkRouteConflicts);
  await registry.indexRoutes();
  const bundles = new BundleStore(paths.bundles, sharedBundles);
  // On a fleet, function logs are shared through PostgreSQL (KYLIX_SHARED_LOGS=0: not).
  const state = installation.backends.state;
  const sharedAt = process.env.KYLIX_SHARED_LOGS !== '0' ? sharedLogsPlace(installation) : undefined;
  const shared = sharedAt ? await SharedLogs.open(sharedAt) : undefined;
  if (!sharedAt && state.provider === 'kubernetes' && process.env.KYLIX_SHARED_LOGS !== '0')
    log(
      "kylix: function logs are this node's own: with the kubernetes state backend, nodes share them through the Database backend's PostgreSQL, and none is configured (KYLIX_POSTGRES_URL). `kylix logs` shows the lines of the node it reaches.",
      'warn',
    );
  const logs = new LogStore(paths.logs, shared);
  const isolation = Isolation.detect(options.isolation);
  const missing = isolation.missing();
  if (missing.length > 0)
    log(
      `kylix: sandbox layers off: ${missing.map((l) => `${l.name} (${l.detail})`).join('; ')}. See: kylix doctor`,
      'warn',
      { layersOff: missing.map((l) => l.name) },
    );

  const providers = createProviders(installation, options.dataDir);
  // A backend that fails binding calls is told in the node's own log, once, and again when it is back.
  const outages = new BackendOutages(
    (kind) => {
      const k = ALL_BINDING_KINDS.find((known) => known.name === kind);
      return k ? (providers[k.name]() as Promise<Provider>) : undefined;
    },
    (m, level, fields) => log(m, level, fields),
  );
  // Bundles too large for the state store's own place go to the Bucket backend (Kubernetes: over a ConfigMap's size).
  sharedBundles?.useBucket?.(providers.bucket);
  // Traces only when the OTEL_* variables ask for them; metrics unless KYLIX_METRICS=0 (they cost
  // a few increments per request; the switch exists to measure that).
  const tracing = RequestTracing.fromEnv(VERSION, process.env, (m) => log(m, 'warn'));
  // Metrics: gauges are read from the runtime and the queue provider when Prometheus scrapes.
  let runtimeRef: Runtime | undefined;
  let gatewayRef: Gateway | undefined;
  const metrics =
    process.env.KYLIX_METRICS === '0'
      ? undefined
      : new PlatformMetrics({
          *revisions() {
            for (const key of runtimeRef?.revisionKeys() ?? []) {
              const s = runtimeRef?.stats(key);
              if (s) yield { key, instances: s.instances, starting: s.starting, inFlight: s.inFlight };
            }
          },
          sandboxProcesses: () => runtimeRef?.sandboxProcesses() ?? [],
          queues: queueStatsReader({
            list: async () =>
              (await registry.list('Queue', undefined)).map((q) => ({
                namespace: q.metadata.namespace ?? '',
                name: q.metadata.name,
              })),
            stats: async (ref) => (await providers.queue()).stats(ref),
            oldestTimestamp: async (ref) => (await providers.queue()).oldestTimestamp?.(ref),
          }),
          gatewayInFlight: () => gatewayRef?.activeRequests() ?? 0,
        });
  // The dashboard's last hour: sampled from the same metrics every 10 s (none when metrics are off).
  const history = metrics ? new MetricsHistory(metrics.registry) : undefined;
  const reconciled: ControllerObserver | undefined = metrics && ((...r) => metrics.reconciled(...r));
  // Its informers' caches also tell the broker which resources exist, so a binding call does not
  // read the store (on a fleet, a PostgreSQL round trip) to learn it.
  const resources = new ResourceController(registry, providers, log, undefined, reconciled);
  const broker = new BindingBroker(registry, providers, resources);
  const stacks = new StackMapper();
  const runtime = new Runtime({
    makeSandbox: (namespace, events) =>
      new NamespaceSandbox(namespace, events, {
        isolation,
        onStderr: (ns, text) => log(`[sandbox ${ns}] ${text.trimEnd()}`, 'warn', { namespace: ns }),
        ...(tracing ? { onEgress: (key: string) => (req: EgressRequest) => tracing.egress(key, req) } : {}),
      }),
    logSink: (target, record) =>
      logs.append(target.namespace, target.functionName, {
        ...record,
        // Stack traces point at the user's source files, mapped here, outside the sandbox.
        message: stacks.rewrite(target.bundlePath, record.message),
        revision: target.revision,
        source: 'function',
      }),
    onCrash: (target, reason) =>
      logs.append(target.namespace, target.functionName, {
        time: new Date().toISOString(),
        level: 'error',
        message: `Instance of revision ${target.revision} stopped unexpectedly (${reason}); the next request starts a new one.`,
        revision: target.revision,
        source: 'platform',
      }),
    rpc: (target, call) => {
      if (isAssetCall(target.assets, call.binding)) return assetCall(target.assets, call);
      const kind = bindingKind(target.bindings, call.binding);
      // The target is the call's scope (its namespace, function and bindings).
      const run = (traceparent?: string) =>
        metrics
          ? metrics.bindingCall(target.namespace, target.functionName, kind, call.op, () =>
              broker.call(target, call, traceparent),
            )
          : broker.call(target, call, traceparent);
      // The backend the call runs on: a cache call's is the KeyValue backend.
      return outages.watch(
        implicitBinding(call.binding)?.provider ?? kind,
        tracing ? tracing.binding(target.namespace, target.functionName, kind, call.op, run) : run(),
      );
    },
  });
  runtimeRef = runtime;
  const onInvocation = (i: Invocation) => {
    metrics?.request(i);
    const entry = invocationEntry(i);
    logs.append(entry.namespace, entry.name, entry.entry, entry.json);
  };
  const onRefused: RefusalHook | undefined = metrics && ((...r) => metrics.refused(...r));
  const gateway = tracing
    ? new TracedGateway(tracing, runtime, onInvocation, onRefused)
    : new Gateway(runtime, onInvocation, onRefused);
  gatewayRef = gateway;
  await resources.start();
  const triggers = startTriggers({
    store,
    runtime,
    queue: providers.queue,
    logs,
    consumer: options.consumer,
    backendsDown: () => outages.downKinds,
    leader: store.leaderElection?.('kylix-scheduler'),
    onCronFire: (namespace, name, ok) => metrics?.cronFired(namespace, name, ok),
    onCronMissed: (namespace, name, reason, count) => metrics?.cronMissed(namespace, name, reason, count),
    onQueueSettled: (t, result) => metrics?.queueDelivery(t.namespace, t.queue, t.functionName, result),
    tracing,
  });
  if (options.testScheduled)
    gateway.testScheduled = (functionKey, cron) =>
      triggers.fire(namespaceOf(functionKey), nameOf(functionKey), {
        kind: 'scheduled',
        ...(cron ? { cron } : {}),
      });
  const controller = new FunctionController(
    registry,
    runtime,
    gateway,
    bundles,
    triggers,
    undefined,
    reconciled,
  );
  await controller.start();

  const tokens = new TokenStore(store);
  const required = options.token !== undefined || options.adminTokenFile !== undefined;
  let admin: AdminBootstrap = {};
  if (options.token !== undefined) admin = await bootstrapAdmin(tokens, { secret: options.token });
  else if (options.adminTokenFile !== undefined)
    admin = await bootstrapAdmin(tokens, { file: options.adminTokenFile });
  if (admin.notice) log(admin.notice);
  const audit = await openAuditLog(installation.backends.state, options.dataDir);
  const app = createApi({
    registry,
    bundles,
    logs,
    gateway,
    runtime,
    providers,
    access: { tokens, audit, required },
    version: VERSION,
    metrics,
    history,
    events: triggers,
  });
  history?.start();
  const apiServer = (
    options.apiTls
      ? createAdaptorServer({
          fetch: app.fetch,
          createServer: createHttpsServer,
          serverOptions: { cert: options.apiTls.cert, key: options.apiTls.key },
        })
      : createAdaptorServer({ fetch: app.fetch })
  ) as Server;
  const apiAddr = await new Promise<AddressInfo>((resolve, reject) => {
    apiServer.once('error', reject);
    apiServer.listen(options.apiPort, options.apiHost, () => resolve(apiServer.address() as AddressInfo));
  });

  let gatewayUrl = '';
  const openGateway = async () => {
    gatewayUrl ||= urlOf(await gateway.listen(options.gatewayPort, options.gatewayHost));
    return gatewayUrl;
  };
  if (!options.holdGateway) await openGateway();

  let closing: Promise<void> | undefined;
  return {
    get gatewayUrl() {
      return gatewayUrl;
    },
    openGateway,
    apiUrl: urlOf(apiAddr, options.apiTls ? 'https' : 'http'),
    registry,
    controller,
    logs,
    isolation,
    runtime,
    gateway,
    admin,
    close(graceMs = 30_000) {
      closing ??= (async () => {
        controller.stop();
        resources.stop();
        history?.stop();
        apiServer.close();
        apiServer.closeAllConnections();
        await gateway.close(graceMs);
        await triggers.close();
        await runtime.close();
        await resources.settled();
        outages.close();
        await providers.close();
        await logs.close();
        registry.close();
        await audit.close();
        await tracing?.shutdown();
        await store.close();
        isolation.close();
      })();
      return closing;
    },
  };
}
