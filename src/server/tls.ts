/**
 * TLS for the control API of `kylix server`: the certificate and key given with --tls-cert/--tls-key,
 * or a pair made on the installation's first start: a private CA and a server certificate it signs
 * (ECDSA P-256), kept in `<data>/tls/`. kubectl refuses to send a token over plain HTTP, and pins
 * the CA that `kylix kubeconfig` prints. The certificates are written as DER by hand from node:crypto
 * (no X.509 writer ships with Node; the npm ones need a global reflect polyfill).
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { KylixError } from '../errors.js';

// ---- DER, the few types a certificate needs.
const der = (tag: number, body: Buffer): Buffer => {
  const n = body.length;
  const len =
    n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
};
const seq = (...items: Buffer[]) => der(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => der(0x31, Buffer.concat(items));
const int = (b: Buffer) => der(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
const bool = (v: boolean) => der(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => der(0x04, b);
const utf8 = (s: string) => der(0x0c, Buffer.from(s, 'utf8'));
const bits = (b: Buffer, unused = 0) => der(0x03, Buffer.concat([Buffer.from([unused]), b]));
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [a * 40 + b];
  for (const n of rest) {
    const parts = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) parts.unshift((v & 0x7f) | 0x80);
    out.push(...parts);
  }
  return der(0x06, Buffer.from(out));
}
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050
    ? der(0x17, Buffer.from(`${iso.slice(2)}Z`))
    : der(0x18, Buffer.from(`${iso}Z`));
}
const name = (cn: string) =>
  seq(set(seq(oid('2.5.4.10'), utf8('Kylix'))), set(seq(oid('2.5.4.3'), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

/** The SubjectKeyIdentifier of a public key: SHA-1 of its key bits (RFC 5280 method 1). */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

interface CertInput {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signer: KeyObject;
  issuerKeyId: Buffer;
  ca: boolean;
  sans: string[];
  days: number;
}

function certificate(c: CertInput): string {
  const spki = c.publicKey.export({ type: 'spki', format: 'der' });
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const notBefore = new Date(Date.now() - 3600_000);
  const notAfter = new Date(Date.now() + c.days * 86400_000);
  const extensions = [
    ext('2.5.29.19', true, c.ca ? seq(bool(true)) : seq()),
    // keyUsage: digitalSignature (+ keyCertSign, cRLSign for the CA)
    ext('2.5.29.15', true, c.ca ? bits(Buffer.from([0x86]), 1) : bits(Buffer.from([0x80]), 7)),
    ext('2.5.29.14', false, octets(keyId(spki))),
    ext('2.5.29.35', false, seq(der(0x80, c.issuerKeyId))),
  ];
  if (!c.ca) {
    extensions.push(ext('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))));
    const names = c.sans.map((s) => {
      const ip = isIP(s);
      if (ip === 4) return der(0x87, Buffer.from(s.split('.').map(Number)));
      if (ip === 6) return der(0x87, ipv6Bytes(s));
      return der(0x82, Buffer.from(s, 'ascii'));
    });
    extensions.push(ext('2.5.29.17', false, seq(...names)));
  }
  const tbs = seq(
    der(0xa0, int(Buffer.from([2]))),
    int(serial),
    ECDSA_SHA256,
    name(c.issuer),
    seq(time(notBefore), time(notAfter)),
    name(c.subject),
    spki,
    der(0xa3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, c.signer);
  const cert = seq(tbs, ECDSA_SHA256, bits(signature));
  return `-----BEGIN CERTIFICATE-----\n${cert
    .toString('base64')
    .replace(/.{64}/g, '$&\n')
    .trimEnd()}\n-----END CERTIFICATE-----\n`;
}

function ipv6Bytes(s: string): Buffer {
  const [head, tail = ''] = s.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = s.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** A certificate and key for the API server, and the CA that clients should trust. */
export interface TlsPair {
  cert: string;
  key: string;
  /** The CA certificate (PEM) kubeconfigs carry: the generated CA, or the given certificate itself. */
  ca: string;
  /** Set when this start made the pair: the caller prints the CA once. */
  created?: { dir: string };
}

/** The names a generated server certificate is valid for: loopback, this host, and KYLIX_TLS_SANS. */
export function defaultSans(apiHost: string): string[] {
  const extra = (process.env.KYLIX_TLS_SANS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bound = apiHost && apiHost !== '0.0.0.0' && apiHost !== '::' ? [apiHost] : [];
  return [...new Set(['localhost', '127.0.0.1', '::1', hostname(), ...bound, ...extra])];
}

/** Makes a private CA and a server certificate it signs for `sans` (valid ten years). */
export function generateTlsPair(sans: string[]): {
  caCert: string;
  caKey: string;
  cert: string;
  key: string;
} {
  const ca = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const server = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const caId = keyId(ca.publicKey.export({ type: 'spki', format: 'der' }));
  const subject = `kylix-ca-${randomBytes(4).toString('hex')}`;
  const caCert = certificate({
    subject,
    issuer: subject,
    publicKey: ca.publicKey,
    signer: ca.privateKey,
    issuerKeyId: caId,
    ca: true,
    sans: [],
    days: 3650,
  });
  const cert = certificate({
    subject: 'kylix-api',
    issuer: subject,
    publicKey: server.publicKey,
    signer: ca.privateKey,
    issuerKeyId: caId,
    ca: false,
    sans,
    days: 3650,
  });
  const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { caCert, caKey: pem(ca.privateKey), cert, key: pem(server.privateKey) };
}

/**
 * The API's TLS pair: from --tls-cert/--tls-key when given (both), else `<dataDir>/tls/`, made there
 * on first start.
 */
export function loadTls(options: {
  certFile?: string;
  keyFile?: string;
  dataDir: string;
  apiHost: string;
}): TlsPair {
  if (options.certFile || options.keyFile) {
    if (!options.certFile || !options.keyFile)
      throw new KylixError('ERR_BAD_REQUEST', '--tls-cert and --tls-key go together: give both files (PEM).');
    const cert = readFileSync(options.certFile, 'utf8');
    const key = readFileSync(options.keyFile, 'utf8');
    createPublicKey(key); // a key that does not parse fails here, with the file named below
    const caFile = process.env.KYLIX_TLS_CA_FILE;
    return { cert, key, ca: caFile ? readFileSync(caFile, 'utf8') : cert };
  }
  const dir = join(options.dataDir, 'tls');
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
  if (existsSync(files.cert) && existsSync(files.key) && existsSync(files.ca))
    return {
      cert: readFileSync(files.cert, 'utf8'),
      key: readFileSync(files.key, 'utf8'),
      ca: readFileSync(files.ca, 'utf8'),
    };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made = generateTlsPair(defaultSans(options.apiHost));
  writeFileSync(files.ca, made.caCert);
  writeFileSync(join(dir, 'ca.key'), made.caKey, { mode: 0o600 });
  writeFileSync(files.cert, made.cert);
  writeFileSync(files.key, made.key, { mode: 0o600 });
  chmodSync(files.key, 0o600);
  return { cert: made.cert, key: made.key, ca: made.caCert, created: { dir } };
}
