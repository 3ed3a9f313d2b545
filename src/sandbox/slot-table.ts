/**
 * Things in flight by id — a channel's open streams, its binding calls, the gateway's deadlines —
 * kept in arrays whose slots are reused, instead of a Map keyed by ever-new ids.
 *
 * Why not a Map: thousands of requests a second each add and delete a key, so V8 rehashes the
 * Map's table every few dozen requests, and each retired table keeps pointing at the entries it
 * held. Once a retired table has been promoted to the old generation, the young-generation
 * collector treats it as a root: it keeps those requests' whole object graphs (request, response,
 * socket state) alive and promotes them too, and they in turn hold newer ones. Measured on the
 * gateway under load: 2.2 MB promoted per scavenge and 8–10 ms pauses (and a major collection every
 * few seconds to clear what was promoted), against 4 KB and 1.3 ms with slots.
 *
 * An id is a slot number (its low slotBits bits) and the slot's generation (the bits above),
 * which changes every time the slot is reused: an id that was deleted never finds what reuses
 * its slot, so a late frame for a finished stream is dropped, as with never-reused ids. For that to
 * hold, a slot must not come back to an old generation while a late frame may still be on its way:
 * free slots are reused oldest first, and only while MIN_FREE others wait behind the one taken (the
 * table grows otherwise), so a slot comes back at most once per MIN_FREE opens and an id recurs
 * only after MIN_FREE × 2^18 (268 million) opens of a stream table — hours at any request rate.
 * Ids are at least 2^slotBits and fit in the u32 of a frame header.
 */

/** Slot bits of the ids a channel's streams and binding calls use (both ends must agree). */
export const STREAM_SLOT_BITS = 14;
/** Free slots that must be waiting before the oldest is reused (see the file comment). */
const MIN_FREE = 1024;

/** How ids of `bits` slot bits split into slot and generation. */
class IdLayout {
  readonly mask: number;
  readonly maxGeneration: number;
  constructor(readonly bits: number) {
    this.mask = 2 ** bits - 1;
    this.maxGeneration = 2 ** (32 - bits) - 1;
  }
  slotOf(id: number): number {
    return id & this.mask;
  }
  generationOf(id: number): number {
    return id >>> this.bits;
  }
  idOf(generation: number, slot: number): number {
    return generation * 2 ** this.bits + slot;
  }
}

/** Values by ids this table hands out (see the file comment). */
export class SlotTable<T> {
  private readonly layout: IdLayout;
  private readonly items: (T | undefined)[] = [];
  private readonly generations: number[] = [];
  /** Free slots, oldest first from `freeHead` (a queue kept in an array). */
  private free: number[] = [];
  private freeHead = 0;
  private count = 0;

  /** `slotBits`: how many values it can hold at once (2^slotBits); the rest of 32 bits is the generation. */
  constructor(slotBits = STREAM_SLOT_BITS) {
    this.layout = new IdLayout(slotBits);
  }

  /** How many values are stored. */
  get size(): number {
    return this.count;
  }

  /** Stores a value under a new id; throws past 2^slotBits values at once. */
  add(item: T): number {
    let slot = this.items.length;
    const canGrow = slot <= this.layout.mask;
    const waiting = this.free.length - this.freeHead;
    if (waiting >= MIN_FREE || (!canGrow && waiting > 0)) {
      slot = this.free[this.freeHead++] as number;
      if (this.freeHead > 1024 && this.freeHead * 2 > this.free.length) {
        this.free = this.free.slice(this.freeHead);
        this.freeHead = 0;
      }
    } else if (canGrow) {
      this.items.push(undefined);
      this.generations.push(0);
    } else {
      throw new RangeError(`more than ${slot} in flight at once`);
    }
    const generation = ((this.generations[slot] as number) % this.layout.maxGeneration) + 1;
    this.generations[slot] = generation;
    this.items[slot] = item;
    this.count++;
    return this.layout.idOf(generation, slot);
  }

  /** The value stored under `id`, if it still is. */
  get(id: number): T | undefined {
    const slot = this.layout.slotOf(id);
    return this.generations[slot] === this.layout.generationOf(id) ? this.items[slot] : undefined;
  }

  /** Removes and returns the value stored under `id`, if it still is. */
  delete(id: number): T | undefined {
    const slot = this.layout.slotOf(id);
    const item = this.items[slot];
    if (item === undefined || this.generations[slot] !== this.layout.generationOf(id)) return undefined;
    this.items[slot] = undefined;
    this.free.push(slot);
    this.count--;
    return item;
  }

  /** Removes and returns every value. */
  clear(): T[] {
    const all: T[] = [];
    for (let slot = 0; slot < this.items.length; slot++) {
      const item = this.items[slot];
      if (item === undefined) continue;
      all.push(item);
      this.items[slot] = undefined;
      this.free.push(slot);
    }
    this.count = 0;
    return all;
  }

  /** Every stored value, as a new array. */
  values(): T[] {
    const out: T[] = [];
    for (const item of this.items) if (item !== undefined) out.push(item);
    return out;
  }

  /** Calls `fn` for every stored value, allocating nothing; `fn` may delete (any) values meanwhile. */
  forEach(fn: (item: T) => void): void {
    const items = this.items;
    for (let slot = 0; slot < items.length; slot++) {
      const item = items[slot];
      if (item !== undefined) fn(item);
    }
  }
}

/**
 * Values by ids another side's SlotTable handed out (the instance's calls, by the stream ids the
 * gateway chose): one slot per id's slot number, so it never rehashes either. Storing an id whose
 * slot is taken replaces what was there.
 */
export class SlotIndex<T> {
  private readonly layout = new IdLayout(STREAM_SLOT_BITS);
  private readonly items: (T | undefined)[] = [];
  private readonly ids: number[] = [];

  /** Stores `item` under `id`. */
  set(id: number, item: T): void {
    const slot = this.layout.slotOf(id);
    while (this.items.length <= slot) {
      this.items.push(undefined);
      this.ids.push(0);
    }
    this.items[slot] = item;
    this.ids[slot] = id;
  }

  /** The value stored under `id`, if it still is. */
  get(id: number): T | undefined {
    const slot = this.layout.slotOf(id);
    return this.ids[slot] === id ? this.items[slot] : undefined;
  }

  /** Removes the value stored under `id`, if it still is. */
  delete(id: number): void {
    const slot = this.layout.slotOf(id);
    if (this.ids[slot] !== id) return;
    this.items[slot] = undefined;
    this.ids[slot] = 0;
  }
}
