/**
 * Lazy-rows recording (issue 10): no write hook; the kernel tracks the RAM pages written
 * (native/recorder/recorder.c, "dirty pages") and each chunk is stored with the images of its
 * written pages at its end (schema.ts, `page`).
 *
 * The tracking itself, on RAM made as the live machine's is (emu.c's allocRam: mmap'd, huge pages
 * asked for): exactly the pages written from JS, none read, reset by each call; bad buffers are
 * refused with a reason. Then the sample kernel recorded twice with the same commands, eagerly
 * and lazily (both runs are deterministic, so their chunks are the same): RAM rebuilt from the
 * lazy trace's page images must be, at the end of every chunk, RAM rebuilt from the eager trace's
 * memory rows (each row's final image) — also after ::discard -f cut both histories inside a
 * chunk and both guests ran on. --verify re-executes a lazy trace and compares all but its
 * memory; DBG_RECORD_ROWS chooses the way.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { nativeRecorder } from '../../src/store/native-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { emuHooks } from '../../src/targets/emulator/emu-hooks.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { X86_REG } from '../../src/targets/emulator/unicorn.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import { verifyTrace } from '../../src/targets/replay/rerecord.js';
import { session } from '../targets/emulator-session.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-lazy-rows-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const n = nativeRecorder();
const tracking = (() => {
  const h = n.create(0);
  const why = n.dirtyTrack(h, emuHooks().allocRam(1 << 21));
  n.dirtyStop(h);
  return why === undefined;
})();

/** Bytes of this process's memory backed by transparent huge pages. */
function hugeBytes(): number {
  return Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0) * 1024;
}
const thp = !readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').includes('[never]');

