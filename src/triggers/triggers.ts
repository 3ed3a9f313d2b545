/**
 * Connects Functions' triggers to their revisions: the controller reports which revision serves
 * each function, and its schedule and queue consumer fire into that revision's instances.
 */
import { randomUUID } from 'node:crypto';
import { scopedKey } from '../bindings/identity.js';
import type { QueueProvider } from '../bindings/queue/interface.js';
import type { LogStore } from '../control-plane/logs.js';
import type { FunctionEvents, ManualEvent } from '../control-plane/serving.js';
import type { LeaderElection, Store } from '../control-plane/store/interface.js';
import type { FunctionSpec } from '../resources/kinds.js';
import { invokeEvent } from '../runtime/deliver-event.js';
import type { Runtime } from '../runtime/runtime.js';
import { batchOutcome, scheduledAnswer } from './event-answer.js';
import {
  type BackendsDown,
  type ConsumerOptions,
  type ConsumerSettled,
  QueueConsumer,
} from './queue-consumer.js';
import { type ScheduledEvent, Scheduler } from './scheduler.js';

/** Spans around trigger runs (observability/tracing.ts implements it when tracing is on). */
export interface TriggerTracing {
  /** Runs one scheduled tick in a root span of its own. */
  cron<T>(namespace: string, name: string, event: ScheduledEvent, run: () => Promise<T>): Promise<T>;
  /** Runs one queue batch in a span linked to the span that sent each message. */
  queue<T>(
    namespace: string,
    name: string,
    queue: string,
    traceparents: (string | undefined)[],
    run: () => Promise<T>,
  ): Promise<T>;
}

/** What the function controller calls as functions come, change and go. */
export interface TriggerHooks extends FunctionEvents {
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
  /** The node's backends that are down now: queue consumers wait while there are any. */
  backendsDown?: BackendsDown;
  /** Where nodes elect one to fire cron ticks (Kubernetes Leases); without it every node competes per tick. */
  leader?: LeaderElection;
  /** Told of every scheduled tick fired into a function, and whether scheduled() succeeded (metrics). */
  onCronFire?: (namespace: string, name: string, ok: boolean) => void;
  /** Told of scheduled ticks missed: skipped, or run late (metrics). */
  onCronMissed?: (namespace: string, name: string, reason: 'skipped' | 'late', count: number) => void;
  /** Spans for cron runs and queue batches, when tracing is on. */
  tracing?: TriggerTracing;
  /** Told what became of each message a queue consumer delivered (metrics). */
  onQueueSettled?: ConsumerSettled;
}): TriggerHooks {
  const targets = new Map<string, { revisionKey: string; timeoutMs: number; spec: FunctionSpec }>();
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
      const run = async () => {
        const t = targetOf(target.namespace, target.functionName);
        const answer = scheduledAnswer(
          await invokeEvent(deps.runtime, t.revisionKey, 'scheduled', event, t.timeoutMs),
        );
        if (!answer.ok) throw new Error(answer.error ?? 'scheduled() failed');
        ok = true;
      };
      try {
        await (deps.tracing ? deps.tracing.cron(target.namespace, target.functionName, event, run) : run());
      } finally {
        deps.onCronFire?.(target.namespace, target.functionName, ok);
      }
    },
    (t, level, message) => note(t.namespace, t.functionName, level, message),
    Date.now,
    (t, reason, count) => deps.onCronMissed?.(t.namespace, t.functionName, reason, count),
    deps.leader,
  );
  const consumer = new QueueConsumer(
    deps.queue,
    async (target, batch) => {
      const t = targetOf(target.namespace, target.functionName);
      // The trace context stays on the supervisor's side: the function gets the message as sent.
      const messages = batch.map(({ traceparent: _, ...d }) => ({
        ...d,
        body: Buffer.from(d.body).toString('base64'),
      }));
      const run = async () =>
        batchOutcome(
          await invokeEvent(
            deps.runtime,
            t.revisionKey,
            'queue',
            { queue: target.queue, messages },
            t.timeoutMs,
          ),
        );
      if (!deps.tracing) return run();
      const parents = batch.map((d) => d.traceparent);
      return deps.tracing.queue(target.namespace, target.functionName, target.queue, parents, run);
    },
    (t, level, message) => note(t.namespace, t.functionName, level, message),
    deps.consumer,
    deps.onQueueSettled,
    deps.backendsDown,
  );

  return {
    serving(namespace, name, spec, revisionKey) {
      targets.set(scopedKey(namespace, name), { revisionKey, timeoutMs: spec.limits.timeoutMs, spec });
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
    async fire(namespace: string, name: string, event: ManualEvent) {
      // `kylix trigger`: the handler runs as a tick or a batch would run it, but nothing is
      // scheduled, leased or acknowledged; the caller sees what the handler decided.
      const t = targetOf(namespace, name);
      note(namespace, name, 'info', `${event.kind}() run by hand (kylix trigger)`);
      if (event.kind === 'scheduled') {
        const cron = event.cron ?? t.spec.triggers.schedule?.cron ?? '';
        return invokeEvent(
          deps.runtime,
          t.revisionKey,
          'scheduled',
          { cron, scheduledTime: Date.now(), catchUp: false },
          t.timeoutMs,
        );
      }
      const now = Date.now();
      const messages = event.messages.map((body, i) => ({
        leaseId: `manual-${i + 1}`,
        id: randomUUID(),
        body: Buffer.from(JSON.stringify(body)).toString('base64'),
        contentType: 'json',
        attempts: 1,
        timestamp: now,
      }));
      const queue = t.spec.triggers.queue?.name ?? event.queue ?? 'manual';
      return invokeEvent(deps.runtime, t.revisionKey, 'queue', { queue, messages }, t.timeoutMs);
    },
    async close() {
      scheduler.close();
      await consumer.close();
    },
  };
}
