import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router, routesConflict } from '../src/gateway/router.js';

function target(router: Router, method: string, path: string, host = 'localhost:8080'): string | undefined {
  const m = router.match(host, method, path);
  return m.found ? m.functionKey : m.methodNotAllowed ? '405' : undefined;
}

describe('gateway router', () => {
  const router = new Router();
  router.setRoutes('ns/root', [{ path: '/' }]);
  router.setRoutes('ns/api', [{ path: '/api/*' }]);
  router.setRoutes('ns/users', [{ path: '/api/users/*' }]);
  router.setRoutes('ns/user', [{ path: '/api/users/:id' }]);
  router.setRoutes('ns/me', [{ path: '/api/users/me', methods: ['GET'] }]);
  router.setRoutes('ns/shop', [{ path: '/', host: 'shop.example.com' }]);
  router.setRoutes('ns/wild', [{ path: '/', host: '*.example.com' }]);

  it('matches exact paths, parameters and trailing wildcards', () => {
    assert.equal(target(router, 'GET', '/'), 'ns/root');
    assert.equal(target(router, 'GET', '/api'), 'ns/api');
    assert.equal(target(router, 'GET', '/api/orders/7'), 'ns/api');
    assert.equal(target(router, 'GET', '/nothing'), undefined);
  });

  it('prefers the most specific route', () => {
    assert.equal(target(router, 'GET', '/api/users/me'), 'ns/me');
    assert.equal(target(router, 'GET', '/api/users/42'), 'ns/user');
    assert.equal(target(router, 'GET', '/api/users/42/orders'), 'ns/users');
  });

  it('falls through to a less specific route when the method does not match', () => {
    assert.equal(target(router, 'POST', '/api/users/me'), 'ns/user');
    const only = new Router();
    only.setRoutes('ns/x', [{ path: '/x', methods: ['POST'] }]);
    assert.equal(target(only, 'GET', '/x'), '405');
    assert.equal(target(only, 'POST', '/x'), 'ns/x');
  });

  it('routes by host, exact hosts before wildcards before host-less routes', () => {
    assert.equal(target(router, 'GET', '/', 'shop.example.com'), 'ns/shop');
    assert.equal(target(router, 'GET', '/', 'shop.example.com:8080'), 'ns/shop');
    assert.equal(target(router, 'GET', '/', 'blog.example.com'), 'ns/wild');
    assert.equal(target(router, 'GET', '/', 'example.org'), 'ns/root');
  });

  it('returns decoded parameters', () => {
    const m = router.match('h', 'GET', '/api/users/j%C3%BCrgen');
    assert.ok(m.found);
    assert.deepEqual(m.params, { id: 'jürgen' });
  });

  it('removes a function and its routes', () => {
    const r = new Router();
    r.setRoutes('ns/a', [{ path: '/a' }]);
    r.remove('ns/a');
    assert.equal(target(r, 'GET', '/a'), undefined);
  });

  it('detects conflicting routes', () => {
    assert.equal(routesConflict({ path: '/u/:id' }, { path: '/u/:name' }), true);
    assert.equal(routesConflict({ path: '/u', methods: ['GET'] }, { path: '/u', methods: ['POST'] }), false);
    assert.equal(routesConflict({ path: '/u', methods: ['GET'] }, { path: '/u' }), true);
    assert.equal(routesConflict({ path: '/u', host: 'a.com' }, { path: '/u' }), false);
    assert.equal(routesConflict({ path: '/u/*' }, { path: '/u/:id' }), false);
  });
});
