/**
 * The `kylix` command line: verbs and flags follow kubectl where kubectl has the same verb. It is a
 * client of the control API; the commands that run or inspect a node on this machine (dev, server,
 * doctor) live in src/server/ and are imported only when one of them runs.
 */
import { Command, Option } from 'commander';
import { describeError, KylixError } from '../errors.js';
import { BINDING_RESOURCE_KIND_LIST } from '../resources/binding-kinds.js';
import { findKind } from '../resources/kinds.js';
import { VERSION } from '../version.js';
import { applyManifests, deleteManifests } from './apply.js';
import { ApiClient, resolveConfig } from './client.js';
import { auditCommand, tokenCreateCommand, tokenListCommand, tokenRevokeCommand } from './commands/access.js';
import { crdsCommand } from './commands/crds.js';
import { bucketCommand, kvCommand, queueCommand, secretSetCommand } from './commands/data.js';
import { describeCommand } from './commands/describe.js';
import { getCommand } from './commands/get.js';
import { invokeCommand } from './commands/invoke.js';
import { kubeconfigCommand } from './commands/kubeconfig.js';
import { logsCommand } from './commands/logs.js';
import { historyCommand, trafficCommand, undoCommand } from './commands/rollout.js';
import { schemaCommand } from './commands/schema.js';
import { secretResealCommand, secretRotateKeyCommand } from './commands/secret.js';
import { sqlCommand } from './commands/sql.js';
import { topCommand } from './commands/top.js';

const program = new Command('kylix')
  .description('Kylix: run fetch-handler functions and their resources, on a laptop or a fleet.')
  .version(VERSION)
  .option('--server <url>', 'control API address (env KYLIX_SERVER; default http://127.0.0.1:8081)')
  .option('--token <token>', 'bearer token for the API (env KYLIX_TOKEN)')
  .option('-n, --namespace <ns>', 'namespace (env KYLIX_NAMESPACE; default "default")')
  .showHelpAfterError();

function client(): ApiClient {
  return new ApiClient(resolveConfig(program.opts()));
}

const collect = (v: string, prev: string[] = []) => [...prev, v];
/** Kinds whose data outlives the object unless deleted with --purge. */
const DATA_KINDS = new Set<string>(BINDING_RESOURCE_KIND_LIST);

const serveOptions = (cmd: Command) =>
  cmd
    .option('--host <host>', 'gateway address (env KYLIX_HOST)')
    .option('--port <port>', 'gateway port (env KYLIX_PORT; default 8080)')
    .option('--api-host <host>', 'control API address (env KYLIX_API_HOST; default: --host)')
    .option('--api-port <port>', 'control API port (env KYLIX_API_PORT; default 8081)')
    .option('--data-dir <dir>', 'data folder (env KYLIX_DATA_DIR; default .kylix)')
    .option('--tls-cert <file>', 'control API certificate, PEM (env KYLIX_TLS_CERT_FILE)')
    .option('--tls-key <file>', 'control API private key, PEM (env KYLIX_TLS_KEY_FILE)')
    .option(
      '--config <file>',
      'installation config: the backend of each resource kind, the secret keys (env KYLIX_CONFIG_FILE; KYLIX_POSTGRES_URL, KYLIX_REDIS_URL, KYLIX_NATS_URL, KYLIX_S3_ENDPOINT, KYLIX_SECRET_KEYS override it)',
    );

serveOptions(
  program
    .command('dev')
    .argument('[dirs...]', 'folders (or files) of manifests to apply and watch (default: the current folder)')
    .description('run an embedded node, apply the manifests and re-apply on change'),
)
  .option('--no-watch', 'do not re-apply on file change')
  .action(async (dirs: string[], flags) => {
    const { devCommand } = await import('../server/serve.js');
    await devCommand(dirs, { ...flags, namespace: program.opts().namespace });
  });

serveOptions(program.command('server').description('run a long-lived node; its API requires a bearer token'))
  .option(
    '--insecure-sandbox',
    'start even where the namespace layer (bubblewrap) is unavailable, with tenant code less isolated (env KYLIX_INSECURE_SANDBOX=1)',
  )
  .option(
    '--no-tls',
    'serve the control API over plain HTTP, not with a generated certificate (env KYLIX_NO_TLS=1)',
  )
  .action(async (flags) => {
    const { serverCommand } = await import('../server/serve.js');
    await serverCommand(flags);
  });

program
  .command('apply')
  .description('create or update resources from manifests; bundles functions and waits until they are ready')
  .requiredOption('-f, --filename <path>', 'a manifest file or folder (repeatable)', collect)
  .option('--no-wait', 'return without waiting for functions to become ready')
  .action(async (flags: { filename: string[]; wait: boolean }) => {
    const { ok } = await applyManifests(client(), flags.filename, { wait: flags.wait });
    if (!ok) process.exitCode = 1;
  });

