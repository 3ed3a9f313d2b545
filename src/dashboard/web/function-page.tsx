/**
 * #/functions/NAME — one function: status and routes, revisions with the traffic split (editable:
 * a merge patch of spec.traffic, as `kylix traffic` sends), the last hour's charts, the live log
 * tail and the function's events.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { age, json, type KObject, list, path, readiness, streamLines } from './api.js';
import { Chart, type Line } from './chart.js';
import { EventsTable, Ready, routesText, type TrafficShare, trafficText } from './functions-page.js';
import { usePoll } from './hooks.js';

/** The metrics-history answer (observability/history.ts). */
interface History {
  time: number[];
  requestsPerSecond: number[];
  errors: number[];
  coldStarts: number[];
  p50Ms: (number | null)[];
  p95Ms: (number | null)[];
  p99Ms: (number | null)[];
  instances: number[];
  inFlight: number[];
}

/** One line of the function's log (control-plane/logs.ts). */
interface LogLine {
  time: string;
  level: string;
  message: string;
  revision?: number;
}

const revNumber = (r: KObject) => (r.spec as { number: number }).number;

/** Revisions and the split, with inputs to change it. */
function Traffic(props: { fn: KObject; revisions: KObject[]; onChanged: () => void }) {
  const shares = (props.fn.status?.traffic as TrafficShare[] | undefined) ?? [];
  const current = (n: number) => shares.filter((s) => s.revision === n).reduce((a, s) => a + s.percent, 0);
  const [draft, setDraft] = useState<Record<number, string>>({});
  const [message, setMessage] = useState<{ text: string; error: boolean }>();
  const [busy, setBusy] = useState(false);
  const value = (n: number) => draft[n] ?? String(current(n));
  const total = props.revisions.reduce((a, r) => a + (Number(value(revNumber(r))) || 0), 0);
  const send = async (traffic: { revision: number; percent: number }[] | null) => {
    setBusy(true);
    setMessage(undefined);
    try {
      await json(
        path('functions', props.fn.metadata.name),
        'PATCH',
        { spec: { traffic } },
        'application/merge-patch+json',
      );
      setDraft({});
      setMessage({
        text: traffic ? 'Traffic split applied.' : 'All traffic now follows the latest revision.',
        error: false,
      });
      props.onChanged();
    } catch (err) {
      setMessage({ text: (err as Error).message, error: true });
    } finally {
      setBusy(false);
    }
  };
  const apply = () => {
    const traffic = props.revisions
      .map((r) => ({ revision: revNumber(r), percent: Number(value(revNumber(r))) || 0 }))
      .filter((t) => t.percent > 0);
    void send(traffic);
  };
  return (
    <div class="traffic">
      <table>
        <thead>
          <tr>
            <th>Revision</th>
            <th>Status</th>
            <th>Age</th>
            <th>Traffic now</th>
            <th>New split %</th>
          </tr>
        </thead>
        <tbody>
          {props.revisions.map((r) => {
            const n = revNumber(r);
            return (
              <tr key={n}>
                <td>{n}</td>
                <td>
                  <Ready object={r} />
                </td>
                <td>{age(r.metadata.creationTimestamp)}</td>
                <td>{current(n)}%</td>
                <td>
                  <input
                    type="number"
                    min="0"
                    max="100"
                    name={`percent-${n}`}
                    aria-label={`percent for revision ${n}`}
                    value={value(n)}
                    onInput={(e) => setDraft({ ...draft, [n]: (e.target as HTMLInputElement).value })}
                  />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <div class="actions">
        <span class={total === 100 ? 'muted' : 'error'}>total {total}%</span>
        <button type="button" disabled={busy || total !== 100} onClick={apply}>
          Apply split
        </button>
        <button type="button" class="secondary" disabled={busy} onClick={() => void send(null)}>
          All to latest
        </button>
        {message && <span class={message.error ? 'error' : 'ok-text'}>{message.text}</span>}
      </div>
    </div>
  );
}

/** The last hour, drawn. */
function Charts(props: { history: History }) {
  const h = props.history;
  const charts = useMemo(
    () =>
      [
        { title: 'Requests/s', lines: [{ label: 'req/s', values: h.requestsPerSecond, color: '#2563eb' }] },
        {
          title: 'Latency',
          unit: 'ms',
          lines: [
            { label: 'p50', values: h.p50Ms, color: '#16a34a' },
            { label: 'p95', values: h.p95Ms, color: '#ca8a04' },
            { label: 'p99', values: h.p99Ms, color: '#dc2626' },
          ],
        },
        { title: 'Errors', lines: [{ label: 'errors', values: h.errors, color: '#dc2626' }] },
        { title: 'Cold starts', lines: [{ label: 'cold', values: h.coldStarts, color: '#7c3aed' }] },
        {
          title: 'Instances',
          lines: [
            { label: 'instances', values: h.instances, color: '#0891b2' },
            { label: 'in flight', values: h.inFlight, color: '#64748b' },
          ],
        },
      ] as { title: string; unit?: string; lines: Line[] }[],
    [h],
  );
  if (h.time.length === 0) return <p class="muted">No requests on this node in the last hour.</p>;
  return (
    <div class="charts">
      {charts.map((c) => (
        <Chart key={c.title} title={c.title} unit={c.unit} time={h.time} lines={c.lines} />
      ))}
    </div>
  );
}

/** The live log tail: the last 100 lines, then each new one as it is written. */
function LogTail(props: { name: string }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<string>();
  const box = useRef<HTMLPreElement>(null);
  const pinned = useRef(true);
  // Follow the newest line, unless the reader scrolled up to read an older one.
  useEffect(() => {
    const el = box.current;
    if (el && pinned.current && lines.length > 0) el.scrollTop = el.scrollHeight;
  }, [lines]);
  useEffect(() => {
    const abort = new AbortController();
    let pending: LogLine[] = [];
    let timer: number | undefined;
    // Lines are added in batches, at most every 250 ms, so a busy function does not re-render per line.
    const flush = () => {
      timer = undefined;
      const add = pending;
      pending = [];
      setLines((old) => [...old, ...add].slice(-500));
    };
    streamLines(
      `${path('functions', props.name, 'log')}?follow=true&tailLines=100`,
      (v) => {
        pending.push(v as LogLine);
        timer ??= window.setTimeout(flush, 250);
      },
      abort.signal,
    ).catch((err: unknown) => setError((err as Error).message));
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [props.name]);
  return (
    <div>
      {error && <p class="error">{error}</p>}
      <pre
        class="logs"
        aria-live="polite"
        ref={box}
        onScroll={(e) => {
          const el = e.currentTarget;
          pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
        }}
      >
        {lines.length === 0 && <span class="muted">No log lines yet.</span>}
        {lines.map((l, i) => (
          <div key={i} class={`log ${l.level}`}>
            <span class="time">{l.time.slice(11, 23)}</span> <span class="level">{l.level}</span>{' '}
            {l.revision !== undefined && <span class="rev">r{l.revision}</span>} {l.message}
          </div>
        ))}
      </pre>
    </div>
  );
}

/** The page. */
export function FunctionPage(props: { name: string }) {
  const { name } = props;
  const fn = usePoll(() => json<KObject>(path('functions', name)), 5000, [name]);
  const revisions = usePoll(
    async () =>
      (await list('revisions', `kylix.dev/function=${name}`)).sort((a, b) => revNumber(a) - revNumber(b)),
    5000,
    [name],
  );
  const history = usePoll(() => json<History>(path('functions', name, 'metrics-history')), 10_000, [name]);
  const events = usePoll(
    async () =>
      (await list('events')).filter((e) => {
        const about = (e.involvedObject as { kind?: string; name?: string } | undefined) ?? {};
        return (
          (about.kind === 'Function' && about.name === name) ||
          (about.kind === 'Revision' && about.name?.startsWith(`${name}-`))
        );
      }),
    5000,
    [name],
  );
  const f = fn.data;
  return (
    <>
      <section>
        <h2>
          <a href="#/">Functions</a> / {name} {f && <Ready object={f} />}
        </h2>
        {fn.error && <p class="error">{fn.error}</p>}
        {f && (
          <dl class="facts">
            <dt>Routes</dt>
            <dd class="mono">{routesText(f).join('  ') || 'none'}</dd>
            <dt>Latest revision</dt>
            <dd>
              {String(f.status?.latestReadyRevision ?? '-')} ready,{' '}
              {String(f.status?.latestCreatedRevision ?? '-')} created
            </dd>
            <dt>Traffic</dt>
            <dd data-testid="traffic">{trafficText(f.status?.traffic as TrafficShare[] | undefined)}</dd>
            {readiness(f).message && (
              <>
                <dt>Status</dt>
                <dd>{readiness(f).message}</dd>
              </>
            )}
          </dl>
        )}
      </section>
      <section>
        <h2>Revisions and traffic</h2>
        {revisions.error && <p class="error">{revisions.error}</p>}
        {f && revisions.data && (
          <Traffic
            fn={f}
            revisions={revisions.data}
            onChanged={() => {
              fn.reload();
              revisions.reload();
            }}
          />
        )}
      </section>
      <section>
        <h2>Last hour</h2>
        {history.error && <p class="error">{history.error}</p>}
        {history.data && <Charts history={history.data} />}
      </section>
      <section>
        <h2>Logs</h2>
        <LogTail name={name} />
      </section>
      <section>
        <h2>Events</h2>
        {events.data && <EventsTable events={events.data} limit={20} />}
      </section>
    </>
  );
}