describe.runIf(tracking)('dirty page tracking', () => {
  it('reports the pages written since the last call, huge pages included, and no page read; a fresh huge page whole', () => {
    const h = n.create(0);
    const ram = emuHooks().allocRam(16 << 20);
    // the first 4 MiB populated before tracking: huge pages where the host gives them
    for (let i = 0; i < 4 << 20; i += 4096) ram[i] = 1;
    expect(n.dirtyTrack(h, ram)).toBeUndefined();
    expect([...n.dirtyPages(h)]).toEqual([]);
    let sum = 0;
    for (let i = 0; i < ram.length; i += 512) sum += ram[i]!;
    expect(sum).toBe(1024);
    expect([...n.dirtyPages(h)]).toEqual([]);
    ram[5] = 7; // in a huge page
    ram[3 * 4096 + 4095] = 1;
    ram.writeUInt32LE(0xdeadbeef, 4096 * 1000 - 2); // two pages, one write
    ram[(9 << 20) + 1] = 2; // never populated before
    ram[ram.length - 1] = 3;
    // A page never populated is not protected (recorder.c: protecting it would cost its first
    // write a second fault and the host its huge pages): its first write populates it, with
    // transparent huge pages the 2 MiB around it, and the scan lists all it populated. Those
    // still zero are no change; the recorder stores no image of them (packPages).
    const fresh = [(9 << 20) / 4096, ram.length / 4096 - 1];
    const got = [...n.dirtyPages(h)];
    expect(got.slice(0, 4)).toEqual([0, 3, 999, 1000]);
    expect(got).toEqual(expect.arrayContaining(fresh));
    for (const p of got.slice(4)) {
      expect(fresh.some((f) => f >> 9 === p >> 9)).toBe(true);
      if (!fresh.includes(p)) expect(ram.subarray(p * 4096, p * 4096 + 4096).every((b) => b === 0)).toBe(true);
    }
    expect([...n.dirtyPages(h)]).toEqual([]);
    ram[5] = 8;
    ram.fill(1, 4096 * 17, 4096 * 19 + 1);
    expect([...n.dirtyPages(h)]).toEqual([0, 17, 18, 19]);
    // more written regions than one scan returns (recorder.c: 256 a scan), every page populated first
    ram.fill(0, 4 << 20);
    n.dirtyPages(h);
    for (let p = 0; p < 4096; p += 2) ram[p * 4096] = 9;
    const every = n.dirtyPages(h);
    expect(every.length).toBe(2048);
    expect(every.every((p, i) => p === 2 * i)).toBe(true);
    n.dirtyStop(h);
    n.dirtyStop(h);
    ram[0] = 1;
    expect(() => n.dirtyPages(h)).toThrow('dirtyPages: no RAM is tracked (dirtyTrack first)');
  });

  it('splits a huge page at its first write: 4 KiB granularity', () => {
    const h = n.create(0);
    const ram = emuHooks().allocRam(8 << 20);
    const before = hugeBytes();
    ram.fill(1);
    if (thp) expect(hugeBytes() - before).toBeGreaterThanOrEqual(2 << 20);
    expect(n.dirtyTrack(h, ram)).toBeUndefined();
    ram[(2 << 20) + 4096 * 7 + 3] = 2;
    expect([...n.dirtyPages(h)]).toEqual([512 + 7]);
    n.dirtyStop(h);
  });

  it('counts written pages without protecting them (dirtyCount), up to the bound asked', () => {
    const h = n.create(0);
    const ram = emuHooks().allocRam(4 << 20);
    ram.fill(1);
    expect(n.dirtyTrack(h, ram)).toBeUndefined();
    expect(n.dirtyCount(h, 8)).toBe(0);
    for (let p = 0; p < 20; p++) ram[p * 4096] = 2;
    expect(n.dirtyCount(h, 8)).toBe(9); // the scan stops past the bound
    expect(n.dirtyCount(h, 100)).toBe(20);
    // nothing was protected by the counts: every page written since the last dirtyPages is listed
    ram[30 * 4096] = 2;
    expect([...n.dirtyPages(h)]).toEqual([...Array.from({ length: 20 }, (_, i) => i), 30]);
    expect(n.dirtyCount(h, 8)).toBe(0);
    expect(() => n.dirtyCount(h, -1)).toThrow('dirtyCount(handle, atMost: number): bad arguments');
    n.dirtyStop(h);
    expect(() => n.dirtyCount(h, 8)).toThrow('dirtyCount: no RAM is tracked (dirtyTrack first)');
  });

  it('takes the pages a look listed whole (dirtyTakeListed) as dirtyPages would: protected again, the next write seen', () => {
    const h = n.create(0);
    const ram = emuHooks().allocRam(4 << 20);
    ram.fill(1);
    expect(n.dirtyTrack(h, ram)).toBeUndefined();
    expect(() => n.dirtyTakeListed(h)).toThrow('dirtyTakeListed: no dirtyCount listed every page written just before (use dirtyPages)');
    for (const p of [3, 4, 5, 9, 700]) ram[p * 4096 + 1] = 2;
    expect(n.dirtyCount(h, 8)).toBe(5);
    expect([...n.dirtyTakeListed(h)]).toEqual([3, 4, 5, 9, 700]);
    // protected again: nothing is written since, a write to one of them is seen
    expect([...n.dirtyPages(h)]).toEqual([]);
    ram[4 * 4096] = 3;
    ram[6 * 4096] = 3;
    expect(n.dirtyCount(h, 8)).toBe(2);
    expect([...n.dirtyTakeListed(h)]).toEqual([4, 6]);
    // once only, and not after a look that stopped at its bound or a scan since
    expect(() => n.dirtyTakeListed(h)).toThrow(/no dirtyCount listed/);
    for (let p = 10; p < 30; p++) ram[p * 4096] = 4;
    expect(n.dirtyCount(h, 8)).toBe(9);
    expect(() => n.dirtyTakeListed(h)).toThrow(/no dirtyCount listed/);
    expect(n.dirtyCount(h, 100)).toBe(20);
    expect(n.dirtyPages(h).length).toBe(20);
    expect(() => n.dirtyTakeListed(h)).toThrow(/no dirtyCount listed/);
    n.dirtyStop(h);
    expect(() => n.dirtyTakeListed(h)).toThrow('dirtyTakeListed: no RAM is tracked (dirtyTrack first)');
  });

  it('lifts the protection of pages left out as zero, once (dirtyRelease): they read as written at the next scan', () => {
    const h = n.create(0);
    const ram = emuHooks().allocRam(8 << 20);
    const seen = new Uint8Array(ram.length / 4096);
    expect(n.dirtyTrack(h, ram)).toBeUndefined();
    // a fill that stops mid-way through a fresh (huge) page: the scan lists the rest of it too
    ram.fill(1, 2 << 20, (2 << 20) + 10 * 4096);
    const first = n.dirtyPages(h);
    expect([...first.slice(0, 10)]).toEqual(Array.from({ length: 10 }, (_, i) => 512 + i));
    n.packPages(ram, first, seen);
    const left = first.filter((p) => seen[p] === 2).length; // SEEN_ZERO
    expect(left).toBe(first.length - 10);
    expect(n.dirtyRelease(h, first, seen)).toBe(left);
    expect(first.filter((p) => seen[p] === 3).length).toBe(left); // SEEN_RELEASED
    // the released pages read as written at the next scan (whether or not they were), the ten
    // filled ones only when written again
    ram.fill(1, (2 << 20) + 10 * 4096, (2 << 20) + 20 * 4096);
    const second = n.dirtyPages(h);
    expect(second.length).toBe(left);
    expect(second[0]).toBe(522);
    n.packPages(ram, second, seen);
    // still zero a second time: stays protected (a page that stays zero is not listed by every scan)
    expect(n.dirtyRelease(h, second, seen)).toBe(0);
    expect([...n.dirtyPages(h)]).toEqual([]);
    ram[(2 << 20) + 100 * 4096] = 5;
    expect([...n.dirtyPages(h)]).toEqual([612]);
    expect(() => n.dirtyRelease(h, Uint32Array.of(1 << 20), seen)).toThrow('dirtyRelease: a page index lies outside the RAM');
    expect(() => n.dirtyRelease(h, first, new Uint8Array(3))).toThrow('dirtyRelease: `seen` has fewer bytes than the RAM has pages');
    expect(() => n.dirtyRelease(h, [1] as never, seen)).toThrow('dirtyRelease(handle, at: Uint32Array, seen: Uint8Array): bad arguments');
    n.dirtyStop(h);
  });

  it('refuses what is not page-aligned RAM with a reason', () => {
    const h = n.create(0);
    expect(n.dirtyTrack(h, Buffer.alloc(10_000))).toMatch(/4 KiB/);
    expect(n.dirtyTrack(h, emuHooks().allocRam(1 << 21).subarray(1))).toBe('the RAM is not whole 4 KiB pages on page boundaries');
    expect(n.dirtyTrack(h, emuHooks().allocRam(1 << 21).subarray(0, 4095))).toBe('the RAM is not whole 4 KiB pages on page boundaries');
    expect(n.dirtyTrack(h, Buffer.alloc(0))).toBe('the RAM is not whole 4 KiB pages on page boundaries');
    expect(() => n.dirtyTrack(h, 'ram' as unknown as Buffer)).toThrow('dirtyTrack(handle, ram: Buffer): bad arguments');
    expect(() => n.dirtyPages({} as never)).toThrow('recorder: expected a recorder handle');
  });
});

