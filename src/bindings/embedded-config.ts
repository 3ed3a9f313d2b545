/**
 * The embedded provider's section of the installation config, shared by every kind: it runs in
 * the node's process and keeps its data in the node's data folder, or in `dataDir` if given.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

/** `{ provider: embedded, dataDir? }`: the default of every kind. */
export const embeddedSection = z.strictObject({
  provider: z.literal('embedded'),
  /** Where the kind keeps its data: absolute, or relative to the node's data folder. */
  dataDir: z.string().min(1).optional(),
});

/** The folder an embedded provider opens: the configured one, else `<node data folder>/<folder>`. */
export function embeddedDataDir(section: { dataDir?: string }, nodeDataDir: string, folder: string): string {
  if (section.dataDir === undefined) return join(nodeDataDir, folder);
  return isAbsolute(section.dataDir) ? section.dataDir : resolve(nodeDataDir, section.dataDir);
}
