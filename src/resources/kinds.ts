/**
 * The kylix.dev/v1 kinds: one zod schema per kind's spec, with defaults, in one place. Validation,
 * the JSON Schemas for editors and (later) the Kubernetes CRDs are all derived from these.
 */
import { z } from 'zod';
import { assetsSpec } from './assets.js';
import {
  formatBytes,
  MAX_BINDINGS,
  MAX_EGRESS_ALLOW,
  MAX_ENV,
  MAX_ENV_VALUE_BYTES,
  MAX_INLINE_CODE_BYTES,
  MAX_ROUTES,
  MAX_SECRET_BYTES,
  MAX_SECRET_KEYS,
  MAX_VAR_VALUE_BYTES,
  MAX_VARS,
} from './limits.js';
import { dnsLabel } from './meta.js';

/** A record schema with at most `max` entries; the JSON Schema carries it as maxProperties. */
function capped<T extends z.ZodType>(record: T, max: number, what: string) {
  return record
    .refine((r) => Object.keys(r as object).length <= max, `must hold at most ${max} ${what}`)
    .meta({ maxProperties: max });
}

const envName = z
  .string()
  .max(256, 'must be at most 256 characters')
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a valid environment variable name (letters, digits, "_")');

/**
 * Why `v` is not a JSON value (a finite number, a boolean, null, a string, an array or plain
 * object of them), or undefined when it is one. A YAML document can hold .inf, dates or tagged
 * values that a Workers var cannot.
 */
function notJson(v: unknown, depth = 0): string | undefined {
  if (depth > 64) return 'must nest at most 64 levels deep';
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : 'must be a finite number';
  if (Array.isArray(v)) {
    for (const x of v) {
      const why = notJson(x, depth + 1);
      if (why) return why;
    }
    return undefined;
  }
  if (typeof v === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
    for (const x of Object.values(v)) {
      const why = notJson(x, depth + 1);
      if (why) return why;
    }
    return undefined;
  }
  return 'must be a JSON value: a number, boolean, null, string, array or object';
}

/** One typed var: any JSON value, at most MAX_VAR_VALUE_BYTES as JSON. */
const varValue = z.unknown().superRefine((v, ctx) => {
  if (v === undefined) return void ctx.addIssue({ code: 'custom', message: 'is required' });
  const why = notJson(v);
  if (why) return void ctx.addIssue({ code: 'custom', message: why });
  if (Buffer.byteLength(JSON.stringify(v)) > MAX_VAR_VALUE_BYTES)
    ctx.addIssue({
      code: 'custom',
      message: `a value must be at most ${formatBytes(MAX_VAR_VALUE_BYTES)} as JSON`,
    });
});

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** A route pattern: "/exact", "/users/:id" or "/static/*" (a trailing "*" only). */
export const routePath = z
  .string()
  .max(1024, 'must be at most 1024 characters')
  .refine((p) => p.startsWith('/'), 'must start with "/"')
  .refine(
    (p) => !p.includes('*') || (p.endsWith('/*') && !p.slice(0, -1).includes('*')),
    'may contain "*" only as its whole last segment ("/path/*")',
  )
  .refine(
    (p) => p.split('/').every((s) => !s.startsWith(':') || /^:[A-Za-z_][A-Za-z0-9_]*$/.test(s)),
    'a parameter segment must look like ":name"',
  );

const routeSchema = z.strictObject({
  path: routePath,
  methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
  host: z
    .string()
    .regex(
      /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d+)?$/,
      'must be a host name such as "shop.example.com" or "*.example.com"',
    )
    .optional(),
});

const isTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const bindingSchema = z.union(
  [
    z.strictObject({ database: dnsLabel }),
    z.strictObject({ keyValue: dnsLabel }),
    z.strictObject({ queue: dnsLabel }),
    z.strictObject({ bucket: dnsLabel }),
    z.strictObject({ secret: dnsLabel, key: z.string().optional() }),
  ],
  { error: 'must name exactly one resource: { database | keyValue | queue | bucket | secret: <name> }' },
);

/** A bundle's content address: "sha256:" and 64 hex digits (the 64 hex digits alone are accepted too). */
const bundleDigest = z
  .string()
  .regex(/^(sha256:)?[a-f0-9]{64}$/, 'must be "sha256:" and 64 lowercase hex digits (the bundle\'s SHA-256)');

