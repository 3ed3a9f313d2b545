/** Whether a test server (PostgreSQL, Redis, NATS) answers, so a suite can skip with a reason instead of failing. */
import { connect } from 'node:net';

/** Resolves to undefined when `url`'s host and port accept a TCP connection, else to why not. */
export function reachable(url: string, timeoutMs = 1000): Promise<string | undefined> {
  const u = new URL(url);
  const defaults: Record<string, number> = {
    'nats:': 4222,
    'postgres:': 5432,
    'postgresql:': 5432,
    'redis:': 6379,
    'rediss:': 6379,
  };
  const port = Number(u.port) || defaults[u.protocol] || 0;
  const host = u.hostname || '127.0.0.1';
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (reason?: string) => {
      socket.destroy();
      resolve(reason);
    };
    socket.setTimeout(timeoutMs, () => done(`${host}:${port} did not answer within ${timeoutMs} ms`));
    socket.on('connect', () => done());
    socket.on('error', (err) => done(`${host}:${port} is unreachable (${err.message})`));
  });
}
