/**
 * The per-resource roles of the postgres Database provider, managed over the admin connection
 * (the only thing that connection does). Each Database (resourceIdentity().sql) gets a role of the same
 * name: LOGIN and nothing else (no superuser, CREATEDB, CREATEROLE, replication, BYPASSRLS, member
 * of no role), owner of its database only; CONNECT and TEMP on that database are revoked from
 * PUBLIC, and PUBLIC may not create in its `public` schema. Each role's random password is kept in
 * `kylix_database.roles` in the admin database (readable by the admin only), so every node of a
 * fleet connects with the same one.
 */
import { randomBytes } from 'node:crypto';
import type { ClientBase, Pool } from 'pg';
import { KylixError } from '../../errors.js';
import { guardClient } from '../../storage/pg-errors.js';
import { quoteIdent } from './common.js';

const ATTRIBUTES = 'LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT';

function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

const ignore =
  (...codes: string[]) =>
  (err: unknown) => {
    if (!codes.includes((err as { code?: string }).code ?? '')) throw err;
  };

/** See the file comment. */
export class TenantRoles {
  private superuser = false;

  constructor(
    private readonly admin: Pool,
    private readonly url: string,
  ) {}

  /** 1. Checks the admin may create roles and databases; 2. creates the password table. */
  async prepare(): Promise<void> {
    const r = await this.admin.query<{
      me: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
      can_create: boolean;
      db: string;
    }>(
      `SELECT current_user AS me, r.rolsuper, r.rolcreaterole, r.rolcreatedb, current_database() AS db,
              has_database_privilege(current_database(), 'CREATE')
                OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'kylix_database' AND nspowner = r.oid) AS can_create
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const me = r.rows[0];
    if (!me) throw new KylixError('ERR_CONFIG_INVALID', 'The database admin user has no pg_roles entry.');
    this.superuser = me.rolsuper;
    if (!me.rolsuper && !(me.rolcreaterole && me.rolcreatedb))
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `The database admin user "${me.me}" cannot create a role and a database per Database resource: ` +
          `grant it CREATEROLE and CREATEDB (ALTER ROLE ${quoteIdent(me.me)} CREATEROLE CREATEDB). ` +
          'Tenant SQL never runs as this user.',
      );
    if (!me.rolsuper && !me.can_create)
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `The database admin user "${me.me}" needs CREATE on database "${me.db}" to keep the Database roles' passwords ` +
          `(GRANT CREATE ON DATABASE ${quoteIdent(me.db)} TO ${quoteIdent(me.me)}).`,
      );
    // Several nodes may start at once: a concurrent creation is as good as our own.
    await this.admin.query('CREATE SCHEMA IF NOT EXISTS kylix_database').catch(ignore('23505', '42P06'));
    await this.admin.query('REVOKE ALL ON SCHEMA kylix_database FROM PUBLIC');
    await this.admin
      .query(
        'CREATE TABLE IF NOT EXISTS kylix_database.roles (name text PRIMARY KEY, password text NOT NULL)',
      )
      .catch(ignore('23505', '42P07'));
    await this.admin.query('REVOKE ALL ON kylix_database.roles FROM PUBLIC');
  }

  private async password(name: string): Promise<string | undefined> {
    const r = await this.admin.query<{ password: string }>(
      'SELECT password FROM kylix_database.roles WHERE name = $1',
      [name],
    );
    return r.rows[0]?.password;
  }

  /** How to connect as the resource's role, or undefined if it was never ensured. */
  async credentials(name: string): Promise<{ connectionString: string } | undefined> {
    const password = await this.password(name);
    if (!password) return undefined;
    const url = new URL(this.url);
    url.username = encodeURIComponent(name);
    url.password = encodeURIComponent(password);
    url.pathname = `/${name}`;
    return { connectionString: url.toString() };
  }

