/**
 * The most common D1 stack, drizzle-orm/d1 with drizzle-kit's migrations, runs unchanged on a real
 * node: drizzle-kit's SQLite DDL (backticks, INTEGER PRIMARY KEY AUTOINCREMENT, DEFAULT false,
 * DEFAULT (unixepoch()), a foreign key to a table created later) applies, and drizzle's queries
 * (NULL ids SQLite turns into rowids, inlined unixepoch(), relational queries built on
 * json_group_array/json_array, ON CONFLICT ("t"."c")) answer as on D1. Embedded (PGlite) and,
 * when it is reachable, PostgreSQL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Installation, loadInstallation } from '../../src/config/installation.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';

/** The app: users and their todos, written as for Workers with drizzle-orm/d1. */
const APP = `
import { drizzle } from 'drizzle-orm/d1';
import { desc, eq, relations, sql } from 'drizzle-orm';
import { integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

const users = sqliteTable('users', {
  id: integer().primaryKey({ autoIncrement: true }),
  name: text().notNull(),
  email: text().notNull(),
  joinedAt: integer({ mode: 'timestamp' }).notNull().default(sql\`(unixepoch())\`),
}, (t) => [uniqueIndex('users_email_unique').on(t.email)]);
const todos = sqliteTable('todos', {
  id: integer().primaryKey({ autoIncrement: true }),
  title: text().notNull(),
  done: integer({ mode: 'boolean' }).default(false).notNull(),
  userId: integer().references(() => users.id, { onDelete: 'cascade' }),
  createdAt: integer({ mode: 'timestamp_ms' }).$default(() => new Date()).notNull(),
  note: text().default(sql\`CURRENT_TIMESTAMP\`),
  priority: integer().notNull().default(0),
});
const usersRelations = relations(users, ({ many }) => ({ todos: many(todos) }));
const todosRelations = relations(todos, ({ one }) => ({ user: one(users, { fields: [todos.userId], references: [users.id] }) }));
const schema = { users, todos, usersRelations, todosRelations };

export default {
  async fetch(request, env) {
    const db = drizzle(env.DB, { schema });
    const url = new URL(request.url);
    const id = Number(url.pathname.split('/')[3]);
    try {
      if (url.pathname === '/dz/users' && request.method === 'POST') {
        const [user] = await db.insert(users).values(await request.json()).returning();
        return Response.json({ ...user, joinedAtIsDate: user.joinedAt instanceof Date && user.joinedAt.getTime() > 0 });
      }
      if (url.pathname === '/dz/users/upsert') {
        await db.insert(users).values({ id: 10, name: 'Seed again', email: 'seed@example.com' })
          .onConflictDoUpdate({ target: users.id, set: { name: 'Seed renamed' } });
        return Response.json(await db.select({ name: users.name }).from(users).where(eq(users.id, 10)).get());
      }
      if (url.pathname === '/dz/users') {
        const rows = await db.query.users.findMany({ with: { todos: { columns: { title: true, done: true } } }, orderBy: users.id });
        return Response.json(rows.map((u) => ({ id: u.id, name: u.name, todos: u.todos })));
      }
      if (url.pathname === '/dz/todos' && request.method === 'POST') {
        const [todo] = await db.insert(todos).values(await request.json()).returning();
        return Response.json({ ...todo, createdAtIsDate: todo.createdAt instanceof Date && !isNaN(todo.createdAt.getTime()) && todo.createdAt.getTime() > 1.6e12, note: typeof todo.note });
      }
      if (url.pathname === '/dz/todos') {
        const rows = await db.query.todos.findMany({ with: { user: { columns: { name: true } } }, orderBy: [desc(todos.id)] });
        return Response.json(rows.map((t) => ({ id: t.id, title: t.title, done: t.done, user: t.user?.name ?? null, note: typeof t.note === 'string' && !isNaN(Date.parse(t.note)) })));
      }
      if (url.pathname.startsWith('/dz/todos/') && request.method === 'PATCH') {
        const r = await db.update(todos).set(await request.json()).where(eq(todos.id, id)).returning({ id: todos.id, done: todos.done });
        return Response.json(r);
      }
      if (url.pathname.startsWith('/dz/todos/') && request.method === 'DELETE') {
        const r = await db.delete(todos).where(eq(todos.id, id)).run();
        return Response.json({ changes: r.meta.changes, left: await db.$count(todos) });
      }
      return new Response('not found', { status: 404 });
    } catch (err) {
      return Response.json({ error: String(err.message ?? err), cause: String(err.cause?.message ?? '') }, { status: 500 });
    }
  },
};
`;

