/** Every scenario, numbered as in the benchmark issue. */
import type { Scenario } from '../lib/scenario.js';
import { bindings } from './bindings.js';
import { coldStart } from './cold-start.js';
import { controlPlane } from './control-plane.js';
import { density } from './density.js';
import { deploy } from './deploy.js';
import { hello } from './hello.js';
import { hono } from './hono.js';
import { isolation } from './isolation.js';
import { observability } from './observability.js';
import { overload } from './overload.js';

/** All scenarios in issue order. */
export const SCENARIOS: Scenario[] = [
  hello,
  hono,
  coldStart,
  deploy,
  density,
  bindings,
  isolation,
  controlPlane,
  overload,
  observability,
];
