/**
 * A lazy recording's page images (native/recorder/deflate.c, packPages): pages of runs are
 * deflated by a run encoder on the recording thread, the rest handed whole to the writer's
 * libdeflate; pages never seen that are still zero are left out. Whatever a page holds, its
 * image must inflate (as every reader inflates it: zlib's inflateRaw) to exactly the page.
 */
import fc from 'fast-check';
import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { nativeRecorder } from '../../src/store/native-recorder.js';
import { pageImagesOf } from '../../src/store/trace-db-writer.js';
import { nativeRecorderPath } from '../../src/store/native-recorder.js';
import Database from 'better-sqlite3';
import { unionPages } from '../../src/store/emulator-recorder.js';

const n = nativeRecorder();

/** The records of packPages' output: index, and the deflated image or the raw page. */
function records(data: Buffer): { index: number; deflated?: Buffer; raw?: Buffer }[] {
  const out: { index: number; deflated?: Buffer; raw?: Buffer }[] = [];
  for (let o = 0; o < data.length; ) {
    const index = data.readUInt32LE(o);
    const len = data.readUInt16LE(o + 4);
    o += 6;
    if (len === 0) out.push({ index, raw: data.subarray(o, (o += 4096)) });
    else out.push({ index, deflated: data.subarray(o, (o += len)) });
  }
  return out;
}

/** A page from runs of bytes: [byte, length] pairs, repeated up to 4096 bytes. */
const page = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 600 }), fc.constant(4096))), { minLength: 1, maxLength: 400 })
  .map((runs) => {
    const p = Buffer.alloc(4096);
    let at = 0;
    for (let k = 0; at < 4096; k++) {
      const [b, len] = runs[k % runs.length]!;
      p.fill(b, at, Math.min(4096, at + len));
      at += len;
    }
    return p;
  });

