/**
 * API tokens, kept in the installation's state store so that every node of a fleet accepts the
 * same set. A token is `kx1.<id>.<secret>`: the id finds the record, the secret (32 random bytes)
 * is checked against the SHA-256 hash the record holds, in constant time. The secret itself is
 * stored nowhere; the create answer shows it once.
 *
 * Records are objects of an internal kind (`AccessToken`, namespace `kylix-system`) that the
 * resource API does not serve, so they ride on the store's durability, fleet sharing and watch.
 * The bootstrap admin token is the record with id `admin`; its bearer form is the bare secret
 * (so `<data>/admin-token` files of earlier versions keep working).
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { KylixError, quoteInput } from '../../errors.js';
import type { Role, TokenObject } from '../../resources/access.js';
import { API_VERSION, type KObject } from '../../resources/meta.js';
import type { Store } from '../store/interface.js';
import type { Principal } from './roles.js';

/** The internal kind and namespace token records are stored under. */
export const TOKEN_KIND = 'AccessToken';
const TOKEN_NAMESPACE = 'kylix-system';
/** The id of the bootstrap admin token. */
export const ADMIN_ID = 'admin';
const PREFIX = 'kx1.';

/** What a token record's spec holds. */
type TokenSpec = {
  description: string;
  role: Role;
  namespaces: string[];
  expirationTimestamp?: string;
  /** "sha256:<hex>" of the secret. */
  secretHash: string;
};

type TokenRecord = KObject<TokenSpec, { revoked?: boolean; revokedAt?: string }>;

/** The hash a record keeps of a secret. */
function hashOf(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex')}`;
}

/** Compares two hashes in constant time (they have the same length whenever both are hashes). */
function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const unauthorized = (why: string) =>
  new KylixError(
    'ERR_UNAUTHORIZED',
    `${why} Pass a valid token with --token or KYLIX_TOKEN (kylix server printed the admin token on first start; it is in <data>/admin-token; kylix token create makes others).`,
  );

/** The tokens of an installation; see the file comment. */
export class TokenStore {
  constructor(
    private readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {}

  /** Creates a token; the answer carries its bearer form, which is never shown again. */
  async create(spec: {
    description: string;
    role: Role;
    namespaces: string[];
    expirationSeconds?: number;
  }): Promise<TokenObject> {
    const id = `t-${randomBytes(6).toString('hex')}`;
    const secret = randomBytes(32).toString('base64url');
    const record = await this.put(id, {
      description: spec.description,
      role: spec.role,
      namespaces: spec.role === 'admin' ? [] : [...new Set(spec.namespaces)].sort(),
      ...(spec.expirationSeconds
        ? { expirationTimestamp: new Date(this.now() + spec.expirationSeconds * 1000).toISOString() }
        : {}),
      secretHash: hashOf(secret),
    });
    const shown = this.present(record);
    shown.status.token = `${PREFIX}${id}.${secret}`;
    return shown;
  }

  /** Every token, revoked and expired ones too, oldest first. */
  async list(): Promise<TokenObject[]> {
    const all = (await this.store.list(TOKEN_KIND, TOKEN_NAMESPACE)) as TokenRecord[];
    return all
      .map((r) => this.present(r))
      .sort((a, b) => a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp));
  }

  /** Revokes a token: it stays listed (and in the audit log) but no longer authenticates. */
  async revoke(id: string): Promise<TokenObject> {
    const record = await this.record(id);
    if (!record) throw new KylixError('ERR_NOT_FOUND', `There is no token with id ${quoteInput(id)}.`);
    if (!record.status?.revoked) {
      record.status = { revoked: true, revokedAt: new Date(this.now()).toISOString() };
      return this.present(
        (await this.store.put(record, {
          resourceVersion: record.metadata.resourceVersion,
        })) as TokenRecord,
      );
    }
    return this.present(record);
  }

