/**
 * A D1 app, written as for Cloudflare Workers (prepare/bind/first/all/run/raw, batch, exec), runs
 * unchanged on a real node over HTTP: on the embedded Database backend (PGlite) and, when
 * PostgreSQL is reachable, on the postgres backend. SQL only SQLite understands fails with an
 * error that names the construct.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Installation, loadInstallation } from '../../src/config/installation.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';
import { reachable } from '../helpers/reachable.js';

/** The app: a comments API in the shape of Cloudflare's D1 template. */
const APP = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const db = env.DB;
    try {
      if (url.pathname === '/d1/comments' && request.method === 'POST') {
        const { author, body } = await request.json();
        const { meta, success } = await db
          .prepare('INSERT INTO comments (author, body) VALUES (?, ?)')
          .bind(author, body)
          .run();
        return Response.json({ success, id: meta.last_row_id, changes: meta.changes });
      }
      if (url.pathname === '/d1/comments') {
        const { results } = await db
          .prepare('SELECT id, author, body FROM comments WHERE author = ?1 OR ?1 IS NULL ORDER BY id')
          .bind(url.searchParams.get('author'))
          .all();
        return Response.json(results);
      }
      if (url.pathname === '/d1/first') {
        const stmt = db.prepare('SELECT count(*) AS n FROM comments');
        const missing = await db.prepare('SELECT id FROM comments WHERE id = ?').bind(-1).first();
        return Response.json({ n: await stmt.first('n'), row: await stmt.first(), missing });
      }
      if (url.pathname === '/d1/raw') {
        const rows = await db.prepare('SELECT id, author FROM comments ORDER BY id LIMIT 2').raw({ columnNames: true });
        return Response.json(rows);
      }
      if (url.pathname === '/d1/batch') {
        const insert = db.prepare('INSERT INTO comments (author, body) VALUES (?, ?)');
        const results = await db.batch([
          insert.bind('batch', 'one'),
          insert.bind('batch', 'two'),
          db.prepare('SELECT count(*) AS n FROM comments WHERE author = ?').bind('batch'),
        ]);
        return Response.json(results.map((r) => ({ success: r.success, results: r.results, changes: r.meta.changes })));
      }
      if (url.pathname === '/d1/batch-fails') {
        await db.batch([
          db.prepare('INSERT INTO comments (author, body) VALUES (?, ?)').bind('atomic', 'kept?'),
          db.prepare('INSERT INTO comments (id, author, body) VALUES (?, ?, ?)').bind(1, 'dup', 'dup'),
        ]).catch(() => {});
        const { results } = await db.prepare("SELECT count(*) AS n FROM comments WHERE author = 'atomic'").all();
        return Response.json(results[0]);
      }
      if (url.pathname === '/d1/exec') {
        const r = await db.exec('CREATE TABLE IF NOT EXISTS tags (name text PRIMARY KEY);\\nINSERT INTO tags VALUES (\\'a\\'), (\\'b\\') ON CONFLICT DO NOTHING;');
        return Response.json({ count: r.count, hasDuration: typeof r.duration === 'number' });
      }
      if (url.pathname === '/d1/bool') {
        // D1 binds booleans as 1 and 0 (chanfana's D1 endpoints insert them into INTEGER columns).
        await db.exec('CREATE TABLE IF NOT EXISTS flags (id integer, done integer)');
        await db.batch([
          db.prepare('INSERT INTO flags VALUES (?, ?)').bind(1, true),
          db.prepare('INSERT INTO flags VALUES (?, ?)').bind(2, false),
        ]);
        const { results } = await db.prepare('SELECT id, done FROM flags ORDER BY id').all();
        return Response.json(results);
      }
      if (url.pathname === '/d1/multi') {
        // Several statements in one prepare(), as D1 runs them (Cloudflare's sessions template resets so).
        await db.prepare('DROP TABLE IF EXISTS multi; CREATE TABLE multi (n integer); INSERT INTO multi VALUES (7)').run();
        return Response.json(await db.prepare('SELECT n FROM multi').first());
      }
      if (url.pathname === '/d1/missing') {
        // Worded as D1 words it: apps match on "no such table: <Name>".
        const errors = [];
        for (const sql of ['SELECT * FROM Orders', 'SELECT customerId FROM comments', "INSERT INTO comments (id, author, body) VALUES (1, 'a', 'b')", "INSERT INTO comments (author) VALUES ('a')"])
          await db.prepare(sql).all().catch((e) => errors.push(e.message));
        return Response.json(errors);
      }
      if (url.pathname === '/d1/sqlite') {
        await db.prepare("SELECT datetime('now') AS now").first();
        return new Response('unexpected');
      }
      if (url.pathname === '/d1/tasks' && request.method === 'POST') {
        // chanfana's D1CreateEndpoint, on Cloudflare's OpenAPI template's DATETIME columns.
        const { name, due } = await request.json();
        const row = await db.prepare('INSERT INTO tasks (name, due_date) VALUES (?, ?) RETURNING *').bind(name, due).first();
        return Response.json(row);
      }
      if (url.pathname === '/d1/tasks-limit') {
        // chanfana's D1DeleteEndpoint deletes with RETURNING * LIMIT 1; UPDATE … LIMIT as D1 takes it.
        const dup = db.prepare('INSERT INTO tasks (name, due_date) VALUES (?, ?)').bind('dup', '2025-02-01');
        await db.batch([dup, dup, dup]);
        const gone = await db.prepare('DELETE FROM tasks WHERE name = ?1 RETURNING * LIMIT 1').bind('dup').all();
        const moved = await db.prepare('UPDATE tasks SET name = ? WHERE name = ? ORDER BY id DESC LIMIT 1').bind('moved', 'dup').run();
        const { results } = await db.prepare('SELECT name, count(*) AS n FROM tasks WHERE name IN (?, ?) GROUP BY name ORDER BY name').bind('dup', 'moved').all();
        return Response.json({ gone: gone.results.map((r) => r.name), moved: moved.meta.changes, left: results });
      }
      if (url.pathname === '/d1/pastes') {
        // est/p.est.im's pastebin: a BLOB in a WITHOUT ROWID table, ctime from strftime('%s', 'now').
        await db.prepare('INSERT INTO pastes (id, content, etime) VALUES (?, ?, ?)').bind('a1', new TextEncoder().encode('hi').buffer, 9).run();
        const row = await db.prepare('SELECT content, ctime, etime FROM pastes WHERE id = ?').bind('a1').first();
        return Response.json({ text: new TextDecoder().decode(new Uint8Array(row.content)), age: Math.floor(Date.now() / 1000) - row.ctime, etime: row.etime });
      }
      if (url.pathname === '/d1/ignore') {
        // workers-qb's ConflictTypes.IGNORE: INSERT OR IGNORE, twice on one unique email.
        await db.exec('CREATE TABLE IF NOT EXISTS members (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE)');
        const add = db.prepare('INSERT OR IGNORE INTO members (email) VALUES (?) RETURNING id');
        const first = await add.bind('a@x').all();
        const again = await add.bind('a@x').all();
        return Response.json({ first: first.results, again: again.results, changes: again.meta.changes });
      }
      if (url.pathname === '/d1/kylix-api') {
        const r = await db.query('SELECT count(*)::int AS n FROM comments WHERE author = $1', ['ada']);
        const b = await db.batch([{ sql: 'SELECT 1 AS one' }]);
        return Response.json({ n: r.rows[0].n, one: b[0].rows[0].one, session: typeof db.withSession('first-primary').prepare });
      }
      return new Response('not found', { status: 404 });
    } catch (err) {
      return Response.json({ error: String(err.message ?? err) }, { status: 500 });
    }
  },
};
`;

const MIGRATION = `CREATE TABLE comments (
  id serial PRIMARY KEY,
  author text NOT NULL,
  body text NOT NULL
);
INSERT INTO comments (author, body) VALUES ('ada', 'first!');
`;

/** Cloudflare's chanfana OpenAPI template's migration: SQLite's DATETIME and AUTOINCREMENT. */
const TASKS = `CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    due_date DATETIME NOT NULL,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP
);
`;

/** est/p.est.im's first migration: SQLite's table option and its unixepoch() idiom. */
const PASTES = `CREATE TABLE pastes (
    id TEXT PRIMARY KEY,
    content BLOB NOT NULL,
    ctime INTEGER NOT NULL DEFAULT (strftime('%s', 'now')),
    etime INTEGER NOT NULL
) WITHOUT ROWID;
`;

function project(): string {
  return writeProject({
    'kylix.yaml': [
      'apiVersion: kylix.dev/v1',
      'kind: Database',
      'metadata:',
      '  name: comments',
      'spec:',
      '  migrations: ./migrations',
      '---',
      functionManifest('d1', './app.js', ['/d1/*'], '  bindings:\n    DB: { database: comments }'),
    ].join('\n'),
    'app.js': APP,
    'migrations/0001_comments.sql': MIGRATION,
    'migrations/0002_tasks.sql': TASKS,
    'migrations/0003_pastes.sql': PASTES,
  });
}

const pgUrl = process.env.KYLIX_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const pgDown = await reachable(pgUrl);
if (pgDown) console.log(`# skipping the D1 app on the postgres backend: ${pgDown}`);

