/**
 * The one connection a Kylix node keeps to a Kubernetes API server: the kubeconfig (in-cluster by
 * default; a file and context outside, KUBECONFIG honoured) loaded by @kubernetes/client-node,
 * plain JSON requests on any path with its TLS material and credentials, and its `Watch` for
 * streams. Objects stay raw JSON: the generated typed clients turn timestamps into Dates, and
 * the store hands objects on exactly as the server wrote them. The library is imported only
 * when a Kubernetes-backed node starts (it takes about a second to load).
 */

import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { KylixError } from '../errors.js';

/** Where to find the cluster (the installation's `backends.state` when its provider is kubernetes). */
export interface KubeConnectOptions {
  /** A kubeconfig file; else KUBECONFIG, else the in-cluster service account, else ~/.kube/config. */
  kubeconfig?: string;
  /** A context of that kubeconfig; else its current context. */
  context?: string;
}

/** A Kubernetes object or list, as JSON. */
export type KubeJson = Record<string, unknown> & {
  metadata?: Record<string, unknown> & { resourceVersion?: string; name?: string; namespace?: string };
};

/** One watch event as the API server streams it. */
export interface KubeWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeJson;
}

/** A Kubernetes API error: the HTTP status and the Status object's reason and message. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The API-server connection; see the file comment. */
export class KubeClient {
  /** One keep-alive agent with the kubeconfig's TLS material, so requests reuse connections. */
  private agent?: Agent;

  private constructor(
    readonly config: KubeConfig,
    private readonly lib: typeof import('@kubernetes/client-node'),
    /** Where the server is, for error messages. */
    readonly server: string,
  ) {}

  /** Loads the kubeconfig (see KubeConnectOptions for the order) and names the server it points at. */
  static async connect(options: KubeConnectOptions = {}): Promise<KubeClient> {
    const lib = await import('@kubernetes/client-node');
    const kc = new lib.KubeConfig();
    try {
      if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
      else if (process.env.KUBECONFIG) kc.loadFromDefault();
      else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
      else kc.loadFromDefault();
      if (options.context) kc.setCurrentContext(options.context);
    } catch (err) {
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `The Kubernetes state backend could not load its kubeconfig${options.kubeconfig ? ` (${options.kubeconfig})` : ''}: ${(err as Error).message}. Set backends.state.kubeconfig (and context), or KUBECONFIG, or run the node in a pod.`,
      );
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `The kubeconfig has no cluster${options.context ? ` for context "${options.context}"` : ''}. Set backends.state.kubeconfig and context, or KUBECONFIG.`,
      );
    return new KubeClient(kc, lib, cluster.server.replace(/\/+$/, ''));
  }

  /**
   * One request; resolves with the parsed body of a 2xx answer and throws a KubeApiError for any
   * other (404 NotFound, 409 Conflict/AlreadyExists, 410 Gone, 422 Invalid…).
   */
  async request<T = KubeJson>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    options: { query?: Record<string, string | undefined>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const opts: RequestOptions = { method, headers: { accept: 'application/json' } };
    // Credentials are applied per request (tokens rotate); the TLS material once, into one agent.
    await this.config.applyToHTTPSOptions(opts);
    this.agent ??= new Agent({
      keepAlive: true,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert ? { cert: opts.cert } : {}),
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
      ...(opts.servername ? { servername: opts.servername } : {}),
    });
    if (url.protocol === 'https:') opts.agent = this.agent;
    else delete opts.agent;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers = opts.headers as Record<string, string>;
    if (payload) {
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = send(url, { ...opts, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
      req.on('error', reject);
      req.end(payload);
    }).catch((err: Error) => {
      throw new KylixError(
        'ERR_BACKEND_UNAVAILABLE',
        `The state store (Kubernetes API server at ${this.server}) cannot be reached: ${err.message}. Check that it runs and that the kubeconfig points at it.`,
      );
    });
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { message: text.slice(0, 500) };
    }
    if (status >= 200 && status < 300) return body as T;
    const s = body as { reason?: string; message?: string };
    throw new KubeApiError(status, s.reason ?? String(status), s.message ?? `HTTP ${status}`);
  }

  /**
   * Streams the watch events of `path` (a list path) through the library's Watch; `done` is
   * called once when the stream ends (null: the server closed it, as it does every few minutes).
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: KubeWatchEvent) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const watch = new this.lib.Watch(this.config);
    return watch.watch(
      path,
      query,
      (type: string, object: KubeJson) => onEvent({ type: type as KubeWatchEvent['type'], object }),
      done,
    );
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.agent?.destroy();
  }

  /** Creates a namespace (a Kylix namespace is a tenant; the cluster needs it before objects go in). */
  async ensureNamespace(name: string): Promise<void> {
    try {
      await this.request('POST', '/api/v1/namespaces', {
        body: {
          apiVersion: 'v1',
          kind: 'Namespace',
          metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'kylix' } },
        },
      });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return;
      throw err;
    }
  }
}

/** Whether an error is the API server's answer with this status. */
export function isStatus(err: unknown, status: number): err is KubeApiError {
  return err instanceof KubeApiError && err.status === status;
}

/**
 * The Kylix error for an API-server answer the store has no better meaning for: permissions
 * (RBAC), an object the cluster refuses (its CRD schema), or a server that cannot serve now.
 */
export function kubeFailure(err: unknown, what: string): KylixError {
  if (err instanceof KylixError) return err;
  if (!(err instanceof KubeApiError))
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `${what} failed on the Kubernetes API server: ${(err as Error).message}`,
    );
  if (err.status === 403)
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `${what} was refused by the Kubernetes API server (403: ${err.message}). Give the node's service account the RBAC rules of the Helm chart (deploy/helm/kylix).`,
    );
  if (err.status === 422 || err.status === 400)
    return new KylixError(
      'ERR_MANIFEST_INVALID',
      `${what} was refused by the Kubernetes API server: ${err.message}`,
    );
  if (err.status === 404 && /the server could not find the requested resource/.test(err.message))
    return new KylixError(
      'ERR_BACKEND_UNAVAILABLE',
      `${what}: the cluster does not serve this kind. Install Kylix's CRDs first: kylix crds | kubectl apply -f -`,
    );
  return new KylixError(
    'ERR_BACKEND_UNAVAILABLE',
    `${what} failed on the Kubernetes API server (${err.status}): ${err.message}`,
  );
}
