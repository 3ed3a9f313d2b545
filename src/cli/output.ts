/**
 * kubectl-style output: aligned tables, ages ("5m"), and -o yaml|json.
 */
import { stringify as toYaml } from 'yaml';

/** Prints rows as a table with upper-case headers, columns three spaces apart. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** AGE as kubectl shows it; declared with the table columns the API and the CRDs share. */
export { age } from '../kubernetes/columns.js';

/** Formats objects for -o json / -o yaml. */
export function serialize(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : toYaml(value).trimEnd();
}