program
  .command('get')
  .description('list resources (functions, revisions, events, secrets, …)')
  .argument('<kind>')
  .argument('[name]')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json', 'wide', 'name']))
  .option('-l, --selector <selector>', 'label selector, e.g. app=shop')
  .option('-A, --all-namespaces', 'list across all namespaces')
  .action(async (kind: string, name: string | undefined, flags) =>
    console.log(await getCommand(client(), kind, name, flags)),
  );

program
  .command('describe')
  .description('show a resource in detail: spec, status, conditions, revisions, events')
  .argument('<kind>')
  .argument('<name>')
  .action(async (kind: string, name: string) => console.log(await describeCommand(client(), kind, name)));

program
  .command('delete')
  .description('delete resources named in manifests (-f) or by kind and name')
  .argument('[kind]')
  .argument('[name]')
  .option('-f, --filename <path>', 'a manifest file or folder (repeatable)', collect)
  .option('--ignore-not-found', 'do not fail for resources that do not exist')
  .option('--purge', "also destroy the resource's data (databases, key-values, queues, buckets)")
  .action(
    async (
      kind: string | undefined,
      name: string | undefined,
      flags: { filename?: string[]; ignoreNotFound?: boolean; purge?: boolean },
    ) => {
      const c = client();
      if (flags.filename) {
        if (
          !(await deleteManifests(
            c,
            flags.filename,
            (l) => console.log(l),
            flags.ignoreNotFound,
            flags.purge,
          ))
        )
          process.exitCode = 1;
        return;
      }
      const info = kind ? findKind(kind) : undefined;
      if (!info || !name)
        throw new KylixError(
          'ERR_BAD_REQUEST',
          'Say what to delete: kylix delete -f <manifests> or kylix delete <kind> <name>.',
        );
      try {
        await c.raw('DELETE', `${c.path(info.plural, name)}${flags.purge ? '?purge=true' : ''}`);
        const kept = DATA_KINDS.has(info.kind)
          ? '; its data is kept (delete with --purge to destroy it)'
          : '';
        console.log(`${info.singular}/${name} deleted${flags.purge ? ' (data purged)' : kept}`);
      } catch (err) {
        if (!(flags.ignoreNotFound && err instanceof KylixError && err.code === 'ERR_NOT_FOUND')) throw err;
      }
    },
  );

program
  .command('logs')
  .description("print a function's console output")
  .argument('<function>')
  .option('-f, --follow', 'stream new lines as they are written')
  .option('--tail <n>', 'lines of history to show', '100')
  .option('--since <when>', 'only lines newer than a duration (30s, 10m, 1h) or a time (RFC 3339)')
  .addOption(
    new Option('--level <level>', 'only lines at this level or above').choices([
      'debug',
      'info',
      'warn',
      'error',
    ]),
  )
  .option('--revision <n>', 'only lines of this revision')
  .addOption(
    new Option('-o, --output <format>', 'output format (json: one JSON object per line)').choices(['json']),
  )
  .action(async (name: string, flags) => logsCommand(client(), name, flags));

program
  .command('top')
  .description('per-function requests/s, latency p50/p99, errors and instances, live (from /metrics)')
  .option('--once', 'print one table (over one interval) and exit')
  .option('--interval <seconds>', 'seconds between refreshes; rates and percentiles cover this span', '2')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['json']))
  .action(async (flags) => topCommand(client(), flags));

program
  .command('invoke')
  .description('call a function without knowing its route')
  .argument('<function>')
  .option('--path <path>', 'path to request', '/')
  .option('-d, --data <body>', 'request body (or @file); makes the default method POST')
  .option('-X, --method <method>', 'HTTP method')
  .option('-H, --header <header>', '"Name: value" (repeatable)', collect)
  .option('-i, --include', 'print the status line and headers')
  .action(async (name: string, flags) => {
    process.exitCode = await invokeCommand(client(), name, flags);
  });

const rollout = program.command('rollout').description("manage a function's revisions");
rollout
  .command('history')
  .description('list the revisions of a function and their traffic')
  .argument('<function>')
  .action(async (name: string) => console.log(await historyCommand(client(), name)));
rollout
  .command('undo')
  .description("roll back to the previous revision's code and settings (as a new revision)")
  .argument('<function>')
  .option('--to-revision <n>', 'the revision to roll back to')
  .action(async (name: string, flags: { toRevision?: string }) => {
    const to = flags.toRevision === undefined ? undefined : Number(flags.toRevision);
    if (to !== undefined && !Number.isInteger(to))
      throw new KylixError('ERR_BAD_REQUEST', '--to-revision takes a revision number.');
    console.log(await undoCommand(client(), name, to));
  });

