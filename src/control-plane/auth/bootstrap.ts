/**
 * The installation's first admin token, which every node of a fleet must accept. It is the token
 * record `admin` in the state store, and its secret comes from one of two places:
 *
 * - a given secret (KYLIX_ADMIN_TOKEN on every node, or a test's token): the record is set to it,
 *   so changing the variable rotates it;
 * - the node's `<data>/admin-token` file: the first node to start makes the secret, stores its
 *   hash and writes the file (mode 0600); a node whose store already has an admin token (another
 *   node of the fleet made it) makes none, and says where the token is.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TokenStore } from './tokens.js';

/** Where the admin secret comes from. */
export type AdminSource = { secret: string } | { file: string };

/** What start-up should tell the operator. */
export interface AdminBootstrap {
  /** A new admin token, to be shown once (it is also in the file). */
  created?: string;
  /** A warning: the file's token is not the installation's, or there is no file on this node. */
  notice?: string;
}

/** Makes sure the installation has the bootstrap admin token; see the file comment. */
export async function bootstrapAdmin(tokens: TokenStore, source: AdminSource): Promise<AdminBootstrap> {
  if ('secret' in source) {
    await tokens.setAdmin(source.secret);
    return {};
  }
  const path = source.file;
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    // A file from before tokens lived in the store becomes the installation's admin token.
    if ((await tokens.adoptAdmin(secret)) !== 'other') return {};
    return {
      notice: `kylix: ${path} does not hold this installation's admin token (another node made the one in the shared store). Use that node's token, or set KYLIX_ADMIN_TOKEN on every node; see docs/access.md.`,
    };
  }
  if (await tokens.hasAdmin()) return { notice: otherNode(path) };
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  if ((await tokens.adoptAdmin(secret)) === 'created') return { created: secret };
  // Another node of the fleet stored its token first: this file would only mislead.
  rmSync(path, { force: true });
  return { notice: otherNode(path) };
}

const otherNode = (path: string) =>
  `kylix: this installation's admin token was made by another node (it is in that node's <data>/admin-token); ${path} was not created. Set KYLIX_ADMIN_TOKEN on every node to choose it yourself; see docs/access.md.`;
