/**
 * `kylix crds [-o yaml|json] [--dir DIR]`: the CustomResourceDefinitions of every kylix.dev/v1 kind,
 * for `kubectl apply -f -` or a Helm chart's crds/ folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { KylixError } from '../../errors.js';
import { type CustomResourceDefinition, customResourceDefinitions } from '../../kubernetes/crds.js';

/** Flags of crds. */
export interface CrdsFlags {
  output?: string;
  dir?: string;
}

/** One CRD as a YAML document (no anchors: kubectl and Helm read it as written). */
export function crdYaml(crd: CustomResourceDefinition): string {
  return stringify(crd, { aliasDuplicateObjects: false, lineWidth: 0 });
}

/** The file a CRD is written to in a crds/ folder: `functions.kylix.dev.yaml`. */
export function crdFileName(crd: CustomResourceDefinition): string {
  return `${crd.metadata.name}.yaml`;
}

/** Runs crds: the text to print, or (with --dir) writes one file per CRD and lists them. */
export function crdsCommand(flags: CrdsFlags): string {
  const crds = customResourceDefinitions();
  const format = flags.output ?? 'yaml';
  if (format !== 'yaml' && format !== 'json')
    throw new KylixError('ERR_BAD_REQUEST', `-o ${format} is not supported; use yaml or json.`);
  if (flags.dir) {
    mkdirSync(flags.dir, { recursive: true });
    return crds
      .map((crd) => {
        const path = join(flags.dir as string, crdFileName(crd));
        writeFileSync(path, crdYaml(crd));
        return path;
      })
      .join('\n');
  }
  if (format === 'json') return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: crds }, null, 2);
  return crds
    .map((crd) => `---\n${crdYaml(crd)}`)
    .join('')
    .trimEnd();
}