const commands = ['timer_tick::bp', ':c', ':c', '::delete all', 'jiffies::wp -w -L 8', ':c', '::delete all', 'log_append::bp', ':c', ':c', '::delete all'];

/**
 * The sample kernel on two vCPUs recorded with `rows`. With `cutLike` (an eager trace of the same
 * run cut by ::discard -f 123457 instructions back): then put back there and made the present as
 * ::discard -f does (live-history.ts; the machine's state at the cut from that trace, since
 * replaying a lazy trace is not this test's business), and on.
 */
async function record(name: string, rows: 'lazy' | 'eager', discard: boolean, cutLike?: string): Promise<string> {
  const path = join(dir, `${name}.trace`);
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 2, cmdline: 'nobug' });
  try {
    const rec = new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 100_000, rows });
    t.record(rec);
    const s = session(t);
    for (const c of commands) await s.run(c);
    for (let i = 0; i < 4; i++) expect((await t.machine.run({ vcpu: 0, count: 150_000 })).reason.kind).toBe('step');
    if (discard && cutLike) {
      const S = rec.seq - 123457n;
      rec.flush(); // as ::seek does
      const m = new ReplayMachine(TraceReader.open(cutLike));
      try {
        m.seek(Number(S));
        t.machine.rewind(S, [0, 1].map((v) => m.engine(v).saveContext()), m.ram, (v) => {
          m.seek(Number(S) - 1);
          return m.engine(v).readReg(X86_REG.RIP);
        });
      } finally {
        m.close();
        m.reader.close();
      }
      rec.discardAfter(S);
    } else if (discard) {
      await s.run('::seek -123457');
      await s.run('::discard -f');
    }
    if (discard) {
      for (let i = 0; i < 3; i++) expect((await t.machine.run({ vcpu: 0, count: 70_000 })).reason.kind).toBe('step');
      await s.run('log_append::bp');
      await s.run(':c');
    }
  } finally {
    t.close();
  }
  return path;
}