/** Where a node fetches a bundle from: an https URL (http only for a loopback or cluster-local host). */
const bundleUrl = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .refine((u) => {
    try {
      const url = new URL(u);
      return url.protocol === 'https:' || url.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL');

/**
 * Exactly one way to give the code, as the user writes the Function: `source` (bundled by
 * `kylix apply`, which then records the digest in `bundle`), `code` (inline) or `bundle` (a
 * reference: `url` and `sha256`, or only `sha256` when the bundle is already in the
 * installation's bundle store).
 */
function oneCodeSource(
  spec: { source?: unknown; code?: unknown; bundle?: unknown },
  ctx: z.RefinementCtx,
): void {
  const ref = typeof spec.bundle === 'object' ? (spec.bundle as { url?: unknown }) : undefined;
  if (spec.code !== undefined && (spec.source !== undefined || spec.bundle !== undefined))
    ctx.addIssue({
      code: 'custom',
      path: ['code'],
      message: 'give the code one way only: source, code or bundle (not code together with another)',
    });
  else if (ref?.url !== undefined && spec.source !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['bundle', 'url'],
      message: 'give the code one way only: source (bundled by kylix apply) or bundle.url, not both',
    });
  else if (spec.source === undefined && spec.code === undefined && spec.bundle === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['source'],
      message:
        'is required: give the code as source (a file or folder, bundled by kylix apply), code (an inline ES module) or bundle ({ url, sha256 })',
    });
}

/** spec of a Function: its code, routes, bindings, limits, scaling and triggers. */
/** The Workers compatibility flags a Function may name (spec.compatibilityFlags). */
export const COMPATIBILITY_FLAGS = ['nodejs_compat', 'nodejs_compat_v2'] as const;

export const functionSpec = z
  .strictObject({
    /** A file or folder, relative to the manifest; bundled by `kylix apply`. */
    source: z.string().min(1, 'must name a file or folder').optional(),
    /** The code inline: one ES module's source text, for small functions applied with kubectl. */
    code: z
      .string()
      .min(1, 'must not be empty')
      .refine(
        (c) => c.length <= MAX_INLINE_CODE_BYTES / 3 || Buffer.byteLength(c) <= MAX_INLINE_CODE_BYTES,
        `must be at most ${formatBytes(MAX_INLINE_CODE_BYTES)}; give larger code as source or bundle`,
      )
      .meta({ maxLength: MAX_INLINE_CODE_BYTES })
      .optional(),
    /**
     * The bundle: its content address (sha256:<hex>, which `kylix apply` writes for source), or a
     * reference { url, sha256 } that nodes fetch and verify by digest.
     */
    bundle: z
      .union([bundleDigest, z.strictObject({ url: bundleUrl.optional(), sha256: bundleDigest })])
      .optional(),
    routes: z.array(routeSchema).max(MAX_ROUTES, `must hold at most ${MAX_ROUTES} routes`).default([]),
    env: capped(
      z.record(
        envName,
        z
          .string({
            error: (issue) =>
              issue.input === undefined
                ? 'is required'
                : `must be a string: quote it (${JSON.stringify(String(issue.input))})`,
          })
          .refine(
            (v) => v.length <= MAX_ENV_VALUE_BYTES / 3 || Buffer.byteLength(v) <= MAX_ENV_VALUE_BYTES,
            `a value must be at most ${formatBytes(MAX_ENV_VALUE_BYTES)}`,
          )
          .meta({ maxLength: MAX_ENV_VALUE_BYTES }),
      ),
      MAX_ENV,
      'environment variables',
    ).default({}),
    /**
     * Typed vars, as wrangler's [vars] holds them: numbers, booleans, null, arrays and objects reach
     * env as those values (env.RETRIES === 3), not as text. Strings may be here too.
     */
    vars: capped(z.record(envName, varValue), MAX_VARS, 'vars').optional(),
    bindings: capped(z.record(envName, bindingSchema), MAX_BINDINGS, 'bindings').default({}),
    /** A folder of static files served before the function runs (see resources/assets.ts). */
    assets: assetsSpec.optional(),
    /**
     * Workers compatibility flags Kylix honours: nodejs_compat (or _v2) gives the bundled code a
     * global `process`, as Workers does under it (the node:* modules are offered either way).
     */
    compatibilityFlags: z
      .array(
        z.enum(COMPATIBILITY_FLAGS, {
          error: `Kylix honours only ${COMPATIBILITY_FLAGS.join(' and ')}; other Workers flags have no effect here, so leave them out`,
        }),
      )
      .max(COMPATIBILITY_FLAGS.length)
      .optional(),
    limits: z
      .strictObject({
        cpuMs: z.number().int().min(10).max(300_000).default(1000),
        timeoutMs: z.number().int().min(10).max(900_000).default(30_000),
        memoryMiB: z.number().int().min(16).max(4096).default(128),
        maxRequestBytes: z
          .number()
          .int()
          .min(0)
          .max(1024 ** 3)
          .default(10 * 1024 * 1024),
        maxConcurrency: z.number().int().min(1).max(100_000).default(1000),
      })
      .prefault({}),
    scaling: z
      .strictObject({
        minInstances: z.number().int().min(0).default(0),
        maxInstances: z.number().int().min(1).default(10),
        targetConcurrency: z.number().int().min(1).default(100),
        idleSeconds: z.number().int().min(1).default(300),
      })
      .prefault({}),
    egress: z
      .strictObject({
        allow: z
          .array(z.string().max(253))
          .max(MAX_EGRESS_ALLOW, `must name at most ${MAX_EGRESS_ALLOW} hosts`)
          .default([]),
      })
      .prefault({}),
    triggers: z
      .strictObject({
        queue: z
          .strictObject({
            name: dnsLabel,
            batchSize: z.number().int().min(1).max(1000).default(10),
            maxRetries: z.number().int().min(0).max(100).default(3),
            deadLetter: dnsLabel.optional(),
          })
          .optional(),
        schedule: z
          .strictObject({
            cron: z
              .string()
              .refine((c) => c.trim().split(/\s+/).length === 5, 'must have five fields ("*/5 * * * *")'),
            timezone: z
              .string()
              .refine(isTimeZone, 'must be an IANA time zone such as "Europe/Berlin"')
              .default('UTC'),
          })
          .optional(),
      })
      .default({}),
    traffic: z
      .array(
        z
          .strictObject({
            revision: z.number().int().min(1).optional(),
            latestRevision: z.boolean().optional(),
            percent: z.number().int().min(0).max(100),
            tag: dnsLabel
              .refine((t) => !t.includes('--'), 'must not contain "--" (it separates the tag in host names)')
              .optional(),
          })
          .refine(
            (t) => (t.revision === undefined) !== (t.latestRevision !== true),
            'must name either a revision number or latestRevision: true',
          ),
      )
      .refine((list) => list.reduce((n, t) => n + t.percent, 0) === 100, 'the percents must add up to 100')
      .refine(
        (list) =>
          new Set(list.flatMap((t) => (t.tag ? [t.tag] : []))).size === list.filter((t) => t.tag).length,
        'tags must be unique',
      )
      .optional(),
    /** How many old revisions to keep (besides those taking traffic). */
    revisionHistoryLimit: z.number().int().min(0).max(1000).default(10),
  })
  .superRefine((spec, ctx) => {
    // env holds vars, typed vars, bindings and the assets binding side by side: one name, one thing.
    const vars = spec.vars ?? {};
    for (const key of Object.keys(vars))
      if (Object.hasOwn(spec.env, key) || Object.hasOwn(spec.bindings, key))
        ctx.addIssue({
          code: 'custom',
          path: ['vars', key],
          message: `"${key}" is already a name in spec.env or spec.bindings; choose another`,
        });
    const name = spec.assets?.binding;
    if (
      name &&
      (Object.hasOwn(spec.env, name) || Object.hasOwn(spec.bindings, name) || Object.hasOwn(vars, name))
    )
      ctx.addIssue({
        code: 'custom',
        path: ['assets', 'binding'],
        message: `"${name}" is already a name in spec.env, spec.vars or spec.bindings; choose another`,
      });
  })
  // Also when other fields are wrong: a missing source is reported with the rest, not after them.
  .superRefine(oneCodeSource, {
    when: (payload) => typeof payload.value === 'object' && payload.value !== null,
  });

/** spec of a Database: a PostgreSQL-dialect SQL database. */
export const databaseSpec = z.strictObject({
  /** A folder of .sql files, relative to the manifest, applied once each, in name order. */
  migrations: z.string().optional(),
  /** The files of that folder, read by `kylix apply` (the server cannot see the user's disk). */
  migrationFiles: z
    .array(z.strictObject({ name: z.string().regex(/\.sql$/, 'must be a .sql file name'), sql: z.string() }))
    .optional(),
});

/** spec of a KeyValue namespace. */
export const keyValueSpec = z.strictObject({
  defaultTtlSeconds: z.number().int().min(60).optional(),
});

/** spec of a Queue. */
export const queueSpec = z.strictObject({
  retentionHours: z
    .number()
    .int()
    .min(1)
    .default(24 * 7),
});

/** spec of a Bucket. */
export const bucketSpec = z.strictObject({});

/** A Secret key, as Kubernetes: letters, digits, "-", "_" and ".". */
const secretKey = z
  .string()
  .max(253, 'must be at most 253 characters')
  .regex(/^[-._a-zA-Z0-9]+$/, 'must be letters, digits, "-", "_" and "."');

/** The bytes of a Secret's values, decoded, as they will be sealed. */
function secretBytes(spec: { stringData?: Record<string, string>; data?: Record<string, string> }): number {
  let n = 0;
  for (const v of Object.values(spec.stringData ?? {})) n += Buffer.byteLength(v);
  for (const v of Object.values(spec.data ?? {})) n += Math.floor((v.replace(/=+$/, '').length * 3) / 4);
  return n;
}

/** spec of a Secret: values are write-only; the API never returns them. At most 1 MiB together. */
export const secretSpec = z
  .strictObject({
    stringData: capped(z.record(secretKey, z.string()), MAX_SECRET_KEYS, 'keys').optional(),
    data: capped(z.record(secretKey, z.base64()), MAX_SECRET_KEYS, 'keys').optional(),
  })
  .refine((s) => secretBytes(s) <= MAX_SECRET_BYTES, {
    message: `the values together must be at most ${formatBytes(MAX_SECRET_BYTES)}`,
    path: ['data'],
  });

/** How the API and CLI know a kind: its names and whether users may write it. */
export interface KindInfo {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  /** The spec schema; absent for server-written kinds. */
  spec?: z.ZodType;
  /** Server-written kinds (Revision, Event) are read-only through the API. */
  readOnly: boolean;
}

/** Every kind the API serves, keyed by kind name. */
export const KINDS: Record<string, KindInfo> = {
  Function: {
    kind: 'Function',
    plural: 'functions',
    singular: 'function',
    shortNames: ['fn', 'func'],
    spec: functionSpec,
    readOnly: false,
  },
  Database: {
    kind: 'Database',
    plural: 'databases',
    singular: 'database',
    shortNames: ['db'],
    spec: databaseSpec,
    readOnly: false,
  },
  KeyValue: {
    kind: 'KeyValue',
    plural: 'keyvalues',
    singular: 'keyvalue',
    shortNames: ['kv'],
    spec: keyValueSpec,
    readOnly: false,
  },
  Queue: {
    kind: 'Queue',
    plural: 'queues',
    singular: 'queue',
    shortNames: ['q'],
    spec: queueSpec,
    readOnly: false,
  },
  Bucket: {
    kind: 'Bucket',
    plural: 'buckets',
    singular: 'bucket',
    shortNames: [],
    spec: bucketSpec,
    readOnly: false,
  },
  Secret: {
    kind: 'Secret',
    plural: 'secrets',
    singular: 'secret',
    shortNames: [],
    spec: secretSpec,
    readOnly: false,
  },
  Revision: {
    kind: 'Revision',
    plural: 'revisions',
    singular: 'revision',
    shortNames: ['rev'],
    readOnly: true,
  },
  Event: { kind: 'Event', plural: 'events', singular: 'event', shortNames: ['ev'], readOnly: true },
};

/** Finds a kind by its kind name, plural, singular or short name (case-insensitive), as kubectl does. */
export function findKind(name: string): KindInfo | undefined {
  const n = name.toLowerCase();
  return Object.values(KINDS).find(
    (k) => k.kind.toLowerCase() === n || k.plural === n || k.singular === n || k.shortNames.includes(n),
  );
}

/** The digest a spec's `bundle` names ("sha256:<hex>"), whichever form it takes; undefined without one. */
export function bundleDigestOf(spec: { bundle?: FunctionSpec['bundle'] }): string | undefined {
  const b = spec.bundle;
  if (b === undefined) return undefined;
  const hex = typeof b === 'string' ? b : b.sha256;
  return hex.startsWith('sha256:') ? hex : `sha256:${hex}`;
}

/** A Function's spec after defaults. */
export type FunctionSpec = z.output<typeof functionSpec>;
/** One route of a Function. */
export type RouteSpec = FunctionSpec['routes'][number];
