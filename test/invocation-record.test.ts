import assert from 'node:assert/strict';
import { test } from 'node:test';
import { invocationEntry } from '../src/observability/invocation-record.js';

test('the invocation line built by template is the JSON of its entry, for any path', () => {
  for (const path of ['/hello', '/a"b\\c?q=1', '/ünï/\u2028/\u0001', '/x?y=</script>']) {
    for (const cold of [false, true]) {
      const r = invocationEntry({
        functionKey: 'team-a/hello',
        revision: 3,
        requestId: 'ab12-3f',
        method: 'POST',
        path,
        status: 502,
        durationMs: 12.6,
        cold,
        startupMs: 7,
      });
      assert.equal(r.namespace, 'team-a');
      assert.equal(r.name, 'hello');
      assert.equal(r.json, JSON.stringify(r.entry));
      assert.deepEqual(JSON.parse(r.json), r.entry);
      assert.match(r.entry.message, cold ? /cold \(waited 7ms/ : / 13ms warm$/);
    }
  }
});
