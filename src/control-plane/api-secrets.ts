/**
 * Operator actions on the keys that seal Secret values, beside the bundle uploads under /kylix/v1:
 * POST /kylix/v1/secrets/reseal (every value under the current key) and
 * POST /kylix/v1/secrets/rotate-key (a new key for the embedded key file). Neither returns a value.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Hono } from 'hono';
import { API_VERSION } from '../resources/meta.js';
import type { Registry } from './registry.js';
import { SecretRotation } from './secret-rotation.js';

/** Adds the secret key routes to the API app. */
export function addSecretKeyRoutes(app: Hono<{ Bindings: HttpBindings }>, registry: Registry): void {
  const rotation = new SecretRotation(registry);
  app.post('/kylix/v1/secrets/reseal', async (c) =>
    c.json({ kind: 'SecretReseal', apiVersion: API_VERSION, ...(await rotation.reseal()) }),
  );
  app.post('/kylix/v1/secrets/rotate-key', async (c) =>
    c.json({ kind: 'SecretKeyRotation', apiVersion: API_VERSION, ...(await rotation.rotateKey()) }),
  );
}
