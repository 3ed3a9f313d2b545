/**
 * `kylix doctor`: what isolation tenant code gets on this machine, layer by layer (namespaces,
 * cgroups, permission flags, the runtime Node and whether it is still supported, the egress proxy),
 * each on or off with the reason and what to do.
 */
import { Isolation, type IsolationOptions } from '../runtime/isolation/isolation.js';
import { resolveNodeRuntime } from '../runtime/isolation/node-runtime.js';
import { VERSION } from '../version.js';

/** The report, and whether every layer is on. */
export function doctorReport(options: IsolationOptions = {}): { text: string; ok: boolean } {
  const isolation = Isolation.detect(options);
  try {
    const host = resolveNodeRuntime(process.execPath);
    const lines = [
      `Kylix ${VERSION} on ${process.platform}/${process.arch}`,
      `Supervisor: Node ${host.version}${host.endOfLife ? ` (${host.supported ? 'supported until' : 'END OF LIFE since'} ${host.endOfLife})` : ''}; it never runs tenant code.`,
      '',
      'Sandbox layers (tenant code):',
      ...isolation.describe(),
    ];
    const off = isolation.missing();
    lines.push(
      '',
      off.length === 0
        ? 'All layers are on.'
        : `${off.length} layer${off.length === 1 ? ' is' : 's are'} off: ${off.map((l) => l.name).join(', ')}. Kylix runs, with less isolation; see → above.`,
    );
    return { text: lines.join('\n'), ok: off.length === 0 };
  } finally {
    isolation.close();
  }
}
