import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type RefusedRoute, Router, routesConflict, routesOverlap } from '../src/gateway/router.js';
import type { RouteSpec } from '../src/resources/kinds.js';

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

  it('matches hosts case-insensitively, with or without a trailing dot', () => {
    assert.equal(target(router, 'GET', '/', 'Shop.Example.COM'), 'ns/shop');
    assert.equal(target(router, 'GET', '/', 'shop.example.com.:8080'), 'ns/shop');
    assert.equal(target(router, 'GET', '/', 'BLOG.example.com'), 'ns/wild');
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

/** [a, b, overlap?]: the overlap rule between namespaces, one variant per row. */
const OVERLAP_CASES: [RouteSpec, RouteSpec, boolean][] = [
  // host-less against host-qualified
  [{ path: '/api/*' }, { path: '/api/*', host: 'example.com' }, true],
  [{ path: '/api/*' }, { path: '/api/users', host: 'example.com' }, true],
  [{ path: '/api/*' }, { path: '/other', host: 'example.com' }, false],
  [{ path: '/' }, { path: '/', host: '*.example.com' }, true],
  // hosts against hosts: names, case, wildcards, ports
  [{ path: '/u', host: 'a.com' }, { path: '/u', host: 'b.com' }, false],
  [{ path: '/u', host: 'a.com' }, { path: '/u', host: 'A.COM' }, true],
  [{ path: '/u', host: 'a.com' }, { path: '/u', host: 'a.com:8080' }, true],
  [{ path: '/u', host: 'a.com:8080' }, { path: '/u', host: 'a.com:8080' }, true],
  [{ path: '/u', host: 'a.com:8080' }, { path: '/u', host: 'a.com:9090' }, false],
  [{ path: '/u', host: '*.a.com' }, { path: '/u', host: 'x.a.com:8080' }, true],
  [{ path: '/u', host: '*.a.com:8080' }, { path: '/u', host: 'x.a.com:9090' }, false],
  [{ path: '/u', host: '*.example.com' }, { path: '/u', host: 'shop.example.com' }, true],
  [{ path: '/u', host: '*.example.com' }, { path: '/u', host: 'example.com' }, false],
  [{ path: '/u', host: '*.example.com' }, { path: '/u', host: 'badexample.com' }, false],
  [{ path: '/u', host: '*.example.com' }, { path: '/u', host: '*.shop.example.com' }, true],
  [{ path: '/u', host: '*.a.com' }, { path: '/u', host: '*.b.com' }, false],
  [{ path: '/u', host: '*.a.com' }, { path: '/u', host: '*.ba.com' }, false],
  // "tag--host" addresses a tagged revision of host first (traffic.ts)
  [{ path: '/u', host: 'shop.example.com' }, { path: '/u', host: 'rc--shop.example.com' }, true],
  [{ path: '/u', host: 'shop.example.com' }, { path: '/u', host: 'rc--other.example.com' }, false],
  [{ path: '/u', host: 'a.com:8080' }, { path: '/u', host: 'rc--a.com:9090' }, false],
  // wildcard paths
  [{ path: '/api/*' }, { path: '/api/users' }, true],
  [{ path: '/api/*' }, { path: '/api' }, true],
  [{ path: '/api/*' }, { path: '/api/' }, true],
  [{ path: '/api/*' }, { path: '/api/:id/orders' }, true],
  [{ path: '/api/*' }, { path: '/apix' }, false],
  [{ path: '/api/*' }, { path: '/api/v2/*' }, true],
  [{ path: '/api/v1/*' }, { path: '/api/v2/*' }, false],
  [{ path: '/*' }, { path: '/anything/at/all' }, true],
  [{ path: '/*' }, { path: '/' }, true],
  // parameters against literals
  [{ path: '/u/:id' }, { path: '/u/me' }, true],
  [{ path: '/u/:id' }, { path: '/u/:name' }, true],
  [{ path: '/u/:id' }, { path: '/u/me/x' }, false],
  [{ path: '/u/:id' }, { path: '/u' }, false],
  [{ path: '/a/:x/c' }, { path: '/a/b/:y' }, true],
  [{ path: '/a/:x/c' }, { path: '/a/b/d' }, false],
  [{ path: '/:any' }, { path: '/' }, false],
  [{ path: '/:any' }, { path: '/api' }, true],
  // the root and trailing slashes
  [{ path: '/' }, { path: '/api' }, false],
  [{ path: '/api/' }, { path: '/api' }, false],
  [{ path: '/api/' }, { path: '/api/:id' }, false],
  [{ path: '/u/me/' }, { path: '/u/:id/' }, true],
  [{ path: '/u/me/' }, { path: '/u/:id' }, false],
  // methods never separate namespaces
  [{ path: '/u', methods: ['GET'] }, { path: '/u', methods: ['POST'] }, true],
];

describe('route overlap between namespaces', () => {
  for (const [a, b, expected] of OVERLAP_CASES) {
    it(`${a.host ?? ''}${a.path} ${expected ? 'overlaps' : 'does not overlap'} ${b.host ?? ''}${b.path}`, () => {
      assert.equal(routesOverlap(a, b), expected);
      assert.equal(routesOverlap(b, a), expected, 'symmetric');
    });
  }

  it('agrees with the matcher: two routes that both match a request overlap', () => {
    const hosts = [
      'example.com',
      'a.com',
      'A.com:8080',
      'x.a.com:8080',
      'x.a.com:9090',
      'shop.example.com',
      'b.shop.example.com',
      'badexample.com',
    ];
    const paths = [
      '/',
      '/api',
      '/api/',
      '/api/users',
      '/api/users/',
      '/api/v2/x',
      '/u',
      '/u/me',
      '/u/me/',
      '/u/me/x',
      '/a/b/c',
      '/a/b/d',
      '/a//c',
      '/apix',
      '/anything/at/all',
    ];
    for (const [a, b] of OVERLAP_CASES) {
      const r = new Router(() => {});
      r.setRoutes('one/a', [a]);
      const s = new Router(() => {});
      s.setRoutes('two/b', [b]);
      for (const h of hosts)
        for (const p of paths)
          if (r.match(h, 'GET', p).found && s.match(h, 'GET', p).found)
            assert.ok(routesOverlap(a, b), `${h}${p} matches ${a.path} and ${b.path}`);
    }
  });
});

describe('router: routes are owned across namespaces', () => {
  function router() {
    const refused: RefusedRoute[] = [];
    return { r: new Router((x) => refused.push(x)), refused };
  }

  it("skips and reports another namespace's more specific path under an owned wildcard", () => {
    const { r, refused } = router();
    r.setRoutes('a/api', [{ path: '/api/*' }]);
    r.setRoutes('b/users', [{ path: '/api/users' }, { path: '/b' }]);
    assert.equal(target(r, 'GET', '/api/users'), 'a/api');
    assert.equal(target(r, 'GET', '/b'), 'b/users', "the function's other routes are served");
    assert.deepEqual(
      refused.map((x) => [x.functionKey, x.route.path, x.owner]),
      [['b/users', '/api/users', 'a/api']],
    );
    assert.equal(r.refused().length, 1);
    r.setRoutes('b/users', [{ path: '/api/users' }, { path: '/b2' }]);
    assert.equal(refused.length, 1, 'a refusal is reported once');
  });

  it("skips another namespace's host-qualified copy of a host-less route", () => {
    const { r } = router();
    r.setRoutes('a/api', [{ path: '/api/*' }]);
    r.setRoutes('b/copy', [{ path: '/api/*', host: 'example.com' }]);
    r.setRoutes('b/wild', [{ path: '/api/:x', host: '*.example.com' }]);
    assert.equal(target(r, 'GET', '/api/x', 'example.com'), 'a/api');
    assert.equal(target(r, 'GET', '/api/x', 'shop.example.com:8080'), 'a/api');
    assert.equal(r.refused().length, 2);
  });

  it('keeps the most specific match within one namespace', () => {
    const { r, refused } = router();
    r.setRoutes('a/api', [{ path: '/api/*' }]);
    r.setRoutes('a/users', [{ path: '/api/users' }]);
    r.setRoutes('a/shop', [{ path: '/api/*', host: 'example.com' }]);
    assert.equal(target(r, 'GET', '/api/users'), 'a/users');
    assert.equal(target(r, 'GET', '/api/users', 'example.com'), 'a/shop');
    assert.equal(refused.length, 0);
  });

  it('gives a contested route to the senior function whatever the order it was learned in', () => {
    for (const order of [
      ['a', 'b'],
      ['b', 'a'],
    ]) {
      const { r } = router();
      for (const who of order) {
        if (who === 'a') r.setRoutes('a/api', [{ path: '/api/*' }], '2025-01-01T00:00:00.000Z');
        else r.setRoutes('b/users', [{ path: '/api/users' }], '2025-01-02T00:00:00.000Z');
      }
      assert.equal(target(r, 'GET', '/api/users'), 'a/api', `order ${order.join(',')}`);
      assert.deepEqual(
        r.refused().map((x) => x.functionKey),
        ['b/users'],
      );
    }
  });

  it('decides ties in seniority by key, and keeps the first claim without seniority', () => {
    const { r } = router();
    r.setRoutes('z/x', [{ path: '/x' }], 't');
    r.setRoutes('y/x', [{ path: '/x' }], 't');
    assert.equal(target(r, 'GET', '/x'), 'y/x');
    const { r: s } = router();
    s.setRoutes('z/x', [{ path: '/x' }]);
    s.setRoutes('y/x', [{ path: '/x' }]);
    assert.equal(target(s, 'GET', '/x'), 'z/x');
    s.setRoutes('z/x', [{ path: '/x' }, { path: '/x2' }]);
    assert.equal(target(s, 'GET', '/x'), 'z/x', 'an update keeps the claim');
  });

  it('hands a route on when its owner goes', () => {
    const { r } = router();
    r.setRoutes('a/api', [{ path: '/api/*' }]);
    r.setRoutes('b/users', [{ path: '/api/users' }]);
    r.remove('a/api');
    assert.equal(target(r, 'GET', '/api/users'), 'b/users');
    assert.equal(target(r, 'GET', '/api/orders'), undefined);
    assert.equal(r.refused().length, 0);
  });
});
