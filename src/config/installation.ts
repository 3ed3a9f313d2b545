/**
 * The installation's config: which backend serves each resource kind, the way a StorageClass works
 * in Kubernetes. Manifests never name a backend, so the same app runs embedded on a laptop and on
 * a fleet. Read from `kylix server --config kylix.yaml`, then overridden by KYLIX_* env vars.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { decodeKey } from '../control-plane/secret-key-file.js';
import { KylixError } from '../errors.js';
import { issuesToCauses } from '../resources/validate.js';

const url = (schemes: string[]) =>
  z
    .string()
    .refine(
      (u) => schemes.some((s) => u.startsWith(`${s}://`)),
      `must be a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    );

const embedded = z.strictObject({ provider: z.literal('embedded') });

/** The config file's shape. */
export const installationSchema = z.strictObject({
  backends: z
    .strictObject({
      /** The control plane's own store: resources, revisions, status, sealed secrets, bundles. */
      state: z
        .discriminatedUnion('provider', [
          embedded,
          z.strictObject({
            provider: z.literal('postgres'),
            url: url(['postgres', 'postgresql']),
            /** One installation per schema; every node of it names the same one. */
            schema: z
              .string()
              .regex(
                /^[a-z_][a-z0-9_]{0,62}$/,
                'must be a lower-case PostgreSQL identifier (letters, digits, _)',
              )
              .default('kylix'),
          }),
        ])
        .default({ provider: 'embedded' }),
      keyValue: z
        .discriminatedUnion('provider', [
          embedded,
          z.strictObject({ provider: z.literal('redis'), url: url(['redis', 'rediss']) }),
        ])
        .default({ provider: 'embedded' }),
      database: z
        .discriminatedUnion('provider', [
          embedded,
          z.strictObject({
            provider: z.literal('postgres'),
            url: url(['postgres', 'postgresql']),
            /** How long one tenant statement may run before it is cancelled (default 30 s). */
            statementTimeoutMs: z.number().int().min(100).max(900_000).optional(),
          }),
        ])
        .default({ provider: 'embedded' }),
      queue: z
        .discriminatedUnion('provider', [
          embedded,
          z.strictObject({ provider: z.literal('nats'), url: url(['nats', 'tls']) }),
        ])
        .default({ provider: 'embedded' }),
      bucket: z
        .discriminatedUnion('provider', [
          embedded,
          z.strictObject({
            provider: z.literal('s3'),
            /** The one S3 bucket that holds every Bucket resource, each under its own prefix. */
            bucket: z.string().min(3),
            prefix: z.string().optional(),
            endpoint: url(['http', 'https']).optional(),
            region: z.string().default('us-east-1'),
            accessKeyId: z.string().optional(),
            secretAccessKey: z.string().optional(),
            forcePathStyle: z.boolean().default(true),
          }),
        ])
        .default({ provider: 'embedded' }),
    })
    .prefault({}),
  /** Secret values at rest: the keyring, current key first (KYLIX_SECRET_KEYS overrides it). */
  secrets: z
    .strictObject({
      keys: z
        .array(
          z.string().superRefine((k, ctx) => {
            const key = decodeKey(k);
            if (typeof key === 'string') ctx.addIssue({ code: 'custom', message: key });
          }),
        )
        .min(1, 'list at least one key (base64 of 32 bytes), the current one first'),
    })
    .optional(),
});

/** A validated installation config. */
export type Installation = z.output<typeof installationSchema>;

/** Env vars that switch a kind to its fleet backend. */
const ENV_OVERRIDES: Record<
  string,
  (value: string, c: Record<string, Record<string, unknown>>, env: NodeJS.ProcessEnv) => void
> = {
  KYLIX_STATE_URL: (v, c, env) => {
    c.state = {
      provider: 'postgres',
      url: v,
      ...(env.KYLIX_STATE_SCHEMA ? { schema: env.KYLIX_STATE_SCHEMA } : {}),
    };
  },
  KYLIX_REDIS_URL: (v, c) => {
    c.keyValue = { provider: 'redis', url: v };
  },
  KYLIX_POSTGRES_URL: (v, c) => {
    c.database = { provider: 'postgres', url: v };
  },
  KYLIX_NATS_URL: (v, c) => {
    c.queue = { provider: 'nats', url: v };
  },
  KYLIX_S3_ENDPOINT: (v, c, env) => {
    c.bucket = {
      provider: 's3',
      endpoint: v,
      bucket: env.KYLIX_S3_BUCKET ?? 'kylix',
      accessKeyId: env.KYLIX_S3_ACCESS_KEY_ID,
      secretAccessKey: env.KYLIX_S3_SECRET_ACCESS_KEY,
      region: env.KYLIX_S3_REGION ?? 'us-east-1',
    };
  },
};

/** Reads the config file (if any) and applies env overrides; every error names its field. */
export function loadInstallation(
  path: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Installation {
  let raw: Record<string, unknown> = {};
  if (path) {
    if (!existsSync(path))
      throw new KylixError('ERR_MANIFEST_UNREADABLE', `The config file ${path} does not exist.`);
    try {
      raw = (parseYaml(readFileSync(path, 'utf8')) as Record<string, unknown>) ?? {};
    } catch (err) {
      throw new KylixError('ERR_MANIFEST_INVALID', `${path} is not valid YAML: ${(err as Error).message}`);
    }
  }
  const backends = { ...((raw.backends as Record<string, Record<string, unknown>>) ?? {}) };
  for (const [name, apply] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value) apply(value, backends, env);
  }
  // KYLIX_SECRET_KEYS: comma-separated base64 keys, current first; for a fleet, the same on every node.
  const secretKeys = env.KYLIX_SECRET_KEYS?.split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  if (secretKeys?.length) raw = { ...raw, secrets: { ...(raw.secrets as object), keys: secretKeys } };
  const result = installationSchema.safeParse({ ...raw, backends });
  if (!result.success) {
    throw new KylixError(
      'ERR_MANIFEST_INVALID',
      `The installation config${path ? ` (${path})` : ''} is not valid.`,
      issuesToCauses(result.error.issues).map((c) =>
        secretKeys?.length && c.field.startsWith('secrets.keys')
          ? { ...c, field: `KYLIX_SECRET_KEYS${c.field.slice('secrets.keys'.length)}` }
          : c,
      ),
    );
  }
  return result.data;
}
