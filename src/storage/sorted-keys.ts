/**
 * Keys in the order Workers KV, R2, S3 and Redis's ZRANGEBYLEX list them: by their UTF-8 bytes.
 * JavaScript's `<` compares UTF-16 code units, which disagrees for characters above U+FFFF versus
 * U+E000–U+FFFF; every embedded provider sorts with compareUtf8 so its listings match the others'.
 */

/** Compares two strings by their UTF-8 encodings (the same as by code points). */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (U+D800–DFFF, i.e. code points above U+FFFF) sort after U+E000–U+FFFF in UTF-8.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * A set of keys that can be walked in UTF-8 order from any point. The sorted array is rebuilt only
 * when a listing follows a change of the set, so bulk writes cost no sorting.
 */
export class SortedKeys {
  private readonly keys = new Set<string>();
  private sorted: string[] | undefined = [];

  get size(): number {
    return this.keys.size;
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    this.sorted = undefined;
  }

  delete(key: string): void {
    if (this.keys.delete(key)) this.sorted = undefined;
  }

  /** The keys in order. The array is shared until the next change: read it, never modify it. */
  order(): readonly string[] {
    this.sorted ??= [...this.keys].sort(compareUtf8);
    return this.sorted;
  }

  /** The index in order() of the first key at or after `key` (after it, when `exclusive`). */
  seek(key: string, exclusive = false): number {
    return this.firstIndex((k) => {
      const c = compareUtf8(k, key);
      return exclusive ? c > 0 : c >= 0;
    });
  }

  /** The index in order() of the first key after every key that starts with `prefix`. */
  seekPast(prefix: string): number {
    return this.firstIndex((k) => compareUtf8(k, prefix) > 0 && !k.startsWith(prefix));
  }

  /** Binary search: the index of the first key for which `test` holds (it must hold for all after it). */
  private firstIndex(test: (key: string) => boolean): number {
    const sorted = this.order();
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (test(sorted[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