for (const [backend, installation, skip] of [
  ['embedded', undefined, undefined],
  ['postgres', loadInstallation(undefined, { KYLIX_POSTGRES_URL: pgUrl }), pgDown],
] as [string, Installation | undefined, string | undefined][]) {
  describe(`a D1 app on the ${backend} Database backend`, { skip }, () => {
    let node: TestNode;
    const ns = `d1${randomBytes(3).toString('hex')}`;
    before(async () => {
      node = await startNode({ installation, namespace: ns });
      const { ok } = await apply(node, project());
      assert.ok(ok, 'the app applies');
    });
    after(async () => {
      await node.client
        .raw('DELETE', `${node.client.path('databases', 'comments')}?purge=true`)
        .catch(() => {});
      await node.destroy();
    });
    // biome-ignore lint/suspicious/noExplicitAny: the app's JSON answers, asserted by shape.
    const get = async (path: string, init?: RequestInit): Promise<any> => {
      const res = await fetch(node.url(path), init);
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body;
    };

    it('inserts with run() and reads with all(), first() and raw()', async () => {
      const made = await get('/d1/comments', {
        method: 'POST',
        body: JSON.stringify({ author: 'bob', body: 'hi?' }),
      });
      assert.deepEqual(made, { success: true, id: 2, changes: 1 });
      assert.deepEqual(await get('/d1/comments?author=bob'), [{ id: 2, author: 'bob', body: 'hi?' }]);
      assert.equal((await get('/d1/comments')).length, 2);
      assert.deepEqual(await get('/d1/first'), { n: 2, row: { n: 2 }, missing: null });
      assert.deepEqual(await get('/d1/raw'), [
        ['id', 'author'],
        [1, 'ada'],
        [2, 'bob'],
      ]);
    });

    it('runs batch([...]) atomically, and exec()', async () => {
      assert.deepEqual(await get('/d1/batch'), [
        { success: true, results: [], changes: 1 },
        { success: true, results: [], changes: 1 },
        { success: true, results: [{ n: 2 }], changes: 0 },
      ]);
      assert.deepEqual(await get('/d1/batch-fails'), { n: 0 });
      assert.deepEqual(await get('/d1/exec'), { count: 2, hasDuration: true });
    });

    it('binds booleans as 1 and 0, as D1 does', async () => {
      assert.deepEqual(await get('/d1/bool'), [
        { id: 1, done: 1 },
        { id: 2, done: 0 },
      ]);
    });

    it('runs several statements given to one prepare()', async () => {
      assert.deepEqual(await get('/d1/multi'), { n: 7 });
    });

    it('words missing tables and columns and broken constraints as D1 does, names as written', async () => {
      const errors = (await get('/d1/missing')) as string[];
      assert.equal(errors.length, 4, JSON.stringify(errors));
      assert.match(
        errors[0]!,
        /^D1_ERROR: no such table: Orders: SQLITE_ERROR \(PostgreSQL: relation "orders" does not exist/,
      );
      assert.match(errors[1]!, /^D1_ERROR: no such column: customerId: SQLITE_ERROR/);
      assert.match(errors[2]!, /^D1_ERROR: UNIQUE constraint failed: id: SQLITE_CONSTRAINT/);
      assert.match(errors[3]!, /^D1_ERROR: NOT NULL constraint failed: comments\.body: SQLITE_CONSTRAINT/);
    });

    it('says when SQL is SQLite-only, naming the construct', async () => {
      const res = await fetch(node.url('/d1/sqlite'));
      assert.equal(res.status, 500);
      const { error } = (await res.json()) as { error: string };
      assert.match(error, /datetime\(\) is SQLite, and Kylix Databases speak PostgreSQL: use now\(\)/);
    });

    it('keeps a DATETIME column as SQLite does: the text it was given, CURRENT_TIMESTAMP as UTC text', async () => {
      const task = await get('/d1/tasks', {
        method: 'POST',
        body: JSON.stringify({ name: 'ship', due: '2025-01-01T00:00:00Z' }),
      });
      assert.equal(task.id, 1);
      assert.equal(task.due_date, '2025-01-01T00:00:00Z');
      assert.match(task.created_at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    });

    it('deletes and updates with LIMIT, as D1 does (chanfana’s delete endpoint)', async () => {
      assert.deepEqual(await get('/d1/tasks-limit'), {
        gone: ['dup'],
        moved: 1,
        left: [
          { name: 'dup', n: 1 },
          { name: 'moved', n: 1 },
        ],
      });
    });

    it("creates a WITHOUT ROWID table whose default is strftime('%s', 'now')", async () => {
      const paste = await get('/d1/pastes');
      assert.equal(paste.text, 'hi');
      assert.equal(paste.etime, 9);
      assert.ok(paste.age >= 0 && paste.age < 60, JSON.stringify(paste));
    });

    it('skips a duplicate with INSERT OR IGNORE, as workers-qb sends it', async () => {
      assert.deepEqual(await get('/d1/ignore'), { first: [{ id: 1 }], again: [], changes: 0 });
    });

    it('keeps the Kylix API (query, batch of { sql, params }) working beside D1’s', async () => {
      assert.deepEqual(await get('/d1/kylix-api'), { n: 1, one: 1, session: 'function' });
    });
  });
}
