/**
 * `kylix kubeconfig`: a kubeconfig for this installation's control API, so kubectl works against it
 * (`kylix kubeconfig > kc; kubectl --kubeconfig kc get kylix`). The server and token come from the
 * usual flags, env and config file; the CA from --ca-file, else the one `kylix server` made in
 * `<data>/tls/ca.crt`; the token, when none is given, from `<data>/admin-token`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { KylixError } from '../../errors.js';
import type { ClientConfig } from '../client.js';

/** Flags of kubeconfig. */
export interface KubeconfigFlags {
  caFile?: string;
  dataDir?: string;
  /** The name of the cluster, user and context entries. */
  name?: string;
}

/** Builds the kubeconfig (YAML) for `config` (server, token, namespace). */
export function kubeconfigCommand(config: ClientConfig, flags: KubeconfigFlags): string {
  const dataDir = resolve(flags.dataDir ?? process.env.KYLIX_DATA_DIR ?? '.kylix');
  const https = config.server.startsWith('https://');
  const caFile = flags.caFile ?? join(dataDir, 'tls', 'ca.crt');
  let ca: string | undefined;
  if (https) {
    if (!existsSync(caFile))
      throw new KylixError(
        'ERR_NOT_FOUND',
        `${config.server} uses HTTPS, and there is no CA certificate at ${caFile}. Pass --ca-file (the CA that signed the server's certificate) or --data-dir (the server's data folder).`,
      );
    ca = readFileSync(caFile, 'utf8');
  }
  const tokenFile = join(dataDir, 'admin-token');
  const token = config.token ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  if (token && !https)
    process.stderr.write(
      'kylix kubeconfig: the server is plain HTTP; kubectl will not send the token over it. Serve the API with TLS (kylix server does by default).\n',
    );
  const name = flags.name ?? 'kylix';
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server: config.server,
          ...(ca ? { 'certificate-authority-data': Buffer.from(ca).toString('base64') } : {}),
        },
      },
    ],
    users: [{ name, user: token ? { token } : {} }],
    contexts: [{ name, context: { cluster: name, user: name, namespace: config.namespace } }],
    'current-context': name,
    preferences: {},
  });
}
