/**
 * The CLI's client for the control API. It finds the server and token from flags, then the
 * KYLIX_SERVER / KYLIX_TOKEN env vars, then the config file (~/.kylix/config.yaml or $KYLIX_CONFIG).
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type ErrorCode, KylixError } from '../errors.js';
import { API_VERSION, type KObject } from '../resources/meta.js';
import { findAnyDev, findProjectDev } from './discovery.js';

/** The default API address of `kylix dev` and `npm start`. */
export const DEFAULT_SERVER = 'http://127.0.0.1:8081';

/** Connection settings after flags, env and config file are combined. */
export interface ClientConfig {
  server: string;
  token?: string;
  namespace: string;
}

/** The config file's path. */
export function configPath(): string {
  return process.env.KYLIX_CONFIG ?? join(homedir(), '.kylix', 'config.yaml');
}

/** Combines flags, env vars and the config file, in that order of precedence. */
export function resolveConfig(flags: { server?: string; token?: string; namespace?: string }): ClientConfig {
  let file: { server?: string; token?: string; namespace?: string } = {};
  const path = configPath();
  if (existsSync(path)) {
    try {
      file = (parseYaml(readFileSync(path, 'utf8')) as typeof file) ?? {};
    } catch (err) {
      throw new KylixError('ERR_BAD_REQUEST', `${path} is not valid YAML: ${(err as Error).message}`);
    }
  }
  // A running `kylix dev` is found on whatever port it took (src/cli/discovery.ts): the project's
  // own before the config file, any of this user's after it.
  const explicit = flags.server ?? (process.env.KYLIX_SERVER || undefined);
  const server =
    explicit ?? findProjectDev()?.apiUrl ?? file.server ?? findAnyDev()?.apiUrl ?? DEFAULT_SERVER;
  return {
    server: server.replace(/\/$/, ''),
    token: flags.token ?? process.env.KYLIX_TOKEN ?? file.token,
    namespace: flags.namespace ?? process.env.KYLIX_NAMESPACE ?? file.namespace ?? 'default',
  };
}

/** A thin typed wrapper over fetch for the API. */
export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  /** The URL of a collection or object. */
  path(plural: string, name?: string, namespace: string | null = this.config.namespace): string {
    const ns = namespace === null ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
    return `/apis/${API_VERSION}${ns}/${plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  /** Sends a request; a Status error body becomes a KylixError with the server's code and causes. */
  async raw(
    method: string,
    path: string,
    init: {
      body?: string | Uint8Array | ReadableStream<Uint8Array>;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    let res: Response;
    try {
      res = await fetch(`${this.config.server}${path}`, {
        method,
        headers,
        body: init.body,
        signal: init.signal,
        duplex: 'half',
      } as RequestInit);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      throw new KylixError(
        'ERR_API_UNREACHABLE',
        `Cannot reach the Kylix API at ${this.config.server}. Start it with \`npm start\` (or \`kylix dev\`), or point the CLI at it with --server or KYLIX_SERVER.`,
      );
    }
    if (
      res.status >= 400 &&
      (res.headers.get('content-type') ?? '').includes('json') &&
      !path.includes('/proxy/')
    ) {
      const status = (await res.json()) as {
        message?: string;
        details?: { code?: string; causes?: { field: string; message: string }[] };
      };
      const code = (status.details?.code ??
        (res.status === 404 ? 'ERR_NOT_FOUND' : 'ERR_INTERNAL')) as ErrorCode;
      throw new KylixError(code, status.message ?? `HTTP ${res.status}`, status.details?.causes ?? []);
    }
    return res;
  }

  async json<T = KObject>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ data: T; headers: Headers; status: number }> {
    const res = await this.raw(
      method,
      path,
      body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': contentType } },
    );
    // 204 No Content (a send, a delete) has no body to parse.
    const text = await res.text();
    return { data: (text ? JSON.parse(text) : undefined) as T, headers: res.headers, status: res.status };
  }

  async get(plural: string, name: string): Promise<KObject> {
    return (await this.json('GET', this.path(plural, name))).data;
  }

  async list(plural: string, opts: { allNamespaces?: boolean; selector?: string } = {}): Promise<KObject[]> {
    const q = opts.selector ? `?labelSelector=${encodeURIComponent(opts.selector)}` : '';
    const path = this.path(plural, undefined, opts.allNamespaces ? null : this.config.namespace);
    return (await this.json<{ items: KObject[] }>('GET', `${path}${q}`)).data.items;
  }
}
