/**
 * A raw HTTP client for attack tests: sends bytes exactly as given (smuggling attempts, duplicate
 * headers, pipelined requests) and returns everything the server wrote back.
 */
import { createConnection } from 'node:net';

/** Sends raw bytes to `port` and collects the answer until the server closes or goes quiet for `quietMs`. */
export function rawHttp(port: number, bytes: string | Buffer, quietMs = 600): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection(port, '127.0.0.1');
    let out = '';
    let timer = setTimeout(() => socket.destroy(), quietMs * 4);
    socket.on('data', (d) => {
      out += d.toString('latin1');
      clearTimeout(timer);
      timer = setTimeout(() => socket.destroy(), quietMs);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', () => undefined);
    socket.write(bytes);
  });
}