describe('packPages', () => {
  it('gives back every page exactly, runs deflated here and the rest left whole', () => {
    fc.assert(
      fc.property(fc.array(page, { minLength: 1, maxLength: 8 }), (pages) => {
        const ram = Buffer.concat(pages);
        const seen = new Uint8Array(pages.length).fill(1);
        const at = Uint32Array.from(pages.keys());
        const got = records(n.packPages(ram, at, seen));
        expect(got.map((r) => r.index)).toEqual([...at]);
        got.forEach((r) => {
          const want = pages[r.index]!;
          if (r.raw) expect(r.raw.equals(want)).toBe(true);
          else expect(inflateRawSync(r.deflated!).equals(want)).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('deflates pages of fills here (xv6 fills its free pages with 1s), leaves random pages whole', () => {
    const ram = Buffer.alloc(4 * 4096);
    ram.fill(1, 0, 4096).writeUInt32LE(0x80123000, 0); // a free page: its next pointer, then 1s
    for (let i = 4096; i < 8192; i++) ram[i] = (i * 2654435761) >>> 24; // no runs
    ram.fill(0xff, 8192 + 100, 8192 + 3000);
    ram[3 * 4096 + 17] = 5; // zero but one byte
    const got = records(n.packPages(ram, Uint32Array.of(0, 1, 2, 3), new Uint8Array(4)));
    expect(got.map((r) => (r.raw ? 'raw' : r.deflated!.length < 64 ? 'small' : 'large'))).toEqual(['small', 'raw', 'small', 'small']);
  });

  it('leaves out pages never seen that are still zero (marked so, once), and marks every page it packs seen', () => {
    const ram = Buffer.alloc(5 * 4096);
    ram[4096 * 2] = 1;
    // (native/recorder/seen.h: 0 none, 1 an image, 2 left out as zero, 3 released)
    const seen = Uint8Array.of(0, 1, 0, 0, 3);
    const images = pageImagesOf(ram, 0x100000n, Uint32Array.of(0, 1, 2, 3, 4), seen);
    // page 1 is zero but was seen (an image of it was not zero): its zero image is a change
    expect(images.pages).toEqual([0x101, 0x102]);
    expect([...seen]).toEqual([2, 1, 1, 2, 3]);
    ram[4096 * 2] = 0; // seen now: zero again is stored
    ram[4096 * 4] = 1; // released, then written
    expect(pageImagesOf(ram, 0x100000n, Uint32Array.of(0, 2, 3, 4), seen).pages).toEqual([0x102, 0x104]);
    expect([...seen]).toEqual([2, 1, 1, 2, 1]);
  });

  it('finds the one byte that ends a fill or a zero page wherever it lies (the run scan goes 128 bytes a step)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 255 }), (fill, at, other) => {
        const ram = Buffer.alloc(4096, fill);
        ram[at] = other;
        const seen = new Uint8Array(1);
        const got = records(n.packPages(ram, Uint32Array.of(0), seen));
        if (fill === 0 && other === 0) expect(got).toEqual([]); // left out: zero, never seen
        else {
          expect(got).toHaveLength(1);
          expect(inflateRawSync(got[0]!.deflated!).equals(ram)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses bad arguments with a reason', () => {
    const ram = Buffer.alloc(2 * 4096);
    expect(() => n.packPages(ram, Uint32Array.of(2), new Uint8Array(2))).toThrow('packPages: a page index lies outside the RAM');
    expect(() => n.packPages(ram, Uint32Array.of(0), new Uint8Array(1))).toThrow('packPages: `seen` has fewer bytes than the RAM has pages');
    expect(() => n.packPages(ram, [0] as unknown as Uint32Array, new Uint8Array(2))).toThrow('packPages(ram: Buffer, at: Uint32Array, seen: Uint8Array): bad arguments');
  });
});

describe('unionPages (the pages a lazy chunk wrote: those listed when it was looked at early, and those since)', () => {
  it('is the ascending set of both lists', () => {
    // (as the dirty scans list them: ascending, each page once)
    const sorted = fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), { maxLength: 300 }).map((xs) => Uint32Array.from(xs).sort());
    fc.assert(
      fc.property(sorted, sorted, (a, b) => {
        const want = [...new Set([...a, ...b])].sort((x, y) => x - y);
        expect([...unionPages(a, b)]).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});

describe("the recorder's SQLite extension (sqlite-rows.c): packed page images and checkpoints as rows", () => {
  const db = new Database(':memory:');
  db.loadExtension(nativeRecorderPath());
  const pages = db.prepare('SELECT page, data FROM dbg_pages(?, ?)').raw();
  const ckpts = db.prepare('SELECT seq, vcpu, flags, data FROM dbg_ckpts(?)').raw();

  it('gives each page at base + its index, a page packed whole deflated there', () => {
    const ram = Buffer.alloc(3 * 4096);
    ram.fill(1, 0, 4096);
    for (let i = 4096; i < 8192; i++) ram[i] = (i * 2654435761) >>> 24; // no runs: left whole
    ram[2 * 4096 + 9] = 3;
    const packed = n.packPages(ram, Uint32Array.of(0, 1, 2), new Uint8Array(3));
    const got = pages.all(packed, 0x100) as [number, Buffer][];
    expect(got.map(([p]) => p)).toEqual([0x100, 0x101, 0x102]);
    got.forEach(([, data], i) => expect(inflateRawSync(data).equals(ram.subarray(i * 4096, (i + 1) * 4096))).toBe(true));
    expect(pages.all(Buffer.alloc(0), 0)).toEqual([]);
  });

  it('gives each checkpoint its seq, vCPU, flags and bytes', () => {
    const rec = (seq: bigint, vcpu: number, flags: number, data: Buffer): Buffer => {
      const h = Buffer.alloc(14);
      h.writeBigUInt64LE(seq);
      h[8] = vcpu;
      h[9] = flags;
      h.writeUInt32LE(data.length, 10);
      return Buffer.concat([h, data]);
    };
    const packed = Buffer.concat([rec(5n, 0, 1, Buffer.from('abc')), rec(2n ** 40n, 1, 2, Buffer.alloc(0))]);
    expect(ckpts.safeIntegers(true).all(packed)).toEqual([
      [5n, 0n, 1n, Buffer.from('abc')],
      [2n ** 40n, 1n, 2n, Buffer.alloc(0)],
    ]);
    const far = rec(2n ** 63n, 0, 0, Buffer.alloc(1));
    expect(() => ckpts.all(far)).toThrow(/dbg_ckpts: a checkpoint's seq is past SQLite's integers at byte 0 of 15/);
  });

  it('fails the statement, naming where, on records that run past the packed data', () => {
    const whole = n.packPages(Buffer.alloc(4096, 1), Uint32Array.of(0), new Uint8Array(1));
    expect(() => pages.all(whole.subarray(0, 4), 0)).toThrow(/dbg_pages: a page image's header runs past the packed data at byte 0 of 4/);
    expect(() => pages.all(whole.subarray(0, whole.length - 1), 0)).toThrow(/dbg_pages: a page image runs past the packed data at byte 0/);
    const raw = Buffer.alloc(6 + 100); // a page left whole needs 4096 bytes
    expect(() => pages.all(raw, 0)).toThrow(/dbg_pages: a page image runs past the packed data/);
    expect(() => ckpts.all(Buffer.alloc(13))).toThrow(/dbg_ckpts: a checkpoint's header runs past the packed data at byte 0 of 13/);
    const short = Buffer.alloc(14);
    short.writeUInt32LE(1, 10);
    expect(() => ckpts.all(short)).toThrow(/dbg_ckpts: a checkpoint runs past the packed data at byte 0 of 14/);
    expect(() => db.prepare('SELECT * FROM dbg_pages').all()).toThrow(/dbg_pages\(packed, base\): both arguments are needed/);
    expect(() => pages.all('text', 0)).toThrow(/dbg rows: the packed data is not a blob/);
  });
});
