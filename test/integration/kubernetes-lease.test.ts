/**
 * Cron on a cluster: nodes sharing a Kubernetes API server elect one leader with a
 * coordination.k8s.io Lease, and only the leader fires a schedule's ticks; when it leaves (or
 * stops renewing), another takes the Lease over and fires the next tick. Two stores here are two
 * nodes (each its own connection and identity); ticks come from a fake clock, since cron's
 * granularity is a minute.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SecretBox } from '../../src/control-plane/secrets.js';
import type { LeaseElection } from '../../src/kubernetes/lease.js';
import { type KubernetesStore, openKubernetesStore } from '../../src/kubernetes/store.js';
import { Scheduler, type ScheduleTarget } from '../../src/triggers/scheduler.js';
import { eventually } from '../helpers/eventually.js';
import {
  installKylixCrds,
  type KubeApiServer,
  kubeApiServerSkipReason,
  kubectl,
  startKubeApiServer,
} from '../helpers/kube-apiserver.js';

const skip = kubeApiServerSkipReason();
if (skip) console.log(`# skipping the Kubernetes leader election suite: ${skip}`);

describe('cron leader election with a Lease', { skip, timeout: 300_000 }, () => {
  let api: KubeApiServer;
  const stores: KubernetesStore[] = [];

  before(async () => {
    api = await startKubeApiServer();
    await installKylixCrds(api.kubeconfig);
  });

  after(async () => {
    for (const s of stores) await s.close().catch(() => {});
    await api?.stop();
  });

  it('lets exactly one of two nodes fire each tick, and hands over when the leader leaves', async () => {
    const box = SecretBox.fromKeys([Buffer.alloc(32, 1)]);
    let now = Date.UTC(2030, 0, 1, 12, 0, 1);
    const fired: { node: string; tick: number }[] = [];
    const nodes = await Promise.all(
      ['a', 'b'].map(async (id) => {
        const store = await openKubernetesStore({ kubeconfig: api.kubeconfig, secrets: box });
        stores.push(store);
        const election = store.leaderElection('kylix-scheduler-test', {
          durationSeconds: 3,
          retrySeconds: 0.2,
        });
        await election.ready();
        const scheduler = new Scheduler(
          store,
          async (_t, e) => {
            fired.push({ node: id, tick: e.scheduledTime });
          },
          () => {},
          () => now,
          () => {},
          election,
        );
        return { id, store, election, scheduler };
      }),
    );
    const leaders = () => nodes.filter((n) => n.election.isLeader());
    await eventually(() => leaders().length === 1, 10_000, 50);
    const leader = leaders()[0]!;
    const follower = nodes.find((n) => n !== leader)!;
    const lease = JSON.parse(
      (
        await kubectl(api.kubeconfig, [
          '-n',
          'kylix-system',
          'get',
          'lease',
          'kylix-scheduler-test',
          '-o',
          'json',
        ])
      ).stdout,
    );
    assert.equal(lease.spec.holderIdentity, (leader.election as LeaseElection).identity);

    const target: ScheduleTarget = {
      namespace: 'cron',
      functionName: 'tick',
      cron: '* * * * *',
      timezone: 'UTC',
    };
    for (const n of nodes) await n.scheduler.set(target);
    for (let minute = 1; minute <= 3; minute++) {
      now += 60_000;
      await Promise.all(nodes.map((n) => n.scheduler.runDue()));
    }
    assert.equal(fired.length, 3, 'one run per tick across both nodes');
    assert.ok(
      fired.every((f) => f.node === leader.id),
      'only the leader fired',
    );

    // The leader leaves: it releases the Lease, the other node takes it and fires the next tick.
    await leader.election.close();
    await eventually(() => follower.election.isLeader(), 10_000, 50);
    now += 60_000;
    await Promise.all(nodes.map((n) => n.scheduler.runDue()));
    assert.equal(fired.length, 4);
    assert.equal(fired.at(-1)?.node, follower.id);
    assert.equal(new Set(fired.map((f) => f.tick)).size, 4, 'no tick ran twice');
    for (const n of nodes) n.scheduler.close();
  });
});
