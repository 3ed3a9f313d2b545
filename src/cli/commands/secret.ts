/**
 * `kylix secret reseal` and `kylix secret rotate-key`: the keys that seal Secret values at rest.
 * (`kylix secret set` is in data.ts.)
 */
import type { ResealResult, RotationResult } from '../../resources/api-types.js';
import type { ApiClient } from '../client.js';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The lines shared by both commands; `ok` is false when some value could not be opened. */
function summary(r: ResealResult): { lines: string[]; ok: boolean } {
  const lines = [
    `Re-sealed ${plural(r.resealed, 'value')} under key ${r.currentKeyId} (${plural(r.secrets, 'secret')} checked).`,
    `Key ids in use: ${r.keyIdsInUse.join(', ') || '(none)'}`,
  ];
  for (const u of r.unreadable)
    lines.push(
      `WARNING: ${u.namespace}/${u.secret} key "${u.key}" (key ${u.keyId}) was left as it is: ${u.message}`,
    );
  return { lines, ok: r.unreadable.length === 0 };
}

/** `kylix secret reseal`: every value under the current key. */
export async function secretResealCommand(client: ApiClient): Promise<{ text: string; ok: boolean }> {
  const { data } = await client.json<ResealResult>('POST', '/kylix/v1/secrets/reseal');
  const { lines, ok } = summary(data);
  return { text: lines.join('\n'), ok };
}

/** `kylix secret rotate-key`: a new key for the embedded key file, then a re-seal. */
export async function secretRotateKeyCommand(client: ApiClient): Promise<{ text: string; ok: boolean }> {
  const { data } = await client.json<RotationResult>('POST', '/kylix/v1/secrets/rotate-key');
  const { lines, ok } = summary(data);
  return {
    text: [
      `Rotated the secret key: ${data.previousKeyId} -> ${data.currentKeyId}`,
      ...lines,
      data.removedKeyIds.length
        ? `Removed from the key file: ${data.removedKeyIds.join(', ')}`
        : 'Removed no key from the key file.',
    ].join('\n'),
    ok,
  };
}