  /** Creates (or repairs) the role and its database; idempotent, and safe for nodes racing. */
  async ensure(name: string): Promise<void> {
    const role = quoteIdent(name);
    // 1. Never take over a role Kylix did not create.
    const existing = await this.admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
    if (existing.rowCount && !(await this.password(name)))
      throw new KylixError(
        'ERR_CONFLICT',
        `A PostgreSQL role named "${name}" already exists and was not created by Kylix; drop or rename it.`,
      );
    // 2. The password, once per resource.
    await this.admin.query(
      'INSERT INTO kylix_database.roles (name, password) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
      [name, randomBytes(24).toString('base64url')],
    );
    const password = (await this.password(name))!;
    // 3. The role, with exactly its attributes and a membership in nothing.
    await this.admin
      .query(`CREATE ROLE ${role} ${ATTRIBUTES} PASSWORD ${literal(password)}`)
      .catch(ignore('42710', '23505'));
    await this.admin.query(`ALTER ROLE ${role} ${ATTRIBUTES} PASSWORD ${literal(password)}`);
    const memberOf = await this.admin.query<{ g: string }>(
      'SELECT m.roleid::regrole::text AS g FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1',
      [name],
    );
    for (const { g } of memberOf.rows) await this.admin.query(`REVOKE ${g} FROM ${role}`);
    // A non-superuser admin must hold the role to create, own-check and drop its database.
    if (!this.superuser) await this.admin.query(`GRANT ${role} TO CURRENT_USER`).catch(ignore('42710'));
    // 4. The database, owned by the role, closed to everyone else.
    const db = await this.admin.query<{ owner: string }>(
      'SELECT datdba::regrole::text AS owner FROM pg_database WHERE datname = $1',
      [name],
    );
    if (!db.rowCount)
      await this.admin.query(`CREATE DATABASE ${role} OWNER ${role}`).catch(ignore('42P04', '23505'));
    await this.admin.query(`ALTER DATABASE ${role} OWNER TO ${role}`);
    await this.admin.query(`REVOKE ALL ON DATABASE ${role} FROM PUBLIC`);
    // 5. Inside it: PUBLIC may not create in `public`; a database from before roles is handed over.
    const url = new URL(this.url);
    url.pathname = `/${name}`;
    const pg = ((await import('pg')) as unknown as { default: typeof import('pg') }).default;
    const client = guardClient(new pg.Client({ connectionString: url.toString() }));
    await client.connect();
    try {
      await client.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC; ALTER SCHEMA public OWNER TO ${role}`);
      await client.query(`DO $$ DECLARE o record; BEGIN
        FOR o IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        LOOP EXECUTE format('ALTER TABLE %s OWNER TO %I', o.rel, ${literal(name)}); END LOOP; END $$`);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Drops the database (closing its connections) and then its role. */
  async drop(name: string): Promise<void> {
    const role = quoteIdent(name);
    await this.admin.query(`DROP DATABASE IF EXISTS ${role} WITH (FORCE)`);
    if (!(await this.password(name))) return;
    await this.admin.query(`DROP ROLE IF EXISTS ${role}`);
    await this.admin.query('DELETE FROM kylix_database.roles WHERE name = $1', [name]);
  }

  /** Refuses a connection that is not exactly the resource's unprivileged role. */
  async verify(client: ClientBase, name: string): Promise<void> {
    const r = await client.query<Record<string, unknown>>(
      `SELECT current_user AS me, session_user AS session, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
              r.rolreplication, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid) AS member
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const me = r.rows[0];
    const wrong = !me
      ? 'unknown'
      : me.me !== name || me.session !== name
        ? `user "${String(me.me)}"`
        : ['rolsuper', 'rolcreaterole', 'rolcreatedb', 'rolreplication', 'rolbypassrls', 'member'].find(
            (k) => me[k],
          );
    if (wrong)
      throw new KylixError(
        'ERR_CONFIG_INVALID',
        `Refusing to run SQL for Database "${name}": its connection has ${wrong}, not the Database's own unprivileged role.`,
      );
  }

  /** Cancels the statement running on backend `pid` (the admin holds every tenant role). */
  cancel(pid: number): void {
    this.admin.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {});
  }
}
