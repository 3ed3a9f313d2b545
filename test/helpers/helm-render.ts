/**
 * A minimal renderer for the Kylix Helm chart (deploy/helm/kylix), used where no `helm` binary
 * exists (Debian 12 has none, and no npm package renders Go templates faithfully). It implements
 * exactly the subset of Helm's template language the chart uses, with Go template semantics for it:
 *
 *   {{ .Values.a.b }}  {{ .Release.Name }}  {{ .Release.Namespace }}  {{ .Chart.AppVersion }}
 *   {{ X | quote }}  {{ toYaml X | nindent N }}  {{ X | indent N }}
 *   {{ if X }} / {{ if not X }} / {{ if .Capabilities.APIVersions.Has "g/v" }} … {{ else }} … {{ end }}
 *   {{- and -}} trim the whitespace (newlines included) before / after the action
 *
 * Anything else throws, so the chart cannot drift out of what is checked. Truthiness is Go's: false,
 * 0, "", nil and empty maps and lists are false.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';

/** What templates can read. */
export interface RenderContext {
  Values: Record<string, unknown>;
  Release: { Name: string; Namespace: string };
  Chart: Record<string, unknown>;
  /** The API versions the cluster serves (`kubectl api-versions`). */
  apiVersions: string[];
}

type Node = { text: string } | { expr: string } | { cond: string; yes: Node[]; no: Node[] };

function tokenize(source: string): Node[] {
  const root: Node[] = [];
  const stack: { nodes: Node[]; branch?: { cond: string; yes: Node[]; no: Node[] } }[] = [{ nodes: root }];
  const re = /\{\{(-?)\s*(.*?)\s*(-?)\}\}/gs;
  let last = 0;
  let trimNext = false;
  for (let m = re.exec(source); m; m = re.exec(source)) {
    let text = source.slice(last, m.index);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (m[1] === '-') text = text.replace(/\s+$/, '');
    trimNext = m[3] === '-';
    last = m.index + m[0].length;
    const top = stack[stack.length - 1]!;
    if (text) top.nodes.push({ text });
    const action = m[2]!;
    if (action.startsWith('if ')) {
      const branch = { cond: action.slice(3).trim(), yes: [] as Node[], no: [] as Node[] };
      top.nodes.push(branch);
      stack.push({ nodes: branch.yes, branch });
    } else if (action === 'else') {
      if (!top.branch) throw new Error('helm-render: else without if');
      top.nodes = top.branch.no;
    } else if (action === 'end') {
      if (stack.length === 1) throw new Error('helm-render: end without if');
      stack.pop();
    } else top.nodes.push({ expr: action });
  }
  if (stack.length !== 1) throw new Error('helm-render: if without end');
  let text = source.slice(last);
  if (trimNext) text = text.replace(/^\s+/, '');
  if (text) root.push({ text });
  return root;
}

function lookup(path: string, ctx: RenderContext): unknown {
  if (!/^(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(path)) throw new Error(`helm-render: unsupported term "${path}"`);
  let v: unknown = ctx;
  for (const key of path.slice(1).split('.'))
    v = v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function condition(cond: string, ctx: RenderContext): boolean {
  const has = /^\.Capabilities\.APIVersions\.Has "([^"]+)"$/.exec(cond);
  if (has) return ctx.apiVersions.includes(has[1]!);
  if (cond.startsWith('not ')) return !truthy(lookup(cond.slice(4).trim(), ctx));
  return truthy(lookup(cond, ctx));
}

const toYaml = (v: unknown) => stringify(v ?? {}, { lineWidth: 0 }).trimEnd();
const indent = (s: string, n: number) =>
  s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

function evaluate(expr: string, ctx: RenderContext): string {
  const [head, ...filters] = expr.split('|').map((s) => s.trim());
  let value: unknown;
  if (head!.startsWith('toYaml ')) value = toYaml(lookup(head!.slice(7).trim(), ctx));
  else value = lookup(head!, ctx);
  let out = value === undefined || value === null ? '' : String(value);
  for (const f of filters) {
    const n = /^(n?indent) (\d+)$/.exec(f);
    if (f === 'quote') out = JSON.stringify(out);
    else if (n) out = (n[1] === 'nindent' ? '\n' : '') + indent(out, Number(n[2]));
    else throw new Error(`helm-render: unsupported function "${f}"`);
  }
  return out;
}

function render(nodes: Node[], ctx: RenderContext): string {
  return nodes
    .map((n) => {
      if ('text' in n) return n.text;
      if ('expr' in n) return evaluate(n.expr, ctx);
      return render(condition(n.cond, ctx) ? n.yes : n.no, ctx);
    })
    .join('');
}

/** Deep merge of values (overrides win; lists are replaced), as `helm --set`/`-f` does. */
function merge(base: unknown, over: unknown): unknown {
  if (!over || typeof over !== 'object' || Array.isArray(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...((base as Record<string, unknown>) ?? {}) };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out;
}

/**
 * Renders the chart in `chartDir` with values.yaml merged with `values`, as `helm template` does:
 * the manifests of templates/ (not crds/), each document preceded by its source.
 */
export function renderChart(
  chartDir: string,
  options: { release: string; namespace: string; values?: Record<string, unknown>; apiVersions: string[] },
): string {
  const chart = parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  const defaults = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const ctx: RenderContext = {
    Values: merge(defaults, options.values ?? {}) as Record<string, unknown>,
    Release: { Name: options.release, Namespace: options.namespace },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
    apiVersions: options.apiVersions,
  };
  const docs: string[] = [];
  for (const file of readdirSync(join(chartDir, 'templates')).sort()) {
    if (!file.endsWith('.yaml')) continue;
    const out = render(tokenize(readFileSync(join(chartDir, 'templates', file), 'utf8')), ctx).trim();
    if (out) docs.push(`# Source: kylix/templates/${file}\n${out}\n`);
  }
  return docs.map((d) => `---\n${d}`).join('');
}