/**
 * RAM rebuilt at the end of every chunk from each trace: the eager one's memory rows, the lazy
 * one's page images, compared. Unicorn's page walker sets the accessed and dirty bits of page
 * table entries without a write hook, so the eager trace lacks them (emulator-discard.test.ts);
 * the lazy one has them: those bits (0x60 of an entry's first byte) may differ. Returns how many
 * page images the lazy trace holds.
 */
function compareChunkEnds(eagerPath: string, lazyPath: string): number {
  const e = TraceReader.open(eagerPath, false);
  const l = TraceReader.open(lazyPath, false);
  try {
    expect(l.meta.get('memory_rows')).toBe('lazy');
    expect(e.meta.get('memory_rows')).toBeUndefined();
    const chunks = (r: TraceReader) => r.db.prepare('SELECT id, first, count FROM chunk ORDER BY id').raw().all();
    expect(chunks(l)).toEqual(chunks(e));
    expect(l.db.prepare('SELECT count(*) FROM mem').pluck().get()).toBe(0);
    expect(l.db.prepare('SELECT count(*) FROM input WHERE chunk IS NULL').pluck().get()).toBe(0);
    const base = Number(e.info.ramBase);
    const size = e.info.ramSize;
    const ramE = Buffer.alloc(size);
    const ramL = Buffer.alloc(size);
    for (const [page, data] of e.initialPages()) data.copy(ramE, page * 4096 - base);
    ramE.copy(ramL);
    const pagesOf = l.db.prepare('SELECT page, data FROM page WHERE chunk = ? ORDER BY page');
    let images = 0;
    for (let k = 0; k < e.chunkCount; k++) {
      const written = new Set<number>();
      for (const [lines, img] of e.rowImages(k, k, true)) {
        lines.forEach((line, i) => {
          const at = line * 64 - base;
          if (at < 0 || at >= size) return;
          img.copy(ramE, at, 64 * i, 64 * i + 64);
          written.add(Math.floor(at / 4096));
        });
      }
      const listed = new Set<number>();
      for (const r of pagesOf.all(k) as { page: number; data: Buffer }[]) {
        const page = inflateRawSync(r.data);
        expect(page.length).toBe(4096);
        page.copy(ramL, r.page * 4096 - base);
        listed.add(r.page - base / 4096);
        images++;
      }
      for (const p of written) expect(listed.has(p), `chunk ${k}: page ${p} written, no image`).toBe(true);
      if (ramE.equals(ramL)) continue;
      for (let i = 0; i < size; i += 8) {
        if (ramE.readBigUInt64LE(i) === ramL.readBigUInt64LE(i)) continue;
        const x = ramE.readBigUInt64LE(i) ^ ramL.readBigUInt64LE(i);
        expect(x & ~0x60n, `chunk ${k}: physical 0x${(base + i).toString(16)}: 0x${ramE.readBigUInt64LE(i).toString(16)} eager, 0x${ramL.readBigUInt64LE(i).toString(16)} lazy`).toBe(0n);
      }
    }
    return images;
  } finally {
    e.close();
    l.close();
  }
}