  /** Who a bearer token belongs to; ERR_UNAUTHORIZED for no, unknown, expired or revoked tokens. */
  async authenticate(header: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match?.[1]) throw unauthorized('This API needs a bearer token.');
    const bearer = match[1];
    let id = ADMIN_ID;
    let secret = bearer;
    if (bearer.startsWith(PREFIX)) {
      const rest = bearer.slice(PREFIX.length);
      const dot = rest.indexOf('.');
      id = rest.slice(0, dot);
      secret = rest.slice(dot + 1);
      if (dot < 1 || !/^t-[0-9a-f]{12}$/.test(id)) throw unauthorized('The token is not valid.');
    }
    const record = await this.record(id);
    // Hash even when there is no record, so an unknown id takes as long as a wrong secret.
    const given = hashOf(secret);
    if (!record || !sameHash(given, record.spec?.secretHash ?? ''))
      throw unauthorized('The token is not valid.');
    if (record.status?.revoked) throw unauthorized(`The token "${record.spec?.description}" was revoked.`);
    const expires = record.spec?.expirationTimestamp;
    if (expires && Date.parse(expires) <= this.now())
      throw unauthorized(`The token "${record.spec?.description}" expired at ${expires}.`);
    const spec = record.spec as TokenSpec;
    return { id, name: spec.description, role: spec.role, namespaces: spec.namespaces };
  }

  /**
   * Makes `secret` the bootstrap admin token (KYLIX_ADMIN_TOKEN, or a test's token): the record is
   * written when missing or holding another secret, and left alone (revoked or not) otherwise.
   */
  async setAdmin(secret: string): Promise<void> {
    const existing = await this.record(ADMIN_ID);
    if (existing && sameHash(existing.spec?.secretHash ?? '', hashOf(secret))) return;
    await this.put(ADMIN_ID, adminSpec(secret), existing?.metadata.resourceVersion);
  }

  /**
   * Creates the bootstrap admin record for `secret` unless the installation has one; answers
   * whether `secret` is now the installation's admin token.
   */
  async adoptAdmin(secret: string): Promise<'created' | 'matches' | 'other'> {
    const existing = await this.record(ADMIN_ID);
    if (existing) return sameHash(existing.spec?.secretHash ?? '', hashOf(secret)) ? 'matches' : 'other';
    try {
      await this.put(ADMIN_ID, adminSpec(secret), null);
      return 'created';
    } catch (err) {
      // Another node of the fleet created it at the same moment.
      if (err instanceof KylixError && err.code === 'ERR_ALREADY_EXISTS') return 'other';
      throw err;
    }
  }

  /** Whether the installation has a bootstrap admin token yet. */
  async hasAdmin(): Promise<boolean> {
    return (await this.record(ADMIN_ID)) !== undefined;
  }

  private async record(id: string): Promise<TokenRecord | undefined> {
    return (await this.store.get(TOKEN_KIND, TOKEN_NAMESPACE, id)) as TokenRecord | undefined;
  }

  /** Writes a record: `rv` undefined for a new one that may replace, null for must-not-exist. */
  private async put(id: string, spec: TokenSpec, rv?: string | null): Promise<TokenRecord> {
    const record: TokenRecord = {
      apiVersion: API_VERSION,
      kind: TOKEN_KIND,
      metadata: {
        name: id,
        namespace: TOKEN_NAMESPACE,
        uid: randomUUID(),
        resourceVersion: '',
        generation: 1,
        creationTimestamp: new Date(this.now()).toISOString(),
      },
      spec,
      status: {},
    };
    const pre = rv === null ? { mustNotExist: true } : rv ? { resourceVersion: rv } : {};
    return (await this.store.put(record, pre)) as TokenRecord;
  }

  /** The API's view of a record: no hash. */
  private present(r: TokenRecord): TokenObject {
    const spec = r.spec as TokenSpec;
    return {
      apiVersion: API_VERSION,
      kind: 'Token',
      metadata: { name: r.metadata.name, creationTimestamp: r.metadata.creationTimestamp },
      spec: {
        description: spec.description,
        role: spec.role,
        namespaces: spec.namespaces,
        ...(spec.expirationTimestamp ? { expirationTimestamp: spec.expirationTimestamp } : {}),
      },
      status: {
        revoked: r.status?.revoked === true,
        ...(r.status?.revokedAt ? { revokedAt: r.status.revokedAt } : {}),
        expired: !!spec.expirationTimestamp && Date.parse(spec.expirationTimestamp) <= this.now(),
      },
    };
  }
}

function adminSpec(secret: string): TokenSpec {
  return { description: 'admin (bootstrap)', role: 'admin', namespaces: [], secretHash: hashOf(secret) };
}
