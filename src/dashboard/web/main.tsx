/**
 * The dashboard's entry: asks for the token when the node needs one, then shows one of three
 * pages by the URL's hash — #/ functions and events, #/functions/NAME one function, #/data the
 * data resources — under a bar with the namespace chooser.
 */
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, GROUP, json, namespace, setNamespace, setToken, token, whenUnauthorized } from './api.js';
import { DataPage } from './data.js';
import { FunctionPage } from './function-page.js';
import { FunctionsPage } from './functions-page.js';

/** The page the hash names. */
function route(hash: string): { page: 'functions' | 'function' | 'data'; name?: string } {
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (parts[0] === 'functions' && parts[1]) return { page: 'function', name: parts[1] };
  if (parts[0] === 'data') return { page: 'data' };
  return { page: 'functions' };
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

/** Asks for the API token (kept in sessionStorage for this tab only). */
function Login(props: { problem?: string; onDone: () => void }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        props.onDone();
      }}
    >
      <h1>Kylix</h1>
      <p>This node's API needs a token. Paste an API token (kylix token create, or the admin token).</p>
      {props.problem && <p class="error">{props.problem}</p>}
      <input
        type="password"
        name="token"
        autocomplete="off"
        placeholder="API token"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={!value.trim()}>
        Sign in
      </button>
    </form>
  );
}

/** Namespaces the token may list across (admin), else just the chosen one. */
function useNamespaces(ready: boolean): string[] {
  const [all, setAll] = useState<string[]>([]);
  useEffect(() => {
    if (!ready) return;
    Promise.all(
      ['functions', 'databases', 'keyvalues', 'queues', 'buckets'].map((p) =>
        json<{ items: { metadata: { namespace?: string } }[] }>(`${GROUP}/${p}`).then(
          (l) => l.items.map((i) => i.metadata.namespace ?? 'default'),
          () => [] as string[],
        ),
      ),
    ).then((lists) => setAll([...new Set(['default', ...lists.flat()])].sort()));
  }, [ready]);
  return all.includes(namespace()) ? all : [...all, namespace()].sort();
}

function App() {
  const hash = useHash();
  const [auth, setAuth] = useState<'checking' | 'ok' | 'needed'>('checking');
  const [problem, setProblem] = useState<string>();
  const [ns, setNs] = useState(namespace());
  const check = () => {
    setAuth('checking');
    json(`${GROUP}/namespaces/${encodeURIComponent(namespace())}/functions`)
      .then(() => setAuth('ok'))
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 401) {
          setProblem(token() ? err.message : undefined);
          setToken(null);
          setAuth('needed');
        } else setAuth('ok'); // Another problem (a 403 in this namespace): the pages say it.
      });
  };
  useEffect(() => {
    whenUnauthorized(() => setAuth('needed'));
    check();
  }, []);
  const namespaces = useNamespaces(auth === 'ok');
  if (auth === 'checking') return <p class="loading">Connecting…</p>;
  if (auth === 'needed') return <Login problem={problem} onDone={check} />;
  const r = route(hash);
  return (
    <div class="shell">
      <header>
        <a class="brand" href="#/">
          Kylix
        </a>
        <nav>
          <a href="#/" class={r.page !== 'data' ? 'active' : ''}>
            Functions
          </a>
          <a href="#/data" class={r.page === 'data' ? 'active' : ''}>
            Data
          </a>
        </nav>
        <label class="namespace">
          namespace{' '}
          <select
            value={ns}
            onChange={(e) => {
              const v = (e.target as HTMLSelectElement).value;
              setNamespace(v);
              setNs(v);
              location.hash = r.page === 'data' ? '#/data' : '#/';
            }}
          >
            {namespaces.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        {token() && (
          <button
            type="button"
            class="link"
            onClick={() => {
              setToken(null);
              setAuth('needed');
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main key={ns}>
        {r.page === 'function' && r.name ? (
          <FunctionPage name={r.name} />
        ) : r.page === 'data' ? (
          <DataPage />
        ) : (
          <FunctionsPage />
        )}
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(<App />, root);
}
