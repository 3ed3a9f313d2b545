// Compiles src/ to dist/ with esbuild: one output file per source file for the platform,
// and a self-contained bundle for the code that runs inside the sandbox (it may run on another Node binary).
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;

/** Every .ts file under dir, except the sandbox folder and the dashboard's page (built separately). */
function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory())
      return path === join(root, 'src/sandbox') || path === join(root, 'src/dashboard/web')
        ? []
        : sources(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
await build({
  // protocol.ts, channel.ts, rpc-codec.ts (with rpc-format.ts and rpc-reader.ts) and slot-table.ts are
  // shared: the supervisor imports them too.
  entryPoints: [
    ...sources(join(root, 'src')),
    join(root, 'src/sandbox/protocol.ts'),
    join(root, 'src/sandbox/channel.ts'),
    join(root, 'src/sandbox/control.ts'),
    join(root, 'src/sandbox/rpc-codec.ts'),
    join(root, 'src/sandbox/rpc-format.ts'),
    join(root, 'src/sandbox/rpc-reader.ts'),
    join(root, 'src/sandbox/slot-table.ts'),
  ],
  outdir: join(root, 'dist'),
  outbase: join(root, 'src'),
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
await build({
  entryPoints: [
    join(root, 'src/sandbox/host.ts'),
    join(root, 'src/sandbox/instance.ts'),
    join(root, 'src/sandbox/loader-hooks.ts'),
    join(root, 'src/sandbox/prewarm-module.ts'),
  ],
  outdir: join(root, 'dist/sandbox'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});

// The sandbox sees only dist/sandbox (not the package.json above it), so it says its own module type.
writeFileSync(join(root, 'dist/sandbox/package.json'), '{ "type": "module" }\n');

// The JSON Schemas of the kinds, for editors (examples reference ../../schemas/function.json).
const { allJsonSchemas } = await import(new URL('../dist/resources/json-schema.js', import.meta.url).href);
mkdirSync(join(root, 'schemas'), { recursive: true });
for (const [file, schema] of Object.entries(allJsonSchemas())) {
  writeFileSync(join(root, 'schemas', file), `${JSON.stringify(schema, null, 2)}\n`);
}

// The dashboard's page: Preact and uPlot bundled in (no CDN: it works offline), minified, assets
// named by content hash so the browser keeps them; index.html names them (see src/dashboard/static.ts).
const web = join(root, 'dist/dashboard/web');
const page = await build({
  entryPoints: { app: join(root, 'src/dashboard/web/main.tsx') },
  outdir: web,
  entryNames: '[name]-[hash]',
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome111', 'firefox111', 'safari16.4'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
const built = Object.keys(page.metafile.outputs).map((p) => p.split('/').pop());
const asset = (ext) => built.find((name) => name.startsWith('app-') && name.endsWith(ext));
writeFileSync(
  join(web, 'index.html'),
  readFileSync(join(root, 'src/dashboard/web/index.html'), 'utf8')
    .replace('{{js}}', asset('.js'))
    .replace('{{css}}', asset('.css')),
);
