/**
 * The installation's config: which backend serves each resource kind, the way a StorageClass works
 * in Kubernetes. Manifests never name a backend, so the same app runs embedded on a laptop and on
 * a fleet. Read from `kylix server --config kylix.yaml`, then overridden by KYLIX_* env vars.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ALL_BINDING_KINDS, type BINDING_KINDS } from '../bindings/registry.js';
import { decodeKey } from '../control-plane/secret-key-file.js';
import { KylixError } from '../errors.js';
import type { BindingKindName } from '../resources/binding-kinds.js';
import { issuesToCauses } from '../resources/validate.js';

const url = (schemes: string[]) =>
  z
    .string()
    .refine(
      (u) => schemes.some((s) => u.startsWith(`${s}://`)),
      `must be a URL starting with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    );

const embedded = z.strictObject({ provider: z.literal('embedded') });

/** Each binding kind's section (`backends.keyValue`, …), as its kind declares it (bindings/<kind>/kind.ts). */
const kindSections = Object.fromEntries(ALL_BINDING_KINDS.map((k) => [k.name, k.config])) as {
  [K in BindingKindName]: (typeof BINDING_KINDS)[K]['config'];
};

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
          /**
           * A Kubernetes API server: every kind a custom resource (kylix crds), Secrets native,
           * leader election by Lease. In a pod, its service account; outside, a kubeconfig.
           */
          z.strictObject({
            provider: z.literal('kubernetes'),
            /** A kubeconfig file (default: KUBECONFIG, else in-cluster, else ~/.kube/config). */
            kubeconfig: z.string().min(1).optional(),
            /** A context of that kubeconfig (default: its current context). */
            context: z.string().min(1).optional(),
            /**
             * The installation's own namespace on the cluster: leader Leases and bundle ConfigMaps
             * (the Helm chart sets its release namespace; KYLIX_KUBE_NAMESPACE overrides it).
             */
            namespace: z
              .string()
              .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a namespace name (a DNS label)')
              .max(63)
              .default('kylix-system'),
          }),
        ])
        .default({ provider: 'embedded' }),
      ...kindSections,
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

/** Env vars that switch a kind to its fleet backend: the state store's, then each binding kind's. */
const ENV_OVERRIDES: Record<
  string,
  (value: string, c: Record<string, unknown>, env: NodeJS.ProcessEnv) => void
> = {
  KYLIX_STATE_URL: (v, c, env) => {
    c.state = {
      provider: 'postgres',
      url: v,
      ...(env.KYLIX_STATE_SCHEMA ? { schema: env.KYLIX_STATE_SCHEMA } : {}),
    };
  },
  // "kubernetes": the cluster the node runs in (or KUBECONFIG's); KYLIX_KUBE_CONTEXT picks a context.
  KYLIX_STATE_PROVIDER: (v, c, env) => {
    if (v === 'kubernetes')
      c.state = {
        provider: 'kubernetes',
        ...(env.KYLIX_KUBE_CONTEXT ? { context: env.KYLIX_KUBE_CONTEXT } : {}),
      };
    else c.state = { ...(c.state as object), provider: v };
  },
  // After KYLIX_STATE_PROVIDER (entries apply in order): the namespace of a kubernetes state
  // backend, from the file or the environment (meaningless for the other providers: left out).
  KYLIX_KUBE_NAMESPACE: (v, c) => {
    const state = c.state as { provider?: unknown } | undefined;
    if (state?.provider === 'kubernetes') c.state = { ...state, namespace: v };
  },
  ...Object.fromEntries(
    ALL_BINDING_KINDS.flatMap((k) =>
      Object.entries(k.env).map(([name, section]) => [
        name,
        (v: string, c: Record<string, unknown>, env: NodeJS.ProcessEnv) => {
          c[k.name] = section(v, env);
        },
      ]),
    ),
  ),
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
  const backends = { ...((raw.backends as Record<string, unknown>) ?? {}) };
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
