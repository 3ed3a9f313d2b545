/**
 * `kylix types [DIR]`: writes the TypeScript type of each function's `env` from its manifest (as
 * `wrangler types` writes worker-configuration.d.ts): its vars and secrets as strings, each binding
 * as the Workers-shaped object it is, and the assets binding. The binding shapes are declared in the
 * file itself (namespace Kylix), so it needs no other package.
 */
import { statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KylixError } from '../../errors.js';
import { BINDING_RESOURCE_KINDS } from '../../resources/binding-kinds.js';
import type { FunctionSpec } from '../../resources/kinds.js';
import { validateObject } from '../../resources/validate.js';
import { loadAndValidate } from '../apply.js';

/** The binding objects' shapes, as they are in the sandbox (src/sandbox/bindings/). */
const RUNTIME_TYPES = `declare namespace Kylix {
  type KeyValueType = 'text' | 'json' | 'arrayBuffer' | 'stream';
  /** A KeyValue binding (Workers KV). */
  interface KeyValue {
    get(key: string, type?: KeyValueType | { type?: KeyValueType }): Promise<any>;
    getWithMetadata(key: string, type?: KeyValueType | { type?: KeyValueType }): Promise<{ value: any; metadata: unknown }>;
    put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream, options?: { expirationTtl?: number; expiration?: number; metadata?: unknown }): Promise<void>;
    delete(key: string): Promise<void>;
    list(options?: { prefix?: string; limit?: number; cursor?: string }): Promise<{ keys: { name: string; expiration?: number; metadata?: unknown }[]; list_complete: boolean; cursor?: string }>;
  }
  /** A Queue producer binding (Workers Queues). */
  interface Queue<Body = unknown> {
    send(body: Body, options?: { contentType?: 'json' | 'text' | 'bytes' | 'v8'; delaySeconds?: number }): Promise<void>;
    /** At most 100 messages per batch, as on Workers. */
    sendBatch(messages: Iterable<{ body: Body; contentType?: 'json' | 'text' | 'bytes' | 'v8'; delaySeconds?: number }>): Promise<void>;
  }
  /** A Bucket binding (R2). */
  interface Bucket {
    get(key: string, options?: Record<string, unknown>): Promise<any | null>;
    put(key: string, value: string | ArrayBuffer | ArrayBufferView | ReadableStream | Blob | null, options?: Record<string, unknown>): Promise<any>;
    head(key: string): Promise<any | null>;
    delete(keys: string | string[]): Promise<void>;
    list(options?: { prefix?: string; delimiter?: string; cursor?: string; limit?: number }): Promise<{ objects: any[]; delimitedPrefixes: string[]; truncated: boolean; cursor?: string }>;
  }
  /** A Database binding (PostgreSQL dialect). */
  interface Database {
    query<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: Row[]; rowCount: number; fields: { name: string }[] }>;
    batch(statements: { sql: string; params?: unknown[] }[]): Promise<{ rows: Record<string, unknown>[]; rowCount: number }[]>;
    transaction<T>(work: (tx: Pick<Database, 'query'>) => Promise<T>): Promise<T>;
    [more: string]: any;
  }
  /** The static assets binding (spec.assets.binding): fetch() answers from the deployed files. */
  interface Assets {
    fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  }
}
`;

const TYPE_OF: Record<string, string> = {
  database: 'Kylix.Database',
  keyValue: 'Kylix.KeyValue',
  queue: 'Kylix.Queue',
  bucket: 'Kylix.Bucket',
  secret: 'string',
};

/** "order-events" → "OrderEvents". */
const pascal = (name: string) =>
  name
    .split(/[^A-Za-z0-9]/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');

/** The TypeScript type of a typed var's JSON value: number, boolean, null, T[] or { key: T }. */
function typeOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) {
    const items = [...new Set(v.map(typeOfValue))];
    if (items.length === 0) return 'unknown[]';
    return items.length === 1 ? `${items[0]}[]` : `(${items.join(' | ')})[]`;
  }
  if (typeof v === 'object') {
    const fields = Object.entries(v as object).map(
      ([k, x]) => `${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${typeOfValue(x)}`,
    );
    return fields.length ? `{ ${fields.join('; ')} }` : 'Record<string, never>';
  }
  return typeof v === 'number' || typeof v === 'boolean' ? typeof v : 'string';
}

/** The interface of one function's env. */
function envInterface(name: string, spec: FunctionSpec, typeName: string): string {
  const fields: string[] = [];
  for (const key of Object.keys(spec.env).sort()) fields.push(`  ${key}: string;`);
  for (const [key, value] of Object.entries(spec.vars ?? {}).sort(([a], [b]) => a.localeCompare(b)))
    fields.push(`  ${key}: ${typeOfValue(value)};`);
  for (const [key, binding] of Object.entries(spec.bindings).sort(([a], [b]) => a.localeCompare(b))) {
    const kind = Object.keys(binding).find((k) => k in BINDING_RESOURCE_KINDS || k === 'secret') ?? 'secret';
    const target = (binding as Record<string, string>)[kind];
    fields.push(`  /** ${kind} "${target}" */\n  ${key}: ${TYPE_OF[kind] ?? 'unknown'};`);
  }
  if (spec.assets?.binding)
    fields.push(`  /** spec.assets (${spec.assets.directory}) */\n  ${spec.assets.binding}: Kylix.Assets;`);
  return `/** env of function "${name}". */\ninterface ${typeName} {${fields.length ? `\n${fields.join('\n')}\n` : ' '}}\n`;
}

/** Writes the typings; returns what it wrote. */
export function typesCommand(dir: string, options: { output?: string; function?: string } = {}): string[] {
  const functions = loadAndValidate([dir])
    .filter((d) => d.object.kind === 'Function')
    .map((d) => ({
      name: (d.object.metadata as { name: string }).name,
      spec: validateObject(d.object).spec as FunctionSpec,
    }))
    .filter((f) => !options.function || f.name === options.function);
  if (functions.length === 0)
    throw new KylixError(
      'ERR_MANIFEST_UNREADABLE',
      options.function
        ? `No Function "${options.function}" in ${dir}.`
        : `No Function in the manifests of ${dir}.`,
    );
  // One function's env is `Env`, as in Workers projects; several get one interface each.
  const one = functions.length === 1;
  const interfaces = functions.map((f) => envInterface(f.name, f.spec, one ? 'Env' : `${pascal(f.name)}Env`));
  const text = `// Generated by \`kylix types\` from the manifests in ${dir}; run it again after changing them.\n\n${interfaces.join('\n')}\n${RUNTIME_TYPES}`;
  const out = options.output ?? join(statSync(dir).isDirectory() ? dir : dirname(dir), 'kylix-env.d.ts');
  writeFileSync(out, text);
  return [`wrote ${out}: ${functions.map((f) => (one ? 'Env' : `${pascal(f.name)}Env`)).join(', ')}`];
}
