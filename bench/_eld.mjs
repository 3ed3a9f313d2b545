import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
const h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
let gcs = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) if (e.duration > 3) gcs.push(`${e.detail?.kind ?? e.kind}:${e.duration.toFixed(1)}`); }).observe({ entryTypes: ['gc'] });
setInterval(() => {
  process.stderr.write(`ELD p50 ${(h.percentile(50) / 1e6).toFixed(1)} p99 ${(h.percentile(99) / 1e6).toFixed(1)} max ${(h.max / 1e6).toFixed(1)} ms; gc>3ms ${gcs.join(' ')}\n`);
  h.reset(); gcs = [];
}, 2000).unref();
await import('../bin/kylix.js');
