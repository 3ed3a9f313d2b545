/**
 * `kylix schema [DIR]`: writes the JSON Schema of every kind, for editors (yaml-language-server).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allJsonSchemas } from '../../resources/json-schema.js';

/** Writes the schemas into `dir`; returns the files written. */
export function schemaCommand(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(allJsonSchemas()).map(([file, schema]) => {
    const path = join(dir, file);
    writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
    return path;
  });
}
