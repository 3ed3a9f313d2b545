/**
 * The egress proxy: the only way out of a sandbox, which has no network of its own. Each sandbox
 * process gets one, on a Unix socket in its folder, bound to its function's allow-list. A guest
 * fetch() arrives as an HTTP request naming the target in a header; the proxy checks the host,
 * resolves it, checks every address, then connects to the checked address itself (so a DNS answer
 * cannot change between the check and the connection) and streams the answer back.
 */
import { lookup } from 'node:dns/promises';
import { chmodSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { EGRESS_ERROR_HEADER, EGRESS_URL_HEADER } from '../../sandbox/protocol.js';
import { addressRefusal, egressAllowHint, hostAllowed, type InstallationAllows } from './egress-policy.js';

/** One outbound request the proxy lets through, as an observer (tracing) sees it. */
export interface EgressRequest {
  method: string;
  url: URL;
  /** The headers sent upstream: an observer may add its own (the W3C trace context). */
  headers: Record<string, string | string[]>;
}

/**
 * Told of each outbound request the proxy forwards, before it is sent; returns what to call when it
 * ends (with the upstream status, or the error that ended it).
 */
export type EgressObserver = (
  request: EgressRequest,
) => (outcome: { status?: number; error?: string }) => void;

/** What one proxy lets through. */
export interface EgressOptions {
  /** spec.egress.allow of the function. */
  allow: readonly string[];
  /** Non-public ranges the installation allows anyway. */
  installationAllows?: InstallationAllows;
  /** Called for every refused connection (for the function's log). */
  onRefused?: (url: string, reason: string) => void;
  /** Told of every forwarded request (a span per outbound fetch, when tracing is on). */
  observe?: EgressObserver;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  EGRESS_URL_HEADER,
]);

function refuse(res: ServerResponse, status: number, reason: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { [EGRESS_ERROR_HEADER]: encodeURIComponent(reason), 'content-length': 0 });
  res.end();
}

/** Checks a target and returns the address to connect to, or the reason it is refused. */
export async function checkTarget(
  url: URL,
  options: EgressOptions,
): Promise<{ address: string; family: 4 | 6 } | { refused: string }> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { refused: `${url.protocol} URLs are not allowed; only http: and https:` };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!hostAllowed(host, options.allow))
    return {
      refused: `${host} is not in spec.egress.allow of this function (allowed: ${options.allow.length ? options.allow.join(', ') : 'none'}). ${egressAllowHint(host)}`,
    };
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true, verbatim: true });
    } catch (err) {
      return { refused: `${host} does not resolve (${(err as NodeJS.ErrnoException).code})` };
    }
  }
  // Every address must pass: a name that also resolves to a private address is refused outright.
  for (const a of addresses) {
    const why = addressRefusal(a.address, options.installationAllows);
    if (why)
      return {
        refused: `${host} resolves to ${why}. No spec.egress entry allows a non-public address; the installation can allow its range (KYLIX_EGRESS_ALLOW_CIDRS).`,
      };
  }
  const first = addresses[0];
  if (!first) return { refused: `${host} has no address` };
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

async function forward(req: IncomingMessage, res: ServerResponse, options: EgressOptions): Promise<void> {
  const raw = req.headers[EGRESS_URL_HEADER];
  let url: URL;
  try {
    url = new URL(typeof raw === 'string' ? raw : '');
  } catch {
    return refuse(res, 400, 'the request names no valid URL');
  }
  const target = await checkTarget(url, options);
  if ('refused' in target) {
    options.onRefused?.(url.href, target.refused);
    req.resume();
    return refuse(res, 403, target.refused);
  }
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  headers.host = url.host;
  const done = options.observe?.({ method: req.method ?? 'GET', url, headers });
  // Connect to the address that was checked, whatever DNS says now.
  const pinned: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all)
      (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
    else cb(null, target.address, target.family);
  };
  const upstream = (url.protocol === 'https:' ? httpsRequest : httpRequest)({
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    method: req.method,
    path: `${url.pathname}${url.search}`,
    headers,
    lookup: pinned,
    timeout: 30_000,
  });
  upstream.on('response', (up) => {
    done?.({ status: up.statusCode });
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    res.writeHead(up.statusCode ?? 502, out);
    up.pipe(res);
    up.on('error', () => res.destroy());
  });
  upstream.on('timeout', () => upstream.destroy(new Error('the remote host did not answer in 30 s')));
  upstream.on('error', (err) => {
    done?.({ error: err.message });
    refuse(res, 502, `${url.host}: ${err.message}`);
  });
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

/** fetch() connections one sandbox process may have open through its proxy at once. */
export const EGRESS_CONNECTIONS = 64;
/** How long a sandbox has to send a whole outbound request, body included. */
const EGRESS_REQUEST_TIMEOUT_MS = 60_000;

/** Starts a proxy on `socketPath` (reachable by the sandbox's user); resolves once it listens. */
export async function startEgressProxy(socketPath: string, options: EgressOptions): Promise<Server> {
  const server = createServer(
    // A sandbox may not hold the supervisor's sockets without bound: requests (and their bodies)
    // must arrive in time, and one sandbox process has at most EGRESS_CONNECTIONS open at once.
    { requestTimeout: EGRESS_REQUEST_TIMEOUT_MS, headersTimeout: 10_000 },
    (req, res) => {
      forward(req, res, options).catch((err: Error) => refuse(res, 502, err.message));
    },
  );
  server.maxConnections = EGRESS_CONNECTIONS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  // The sandbox runs as another user; it must be able to connect.
  chmodSync(socketPath, 0o666);
  return server;
}