describe.runIf(tracking)('a lazy-rows recording', () => {
  it("stores each chunk's written pages as they are at its end, and no memory rows; --verify compares the rest", async () => {
    const lazy = await record('lazy', 'lazy', false);
    const images = compareChunkEnds(await record('eager', 'eager', false), lazy);
    expect(images).toBeGreaterThan(0);
    const r = TraceReader.open(lazy);
    try {
      const v = await verifyTrace(r);
      expect(v.difference).toBeUndefined();
      expect(v.unchecked).toBe('memory and pcs (a lazy trace: page images, no memory rows or pc stream)');
    } finally {
      r.close();
    }
  });

  it('keeps the page images right when ::discard -f cuts the history inside a chunk', async () => {
    const eager = await record('eager-cut', 'eager', true);
    const images = compareChunkEnds(eager, await record('lazy-cut', 'lazy', true, eager));
    // the rewind wrote only the pages it changed (machine.ts), not all of RAM (8192 pages)
    expect(images).toBeGreaterThan(0);
    expect(images).toBeLessThan(1000);
  });

  it('stores the same page images and checkpoints through the SQLite extension (sqlite-rows.c) as bound row by row (DBG_TRACE_SQL_ROWS=0), ::discard -f included', async () => {
    const eager = await record('eager-cut-2', 'eager', true);
    const viaSql = await record('lazy-sql-rows', 'lazy', true, eager);
    process.env.DBG_TRACE_SQL_ROWS = '0';
    let bound: string;
    try {
      bound = await record('lazy-bound-rows', 'lazy', true, eager);
    } finally {
      delete process.env.DBG_TRACE_SQL_ROWS;
    }
    const rows = (path: string): { pages: unknown[]; ckpts: unknown[] } => {
      const r = TraceReader.open(path, false);
      try {
        return {
          pages: r.db.prepare('SELECT chunk, page, data FROM page ORDER BY chunk, page').raw().all(),
          ckpts: r.db.prepare('SELECT seq, vcpu, chunk, flags, data FROM ckpt ORDER BY id').raw().all(),
        };
      } finally {
        r.close();
      }
    };
    const a = rows(viaSql);
    const b = rows(bound);
    expect(a.pages.length).toBeGreaterThan(10);
    expect(a.ckpts.length).toBeGreaterThan(100);
    expect(a).toEqual(b);
  });

  it.each(['eager', 'lazy'])('records as DBG_RECORD_ROWS=%s says', async (rows) => {
    process.env.DBG_RECORD_ROWS = rows;
    try {
      const path = join(dir, `env-${rows}.trace`);
      const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cpus: 1, cmdline: 'nobug' });
      try {
        t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 100_000 }));
        await t.machine.run({ vcpu: 0, count: 300_000 });
      } finally {
        t.close();
      }
      const r = TraceReader.open(path, false);
      try {
        expect(r.meta.get('memory_rows')).toBe(rows === 'lazy' ? 'lazy' : undefined);
        expect(r.meta.has('memory_rows_reason')).toBe(false);
        const count = (table: string) => r.db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
        expect([count('mem') > 0, count('mem_mask') > 0, count('page') > 0]).toEqual(rows === 'lazy' ? [false, false, true] : [true, true, false]);
      } finally {
        r.close();
      }
    } finally {
      delete process.env.DBG_RECORD_ROWS;
    }
  });
});
