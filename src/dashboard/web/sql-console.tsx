/**
 * The read-only SQL console: one statement against a Database, run by the server in a READ ONLY
 * transaction that is rolled back (src/dashboard/read-only-sql.ts); a write comes back as an error.
 */
import { useState } from 'preact/hooks';
import { json, type KObject, path } from './api.js';

interface QueryResult {
  rows: Record<string, unknown>[];
  rowCount: number;
  fields: { name: string }[];
  truncated: boolean;
  maxRows: number;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** The console. */
export function SqlConsole(props: { databases: KObject[] }) {
  const [db, setDb] = useState(props.databases[0]?.metadata.name ?? '');
  const [sql, setSql] = useState(
    'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()',
  );
  const [result, setResult] = useState<QueryResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setResult(await json<QueryResult>(path('databases', db, 'read-query'), 'POST', { sql }));
    } catch (err) {
      setResult(undefined);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card sql">
      <div class="toolbar">
        <label>
          Database{' '}
          <select value={db} onChange={(e) => setDb((e.target as HTMLSelectElement).value)}>
            {props.databases.map((d) => (
              <option key={d.metadata.name} value={d.metadata.name}>
                {d.metadata.name}
              </option>
            ))}
          </select>
        </label>
        <span class="muted">read-only: each statement runs in a READ ONLY transaction</span>
      </div>
      <textarea
        name="sql"
        rows={4}
        spellcheck={false}
        value={sql}
        onInput={(e) => setSql((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') void run();
        }}
      />
      <div class="actions">
        <button type="button" disabled={busy || !sql.trim()} onClick={() => void run()}>
          Run
        </button>
        <span class="muted">Ctrl+Enter</span>
      </div>
      {error && (
        <p class="error" data-testid="sql-error">
          {error}
        </p>
      )}
      {result && (
        <div class="result">
          <p class="muted">
            {result.rowCount} row{result.rowCount === 1 ? '' : 's'}
            {result.truncated ? ` (first ${result.maxRows} shown)` : ''}
          </p>
          <table>
            <thead>
              <tr>
                {result.fields.map((f) => (
                  <th key={f.name}>{f.name}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {result.rows.map((row, i) => (
                <tr key={i}>
                  {result.fields.map((f) => (
                    <td key={f.name} class="mono">
                      {cell(row[f.name])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
