/**
 * The last lines of one function's log, kept outside the JavaScript heap: the lines' UTF-8 bytes
 * in one circular buffer, their offsets in a typed array. A busy function logs a line per request;
 * kept as objects, the last thousand of them outlived every young-generation GC and were copied
 * and promoted each time (measured: about 7 % of the gateway's CPU per request). Here a line costs
 * one copy of its bytes, and is parsed only when someone reads the log.
 */

/** Bytes a ring starts with; it doubles as lines arrive, up to its capacity. */
const INITIAL_BYTES = 16 * 1024;

/** See the file comment. */
export class LineRing {
  private buf: Buffer;
  /** Where the next line's bytes go. */
  private pos = 0;
  /** Start and length of each kept line, oldest at `first`, as a circular list of `maxLines`. */
  private readonly starts: Int32Array;
  private readonly lengths: Int32Array;
  private first = 0;
  private count = 0;

  constructor(
    private readonly maxLines: number,
    private readonly maxBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.min(INITIAL_BYTES, maxBytes));
    this.starts = new Int32Array(maxLines);
    this.lengths = new Int32Array(maxLines);
  }

  /** Lines kept. */
  get size(): number {
    return this.count;
  }

  /** Keeps a line (without its newline); a line longer than the whole ring is not kept. */
  push(line: string): void {
    let room = this.buf.length - this.pos;
    // At most 3 bytes per UTF-16 unit: a line that surely fits is written without measuring it.
    if (line.length * 3 > room) {
      const bytes = Buffer.byteLength(line);
      if (bytes > this.maxBytes) return;
      if (bytes > room && this.buf.length < this.maxBytes) {
        this.grow(this.pos + bytes);
        room = this.buf.length - this.pos;
      }
      if (bytes > room) this.wrap();
    }
    const start = this.pos;
    const end = start + this.buf.write(line, start, 'utf8');
    // The lines this one overwrote are gone: those that start within its bytes, always the oldest
    // ones (see wrap()). A line that started before it ended before it, or was dropped by the write
    // that overlapped it; an empty line where it starts is dropped too.
    while (this.count > 0 && this.starts[this.first]! >= start && this.starts[this.first]! < end) this.drop();
    if (this.count === this.maxLines) this.drop();
    const slot = (this.first + this.count) % this.maxLines;
    this.starts[slot] = start;
    this.lengths[slot] = end - start;
    this.count++;
    this.pos = end;
  }

  /** The newest lines first, while `take` returns true (it is given each line's text). */
  newestFirst(take: (line: string) => boolean): void {
    for (let i = this.count - 1; i >= 0; i--) {
      const slot = (this.first + i) % this.maxLines;
      const s = this.starts[slot]!;
      if (!take(this.buf.toString('utf8', s, s + this.lengths[slot]!))) return;
    }
  }

  private drop(): void {
    this.first = (this.first + 1) % this.maxLines;
    this.count--;
  }

  /**
   * Starts writing at the beginning again. Lines from the lap before, past where this lap ended,
   * are dropped first: they are the oldest, so the oldest line kept is always the next one that
   * writing overwrites.
   */
  private wrap(): void {
    while (this.count > 0 && this.starts[this.first]! >= this.pos) this.drop();
    this.pos = 0;
  }

  /** A larger buffer (up to maxBytes) with the kept lines at the same offsets (it grows before it ever wraps). */
  private grow(atLeast: number): void {
    let size = this.buf.length;
    while (size < atLeast && size < this.maxBytes) size *= 2;
    const next = Buffer.allocUnsafe(Math.min(size, this.maxBytes));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

/**
 * Lines waiting to be written to a file, as UTF-8 bytes outside the JavaScript heap, each followed
 * by a newline. Queued as strings, a busy function's lines lived until the next flush, past a
 * young-generation GC, and were copied and promoted with the request's other survivors; here the
 * line's string dies at once.
 */
export class LineBatch {
  private buf = Buffer.allocUnsafe(0);
  private pos = 0;

  /** Bytes queued. */
  get size(): number {
    return this.pos;
  }

  /** Queues a line (without its newline). */
  push(line: string): void {
    // At most 3 bytes per UTF-16 unit, and the newline.
    const most = line.length * 3 + 1;
    if (this.pos + most > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(INITIAL_BYTES, 2 * (this.pos + most)));
      this.buf.copy(next, 0, 0, this.pos);
      this.buf = next;
    }
    this.pos += this.buf.write(line, this.pos, 'utf8');
    this.buf[this.pos++] = 0x0a;
  }

  /** The queued bytes, handed over (the batch starts empty again). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.buf = Buffer.allocUnsafe(0);
    this.pos = 0;
    return out;
  }
}
