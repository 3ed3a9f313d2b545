/**
 * A compromised sandbox process for the hostile suites: a Node "runtime" (KYLIX_SANDBOX_NODE) that
 * runs an attack script in place of sandbox/host.ts for some namespaces and real Node for the rest,
 * and the part of the control protocol (sandbox/control.ts) every such script speaks.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp-dir.js';

/** The Node binary the wrapper runs (the attack scripts and everything else). */
const REAL_NODE = '/usr/bin/node';

/**
 * JavaScript for an attack script: the control channel `ctl` on fd 3, `header(length, type)` and
 * `frame(type, payload)` for frames of [u32 length][u8 type][u32 stream], `msg(m)` for a JSON
 * control frame, `send(m)`, and `onMessage(fn)` for each message the supervisor sends. It never
 * exits on its own.
 */
export const CONTROL_PEER_JS = `
const ctl = new (require('node:net').Socket)({ fd: 3, readable: true, writable: true });
ctl.on('error', () => {});
const header = (length, type) => {
  const h = Buffer.alloc(9);
  h.writeUInt32BE(length, 0);
  h.writeUInt8(type, 4);
  return h;
};
const frame = (type, payload) => Buffer.concat([header(payload.length, type), payload]);
const msg = (m) => frame(30, Buffer.from(JSON.stringify(m)));
const send = (m) => ctl.write(msg(m));
const handlers = [];
const onMessage = (fn) => handlers.push(fn);
let pending = Buffer.alloc(0);
ctl.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  while (pending.length >= 9 && pending.length >= 9 + pending.readUInt32BE(0)) {
    const n = pending.readUInt32BE(0);
    const m = JSON.parse(pending.subarray(9, 9 + n).toString());
    pending = pending.subarray(9 + n);
    for (const fn of handlers) fn(m);
  }
});
`;

/**
 * A runtime that runs `script` (with `node -e`, the sandbox's arguments after `--`) when
 * KYLIX_NAMESPACE matches the shell pattern `namespaces`, and real Node otherwise, so it answers
 * --version and bubblewrap's probe as Node does.
 */
export function compromisedRuntime(namespaces: string, script: string): string {
  const path = join(tempDir('compromised'), 'node');
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `case "$KYLIX_NAMESPACE" in ${namespaces}) exec ${REAL_NODE} -e '${script.replaceAll("'", "'\\''")}' -- "$@" ;; esac`,
      `exec ${REAL_NODE} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(path, 0o755);
  return path;
}
