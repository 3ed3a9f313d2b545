/**
 * YAML parsing with limits, for manifests (CLI) and request bodies (API) alike: linear in the size
 * of the text, and safe from alias bombs ("billion laughs"). The yaml package checks duplicate keys
 * pairwise (20,000 keys took 3 s), so that check is done here instead, with one Set per mapping.
 */
import { isScalar, LineCounter, parseAllDocuments, visit } from 'yaml';
import { MAX_YAML_ALIASES } from './limits.js';

/** Why a YAML text was refused: a short code, where, and yaml's own message (which may quote the text). */
export class YamlProblem extends Error {
  constructor(
    /** BAD_INDENT, DUPLICATE_KEY, TOO_MANY_ALIASES, …: never any of the text itself. */
    readonly code: string,
    /** yaml's description, which may quote a line of the text: for a user's own terminal only. */
    readonly detail: string,
    readonly line?: number,
    readonly col?: number,
  ) {
    super(detail);
    this.name = 'YamlProblem';
  }

  /** "BAD_INDENT at line 3, column 5": safe to send back, since it repeats none of the text. */
  get where(): string {
    if (this.code === 'TOO_MANY_ALIASES') return `too many YAML aliases (limit ${MAX_YAML_ALIASES})`;
    return this.line ? `${this.code} at line ${this.line}, column ${this.col}` : this.code;
  }
}

/** Parses every document of a YAML text into plain values; throws a YamlProblem. */
export function parseYamlDocuments(text: string): unknown[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { uniqueKeys: false, lineCounter: lines });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    const e = doc.errors[0];
    if (e) {
      const at = e.linePos?.[0];
      throw new YamlProblem(e.code, e.message.split('\n')[0] ?? e.code, at?.line, at?.col);
    }
    let duplicate: number | undefined;
    visit(doc, {
      Map(_, map) {
        const seen = new Set<unknown>();
        for (const pair of map.items) {
          const key = isScalar(pair.key) ? pair.key.value : pair.key;
          if (seen.has(key) && isScalar(pair.key)) {
            duplicate = pair.key.range?.[0] ?? 0;
            return visit.BREAK;
          }
          seen.add(key);
        }
        return undefined;
      },
    });
    if (duplicate !== undefined) {
      const at = lines.linePos(duplicate);
      throw new YamlProblem('DUPLICATE_KEY', 'Map keys must be unique', at.line, at.col);
    }
    try {
      out.push(doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }));
    } catch (err) {
      if (err instanceof ReferenceError && /alias/i.test(err.message))
        throw new YamlProblem('TOO_MANY_ALIASES', `too many YAML aliases (limit ${MAX_YAML_ALIASES})`);
      throw new YamlProblem('BAD_ALIAS', (err as Error).message);
    }
  }
  return out;
}

/** Parses a YAML text that holds one document (an API request body). */
export function parseYamlDocument(text: string): unknown {
  const docs = parseYamlDocuments(text);
  if (docs.length > 1) throw new YamlProblem('MULTIPLE_DOCS', 'a request body must hold one document');
  return docs[0] ?? null;
}

/**
 * Parses an API body. JSON is YAML, and what `kylix apply` sends even as YAML: JSON.parse is many
 * times faster than a YAML parser, so a YAML body that looks like JSON is tried as JSON first.
 * Throws a SyntaxError (JSON) or a YamlProblem.
 */
export function parseBodyText(text: string, format: 'yaml' | 'json'): unknown {
  if (format === 'json') return JSON.parse(text);
  if (/^\s*[{[]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // Flow-style YAML, then: the YAML parser says what is wrong with it.
    }
  }
  return parseYamlDocument(text);
}
