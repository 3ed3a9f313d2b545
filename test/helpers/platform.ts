/**
 * Test harness: a real Kylix node on port 0 in a temporary data folder, and helpers to write
 * functions to disk and apply them as a user would.
 */

import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { applyManifests } from '../../src/cli/apply.js';
import { ApiClient } from '../../src/cli/client.js';
import type { Installation } from '../../src/config/installation.js';
import { type Platform, startPlatform } from '../../src/platform.js';
import type { IsolationOptions } from '../../src/runtime/isolation/isolation.js';
import type { ConsumerOptions } from '../../src/triggers/queue-consumer.js';
import { tempDir } from './temp-dir.js';

/** A running node plus a client for it. */
export interface TestNode {
  platform: Platform;
  client: ApiClient;
  dataDir: string;
  /** gateway URL + path. */
  url(path: string): string;
  /** Stops the node (the data folder stays, for restart tests). */
  stop(): Promise<void>;
  /** Stops the node and removes its data. */
  destroy(): Promise<void>;
}

/** Starts a node; pass a dataDir to restart on existing state. */
export async function startNode(
  options: {
    dataDir?: string;
    token?: string;
    /** Keep the bootstrap admin token in this file (as `kylix server` does) instead of `token`. */
    adminTokenFile?: string;
    isolation?: IsolationOptions;
    installation?: Installation;
    namespace?: string;
    consumer?: Partial<ConsumerOptions>;
    /** Receives the node's own log lines (dropped otherwise). */
    log?: (message: string, level?: string, fields?: Record<string, unknown>) => void;
  } = {},
): Promise<TestNode> {
  const dataDir = options.dataDir ?? tempDir('test');
  const platform = await startPlatform({
    dataDir,
    gatewayHost: '127.0.0.1',
    gatewayPort: 0,
    apiHost: '127.0.0.1',
    apiPort: 0,
    token: options.token,
    adminTokenFile: options.adminTokenFile,
    isolation: options.isolation,
    installation: options.installation,
    consumer: options.consumer,
    log: options.log ?? (() => {}),
  });
  const client = new ApiClient({
    server: platform.apiUrl,
    token: options.token,
    namespace: options.namespace ?? 'default',
  });
  return {
    platform,
    client,
    dataDir,
    url: (path) => `${platform.gatewayUrl}${path}`,
    stop: () => platform.close(),
    async destroy() {
      await platform.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A temporary project folder with files written from a map of relative path → content. */
export function writeProject(files: Record<string, string>): string {
  const dir = tempDir('app');
  for (const [rel, content] of Object.entries(files)) {
    const path = join(dir, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}

/** A one-function manifest. */
export function functionManifest(name: string, source: string, routes: string[], extra = ''): string {
  return [
    'apiVersion: kylix.dev/v1',
    'kind: Function',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  source: ${source}`,
    '  routes:',
    ...routes.map((r) => `    - path: ${r}`),
    extra,
  ].join('\n');
}

/** Applies the manifests under `path` and waits for readiness, quietly. */
export async function apply(node: TestNode, path: string) {
  return applyManifests(node.client, [path], { out: () => {} });
}
