import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const s = new Session(); s.connect();
s.post('Profiler.enable'); s.post('Profiler.setSamplingInterval', { interval: 200 }); s.post('Profiler.start');
process.on('exit', () => { s.post('Profiler.stop', (err, { profile }) => { writeFileSync(`/tmp/sup-${process.pid}.cpuprofile`, JSON.stringify(profile)); }); });
await import('../bin/kylix.js');
