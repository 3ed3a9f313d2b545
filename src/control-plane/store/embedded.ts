/**
 * The embedded store: every object in memory, every change appended to a journal file and fsynced
 * before the write is acknowledged, so an acknowledged write survives `kill -9`. Writes that arrive
 * together share one fsync (group commit). The journal is compacted into a snapshot as it grows
 * (the mechanics are in src/storage/journal.ts, shared with the embedded binding providers).
 */
import { mkdirSync } from 'node:fs';
import { KylixError } from '../../errors.js';
import type { KObject } from '../../resources/meta.js';
import { type Journal, openJournal } from '../../storage/journal.js';
import type { Precondition, Store, Watch, WatchEvent } from './interface.js';
import { byNamespaceAndName, checkPrecondition, notFound, WatchHistory } from './shared.js';

interface JournalEntry {
  rv: number;
  op: 'put' | 'del';
  key: string;
  object: KObject;
}

/** How many past events a watch may resume from. */
const HISTORY = 5000;

const keyOf = (kind: string, namespace: string, name: string) => `${kind}/${namespace}/${name}`;

/** Opens (or creates) the store under `dir`. */
export async function openEmbeddedStore(dir: string): Promise<EmbeddedStore> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const store = new EmbeddedStore();
  await store.open(dir);
  return store;
}

/** The embedded store; see the file comment. */
export class EmbeddedStore implements Store {
  readonly name = 'embedded';
  private readonly objects = new Map<string, KObject>();
  private readonly history = new WatchHistory(HISTORY);
  private readonly listeners = new Set<(e: WatchEvent) => void>();
  private version = 0;
  private snapshotVersion = 0;
  private journal?: Journal;

  /** 1. Read the snapshot, 2. replay the journal after it (the journal skips a torn last line). */
  async open(dir: string): Promise<void> {
    this.journal = await openJournal({
      dir,
      label: 'The state store',
      journalFile: 'journal.log',
      snapshotFile: 'snapshot.json',
      restore: (data) => {
        const snap = JSON.parse(data.toString('utf8')) as { version: number; objects: KObject[] };
        this.snapshotVersion = snap.version;
        this.version = snap.version;
        for (const o of snap.objects)
          this.objects.set(keyOf(o.kind, o.metadata.namespace, o.metadata.name), o);
      },
      replay: (record) => {
        const entry = record as JournalEntry;
        if (entry.rv <= this.snapshotVersion) return;
        this.version = entry.rv;
        if (entry.op === 'put') this.objects.set(entry.key, entry.object);
        else this.objects.delete(entry.key);
      },
      snapshot: () => [JSON.stringify({ version: this.version, objects: [...this.objects.values()] })],
    });
  }

  async currentVersion(): Promise<string> {
    return String(this.version);
  }

  async get(kind: string, namespace: string, name: string): Promise<KObject | undefined> {
    const o = this.objects.get(keyOf(kind, namespace, name));
    return o ? structuredClone(o) : undefined;
  }

  async list(kind: string, namespace?: string): Promise<KObject[]> {
    const out: KObject[] = [];
    for (const o of this.objects.values()) {
      if (o.kind === kind && (namespace === undefined || o.metadata.namespace === namespace))
        out.push(structuredClone(o));
    }
    return out.sort(byNamespaceAndName);
  }

  async put(object: KObject, precondition: Precondition = {}): Promise<KObject> {
    const key = keyOf(object.kind, object.metadata.namespace, object.metadata.name);
    const existing = this.objects.get(key);
    this.check(object.kind, object.metadata.name, existing, precondition);
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(++this.version);
    this.objects.set(key, stored);
    await this.append({ rv: this.version, op: 'put', key, object: stored }, existing ? 'MODIFIED' : 'ADDED');
    return structuredClone(stored);
  }

  async delete(
    kind: string,
    namespace: string,
    name: string,
    precondition: Precondition = {},
  ): Promise<KObject> {
    const key = keyOf(kind, namespace, name);
    const existing = this.objects.get(key);
    if (!existing) throw notFound(kind, namespace, name);
    this.check(kind, name, existing, precondition);
    this.objects.delete(key);
    const gone = { ...existing, metadata: { ...existing.metadata, resourceVersion: String(++this.version) } };
    await this.append({ rv: this.version, op: 'del', key, object: gone }, 'DELETED');
    return structuredClone(gone);
  }

  watch(sinceVersion: string | undefined, listener: (event: WatchEvent) => void): Watch {
    this.history.replay(sinceVersion, this.version, listener);
    this.listeners.add(listener);
    return { close: () => this.listeners.delete(listener) };
  }

  /** Writes the snapshot now and empties the journal; see Store.compact. */
  async compact(): Promise<void> {
    if (!this.journal)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The state store cannot write: it is closed');
    await this.journal.compactNow();
  }

  async close(): Promise<void> {
    await this.journal?.close();
    this.listeners.clear();
    this.journal = undefined;
  }

  private check(kind: string, name: string, existing: KObject | undefined, pre: Precondition): void {
    const broken = this.journal?.broken;
    if (broken)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', `The state store cannot write: ${broken.message}`);
    checkPrecondition(kind, name, existing, pre);
  }

  /** Journals the change; once it is durable, hands the event to watchers (in journal order). */
  private async append(entry: JournalEntry, type: WatchEvent['type']): Promise<void> {
    if (!this.journal)
      throw new KylixError('ERR_BACKEND_UNAVAILABLE', 'The state store cannot write: it is closed');
    try {
      await this.journal.append(entry);
    } catch (err) {
      // Kept to be written once a full disk has room: memory holds the change, so watchers hear of it.
      if (this.journal?.stalled) this.record({ type, object: entry.object });
      throw err;
    }
    this.record({ type, object: entry.object });
  }

  private record(event: WatchEvent): void {
    this.history.remember(Number(event.object.metadata.resourceVersion), event);
    for (const l of this.listeners) l(event);
  }
}
