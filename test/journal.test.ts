import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { KylixError } from '../src/errors.js';
import { checkDiskRoom } from '../src/storage/disk-room.js';
import { openJournal } from '../src/storage/journal.js';
import { splitLines } from '../src/storage/journal-files.js';
import { tempDir } from './helpers/temp-dir.js';

/** A tiny state (a counter map) kept by a journal, the way the stores use it. */
async function openCounter(dir: string, compactBytes?: number) {
  const state = new Map<string, number>();
  let seq = 0;
  let snapshotSeq = 0;
  const journal = await openJournal({
    dir,
    label: 'The test state',
    compactBytes,
    restore: (data) => {
      for (const { line } of splitLines(data)) {
        const r = JSON.parse(line) as { seq?: number; k?: string; v?: number };
        if (r.seq !== undefined) snapshotSeq = seq = r.seq;
        else state.set(r.k!, r.v!);
      }
    },
    replay: (record) => {
      const r = record as { s: number; k: string; v: number };
      if (r.s <= snapshotSeq) return;
      seq = r.s;
      state.set(r.k, r.v);
    },
    snapshot: () => {
      const rows = [...state];
      const at = seq;
      return (function* () {
        yield `${JSON.stringify({ seq: at })}\n`;
        for (const [k, v] of rows) yield `${JSON.stringify({ k, v })}\n`;
      })();
    },
  });
  return {
    state,
    journal,
    set(k: string, v: number) {
      state.set(k, v);
      return journal.append({ s: ++seq, k, v });
    },
  };
}

