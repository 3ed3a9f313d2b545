/**
 * Connects Functions' triggers to their revisions: the controller reports which revision serves
 * each function, and its schedule and queue consumer fire into that revision's instances.
 */
import { scopedKey } from '../bindings/identity.js';
import type { QueueProvider } from '../bindings/queue/interface.js';
import type { LogStore } from '../control-plane/logs.js';
import type { LeaderElection, Store } from '../control-plane/store/interface.js';
import type { FunctionSpec } from '../resources/kinds.js';
import { invokeEvent } from '../runtime/deliver-event.js';
import type { Runtime } from '../runtime/runtime.js';
import {
  type BatchOutcome,
  type ConsumerOptions,
  type ConsumerSettled,
  QueueConsumer,
} from './queue-consumer.js';
import { Scheduler } from './scheduler.js';

/** What the function controller calls as functions come, change and go. */
export interface TriggerHooks {
  serving(namespace: string, name: string, spec: FunctionSpec, revisionKey: string): void;
  removed(namespace: string, name: string): void;
  close(): Promise<void>;
}

/** Starts the scheduler and queue consumers of a node. */
export function startTriggers(deps: {
  store: Store;
  runtime: Runtime;
  queue: () => Promise<QueueProvider>;
  logs: LogStore;
  consumer?: Partial<ConsumerOptions>;
  /** Where nodes elect one to fire cron ticks (Kubernetes Leases); without it every node competes per tick. */
  leader?: LeaderElection;
  /** Told of every scheduled tick fired into a function, and whether scheduled() succeeded (metrics). */
  onCronFire?: (namespace: string, name: string, ok: boolean) => void;
  /** Told what became of each message a queue consumer delivered (metrics). */
  onQueueSettled?: ConsumerSettled;
}): TriggerHooks {
  const targets = new Map<string, { revisionKey: string; timeoutMs: number }>();
  const note = (namespace: string, name: string, level: string, message: string) =>
    deps.logs.append(namespace, name, { time: new Date().toISOString(), level, message, source: 'platform' });
  const targetOf = (namespace: string, name: string) => {
    const t = targets.get(scopedKey(namespace, name));
    if (!t) throw new Error(`${name} has no ready revision`);
    return t;
  };

  const scheduler = new Scheduler(
    deps.store,
    async (target, event) => {
      let ok = false;
      try {
        const t = targetOf(target.namespace, target.functionName);
        const answer = (await invokeEvent(deps.runtime, t.revisionKey, 'scheduled', event, t.timeoutMs)) as {
          ok: boolean;
          error?: string;
        };
        if (!answer.ok) throw new Error(answer.error ?? 'scheduled() failed');
        ok = true;
      } finally {
        deps.onCronFire?.(target.namespace, target.functionName, ok);
      }
    },
    (t, level, message) => note(t.namespace, t.functionName, level, message),
    Date.now,
    deps.leader,
  );
  const consumer = new QueueConsumer(
    deps.queue,
    async (target, batch) => {
      const t = targetOf(target.namespace, target.functionName);
      const messages = batch.map((d) => ({ ...d, body: Buffer.from(d.body).toString('base64') }));
      return (await invokeEvent(
        deps.runtime,
        t.revisionKey,
        'queue',
        { queue: target.queue, messages },
        t.timeoutMs,
      )) as BatchOutcome;
    },
    (t, level, message) => note(t.namespace, t.functionName, level, message),
    deps.consumer,
    deps.onQueueSettled,
  );

  return {
    serving(namespace, name, spec, revisionKey) {
      targets.set(scopedKey(namespace, name), { revisionKey, timeoutMs: spec.limits.timeoutMs });
      const { schedule, queue } = spec.triggers;
      if (schedule)
        void scheduler
          .set({ namespace, functionName: name, cron: schedule.cron, timezone: schedule.timezone })
          .catch((err) =>
            note(namespace, name, 'error', `schedule: ${err instanceof Error ? err.message : String(err)}`),
          );
      else scheduler.remove(namespace, name);
      if (queue)
        consumer.set({
          namespace,
          functionName: name,
          queue: queue.name,
          batchSize: queue.batchSize,
          maxRetries: queue.maxRetries,
          ...(queue.deadLetter ? { deadLetter: queue.deadLetter } : {}),
        });
      else consumer.remove(namespace, name);
    },
    removed(namespace, name) {
      targets.delete(scopedKey(namespace, name));
      scheduler.remove(namespace, name);
      consumer.remove(namespace, name);
    },
    async close() {
      scheduler.close();
      await consumer.close();
    },
  };
}
