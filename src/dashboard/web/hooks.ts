/** Hooks the pages share: polling the API while the page is open. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

/** What a poll holds: the last value, the last error, and a way to reload now. */
export interface Polled<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/**
 * Calls `load` now and every `everyMs` while mounted (not while the tab is hidden), keeping the
 * last value; `deps` restart it.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const latest = useRef(load);
  latest.current = load;
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    const run = () => {
      if (document.hidden) return;
      latest.current().then(
        (v) => {
          if (!live) return;
          setData(v);
          setError(undefined);
        },
        (err: unknown) => live && setError((err as Error).message),
      );
    };
    run();
    const timer = setInterval(run, everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [...deps, tick, everyMs]);
  return { data, error, reload };
}
