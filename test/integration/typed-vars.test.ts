/**
 * Typed vars (spec.vars), as wrangler's [vars] holds them, through a real node: the code sees
 * numbers, booleans and objects in env as those values (an `if (env.DEBUG)` with DEBUG false does not
 * run), a change of vars makes a new revision, and `kylix types` types them.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { typesCommand } from '../../src/cli/commands/types.js';
import { eventually } from '../helpers/eventually.js';
import { apply, functionManifest, startNode, type TestNode, writeProject } from '../helpers/platform.js';

const APP = `
export default {
  async fetch(request, env) {
    let debugBranch = false;
    if (env.DEBUG) debugBranch = true;
    return Response.json({
      retriesIsThree: env.RETRIES === 3,
      retries: env.RETRIES,
      debugIsFalse: env.DEBUG === false,
      debugBranch,
      b: env.CONFIG.a.b,
      plain: Object.getPrototypeOf(env.CONFIG) === Object.prototype && Array.isArray(env.LIST),
      list: env.LIST,
      none: env.NONE,
      name: env.NAME,
    });
  },
};
`;

const manifest = (retries: number) =>
  functionManifest(
    'typed',
    './app.js',
    ['/typed'],
    [
      '  env:',
      '    NAME: shop',
      '  vars:',
      `    RETRIES: ${retries}`,
      '    DEBUG: false',
      '    NONE: null',
      '    LIST: [1, "two", true]',
      '    CONFIG:',
      '      a:',
      '        b: 1',
    ].join('\n'),
  );

describe('typed vars (spec.vars)', () => {
  let node: TestNode;
  let dir: string;
  before(async () => {
    node = await startNode();
    dir = writeProject({ 'kylix.yaml': manifest(3), 'app.js': APP });
    await apply(node, dir);
  });
  after(async () => {
    await node.destroy();
  });

  it('reach env as their JSON values: env.RETRIES === 3, env.DEBUG === false, env.CONFIG.a.b === 1', async () => {
    const res = await fetch(node.url('/typed'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      retriesIsThree: true,
      retries: 3,
      debugIsFalse: true,
      debugBranch: false,
      b: 1,
      plain: true,
      list: [1, 'two', true],
      none: null,
      name: 'shop',
    });
  });

  it('a change of vars makes a new revision that serves the new value', async () => {
    const revisions = async () =>
      (await node.client.list('revisions', { selector: 'kylix.dev/function=typed' })).length;
    assert.equal(await revisions(), 1);
    writeFileSync(join(dir, 'kylix.yaml'), manifest(5));
    await apply(node, dir);
    assert.equal(await revisions(), 2);
    await eventually(
      async () => ((await (await fetch(node.url('/typed'))).json()) as { retries: number }).retries === 5,
    );
  });

  it('kylix types types them as number, boolean, null, arrays and objects', () => {
    const out = join(dir, 'env.d.ts');
    typesCommand(dir, { output: out });
    const text = readFileSync(out, 'utf8');
    for (const line of [
      'RETRIES: number;',
      'DEBUG: boolean;',
      'NONE: null;',
      'LIST: (number | string | boolean)[];',
      'CONFIG: { a: { b: number } };',
      'NAME: string;',
    ])
      assert.ok(text.includes(line), `missing "${line}" in:\n${text}`);
  });
});
