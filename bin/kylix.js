#!/usr/bin/env node
// The `kylix` command. The TypeScript sources are compiled to dist/ by `npm install` (the prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('kylix: dist/ is missing. Run `npm install` (or `npm run build`) in the kylix folder first.');
  process.exit(1);
}
await import(entry.href);
