/**
 * Resource refs that the old identifier scheme ("<namespace>_<name>" with "-" as "_") folded into
 * one backend name: each group must stay apart in every provider. Every conformance suite uses them.
 */
import { randomBytes } from 'node:crypto';
import type { ResourceRef } from '../../src/bindings/provider.js';

/**
 * Groups of refs that used to share a database, schema, stream or prefix, or that share all but
 * their last bytes (around PostgreSQL's 63-byte limit). `tag` (fresh per run
 * unless given) keeps runs against a shared server apart.
 */
export function collidingGroups(tag = `t${randomBytes(3).toString('hex')}`): ResourceRef[][] {
  const long = `${tag}-${'n'.repeat(58 - tag.length - 1)}`;
  const edge = `${tag}-${'m'.repeat(40)}`;
  return [
    // a-b/c vs a/b-c, and a three-way split of one dashed string.
    [
      { namespace: `${tag}-a`, name: 'b' },
      { namespace: tag, name: 'a-b' },
    ],
    [
      { namespace: `${tag}-a-b`, name: 'c' },
      { namespace: `${tag}-a`, name: 'b-c' },
      { namespace: tag, name: 'a-b-c' },
    ],
    // Double dashes.
    [
      { namespace: `${tag}--a`, name: 'b-c' },
      { namespace: `${tag}--a-b`, name: 'c' },
    ],
    // Past PostgreSQL's 63 bytes (so the hashed form): a shared prefix, then the same split as above.
    [
      { namespace: `${long}-tail`, name: 'end' },
      { namespace: long, name: 'tail-end' },
      { namespace: long, name: 'tail-enc' },
    ],
    // Right at the limit: "kylix_" + namespace + "_" + name is 62, 63 and 64 bytes.
    [62, 63, 64].map((bytes) => ({ namespace: edge, name: 'x'.repeat(bytes - 7 - edge.length) })),
  ];
}
