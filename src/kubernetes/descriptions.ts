/**
 * What each field of a kind means, for `kubectl explain` (on a cluster and against Kylix's API) and
 * the CRDs' schemas: the doc comments of src/resources/kinds.ts and docs/, in one line each.
 */

/** Per kind, per field path (`spec.routes[].path`), its description. */
export const DESCRIPTIONS: Record<string, Record<string, string>> = {
  Function: {
    spec: 'The function: its code, routes, bindings, limits, scaling and triggers.',
    'spec.source': 'A file or folder with the code, relative to the manifest; kylix apply bundles it.',
    'spec.code':
      'The code inline: one ES module (at most 128 KiB), for small functions applied with kubectl.',
    'spec.bundle':
      'The bundle: its content address (sha256:<hex>, written by kylix apply for source, or already in the installation), or { url, sha256 }: fetched and verified by digest.',
    'spec.bundle.url': 'Where nodes fetch the bundle (https, or http for a loopback or cluster-local host).',
    'spec.bundle.sha256': "The bundle's SHA-256 (sha256:<hex>); nodes refuse bytes with another digest.",
    'spec.routes': 'The HTTP routes the function serves on the gateway (at most 100).',
    'spec.routes[].path':
      'A path: "/exact", "/users/:id" (a parameter) or "/static/*" (a trailing wildcard).',
    'spec.routes[].methods': 'The HTTP methods served (default: all).',
    'spec.routes[].host': 'A host name ("shop.example.com" or "*.example.com"); default: any host.',
    'spec.env': 'Environment variables the code reads from env (at most 1000, 32 KiB each).',
    'spec.vars':
      'Typed vars, as wrangler [vars]: numbers, booleans, null, arrays and objects the code reads from env as those values (at most 1000, 32 KiB each as JSON).',
    'spec.bindings':
      'Resources the code reaches through env: NAME: { database | keyValue | queue | bucket | secret (+ key): <name> }.',
    'spec.limits': 'What one request may use.',
    'spec.limits.cpuMs': 'CPU time per request, in milliseconds.',
    'spec.limits.timeoutMs': 'Wall-clock time per request, in milliseconds.',
    'spec.limits.memoryMiB': 'Memory of one instance, in MiB.',
    'spec.limits.maxRequestBytes': 'The largest request body, in bytes.',
    'spec.limits.maxConcurrency': 'Requests in flight at once, over all instances.',
    'spec.scaling': 'How many instances run.',
    'spec.scaling.minInstances': 'Instances kept warm even when idle.',
    'spec.scaling.maxInstances': 'The most instances at once.',
    'spec.scaling.targetConcurrency': 'Requests in flight per instance before another starts.',
    'spec.scaling.idleSeconds': 'Seconds without requests before an instance stops.',
    'spec.egress': 'Where the code may connect out to.',
    'spec.egress.allow': 'Host names (or "*.domain") the code may reach; nothing else.',
    'spec.triggers': 'What runs the function besides HTTP.',
    'spec.triggers.queue': 'Consume a Queue: batches of messages, retried, then dead-lettered.',
    'spec.triggers.schedule': 'Run on a cron schedule (one node runs each tick).',
    'spec.triggers.schedule.cron': 'Five-field cron expression, e.g. "*/5 * * * *".',
    'spec.triggers.schedule.timezone': 'An IANA time zone such as "Europe/Berlin".',
    'spec.traffic':
      'How requests split between revisions (percents adding up to 100); default: all to the latest ready one.',
    'spec.revisionHistoryLimit': 'How many old revisions to keep (besides those taking traffic).',
  },
  Database: {
    spec: 'A PostgreSQL-dialect SQL database.',
    'spec.migrations': 'A folder of .sql files, relative to the manifest, applied once each in name order.',
    'spec.migrationFiles': 'The files of that folder, read by kylix apply.',
  },
  KeyValue: {
    spec: 'A key-value namespace.',
    'spec.defaultTtlSeconds': 'Seconds a key lives when written without a TTL (at least 60).',
  },
  Queue: { spec: 'A durable queue.', 'spec.retentionHours': 'Hours an unconsumed message is kept.' },
  Bucket: { spec: 'An object bucket (S3-like); it has no settings.' },
  Secret: {
    spec: 'Secret values: write-only, sealed at rest; the API never returns them.',
    'spec.stringData': 'Values as text, by key.',
    'spec.data': 'Values as base64, by key.',
  },
};
