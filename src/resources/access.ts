/**
 * The wire shapes of scoped access: API tokens with a role, and the audit log of mutations. The
 * server and the CLI (a client of the API only) both use them, so they live here and import nothing.
 */

/**
 * The roles a token can hold, after Kubernetes' default ClusterRoles: `admin` is cluster-admin
 * (every namespace, tokens, audit, secret keys); `edit` and `view` are bound to namespaces.
 */
export const ROLES = ['admin', 'edit', 'view'] as const;

/** One of ROLES. */
export type Role = (typeof ROLES)[number];

/** An API token as the API shows it: never its secret, except once in the answer to a create. */
export interface TokenObject {
  apiVersion: string;
  kind: 'Token';
  metadata: { name: string; creationTimestamp: string };
  spec: {
    /** What the token is for ("ci", "alice's laptop"); `kylix token create --name`. */
    description: string;
    role: Role;
    /** The namespaces an edit or view token may act in (empty for admin). */
    namespaces: string[];
    /** When the token stops working, if it has a TTL. */
    expirationTimestamp?: string;
  };
  status: {
    revoked: boolean;
    revokedAt?: string;
    expired: boolean;
    /** The bearer token itself: only in the answer to the create, never again. */
    token?: string;
  };
}

/** The body of POST /apis/kylix.dev/v1/tokens. */
export interface TokenRequest {
  spec: {
    description?: string;
    role: Role;
    namespaces?: string[];
    /** How long the token lives, in seconds (no TTL when absent). */
    expirationSeconds?: number;
  };
}

/** Who made a request, as the audit log names them. */
export interface AuditUser {
  /** The token id ("admin" for the bootstrap admin token, "dev" for `kylix dev` on loopback). */
  id: string;
  /** The token's description, or "dev (loopback)". */
  name: string;
  role: Role;
}

/** One entry of the audit log: a mutation (or an invocation) and how it ended. Never a body or value. */
export interface AuditEntry {
  time: string;
  requestId: string;
  user: AuditUser;
  /** create, update, patch, apply, delete, invoke, revoke, … */
  verb: string;
  /** The URL's resource: a plural ("secrets"), a subresource ("keyvalues/keys"), "tokens", "bundles". */
  resource: string;
  /** The kind, where the resource is one ("Secret"). */
  kind?: string;
  namespace?: string;
  name?: string;
  /** The request path, without its query (a KeyValue key, an object key, a function's path). */
  path: string;
  /** The HTTP status of the answer. */
  code: number;
}

/** The answer of GET /apis/kylix.dev/v1/audit. */
export interface AuditEntryList {
  apiVersion: string;
  kind: 'AuditEntryList';
  items: AuditEntry[];
}
