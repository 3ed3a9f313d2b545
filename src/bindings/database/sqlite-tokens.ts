/**
 * SQL text as tokens for the SQLite translation (sqlite-translate.ts, sqlite-ddl.ts): the pieces of
 * sql-scan.ts, with code cut into words, punctuation and space, so a statement can be edited in
 * place and joined back byte for byte where nothing was changed.
 */
import { scan } from './sql-scan.js';

/** One token: a word, one punctuation character, a run of space, or a whole non-code piece. */
export interface Tok {
  kind: 'word' | 'punct' | 'space' | 'ident' | 'string' | 'body' | 'comment';
  text: string;
}

/** Tokens of `sql`, with backtick identifiers already double-quoted; `backticks` when there was one. */
export function tokenize(sql: string): { toks: Tok[]; backticks: boolean } {
  const toks: Tok[] = [];
  let backticks = false;
  for (const p of scan(sql)) {
    if (p.kind !== 'code') {
      toks.push({ kind: p.kind, text: p.text });
      continue;
    }
    for (const m of p.text.matchAll(/\s+|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*|\d[\d.]*|[\s\S]/g)) {
      const t = m[0];
      if (t.startsWith('`') && t.length > 1) {
        backticks = true;
        toks.push({ kind: 'ident', text: `"${t.slice(1, -1).replaceAll('"', '""')}"` });
      } else if (/^\s/.test(t)) toks.push({ kind: 'space', text: t });
      else if (/^[A-Za-z_]/.test(t)) toks.push({ kind: 'word', text: t });
      else toks.push({ kind: /^\d/.test(t) ? 'word' : 'punct', text: t });
    }
  }
  return { toks, backticks };
}

/** The text of tokens `a` up to (not including) `b`, joined back as written. */
export function textOf(toks: readonly Tok[], a: number, b: number): string {
  return toks
    .slice(a, b)
    .map((t) => t.text)
    .join('');
}

/** The index of the first token at or after `i` that is neither space nor comment (or toks.length). */
export function sig(toks: readonly Tok[], i: number): number {
  let k = i;
  while (k < toks.length && (toks[k]!.kind === 'space' || toks[k]!.kind === 'comment')) k++;
  return k;
}

/** The token's text, lowercased, when it is a word; '' otherwise. */
export function word(t: Tok | undefined): string {
  return t?.kind === 'word' ? t.text.toLowerCase() : '';
}

/** The index of the ")" that closes the "(" at `open` (or toks.length). One pass: call it once per statement. */
export function closing(toks: readonly Tok[], open: number): number {
  let depth = 0;
  for (let k = open; k < toks.length; k++) {
    const t = toks[k]!.text;
    if (toks[k]!.kind !== 'punct') continue;
    if (t === '(') depth++;
    else if (t === ')' && --depth === 0) return k;
  }
  return toks.length;
}

/**
 * For every "(" of `toks`, the index of its ")" (toks.length when unclosed), in one pass: the
 * translation looks at every call's parentheses, and scanning to the close from each "(" would be
 * quadratic in a statement of 1 MiB (`f(f(f(…`), run on the supervisor's thread. Valid while no
 * token is inserted or removed (edits replace tokens in place, with blank() for removed ones).
 */
export function parenMatches(toks: readonly Tok[]): Int32Array {
  const match = new Int32Array(toks.length).fill(toks.length);
  const open: number[] = [];
  for (let k = 0; k < toks.length; k++) {
    const t = toks[k]!;
    if (t.kind !== 'punct') continue;
    if (t.text === '(') open.push(k);
    else if (t.text === ')' && open.length > 0) match[open.pop()!] = k;
  }
  return match;
}

/** A token that stands for nothing: what an edit leaves where it removed a token (sig() skips it). */
export const blank = (): Tok => ({ kind: 'space', text: '' });

/** One statement after translation: itself, the statements it brings along, and any to run last. */
export interface Translated {
  statements: string[];
  deferred: string[];
}
