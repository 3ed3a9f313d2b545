/**
 * The layer rules of docs/architecture.md, checked by `npm run check` (dependency-cruiser). A rule
 * names what may not depend on what; nothing is let through.
 */

/** Folders and files of the server: what the CLI and the shared modules must not load. */
const SERVER = [
  '^src/control-plane/',
  '^src/gateway/',
  '^src/runtime/',
  '^src/bindings/',
  '^src/triggers/',
  '^src/storage/',
  '^src/config/',
  '^src/server/',
  '^src/platform\\.ts$',
];

/** Modules every layer may import: pure code and types, importing nothing of the layers above. */
const SHARED = ['^src/resources/', '^src/build/', '^src/errors\\.ts$', '^src/version\\.ts$'];

/** Pure wire types the guest code may import, types only (erased: nothing of the host is bundled). */
const WIRE_TYPES = [
  '^src/resources/api-types\\.ts$',
  '^src/resources/binding-kinds\\.ts$',
  '^src/errors\\.ts$',
];

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles anywhere: a cycle hides which part is built on which.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'sandbox-self-contained',
      comment:
        'src/sandbox/ is guest code, bundled on its own and run inside the sandbox: it imports nothing ' +
        'outside src/sandbox/ but pure wire types.',
      severity: 'error',
      from: { path: '^src/sandbox/' },
      to: { path: '^src/', pathNot: ['^src/sandbox/', ...WIRE_TYPES] },
    },
    {
      name: 'sandbox-wire-types-only',
      comment: 'The guest imports wire types as types only, so no host code ends up in its bundle.',
      severity: 'error',
      from: { path: '^src/sandbox/' },
      to: { path: WIRE_TYPES, preCompilationOnly: false },
    },
    {
      name: 'host-sees-sandbox-protocol-only',
      comment:
        'The host starts guest code as a process and talks to it over its channels: of src/sandbox/ it ' +
        "imports the control protocol and channel, the channel wire format, the binding calls' payload " +
        'codec and the slot table both ends keep their streams in.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/sandbox/' },
      to: {
        path: '^src/sandbox/',
        pathNot: '^src/sandbox/(protocol|control|channel|rpc-codec|slot-table)\\.ts$',
      },
    },
    {
      name: 'cli-is-an-api-client',
      comment:
        'src/cli/ talks to a node through the control API only; it shares resources/, build/, errors ' +
        'and version with the server and nothing else.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: SERVER, pathNot: '^src/server/' },
    },
    {
      name: 'cli-loads-server-lazily',
      comment:
        'kylix dev, server and doctor run a node in the CLI process: main.ts imports them with ' +
        'import() when one of them runs, so `kylix --version` or `kylix get` never load the server.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/server/', dynamic: false },
    },
    {
      name: 'control-plane-through-bridge',
      comment:
        'The control plane reaches the gateway and the runtime only through the narrow interfaces it ' +
        'declares in control-plane/serving.ts.',
      severity: 'error',
      from: { path: '^src/control-plane/' },
      to: { path: ['^src/gateway/', '^src/runtime/'] },
    },
    {
      name: 'shared-stays-pure',
      comment: 'resources/, build/, errors and version are shared by every layer, so they import none.',
      severity: 'error',
      from: { path: SHARED },
      to: { path: [...SERVER, '^src/cli/', '^src/sandbox/'] },
    },
    {
      name: 'platform-is-the-top',
      comment: 'platform.ts assembles a node; only the commands that start one (src/server/) import it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/server/' },
      to: { path: '^src/platform\\.ts$' },
    },
    {
      name: 'not-to-test',
      comment: 'Product code never imports test code.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^test/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves to a file or an installed package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count too (they are layering), and rules can tell them apart.
    tsPreCompilationDeps: 'specify',
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