describe('journal', () => {
  it('shares one sync among records appended together, and replays them in order', async () => {
    const dir = tempDir('journal');
    const c = await openCounter(dir);
    await Promise.all(Array.from({ length: 200 }, (_, i) => c.set(`k${i % 10}`, i)));
    await c.journal.close();
    const again = await openCounter(dir);
    assert.equal(again.state.size, 10);
    assert.equal(again.state.get('k9'), 199);
    await again.journal.close();
  });

  it('cuts a torn last line off, so records appended after a crash are not glued to it', async () => {
    const dir = tempDir('journal');
    let c = await openCounter(dir);
    await c.set('a', 1);
    await c.journal.close();
    appendFileSync(join(dir, 'journal.log'), '{"s":2,"k":"b","v":');
    c = await openCounter(dir);
    await c.set('c', 3);
    await c.journal.close();
    assert.ok(readFileSync(join(dir, 'journal.log'), 'utf8').endsWith('"v":3}\n'));
    c = await openCounter(dir);
    assert.deepEqual(
      [...c.state],
      [
        ['a', 1],
        ['c', 3],
      ],
    );
    await c.journal.close();
  });

  it('compacts into a snapshot as it grows, losing nothing', async () => {
    const dir = tempDir('journal');
    const c = await openCounter(dir, 4096);
    for (let i = 0; i < 500; i++) await c.set(`key-${i % 50}`, i);
    await c.journal.close();
    assert.ok(readFileSync(join(dir, 'journal.log')).length < 8192, 'the journal was never compacted');
    const again = await openCounter(dir, 4096);
    assert.equal(again.state.size, 50);
    assert.equal(again.state.get('key-49'), 499);
    await again.journal.close();
  });

  it('compacts on demand, so superseded records leave the disk', async () => {
    const dir = tempDir('journal');
    const c = await openCounter(dir);
    await c.set('token', 1111);
    const pending = c.set('token', 2222);
    await c.journal.compactNow();
    await pending;
    assert.equal(readFileSync(join(dir, 'journal.log'), 'utf8'), '');
    assert.doesNotMatch(readFileSync(join(dir, 'snapshot.json'), 'utf8'), /1111/);
    await c.set('other', 3);
    await c.journal.close();
    const again = await openCounter(dir);
    assert.equal(again.state.get('token'), 2222);
    assert.equal(again.state.get('other'), 3);
    await again.journal.close();
  });

  describe('on a disk that fills up', () => {
    // A real full disk: a 1 MiB tmpfs (mounting needs root; elsewhere the case is skipped).
    const mount = join(tempDir('journal-full'), 'disk');
    mkdirSync(mount);
    let reason: string | undefined;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount], { stdio: 'ignore' });
    } catch {
      reason = 'cannot mount a tmpfs here (needs root)';
      console.log(`# skipping the full-disk journal case: ${reason}`);
    }
    after(() => {
      if (!reason) execFileSync('umount', ['-l', mount]);
    });
    /** Fills what is left of the tmpfs; answers the file to remove to make room again. */
    const fillDisk = (): string => {
      const filler = join(mount, 'filler');
      try {
        writeFileSync(filler, Buffer.alloc(2 * 1024 * 1024));
      } catch {}
      return filler;
    };

    it('refuses writes while it is full, and writes them once there is room, losing nothing', {
      skip: reason,
    }, async () => {
      const dir = join(mount, 'state');
      const c = await openCounter(dir);
      await c.set('before', 1);
      const filler = fillDisk();
      // The disk is full (records bigger than what is left of the file's last page): the write
      // fails and says so, and the next ones too.
      const during = 'd'.repeat(10_000);
      await assert.rejects(c.set(during, 2), (e: Error) => /disk is full/.test(e.message));
      await assert.rejects(c.set('during2', 3), /disk is full/);
      assert.match(String(c.journal.broken?.message), /ENOSPC|short write/);
      rmSync(filler);
      // Room again: the next write goes through with the ones refused before it (memory holds them).
      await c.set('after', 4);
      assert.equal(c.journal.broken, undefined);
      await c.journal.close();
      const again = await openCounter(dir);
      assert.deepEqual(Object.fromEntries(again.state), { before: 1, [during]: 2, during2: 3, after: 4 });
      await again.journal.close();
    });

    it("refuses a function's write while the disk is within its reserve, naming it", { skip: reason }, () => {
      const before = process.env.KYLIX_DISK_RESERVE_MIB;
      process.env.KYLIX_DISK_RESERVE_MIB = '0.5';
      try {
        checkDiskRoom(mount, 1024, 'The test store');
        // Another second later (readings are kept for one), with 0.6 MiB of the 1 MiB taken.
        writeFileSync(join(mount, 'filler'), Buffer.alloc(600 * 1024));
        const start = Date.now();
        while (Date.now() - start < 1100);
        assert.throws(
          () => checkDiskRoom(mount, 1024, 'The test store'),
          (e: KylixError) =>
            e.code === 'ERR_BACKEND_UNAVAILABLE' &&
            /The test store is refusing writes.*KYLIX_DISK_RESERVE_MIB/.test(e.message),
        );
      } finally {
        rmSync(join(mount, 'filler'), { force: true });
        if (before === undefined) delete process.env.KYLIX_DISK_RESERVE_MIB;
        else process.env.KYLIX_DISK_RESERVE_MIB = before;
      }
    });

    it('counts the writes it admitted since its last reading of the disk', { skip: reason }, () => {
      const before = process.env.KYLIX_DISK_RESERVE_MIB;
      process.env.KYLIX_DISK_RESERVE_MIB = '0.5';
      try {
        // Within one reading (a second): 0.3 MiB admitted leaves too little for another 0.3 MiB.
        const start = Date.now();
        while (Date.now() - start < 1100);
        checkDiskRoom(mount, 300 * 1024, 'The test store');
        assert.throws(() => checkDiskRoom(mount, 300 * 1024, 'The test store'), /refusing writes/);
      } finally {
        if (before === undefined) delete process.env.KYLIX_DISK_RESERVE_MIB;
        else process.env.KYLIX_DISK_RESERVE_MIB = before;
      }
    });

    it('drops a refused record its caller undoes, and a barrier waits for the records it keeps', {
      skip: reason,
    }, async () => {
      const dir = join(mount, 'drop');
      const c = await openCounter(dir);
      await c.set('before', 1);
      const filler = fillDisk();
      const undone = 'u'.repeat(10_000);
      c.state.set(undone, 2);
      await assert.rejects(c.journal.append({ s: 1000, k: undone, v: 2 }, { drop: true }), /disk is full/);
      c.state.delete(undone);
      const kept = 'k'.repeat(10_000);
      await assert.rejects(c.set(kept, 3), /disk is full/);
      assert.throws(() => c.journal.writable(), /disk is full/);
      // A barrier (what a retried delete of a key already gone waits on) does not pass while a
      // refused record is not on disk: it fails like the write it waits for.
      await assert.rejects(c.journal.barrier(), /disk is full/);
      rmSync(filler);
      await c.journal.barrier();
      const deadline = Date.now() + 5000;
      while (c.journal.broken && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await c.journal.close();
      const again = await openCounter(dir);
      assert.equal(again.state.get(kept), 3);
      assert.equal(again.state.has(undone), false, 'a dropped record was written');
      await again.journal.close();
    });

    it('writes the refused records by itself once there is room, when nothing else writes', {
      skip: reason,
    }, async () => {
      const dir = join(mount, 'quiet');
      const c = await openCounter(dir);
      const filler = fillDisk();
      const refused = 'r'.repeat(10_000);
      await assert.rejects(c.set(refused, 1), /disk is full/);
      rmSync(filler);
      const deadline = Date.now() + 5000;
      while (c.journal.broken && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(c.journal.broken, undefined, 'the refused record was not retried');
      const again = await openCounter(dir);
      assert.equal(again.state.get(refused), 1);
      await again.journal.close();
      await c.journal.close();
    });
  });

  it('refuses records once closed', async () => {
    const c = await openCounter(tempDir('journal'));
    await c.journal.close();
    await assert.rejects(c.set('a', 1), /closed/);
  });
});