/** drizzle-kit generate's output for the schema above (it orders tables by name: todos first). */
const MIGRATION_0 = `CREATE TABLE \`todos\` (
	\`id\` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	\`title\` text NOT NULL,
	\`done\` integer DEFAULT false NOT NULL,
	\`userId\` integer,
	\`createdAt\` integer NOT NULL,
	\`note\` text DEFAULT CURRENT_TIMESTAMP,
	FOREIGN KEY (\`userId\`) REFERENCES \`users\`(\`id\`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE \`users\` (
	\`id\` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	\`name\` text NOT NULL,
	\`email\` text NOT NULL,
	\`joinedAt\` integer DEFAULT (unixepoch()) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX \`users_email_unique\` ON \`users\` (\`email\`);`;

/** A later drizzle-kit migration (a column added), and seed data with an explicit id. */
const MIGRATION_1 = `ALTER TABLE \`todos\` ADD \`priority\` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
INSERT INTO \`users\` (\`id\`, \`name\`, \`email\`) VALUES (10, 'Seed', 'seed@example.com');`;

function project(): string {
  const dir = writeProject({
    'kylix.yaml': [
      'apiVersion: kylix.dev/v1',
      'kind: Database',
      'metadata:',
      '  name: todos',
      'spec:',
      '  migrations: ./drizzle',
      '---',
      functionManifest('dz', './app.js', ['/dz/*'], '  bindings:\n    DB: { database: todos }'),
    ].join('\n'),
    'app.js': APP,
    'drizzle/0000_new_nighthawk.sql': MIGRATION_0,
    'drizzle/0001_add_priority.sql': MIGRATION_1,
    'drizzle/meta/_journal.json': '{"version":"7","dialect":"sqlite","entries":[]}',
  });
  // drizzle-orm comes from Kylix's own devDependencies, as an app's node_modules would give it.
  symlinkSync(fileURLToPath(new URL('../../node_modules', import.meta.url)), join(dir, 'node_modules'));
  return dir;
}

const pgUrl = process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the drizzle app on the postgres backend: ${pgDown}`);

for (const [backend, installation, skip] of [
  ['embedded', undefined, undefined],
  ['postgres', loadInstallation(undefined, { KYLIX_POSTGRES_URL: pgUrl }), pgDown],
] as [string, Installation | undefined, string | undefined][]) {
  describe(`a drizzle-orm/d1 app with drizzle-kit migrations on the ${backend} backend`, { skip }, () => {
    let node: TestNode;
    const ns = `dz${randomBytes(3).toString('hex')}`;
    before(async () => {
      node = await startNode({ installation, namespace: ns });
      const { ok } = await apply(node, project());
      assert.ok(ok, 'the app and its drizzle-kit migrations apply');
    });
    after(async () => {
      await node.client.raw('DELETE', `${node.client.path('databases', 'todos')}?purge=true`).catch(() => {});
      await node.destroy();
    });
    // biome-ignore lint/suspicious/noExplicitAny: the app's JSON answers, asserted by shape.
    const call = async (path: string, method = 'GET', body?: unknown): Promise<any> => {
      const res = await fetch(node.url(path), {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = await res.json();
      assert.equal(res.status, 200, JSON.stringify(json));
      return json;
    };

    it('creates rows with ids assigned after the seed, as SQLite assigns rowids', async () => {
      const ada = await call('/dz/users', 'POST', { name: 'Ada', email: 'ada@example.com' });
      assert.deepEqual(
        { id: ada.id, name: ada.name, joinedAtIsDate: ada.joinedAtIsDate },
        { id: 11, name: 'Ada', joinedAtIsDate: true },
      );
      const one = await call('/dz/todos', 'POST', { title: 'write tests', userId: 11 });
      assert.deepEqual(
        { id: one.id, done: one.done, priority: one.priority, createdAtIsDate: one.createdAtIsDate },
        { id: 1, done: false, priority: 0, createdAtIsDate: true },
      );
      const two = await call('/dz/todos', 'POST', { title: 'no owner', priority: 2 });
      assert.equal(two.id, 2);
    });

    it('lists with relational queries, updates and deletes', async () => {
      assert.deepEqual(await call('/dz/todos'), [
        { id: 2, title: 'no owner', done: false, user: null, note: true },
        { id: 1, title: 'write tests', done: false, user: 'Ada', note: true },
      ]);
      assert.deepEqual(await call('/dz/todos/1', 'PATCH', { done: true }), [{ id: 1, done: true }]);
      assert.deepEqual(await call('/dz/users'), [
        { id: 10, name: 'Seed', todos: [] },
        { id: 11, name: 'Ada', todos: [{ title: 'write tests', done: true }] },
      ]);
      assert.deepEqual(await call('/dz/todos/2', 'DELETE'), { changes: 1, left: 1 });
      assert.deepEqual(await call('/dz/users/upsert'), { name: 'Seed renamed' });
    });
  });
}
