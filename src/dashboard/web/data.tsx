/**
 * #/data — the data behind the namespace's resources, through the same routes as `kylix kv`,
 * `kylix bucket` and `kylix queue`: KeyValue keys (and a value), Bucket objects, Queue counts with
 * dead-letter redrive, and the read-only SQL console.
 */
import { useState } from 'preact/hooks';
import { json, type KObject, list, path, request } from './api.js';
import { usePoll } from './hooks.js';
import { SqlConsole } from './sql-console.js';

/** A select of the resources of one kind; empty text when there are none. */
function Picker(props: { items: KObject[]; value: string; onChange: (v: string) => void; label: string }) {
  return (
    <label>
      {props.label}{' '}
      <select value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.items.map((i) => (
          <option key={i.metadata.name} value={i.metadata.name}>
            {i.metadata.name}
          </option>
        ))}
      </select>
    </label>
  );
}

function KeyValues(props: { stores: KObject[] }) {
  const [store, setStore] = useState(props.stores[0]?.metadata.name ?? '');
  const [prefix, setPrefix] = useState('');
  const [shown, setShown] = useState<{ key: string; value: string }>();
  const keys = usePoll(
    () =>
      json<{ keys: { name: string; expiration?: number }[]; list_complete: boolean }>(
        `${path('keyvalues', store, 'keys')}?limit=100${prefix ? `&prefix=${encodeURIComponent(prefix)}` : ''}`,
      ),
    10_000,
    [store, prefix],
  );
  const open = async (key: string) => {
    const res = await request(`${path('keyvalues', store, 'keys')}/${encodeURIComponent(key)}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.slice(0, 4096));
    setShown({ key, value: bytes.length > 4096 ? `${text}… (${bytes.length} bytes)` : text });
  };
  return (
    <div class="card">
      <div class="toolbar">
        <Picker label="KeyValue" items={props.stores} value={store} onChange={setStore} />
        <input
          placeholder="key prefix"
          value={prefix}
          onInput={(e) => setPrefix((e.target as HTMLInputElement).value)}
        />
      </div>
      {keys.error && <p class="error">{keys.error}</p>}
      <div class="split">
        <ul class="keys">
          {keys.data?.keys.map((k) => (
            <li key={k.name}>
              <button type="button" class="link mono" onClick={() => void open(k.name)}>
                {k.name}
              </button>
            </li>
          ))}
          {keys.data && keys.data.keys.length === 0 && <li class="muted">No keys.</li>}
          {keys.data && !keys.data.list_complete && <li class="muted">(first 100 shown)</li>}
        </ul>
        {shown && (
          <div class="value">
            <h4 class="mono">{shown.key}</h4>
            <pre>{shown.value}</pre>
          </div>
        )}
      </div>
    </div>
  );
}

function Buckets(props: { buckets: KObject[] }) {
  const [bucket, setBucket] = useState(props.buckets[0]?.metadata.name ?? '');
  const [prefix, setPrefix] = useState('');
  const objects = usePoll(
    () =>
      json<{
        objects: { key: string; size: number; uploaded: string }[];
        delimitedPrefixes: string[];
        truncated: boolean;
      }>(
        `${path('buckets', bucket, 'objects')}?delimiter=/${prefix ? `&prefix=${encodeURIComponent(prefix)}` : ''}`,
      ),
    10_000,
    [bucket, prefix],
  );
  return (
    <div class="card">
      <div class="toolbar">
        <Picker label="Bucket" items={props.buckets} value={bucket} onChange={setBucket} />
        <span class="mono">/{prefix}</span>
        {prefix && (
          <button type="button" class="link" onClick={() => setPrefix(prefix.replace(/[^/]*\/$/, ''))}>
            up
          </button>
        )}
      </div>
      {objects.error && <p class="error">{objects.error}</p>}
      <table>
        <thead>
          <tr>
            <th>Key</th>
            <th>Size</th>
            <th>Uploaded</th>
          </tr>
        </thead>
        <tbody>
          {objects.data?.delimitedPrefixes.map((p) => (
            <tr key={p}>
              <td colSpan={3}>
                <button type="button" class="link mono" onClick={() => setPrefix(p)}>
                  {p}
                </button>
              </td>
            </tr>
          ))}
          {objects.data?.objects.map((o) => (
            <tr key={o.key}>
              <td class="mono">{o.key}</td>
              <td>{o.size}</td>
              <td>{o.uploaded.replace('T', ' ').slice(0, 19)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {objects.data && objects.data.objects.length + objects.data.delimitedPrefixes.length === 0 && (
        <p class="muted">No objects.</p>
      )}
    </div>
  );
}

interface QueueStats {
  ready: number;
  inFlight: number;
  delayed: number;
  [k: string]: unknown;
}

/** Each queue's counts; a dead-letter queue (named by a function's trigger) gets a redrive button. */
function Queues(props: { queues: KObject[]; functions: KObject[] }) {
  // Dead-letter queue → the queue whose trigger sends to it (the redrive target).
  const sources = new Map<string, string>();
  for (const f of props.functions) {
    const q = (f.spec?.triggers as { queue?: { name: string; deadLetter?: string } } | undefined)?.queue;
    if (q?.deadLetter) sources.set(q.deadLetter, q.name);
  }
  const stats = usePoll(
    () =>
      Promise.all(
        props.queues.map(
          async (q) =>
            [q.metadata.name, await json<QueueStats>(path('queues', q.metadata.name, 'stats'))] as const,
        ),
      ),
    3000,
    [props.queues.map((q) => q.metadata.name).join()],
  );
  const [note, setNote] = useState<{ text: string; error: boolean }>();
  const redrive = async (from: string, to: string) => {
    setNote(undefined);
    try {
      const { moved } = await json<{ moved: number }>(path('queues', from, 'redrive'), 'POST', { to });
      setNote({
        text: `Moved ${moved} message${moved === 1 ? '' : 's'} from ${from} to ${to}.`,
        error: false,
      });
      stats.reload();
    } catch (err) {
      setNote({ text: (err as Error).message, error: true });
    }
  };
  return (
    <div class="card">
      {stats.error && <p class="error">{stats.error}</p>}
      {note && <p class={note.error ? 'error' : 'ok-text'}>{note.text}</p>}
      <table class="queues">
        <thead>
          <tr>
            <th>Queue</th>
            <th>Ready</th>
            <th>In flight</th>
            <th>Delayed</th>
            <th>Dead letters of</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(stats.data ?? []).map(([name, s]) => {
            const target = sources.get(name);
            return (
              <tr key={name} data-queue={name}>
                <td>{name}</td>
                <td class="ready">{s.ready}</td>
                <td>{s.inFlight}</td>
                <td>{s.delayed}</td>
                <td>{target ?? ''}</td>
                <td>
                  {target && (
                    <button type="button" disabled={s.ready === 0} onClick={() => void redrive(name, target)}>
                      Redrive to {target}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The page. */
export function DataPage() {
  const resources = usePoll(async () => {
    const [keyvalues, buckets, queues, databases, functions] = await Promise.all(
      ['keyvalues', 'buckets', 'queues', 'databases', 'functions'].map((p) => list(p)),
    );
    return { keyvalues, buckets, queues, databases, functions } as Record<string, KObject[]>;
  }, 15_000);
  const r = resources.data;
  if (resources.error) return <p class="error">{resources.error}</p>;
  if (!r) return <p class="loading">Loading…</p>;
  const none = (kind: string) => <p class="muted">No {kind} in this namespace.</p>;
  return (
    <>
      <section>
        <h2>Queues</h2>
        {r.queues?.length ? <Queues queues={r.queues} functions={r.functions ?? []} /> : none('Queues')}
      </section>
      <section>
        <h2>SQL console</h2>
        {r.databases?.length ? <SqlConsole databases={r.databases} /> : none('Databases')}
      </section>
      <section>
        <h2>Key-value stores</h2>
        {r.keyvalues?.length ? <KeyValues stores={r.keyvalues} /> : none('KeyValues')}
      </section>
      <section>
        <h2>Buckets</h2>
        {r.buckets?.length ? <Buckets buckets={r.buckets} /> : none('Buckets')}
      </section>
    </>
  );
}
