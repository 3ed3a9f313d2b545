/**
 * Where a Kubernetes-backed installation keeps the bundles `kylix apply` uploads, so every node
 * can run what any node was given: a ConfigMap per bundle in the installation's namespace when it
 * fits (ConfigMaps hold at most 1 MiB), otherwise the installation's Bucket backend (S3 on a
 * fleet). A Function applied with kubectl can then name an uploaded bundle by digest alone
 * (`spec.bundle: { sha256 }`).
 */
import type { BucketProvider } from '../bindings/bucket/interface.js';
import type { SharedBundles } from '../control-plane/bundles.js';
import { KylixError } from '../errors.js';
import { isStatus, type KubeClient } from './client.js';
import { MANAGED_BY } from './secrets.js';

/** Bundles up to this size go in a ConfigMap (base64 in etcd stays under its 1.5 MiB request limit). */
export const CONFIGMAP_BUNDLE_MAX = 768 * 1024;

/**
 * The namespace that holds the installation's own cluster objects (bundle ConfigMaps, the leader
 * Leases) unless `backends.state.namespace` (KYLIX_KUBE_NAMESPACE) names another: the Helm chart
 * names its release namespace, where its Role grants Leases.
 */
export const SYSTEM_NAMESPACE = 'kylix-system';

/**
 * The Bucket that holds bundles too large for a ConfigMap: a name in the Bucket backend (S3), not a
 * cluster namespace, so it stays the same whatever namespace the installation runs in.
 */
const BUNDLE_BUCKET = { namespace: SYSTEM_NAMESPACE, name: 'bundles' };

/** The ConfigMap name of a bundle: its digest's hex (a DNS subdomain of 78 characters). */
export const bundleConfigMapName = (digest: string) => `kylix-bundle-${digest.replace(/^sha256:/, '')}`;

/** See the file comment. */
export class KubeBundles implements SharedBundles {
  private bucket?: () => Promise<BucketProvider>;

  constructor(
    private readonly client: KubeClient,
    /** The cluster namespace of the bundle ConfigMaps (see SYSTEM_NAMESPACE). */
    readonly namespace: string = SYSTEM_NAMESPACE,
  ) {}

  /** Gives the Bucket backend for large bundles (the node opens its providers after its store). */
  useBucket(open: () => Promise<BucketProvider>): void {
    this.bucket = open;
  }

  async getBundle(digest: string): Promise<Buffer | undefined> {
    const path = `/api/v1/namespaces/${this.namespace}/configmaps/${bundleConfigMapName(digest)}`;
    try {
      const cm = await this.client.request<{ binaryData?: Record<string, string> }>('GET', path);
      const b64 = cm.binaryData?.['bundle.mjs'];
      if (b64 !== undefined) return Buffer.from(b64, 'base64');
    } catch (err) {
      if (!isStatus(err, 404)) throw err;
    }
    if (!this.bucket) return undefined;
    const got = await (await this.bucket()).get(BUNDLE_BUCKET, digest.replace(/^sha256:/, ''));
    if (!got?.body) return undefined;
    const chunks: Uint8Array[] = [];
    for await (const c of got.body) chunks.push(c);
    return Buffer.concat(chunks);
  }

  async putBundle(digest: string, code: Buffer): Promise<void> {
    if (code.length > CONFIGMAP_BUNDLE_MAX) {
      if (!this.bucket)
        throw new KylixError(
          'ERR_BUNDLE_TOO_LARGE',
          `The bundle is ${(code.length / 2 ** 20).toFixed(1)} MiB; on Kubernetes, bundles over ${CONFIGMAP_BUNDLE_MAX / 1024} KiB go to the Bucket backend, which this node has not opened.`,
        );
      const bucket = await this.bucket();
      await bucket.ensure(BUNDLE_BUCKET);
      await bucket.put(BUNDLE_BUCKET, digest.replace(/^sha256:/, ''), code, {
        httpMetadata: { contentType: 'text/javascript' },
      });
      return;
    }
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: bundleConfigMapName(digest),
        namespace: this.namespace,
        labels: { ...MANAGED_BY, 'kylix.dev/bundle': 'true' },
        annotations: { 'kylix.dev/digest': digest },
      },
      // Immutable: a digest's bytes never change, and the cluster then need not watch it.
      immutable: true,
      binaryData: { 'bundle.mjs': code.toString('base64') },
    };
    const create = () =>
      this.client.request('POST', `/api/v1/namespaces/${this.namespace}/configmaps`, { body });
    try {
      await create();
    } catch (err) {
      if (isStatus(err, 409)) return;
      if (!isStatus(err, 404)) throw err;
      await this.client.ensureNamespace(this.namespace);
      await create().catch((e) => {
        if (!isStatus(e, 409)) throw e;
      });
    }
  }
}