program
  .command('traffic')
  .description(
    'split traffic between revisions: kylix traffic orders 3=90 4=10 --tag 4=canary (no split: all to latest)',
  )
  .argument('<function>')
  .argument('[split...]', 'REVISION=PERCENT pairs; "latest" names the newest ready revision')
  .option(
    '--tag <rev=tag>',
    'address a revision by tag (header kylix-revision or host prefix tag--)',
    collect,
  )
  .action(async (name: string, split: string[], flags: { tag?: string[] }) =>
    console.log(await trafficCommand(client(), name, split, flags.tag ?? [])),
  );

program
  .command('trigger')
  .description(
    "run a function's scheduled() or queue() handler now: trigger scheduled NAME | trigger queue NAME --message JSON …",
  )
  .argument('<handler>', 'scheduled or queue')
  .argument('<function>')
  .option('--cron <expr>', "scheduled: the cron the event names (default: the function's schedule)")
  .option('-m, --message <json>', 'queue: a message body, JSON or text (repeatable; one batch)', collect)
  .action(async (kind: string, name: string, flags: { cron?: string; message?: string[] }) => {
    const { triggerCommand } = await import('./commands/trigger.js');
    const { text, ok } = await triggerCommand(client(), kind, name, flags);
    console.log(text);
    if (!ok) process.exitCode = 1;
  });

program
  .command('kv')
  .description('read and write a KeyValue: kv get|put|delete|list NAME [KEY] [VALUE|@file]')
  .argument('<action>')
  .argument('<name>')
  .argument('[key]')
  .argument('[value]')
  .option('--prefix <prefix>', 'list: only keys starting with this')
  .option('--ttl <seconds>', 'put: expire after this many seconds')
  .action(async (action: string, name: string, key: string | undefined, value: string | undefined, flags) =>
    console.log(await kvCommand(client(), action, name, key, value, flags)),
  );

program
  .command('sql')
  .description(
    'run a statement on a Database; without one, statements from a prompt or piped input (end each with ";"), and \\q, \\dt, \\d TABLE',
  )
  .argument('<database>')
  .argument('[statement]')
  .action(async (name: string, statement: string | undefined) => {
    const out = await sqlCommand(client(), name, statement);
    if (out) console.log(out);
  });

program
  .command('queue')
  .description('queue send QUEUE JSON | stats QUEUE | dlq list DLQ | dlq redrive DLQ --to QUEUE')
  .argument('<args...>')
  .option('--delay <seconds>', 'send: deliver after this many seconds')
  .option('--to <queue>', 'dlq redrive: the queue to put the messages back on')
  .action(async (args: string[], flags) => console.log(await queueCommand(client(), args, flags)));

program
  .command('bucket')
  .description(
    'bucket ls NAME[/prefix] | cp FILE bucket:NAME/key | cp bucket:NAME/key FILE (- for stdout) | rm bucket:NAME/key',
  )
  .argument('<action>')
  .argument('<a>')
  .argument('[b]')
  .action(async (action: string, a: string, b: string | undefined) => {
    const out = await bucketCommand(client(), action, a, b);
    if (out) console.log(out);
  });

/** Prints a command's text; a report that is not ok exits 1. */
const report = (command: (c: ApiClient) => Promise<{ text: string; ok: boolean }>) => async () => {
  const { text, ok } = await command(client());
  console.log(text);
  if (!ok) process.exitCode = 1;
};

const secret = program
  .command('secret')
  .description('set secrets, and re-seal their values or rotate the key that seals them');
secret
  .command('set')
  .description(
    'secret set NAME --from-literal KEY=VALUE … | --from-file [KEY=]PATH …: the secret gets exactly these keys',
  )
  .argument('<name>')
  .option('--from-literal <key=value>', 'a key and its value (repeatable)', collect)
  .option('--from-file <[key=]path>', "a key and a file's contents (repeatable)", collect)
  .action(async (name: string, flags) => console.log(await secretSetCommand(client(), name, flags)));
secret
  .command('reseal')
  .description('seal every secret value, in every namespace, under the current key (after a key change)')
  .action(report(secretResealCommand));
secret
  .command('rotate-key')
  .description(
    'make a new key for the key file in the data folder, re-seal every value under it, drop the old key',
  )
  .action(report(secretRotateKeyCommand));

/** The namespaces given with -n/--namespace (comma-separated), not the configured default. */
const givenNamespaces = (): string[] =>
  ((program.opts().namespace as string | undefined) ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);

