/**
 * Kubernetes-style Events: short notes about what happened to an object ("RevisionCreated",
 * "RevisionFailed"), shown by `kylix describe`. Only the newest few per object are kept. As
 * Kubernetes' event recorder does, an event that repeats the object's newest one (same type,
 * reason and message: a node restarting and finding the same revision ready) counts up that one
 * (`count`, `lastTimestamp`) instead of adding another.
 */
import { randomBytes } from 'node:crypto';
import { API_VERSION, type KObject } from '../resources/meta.js';
import type { Registry } from './registry.js';

/** What an Event holds besides its metadata. */
type EventFields = KObject & { type?: string; reason?: string; message?: string; count?: number };

/** Events kept per involved object. */
const KEEP = 20;

/** Records an event about `about`. Never throws: an event is a note, not a transaction. */
export async function recordEvent(
  registry: Registry,
  about: KObject,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date().toISOString();
  const { namespace, name } = about.metadata;
  try {
    const newest = (await eventsFor(registry, about.kind, namespace, name)).at(-1) as EventFields | undefined;
    if (newest && newest.type === type && newest.reason === reason && newest.message === message) {
      await registry.writeInternal({
        ...newest,
        count: (newest.count ?? 1) + 1,
        lastTimestamp: now,
      } as KObject);
      return;
    }
    await registry.writeInternal({
      apiVersion: API_VERSION,
      kind: 'Event',
      metadata: {
        name: `${name}.${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
        namespace,
        labels: { 'kylix.dev/kind': about.kind, 'kylix.dev/name': name },
        uid: '',
        resourceVersion: '',
        generation: 1,
        creationTimestamp: now,
      },
      involvedObject: { kind: about.kind, name, namespace, uid: about.metadata.uid },
      type,
      reason,
      message,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      source: { component: 'kylix' },
    });
    const events = await eventsFor(registry, about.kind, namespace, name);
    for (const old of events.slice(0, Math.max(0, events.length - KEEP))) {
      await registry.delete('Event', namespace, old.metadata.name).catch(() => undefined);
    }
  } catch {
    // see the doc comment
  }
}

/** The events of one object, oldest first. */
export async function eventsFor(
  registry: Registry,
  kind: string,
  namespace: string,
  name: string,
): Promise<KObject[]> {
  const list = await registry.list('Event', namespace, `kylix.dev/kind=${kind},kylix.dev/name=${name}`);
  return list.sort(
    (a, b) =>
      a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp) ||
      Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion),
  );
}
