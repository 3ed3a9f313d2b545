/**
 * What each role may do, after Kubernetes' default roles, and how a request URL becomes the action
 * a role is checked against. Anything the classifier does not recognise is an admin action, so a
 * route added later is closed to edit and view tokens until it is given a rule here.
 *
 * | role  | may                                                                                       |
 * | ----- | ----------------------------------------------------------------------------------------- |
 * | admin | everything: every namespace, lists across namespaces, tokens, audit, secret keys          |
 * | edit  | in its namespaces: read and write every kind (Secrets too, write-only values, as for all), |
 * |       | logs, stats, invoke, the data behind resources (kv, sql, queue, bucket); upload bundles    |
 * | view  | in its namespaces: read every kind but Secrets, logs, stats, backend health, queue stats;  |
 * |       | no Secret (not even its keys), no data contents, no invoke                                 |
 */
import { KylixError, quoteInput } from '../../errors.js';
import type { Role } from '../../resources/access.js';
import { findKind } from '../../resources/kinds.js';
import { API_VERSION } from '../../resources/meta.js';

/** Who a request comes from once its token is checked. */
export interface Principal {
  /** Token id ("admin" for the bootstrap token, "dev" when the API is open). */
  id: string;
  /** The token's description, for messages and the audit log. */
  name: string;
  role: Role;
  /** The namespaces an edit or view token is bound to. */
  namespaces: readonly string[];
}

/** A request as the role table sees it, Kubernetes-style: a verb on a resource in a namespace. */
export interface Action {
  /** get, list, watch, create, update, patch, delete, invoke (a function's proxy). */
  verb: string;
  /** A plural ("functions"), a subresource ("functions/log"), or an API of its own ("tokens"). */
  resource: string;
  /** Absent for requests that are not namespaced. */
  namespace?: string;
  name?: string;
  /**
   * Who may do it when it is not namespaced: anyone with a valid token (discovery), any edit
   * token (bundle uploads), or admin only.
   */
  scope: 'namespaced' | 'any' | 'editor' | 'admin';
}

/** What a view token may read in its namespaces (Kubernetes' `view` has no Secrets). */
const VIEW_READS = new Set([
  'functions',
  'databases',
  'keyvalues',
  'queues',
  'buckets',
  'revisions',
  'events',
  'functions/log',
  'functions/stats',
  'functions/metrics-history',
  'databases/health',
  'keyvalues/health',
  'queues/health',
  'buckets/health',
  'queues/stats',
]);

const READ_VERBS = new Set(['get', 'list', 'watch']);
const GROUP = ['apis', ...API_VERSION.split('/')];

function verbOf(method: string, hasName: boolean, watch: boolean): string {
  switch (method) {
    case 'GET':
    case 'HEAD':
      return hasName ? 'get' : watch ? 'watch' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return method.toLowerCase();
  }
}

/**
 * The action a request asks for, from its method and raw path (still percent-encoded, as
 * checkUrlNames reads it: an encoded namespace never equals a bound one).
 */
export function classify(method: string, rawPath: string, query: URLSearchParams): Action {
  const s = rawPath.split('/').slice(1);
  const at = (i: number) => s[i];
  const watch = query.get('watch') === 'true' || query.get('watch') === '1';
  const isGroup = GROUP.every((g, i) => at(i) === g);
  if (s.length === 1 && (at(0) === 'version' || at(0) === 'apis'))
    return { verb: 'get', resource: at(0) ?? '', scope: 'any' };
  if (isGroup && s.length === GROUP.length) return { verb: 'get', resource: 'apis', scope: 'any' };
  // kubectl reads discovery and the OpenAPI documents before anything else, whatever its role.
  if ((method === 'GET' || method === 'HEAD') && ((s.length === 1 && at(0) === 'api') || at(0) === 'openapi'))
    return { verb: 'get', resource: at(0) ?? '', scope: 'any' };
  if (at(0) === 'kylix' && at(1) === 'v1' && at(2) === 'bundles' && s.length <= 4)
    return {
      verb: method === 'HEAD' || method === 'GET' ? 'get' : 'create',
      resource: 'bundles',
      name: at(3),
      scope: 'editor',
    };
  if (at(0) === 'kylix' && at(1) === 'v1' && at(2) === 'secrets' && s.length === 4)
    return { verb: at(3) ?? '', resource: 'secrets/keys', scope: 'admin' };
  if (isGroup && at(3) === 'namespaces' && s.length >= 6) {
    const [namespace, plural, name, sub] = s.slice(4);
    const resource = sub ? `${plural}/${sub}` : (plural ?? '');
    const verb =
      sub === 'proxy' ? 'invoke' : verbOf(method, name !== undefined && name !== '', watch && !name);
    return { verb, resource, namespace, name, scope: 'namespaced' };
  }
  if (isGroup && s.length >= 4) {
    const [resource = '', name] = s.slice(3);
    if (resource === 'tokens' || resource === 'audit')
      return {
        verb: resource === 'tokens' && method === 'DELETE' ? 'revoke' : verbOf(method, !!name, false),
        resource,
        name,
        scope: 'admin',
      };
    // A list across namespaces: a RoleBinding does not grant it in Kubernetes either.
    return { verb: verbOf(method, !!name, watch), resource, name, scope: 'admin' };
  }
  return { verb: method.toLowerCase(), resource: rawPath, scope: 'admin' };
}

/** Whether `principal` may do `action`. */
export function allowed(principal: Principal, action: Action): boolean {
  if (principal.role === 'admin') return true;
  switch (action.scope) {
    case 'any':
      return true;
    case 'editor':
      return principal.role === 'edit' || action.verb === 'get';
    case 'admin':
      return false;
    case 'namespaced':
      if (action.namespace === undefined || !principal.namespaces.includes(action.namespace)) return false;
      if (principal.role === 'edit') return true;
      return READ_VERBS.has(action.verb) && VIEW_READS.has(action.resource);
  }
}

/** Throws the 403 Status for an action outside the principal's role, naming role and namespace. */
export function authorize(principal: Principal, action: Action): void {
  if (allowed(principal, action)) return;
  const bound = principal.namespaces.length ? principal.namespaces.join(', ') : 'no namespace';
  const who = `Token "${principal.name}" (${principal.id}; role ${principal.role} in ${bound})`;
  const what = `${action.verb} ${quoteInput(action.resource)}`;
  const where =
    action.namespace !== undefined
      ? ` in namespace ${quoteInput(action.namespace)}`
      : action.scope === 'admin'
        ? ' (that needs the admin role)'
        : '';
  throw new KylixError('ERR_FORBIDDEN', `${who} may not ${what}${where}.`);
}

/** The kind a resource names, if it is one ("secrets" → "Secret"). */
export function kindOf(resource: string): string | undefined {
  return findKind(resource.split('/')[0] ?? '')?.kind;
}