const token = program
  .command('token')
  .description('create, list and revoke API tokens (admin only; see docs/access.md)');
token
  .command('create')
  .description('create a token: --role admin | --role edit|view -n NS[,NS…]; it is shown once')
  .requiredOption('--role <role>', 'admin, edit or view (as the Kubernetes roles)')
  .option('--ttl <duration>', 'expire after this long (30m, 24h, 7d); default never')
  .option('--name <name>', 'what the token is for (shown by list and in the audit log)')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']))
  .action(async (flags: { role: string; ttl?: string; name?: string; output?: string }) =>
    console.log(await tokenCreateCommand(client(), { ...flags, namespaces: givenNamespaces() })),
  );
token
  .command('list')
  .description('list tokens: id, name, role, namespaces, status, expiry (never a secret)')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']))
  .action(async (flags: { output?: string }) => console.log(await tokenListCommand(client(), flags)));
token
  .command('revoke')
  .description('revoke a token by id; it stops working on every node at once')
  .argument('<id>')
  .action(async (id: string) => console.log(await tokenRevokeCommand(client(), id)));

program
  .command('audit')
  .description('show the audit log of mutations: who, what, when, result (admin only)')
  .option('--since <when>', 'entries newer than a duration (1h, 7d) or an RFC 3339 time')
  .option('--limit <n>', 'at most this many of the newest entries (default 500)')
  .addOption(new Option('-o, --output <format>', 'output format').choices(['yaml', 'json']))
  .action(async (flags: { since?: string; limit?: string; output?: string }) =>
    console.log(await auditCommand(client(), { ...flags, namespace: givenNamespaces()[0] })),
  );

program
  .command('doctor')
  .description(
    'show how tenant code is isolated on this machine, layer by layer, and what to do about missing layers',
  )
  .option('--strict', 'exit 1 when a layer is off')
  .action(async (flags: { strict?: boolean }) => {
    const { doctorReport } = await import('../server/doctor.js');
    const { text, ok } = doctorReport();
    console.log(text);
    if (flags.strict && !ok) process.exitCode = 1;
  });

program
  .command('schema')
  .description('write the JSON Schema of every kind into a folder, for editors')
  .argument('[dir]', 'output folder', 'schemas')
  .action((dir: string) => {
    for (const f of schemaCommand(dir)) console.log(f);
  });

program
  .command('crds')
  .description('print the Kubernetes CustomResourceDefinitions of every kind (kubectl apply -f -)')
  .option('-o, --output <format>', 'yaml or json', 'yaml')
  .option('--dir <dir>', "write one file per CRD into this folder instead (a Helm chart's crds/)")
  .action((flags: { output?: string; dir?: string }) => console.log(crdsCommand(flags)));

program
  .command('kubeconfig')
  .description("print a kubeconfig for this installation's API (server, CA, token), for kubectl --kubeconfig")
  .option('--ca-file <file>', "the CA of the API's certificate (default: <data-dir>/tls/ca.crt)")
  .option(
    '--data-dir <dir>',
    "the server's data folder, for its CA and admin token (env KYLIX_DATA_DIR; default .kylix)",
  )
  .option('--name <name>', 'name of the cluster, user and context', 'kylix')
  .action((flags: { caFile?: string; dataDir?: string; name?: string }) => {
    process.stdout.write(kubeconfigCommand(resolveConfig(program.opts()), flags));
  });

program
  .command('types')
  .description(
    "write the TypeScript type of each function's env (interface Env) from its manifest, as wrangler types does",
  )
  .argument('[dir]', 'a manifest file or folder', '.')
  .option('-o, --output <file>', 'where to write (default DIR/kylix-env.d.ts)')
  .option('--function <name>', 'only this function (its interface is then Env)')
  .action(async (dir: string, flags: { output?: string; function?: string }) => {
    const { typesCommand } = await import('./commands/types.js');
    for (const line of typesCommand(dir, flags)) console.log(line);
  });

program
  .command('import')
  .description("write a kylix.yaml from another platform's config")
  .command('wrangler')
  .description(
    'read wrangler.toml / wrangler.json(c) and .dev.vars in DIR, write DIR/kylix.yaml, list what was not mapped',
  )
  .argument('[dir]', 'the Workers project folder', '.')
  .option('--force', 'overwrite an existing kylix.yaml')
  .action(async (dir: string, flags: { force?: boolean }) => {
    const { importWranglerCommand } = await import('./commands/import-wrangler.js');
    for (const line of importWranglerCommand(dir, flags)) console.log(line);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof KylixError) console.error(describeError(err));
  else console.error('kylix: unexpected error (a bug; please report it):', err);
  process.exitCode = 1;
});
