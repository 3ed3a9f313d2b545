/** #/ — the namespace's functions (status, routes, revision, traffic) and its recent events. */
import { age, type KObject, list, readiness } from './api.js';
import { usePoll } from './hooks.js';

/** A traffic share as the Function's status reports it. */
export interface TrafficShare {
  revision?: number;
  percent: number;
  tag?: string;
  latestRevision?: boolean;
}

/** "r2 90% · r3 10% (canary)". */
export function trafficText(shares: TrafficShare[] | undefined): string {
  if (!shares?.length) return '';
  return shares
    .map((t) => `r${t.revision ?? 'latest'} ${t.percent}%${t.tag ? ` (${t.tag})` : ''}`)
    .join(' · ');
}

/** The routes of a function as "GET example.com/api/*". */
export function routesText(fn: KObject): string[] {
  const routes = (fn.spec?.routes as { path: string; host?: string; methods?: string[] }[] | undefined) ?? [];
  return routes.map((r) => `${r.methods ? `${r.methods.join(',')} ` : ''}${r.host ?? ''}${r.path}`);
}

/** A Ready/NotReady badge with the reason in its title. */
export function Ready(props: { object: KObject }) {
  const r = readiness(props.object);
  const cls = r.status === 'True' ? 'ok' : r.status === 'False' ? 'bad' : 'unknown';
  const text = r.status === 'True' ? 'Ready' : r.status === 'False' ? (r.reason ?? 'NotReady') : 'Pending';
  return (
    <span class={`badge ${cls}`} title={r.message ?? ''}>
      {text}
    </span>
  );
}

/** The newest events first, as a table. */
export function EventsTable(props: { events: KObject[]; limit?: number }) {
  const sorted = [...props.events]
    .sort((a, b) => String(b.lastTimestamp ?? '').localeCompare(String(a.lastTimestamp ?? '')))
    .slice(0, props.limit ?? 30);
  if (sorted.length === 0) return <p class="muted">No events.</p>;
  return (
    <table class="events">
      <thead>
        <tr>
          <th>Age</th>
          <th>Type</th>
          <th>Object</th>
          <th>Reason</th>
          <th>Message</th>
        </tr>
      </thead>
      <tbody>
        {sorted.map((e) => {
          const about = e.involvedObject as { kind?: string; name?: string } | undefined;
          return (
            <tr key={e.metadata.name} class={e.type === 'Warning' ? 'warning' : ''}>
              <td>{age(e.lastTimestamp as string)}</td>
              <td>{String(e.type ?? '')}</td>
              <td>{`${about?.kind ?? ''}/${about?.name ?? ''}`}</td>
              <td>{String(e.reason ?? '')}</td>
              <td>{String(e.message ?? '')}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** The page. */
export function FunctionsPage() {
  const fns = usePoll(() => list('functions'), 5000);
  const events = usePoll(() => list('events'), 5000);
  return (
    <>
      <section>
        <h2>Functions</h2>
        {fns.error && <p class="error">{fns.error}</p>}
        {fns.data && fns.data.length === 0 && (
          <p class="muted">No functions in this namespace yet: kylix apply -f a manifest.</p>
        )}
        {fns.data && fns.data.length > 0 && (
          <table class="functions">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Routes</th>
                <th>Revision</th>
                <th>Traffic</th>
                <th>Age</th>
              </tr>
            </thead>
            <tbody>
              {fns.data.map((f) => (
                <tr key={f.metadata.name}>
                  <td>
                    <a href={`#/functions/${encodeURIComponent(f.metadata.name)}`}>{f.metadata.name}</a>
                  </td>
                  <td>
                    <Ready object={f} />
                  </td>
                  <td class="mono">{routesText(f).join(' ')}</td>
                  <td>{String(f.status?.latestReadyRevision ?? f.status?.latestCreatedRevision ?? '')}</td>
                  <td>{trafficText(f.status?.traffic as TrafficShare[] | undefined)}</td>
                  <td>{age(f.metadata.creationTimestamp)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h2>Events</h2>
        {events.error && <p class="error">{events.error}</p>}
        {events.data && <EventsTable events={events.data} />}
      </section>
    </>
  );
}
