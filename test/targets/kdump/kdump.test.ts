// kdump-compressed dumps of the QEMU sample kernel: QEMU's own kdump-zlib dump (flattened), the
// diskdump makedumpfile -R rearranges it into, makedumpfile's -c, -l and -F -c dumps of the ELF
// dump of the same QEMU session, and the snappy and zstd dumps in dumps/qemu/kdump/ (made by
// make-fixtures.sh there). Every page dbg reads from each must equal the ELF dump's; libkdumpfile
// (Debian's python3-libkdumpfile) must agree; headers, bitmaps and page descriptors that lie, and
// pages makedumpfile left out, give one-line errors and the rest of the dump keeps working.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../../src/common/errors.js';
import { KernelDumpTarget } from '../../../src/targets/elfcore/kernel-dump-target.js';
import { openTarget } from '../../../src/targets/open-target.js';
import { makedumpfileInput } from '../../../src/targets/kdump/makedumpfile-input.js';
import { kdumpAddon } from '../../../src/common/kdump-addon.js';
import { DecodeError, pageDecoder, type PageCompression, type PageDecoder } from '../../../src/targets/kdump/decompress.js';
import { CaptureOutput, Session } from '../../../src/mdb/session.js';
import { builtinModules } from '../../../src/mdb/modules/index.js';
import { qemuSample, repoRoot } from '../../helpers/repo.js';

const kernel = qemuSample('kernel.elf');
const fixture = (name: string) => qemuSample(join('kdump', name));
let dir: string;
let elfPath: string;
let elf: KernelDumpTarget;
/** name -> path of each kdump-compressed dump of the session. */
const dumps: Record<string, string> = {};
/** makedumpfile --split's two files. */
let split: string[] = [];

function sh(cmd: string, args: string[], opts: { stdout?: string } = {}): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', opts.stdout ? openSync(opts.stdout, 'w') : 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr?.toString()}`);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-kdump-'));
  const unxz = (name: string, out: string) => {
    writeFileSync(join(dir, out), execFileSync('xz', ['-dc', fixture(name)], { maxBuffer: 64 << 20 }));
    return join(dir, out);
  };
  elfPath = unxz('vmcore.elf.xz', 'vmcore.elf');
  dumps['qemu -z (flattened)'] = unxz('qemu-zlib.flat.xz', 'qemu.flat');
  dumps['snappy'] = unxz('snappy.kdump.xz', 'snappy.kdump');
  dumps['zstd'] = unxz('zstd.kdump.xz', 'zstd.kdump');
  // makedumpfile -R: the flattened stream rearranged into a diskdump file.
  const rearranged = join(dir, 'qemu.kdump');
  const r = spawnSync('makedumpfile', ['-R', rearranged], { input: readFileSync(dumps['qemu -z (flattened)']!), stdio: ['pipe', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`makedumpfile -R failed: ${r.stderr}`);
  dumps['qemu -z, makedumpfile -R'] = rearranged;
  // makedumpfile reads the program headers right after the ELF header (see makedumpfileInput).
  const mdfElf = join(dir, 'vmcore-mdf.elf');
  makedumpfileInput(elfPath, mdfElf);
  const vi = fixture('makedumpfile.vmcoreinfo');
  for (const [name, flags] of [
    ['makedumpfile -c', ['-c']],
    ['makedumpfile -l', ['-l']],
  ] as const) {
    const out = join(dir, name.replace(/\W+/g, '_'));
    sh('makedumpfile', [...flags, '-d', '1', '-i', vi, mdfElf, out]);
    dumps[name] = out;
  }
  split = [join(dir, 'split-1'), join(dir, 'split-2')];
  sh('makedumpfile', ['--split', '-c', '-d', '1', '-i', vi, mdfElf, ...split]);
  const flat = join(dir, 'mdf.flat');
  sh('makedumpfile', ['-F', '-c', '-d', '1', '-i', vi, mdfElf], { stdout: flat });
  dumps['makedumpfile -F -c'] = flat;
  elf = KernelDumpTarget.open(elfPath, { symbols: [kernel] });
}, 60_000);

afterAll(() => {
  elf?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** native/kdump's decoders (setup builds them) and the JavaScript ones, the fallback. */
const decoders: [string, PageDecoder][] = [
  ['native', pageDecoder('native')],
  ['js', pageDecoder('js')],
];

function open(path: string, kdumpDecoder?: PageDecoder): KernelDumpTarget {
  const t = openTarget(path, { symbols: [kernel], kdumpDecoder });
  if (!(t instanceof KernelDumpTarget)) throw new Error(`${path} did not open as a kernel dump`);
  return t;
}

/** sha256 of each page of each physical range, through `read`. */
function pageHashes(regions: { start: bigint; end: bigint }[], read: (addr: bigint) => Buffer): string[] {
  const out: string[] = [];
  for (const r of regions) for (let a = r.start; a < r.end; a += 4096n) out.push(createHash('sha256').update(read(a)).digest('hex').slice(0, 16));
  return out;
}

async function run(t: KernelDumpTarget, line: string): Promise<string[]> {
  const s = new Session(t, builtinModules);
  const out = new CaptureOutput(false);
  await s.execute(line, out);
  return out.lines;
}

/** The DbgError `f` throws (anything else, or nothing, fails the test). */
function failure(f: () => unknown): DbgError {
  let err: unknown = new Error('did not fail');
  try {
    f();
  } catch (e) {
    err = e;
  }
  if (err instanceof DbgError) return err;
  throw err;
}

describe('kdump-compressed dumps of one QEMU session, against its ELF dump', () => {
  it('native/kdump is built, over libdeflate, liblzo2, libsnappy and libzstd', () => {
    expect(kdumpAddon()?.versions()).toMatch(/^libdeflate \d+\.\d+, lzo \d+\.\d+, snappy, zstd \d+\.\d+\.\d+$/);
    expect(decoders.map(([, d]) => d.kind)).toEqual(['native', 'js']);
  });

  it.each(decoders)('every page of every dump equals the ELF dump (%s decoders)', (_, decoder) => {
    const regions = elf.phys.regions();
    expect(regions.map((r) => `${r.start.toString(16)}-${r.end.toString(16)}`)).toEqual(['0-a0000', 'c0000-2000000', 'fd000000-fe000000', 'fffc0000-100000000']);
    const want = pageHashes(regions, (a) => elf.readPhysical(a, 4096));
    expect(want.length).toBe(12320);
    for (const [name, path] of Object.entries(dumps)) {
      const t = open(path, decoder);
      try {
        expect(t.phys.regions(), name).toEqual(regions);
        const got = pageHashes(regions, (a) => t.readPhysical(a, 4096));
        const bad = got.findIndex((h, i) => h !== want[i]);
        expect(bad, `${name}: first differing page`).toBe(-1);
      } finally {
        t.close();
      }
    }
  });

  it('::status names the format, and registers, stack and memory agree with the ELF dump', async () => {
    const elfLines = await run(elf, '::regs; ::stack; *panic_msg/s; procs,2/J; jiffies/E');
    for (const [name, path] of Object.entries(dumps)) {
      const t = open(path);
      try {
        const status = t.describe()[0]!;
        const z = name.includes('-l') ? 'lzo' : name === 'snappy' ? 'snappy' : name === 'zstd' ? 'zstd' : 'zlib';
        expect(status, name).toMatch(new RegExp(`: kdump-compressed${name.includes('flattened') || name.includes('-F') ? ' \\(flattened\\)' : ''}, version 6, ${z} pages, dump level 1, 12320 pages dumped, 2 CPU\\(s\\)$`));
        expect(await run(t, '::regs; ::stack; *panic_msg/s; procs,2/J; jiffies/E'), name).toEqual(elfLines);
        expect(t.status().reason).toEqual({ kind: 'panic', message: 'fixture: run queue corrupted' });
      } finally {
        t.close();
      }
    }
  });

  it('libkdumpfile reads the same bytes from each diskdump file (it does not read flattened ones)', () => {
    const regions = elf.phys.regions();
    const want = pageHashes(regions, (a) => elf.readPhysical(a, 4096));
    const script = `
import hashlib, sys, kdumpfile
k = kdumpfile.kdumpfile(sys.argv[1])
for r in sys.argv[2:]:
    s, e = (int(x, 16) for x in r.split('-'))
    for a in range(s, e, 4096):
        print(hashlib.sha256(k.read(kdumpfile.KDUMP_MACHPHYSADDR, a, 4096)).hexdigest()[:16])
`;
    const ranges = regions.map((r) => `${r.start.toString(16)}-${r.end.toString(16)}`);
    for (const [name, path] of Object.entries(dumps)) {
      if (name.includes('flattened') || name.includes('-F')) continue;
      const r = spawnSync('/usr/bin/python3', ['-c', script, path, ...ranges], { encoding: 'utf8', maxBuffer: 16 << 20 });
      expect(r.stderr, name).toBe('');
      const theirs = r.stdout.trim().split('\n');
      expect(theirs.length, name).toBe(want.length);
      expect(theirs.findIndex((h, i) => h !== want[i]), `${name}: first page libkdumpfile reads differently`).toBe(-1);
    }
  });

  it('makedumpfile --split: each file reads its own pages and names the other file for the rest', () => {
    const [a, b] = split.map((p) => open(p));
    try {
      expect(a!.describe()[0]).toMatch(/dump level 1, 8160 pages dumped \(one file of a split dump: pfns 0x0-0x40000\), 2 CPU\(s\)$/);
      expect(b!.describe()[0]).toMatch(/dump level 1, 4160 pages dumped \(one file of a split dump: pfns 0x40000-0x100000\), 2 CPU\(s\)$/);
      expect(a!.readPhysical(0x1234000n, 4096).equals(elf.readPhysical(0x1234000n, 4096))).toBe(true);
      expect(b!.readPhysical(0xfffc0000n, 4096).equals(elf.readPhysical(0xfffc0000n, 4096))).toBe(true);
      expect(failure(() => a!.readPhysical(0xfd000000n, 8)).message).toBe('physical 0xfd000000 is in another file of this split dump (this one holds pfns 0x0-0x40000)');
      expect(failure(() => b!.readPhysical(0x1000n, 8)).message).toBe('physical 0x1000 is in another file of this split dump (this one holds pfns 0x40000-0x100000)');
    } finally {
      a!.close();
      b!.close();
    }
  });

  it('VMCOREINFO from the sub-header, when the notes lack it', async () => {
    const text = Buffer.from('OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffffc0006000\nNUMBER(phys_base)=0\n');
    const b = readFileSync(dumps['makedumpfile -c']!);
    b.writeBigUInt64LE(BigInt(b.length), 4096 + 32); // offset_vmcoreinfo
    b.writeBigUInt64LE(BigInt(text.length), 4096 + 40); // size_vmcoreinfo
    const p = join(dir, 'vmcoreinfo.kdump');
    writeFileSync(p, Buffer.concat([b, text]));
    const t = open(p);
    try {
      expect(t.vmcoreinfo?.osrelease).toBe('6.1.0-test');
      expect(t.describe()).toContain('VMCOREINFO: OSRELEASE=6.1.0-test PAGESIZE=4096 KERNELOFFSET=0x0');
      expect(await run(t, '::vmcoreinfo')).toContain('SYMBOL(swapper_pg_dir)=ffffffffc0006000');
    } finally {
      t.close();
    }
  });

  it('dbg open reads a kdump-compressed dump end to end', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', dumps['makedumpfile -l']!, '--symbols', kernel, '-e', '::status; ::stack'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('kdump-compressed, version 6, lzo pages, dump level 1, 12320 pages dumped, 2 CPU(s)');
    expect(r.stdout).toContain('0xffffffffc0001711 check_runqueue+0x4f');
  });
});

// --- bad input -------------------------------------------------------------------------------

/** A copy of makedumpfile's -c dump with `edit` applied to its bytes. */
function edited(name: string, edit: (b: Buffer) => unknown): string {
  const b = readFileSync(dumps['makedumpfile -c']!);
  edit(b);
  const p = join(dir, `bad-${name}`);
  writeFileSync(p, b);
  return p;
}

const BITMAP1 = 2 * 4096; // (1 + sub_hdr_size) blocks
let BITMAP_BYTES = 0;
const bitmap2 = () => BITMAP1 + BITMAP_BYTES;
const descriptors = () => BITMAP1 + 2 * BITMAP_BYTES;
/** Page descriptor index of pfn: dumped pages before it. */
function rank(b: Buffer, pfn: number): number {
  let n = 0;
  for (let p = 0; p < pfn; p++) if (b[bitmap2() + (p >> 3)]! & (1 << (p & 7))) n++;
  return n;
}

describe('bad input: one-line errors, and the rest of the dump keeps working', () => {
  beforeAll(() => {
    const b = readFileSync(dumps['makedumpfile -c']!);
    BITMAP_BYTES = (b.readUInt32LE(436) / 2) * 4096;
  });

  const openFails = (p: string) => failure(() => open(p).close());

  it('kdump headers that lie', () => {
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['version', (b) => b.writeInt32LE(99, 8), /kdump header: header_version 99; dbg reads versions 1 to 6$/],
      ['block-size', (b) => b.writeInt32LE(8192, 428), /kdump header: block_size 8192; x86-64 dumps have 4096-byte pages$/],
      ['bitmap-blocks', (b) => b.writeUInt32LE(63, 436), /kdump header: bitmap_blocks 63: two bitmaps of equal size need an even, non-zero count$/],
      ['max-mapnr', (b) => b.writeBigUInt64LE(0x10000000n, 4096 + 96), /kdump header: max_mapnr 0x10000000 needs 33554432-byte bitmaps, but bitmap_blocks 64 gives 131072 bytes each$/],
      ['bitmaps-past-end', (b) => b.writeUInt32LE(0x10000, 436), /the bitmaps end at 0x10002000, past the end of the file \(0x[0-9a-f]+\): the dump is truncated or bitmap_blocks lies$/],
      ['notes', (b) => b.writeBigUInt64LE(0x7fffffffn, 4096 + 48), /kdump header: the ELF notes at 0x7fffffff \(\+0x660\) runs past the end of the file/],
    ];
    for (const [name, edit, message] of cases) {
      const e = openFails(edited(name, edit));
      expect(e.code, name).toBe('corrupt');
      expect(e.message, name).toMatch(message);
      expect(e.message, name).not.toContain('\n');
    }
    const short = join(dir, 'bad-short');
    writeFileSync(short, readFileSync(dumps['makedumpfile -c']!).subarray(0, 300));
    expect(openFails(short).message).toMatch(/kdump header: the file is 300 bytes, shorter than the 464-byte disk_dump_header$/);
  });

  it('a flattened stream that is cut short or whose records lie', () => {
    const flat = readFileSync(dumps['makedumpfile -F -c']!);
    const cut = join(dir, 'bad-flat-cut');
    writeFileSync(cut, flat.subarray(0, flat.length - 100_000));
    expect(openFails(cut).message).toMatch(/flattened record at file offset 0x[0-9a-f]+ holds \d+ bytes but the file ends \d+ bytes after its header: the dump is truncated$/);
    const noEnd = join(dir, 'bad-flat-noend');
    writeFileSync(noEnd, flat.subarray(0, flat.length - 16));
    expect(openFails(noEnd).message).toMatch(/no end record \(offset -1\) before the end of the file at 0x[0-9a-f]+: the dump is truncated$/);
    const negative = Buffer.from(flat);
    negative.writeBigInt64BE(-5n, 4096 + 8);
    const neg = join(dir, 'bad-flat-size');
    writeFileSync(neg, negative);
    expect(openFails(neg).message).toMatch(/flattened record at file offset 0x1000 says offset 0, size -5$/);
    const version = Buffer.from(flat);
    version.writeBigUInt64BE(7n, 24);
    const ver = join(dir, 'bad-flat-version');
    writeFileSync(ver, version);
    expect(openFails(ver).message).toMatch(/flattened header type 1, version 7; dbg reads type 1 version 1$/);
  });

  it('flattened records that overlap: the later one wins, and many cannot stall the open', () => {
    const flat = readFileSync(dumps['makedumpfile -F -c']!);
    const record = (offset: number, data: Buffer) => {
      const h = Buffer.alloc(16);
      h.writeBigInt64BE(BigInt(offset), 0);
      h.writeBigInt64BE(BigInt(data.length), 8);
      return Buffer.concat([h, data]);
    };
    const end = flat.subarray(flat.length - 16);
    expect(end.readBigInt64BE(0)).toBe(-1n);
    const level = Buffer.alloc(4);
    level.writeInt32LE(31);
    // 200,000 one-byte records over the unused end of the sub-header block, then dump_level = 31.
    const junk = Array.from({ length: 200_000 }, (_, i) => record(0x1800 + (i % 1000), Buffer.from([i & 0xff])));
    const p = join(dir, 'flat-overlaps');
    writeFileSync(p, Buffer.concat([flat.subarray(0, flat.length - 16), ...junk, record(4096 + 8, level), end]));
    const t0 = Date.now();
    const t = open(p);
    try {
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(t.describe()[0]).toContain('(flattened), version 6, zlib pages, dump level 31, 12320 pages dumped');
      expect(t.readPhysical(0x1234560n, 32).toString('latin1')).toBe('fixture marker at phys 0x1234560');
    } finally {
      t.close();
    }
  });

  it('a page makedumpfile excluded says so, at its dump level; the session keeps working', async () => {
    const pfn = 0x1234; // the marker page
    const p = edited('excluded', (b) => {
      const i = rank(b, pfn);
      b[bitmap2() + (pfn >> 3)]! &= ~(1 << (pfn & 7));
      // Its descriptor goes; the later ones move up (their data offsets are absolute).
      b.copy(b, descriptors() + i * 24, descriptors() + (i + 1) * 24, descriptors() + 12320 * 24);
      b.writeInt32LE(31, 4096 + 8); // dump level 31, as kdump-tools runs it
    });
    const t = open(p);
    try {
      expect(t.describe()[0]).toContain('dump level 31, 12319 pages dumped, 1 excluded');
      const e = failure(() => t.readPhysical(0x1234560n, 32));
      expect(e.message).toBe('page 0x1234000 was excluded by makedumpfile (dump level 31)');
      const v = failure(() => t.readVirtual(0xffff888001234560n, 32));
      expect(v.message).toBe(
        'read of 32 bytes at 0xffff888001234560 (thread 1) failed: it translates to physical 0x1234560, and page 0x1234000 was excluded by makedumpfile (dump level 31)',
      );
      // The session: the failing read is one line, the next command works.
      const s = new Session(t, builtinModules);
      const out = new CaptureOutput(false);
      await expect(s.execute('ffff888001234560/s', out)).rejects.toThrow(/page 0x1234000 was excluded by makedumpfile \(dump level 31\)$/);
      await s.execute('*panic_msg/s', out);
      expect(out.lines.at(-1)).toMatch(/fixture: run queue corrupted/);
      // Pages on either side, whose descriptors moved, still read right.
      expect(t.readPhysical(0x1233000n, 4096).equals(elf.readPhysical(0x1233000n, 4096))).toBe(true);
      expect(t.readPhysical(0x1235000n, 4096).equals(elf.readPhysical(0x1235000n, 4096))).toBe(true);
    } finally {
      t.close();
    }
  });

  it('bitmaps that lie', () => {
    // Bitmap 2 claims every page of the VGA hole: more pages than there are descriptors.
    const p = edited('bitmap2-more', (b) => b.fill(0xff, bitmap2() + (0xa0 >> 3), bitmap2() + (0xc0 >> 3)));
    const t = open(p);
    try {
      expect(t.warnings.join('\n')).toMatch(/bitmap 2 marks 32 pages dumped that bitmap 1 says do not exist; they are read anyway/);
      // Every page after the hole now finds the descriptor of another: dbg reads what it says,
      // but a page whose descriptor runs past the table is an error, not a crash.
      expect(() => t.readPhysical(0x1000n, 16)).not.toThrow();
      const e = failure(() => {
        for (let a = 0xfffc0000n; a < 0x100000000n; a += 4096n) t.readPhysical(a, 4096);
      });
      expect(e.message).toMatch(/page descriptor \d+ \(physical 0x[0-9a-f]+, at file offset 0x[0-9a-f]+\) (says the page's data is|points at|stores the page)/);
    } finally {
      t.close();
    }
  });

  it.each(decoders)('page descriptors that lie: each page fails alone, with its address (%s decoders)', (_, decoder) => {
    const pfn = 0x205; // procs
    const cases: [string, (b: Buffer, at: number) => void, RegExp][] = [
      ['offset', (b, at) => b.writeBigUInt64LE(0xffffffffn, at), /says the page's data is at file offset 0xffffffff \(\+\d+\), outside the page data/],
      ['size', (b, at) => b.writeUInt32LE(5000, at + 8), /says the page's data is 5000 bytes; a 4096-byte page is stored in 1 to 4096$/],
      ['flags', (b, at) => b.writeUInt32LE(0x3, at + 12), /has flags 0x3, naming two compressions$/],
      ['unknown-flags', (b, at) => b.writeUInt32LE(0x100, at + 12), /has flags 0x100, with unknown bits$/],
      ['lzo', (b, at) => b.writeUInt32LE(0x2, at + 12), /points at \d+ bytes that do not decompress: lzo: /],
      ['snappy', (b, at) => b.writeUInt32LE(0x4, at + 12), /points at \d+ bytes that do not decompress: snappy: /],
      ['zstd', (b, at) => b.writeUInt32LE(0x20, at + 12), /points at \d+ bytes that do not decompress: zstd: /],
      ['raw', (b, at) => b.writeUInt32LE(0, at + 12), /stores the page uncompressed in \d+ bytes; an uncompressed page is 4096$/],
      ['zlib', (b, at) => b.writeBigUInt64LE(b.readBigUInt64LE(at) + 7n, at), /points at \d+ bytes that do not decompress: zlib: /],
    ];
    for (const [name, edit, message] of cases) {
      const p = edited(`pd-${name}`, (b) => edit(b, descriptors() + rank(b, pfn) * 24));
      const t = open(p, decoder);
      try {
        const e = failure(() => t.readPhysical(0x205060n, 8));
        expect(e.code, name).toBe('corrupt');
        expect(e.message, name).toMatch(/page descriptor 485 \(physical 0x205000, at file offset 0x[0-9a-f]+\) /);
        expect(e.message, name).toMatch(message);
        expect(e.message, name).not.toContain('\n');
        expect(t.readPhysical(0x204040n, 16).equals(elf.readPhysical(0x204040n, 16)), name).toBe(true);
      } finally {
        t.close();
      }
    }
  });

  it('a dump cut short: pages whose descriptors or data are gone fail, the rest read', () => {
    const full = readFileSync(dumps['makedumpfile -c']!);
    const p = join(dir, 'bad-truncated');
    writeFileSync(p, full.subarray(0, descriptors() + 2000 * 24));
    const t = open(p);
    try {
      expect(t.warnings.join('\n')).toMatch(/bitmap 2 has 12320 dumped pages, whose descriptors need the file to reach 0x[0-9a-f]+, but it ends at 0x[0-9a-f]+: the dump is truncated/);
      expect(failure(() => t.readPhysical(0x1234560n, 8)).message).toMatch(/page descriptor \d+ \(physical 0x1234000, at file offset 0x[0-9a-f]+\) is past the end of the file \(0x[0-9a-f]+\): the dump is truncated$/);
      expect(failure(() => t.readPhysical(0x1000n, 8)).message).toMatch(/says the page's data is at file offset 0x[0-9a-f]+ \(\+\d+\), outside the page data/);
    } finally {
      t.close();
    }
  });

  it.each(decoders)('random damage to headers, bitmaps, descriptors and page data: DbgErrors only, one line each (%s decoders)', (_, decoder) => {
    const base = readFileSync(dumps['makedumpfile -l']!);
    const areas = [
      [0, 464],
      [4096, 4096 + 104],
      [BITMAP1, descriptors()],
      [descriptors(), descriptors() + 12320 * 24],
      [descriptors(), base.length],
    ] as const;
    const p = join(dir, 'bad-random');
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: areas.length - 1 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }),
        (area, flips) => {
          const b = Buffer.from(base);
          const [lo, hi] = areas[area]!;
          for (const [at, v] of flips) b[Math.min(hi - 1, lo + Math.floor(at * (hi - lo)))] = v;
          writeFileSync(p, b);
          let t: KernelDumpTarget | undefined;
          const tryIt = (f: () => unknown) => {
            try {
              f();
            } catch (e) {
              if (!(e instanceof DbgError)) throw e;
              if (e.message.includes('\n')) throw new Error(`a message of several lines: ${e.message}`);
            }
          };
          tryIt(() => (t = open(p, decoder)));
          if (!t) return;
          for (const a of [0x1000n, 0x205000n, 0x1234000n, 0xfd000000n, 0xfffff000n]) tryIt(() => t!.readPhysical(a, 4096));
          tryIt(() => t!.readVirtual(0xffffffffc0005060n, 64));
          tryIt(() => t!.status());
          t.close();
        },
      ),
      { numRuns: 150, seed: 13 },
    );
  });

  it('damaged compressed pages: both decoders fail with one line, or fill the page, never more', () => {
    /** The compressed bytes of some pages of a diskdump file, with their compression. */
    const samples = (path: string): [PageCompression, Buffer][] => {
      const b = readFileSync(path);
      const block = b.readInt32LE(428);
      const at = (1 + b.readInt32LE(432) + b.readUInt32LE(436)) * block;
      const kinds = new Map<number, PageCompression>([[1, 'zlib'], [2, 'lzo'], [4, 'snappy'], [0x20, 'zstd']]);
      const out: [PageCompression, Buffer][] = [];
      for (let d = at; out.length < 8 && d + 24 <= b.length; d += 24 * 97) {
        const kind = kinds.get(b.readUInt32LE(d + 12));
        const off = Number(b.readBigUInt64LE(d));
        if (kind) out.push([kind, Buffer.from(b.subarray(off, off + b.readUInt32LE(d + 8)))]);
      }
      return out;
    };
    const pages = ['makedumpfile -c', 'makedumpfile -l', 'snappy', 'zstd'].flatMap((n) => samples(dumps[n]!));
    expect(new Set(pages.map(([k]) => k))).toEqual(new Set(['zlib', 'lzo', 'snappy', 'zstd']));
    // A page with a guard on each side: a decoder that wrote past its 4096 bytes would change one.
    const arena = Buffer.alloc(3 * 4096);
    const out = arena.subarray(4096, 8192);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: pages.length - 1 }),
        fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 4 }),
        (i, flips, cut) => {
          const [kind, data] = pages[i]!;
          const b = Buffer.from(data.subarray(0, data.length - Math.min(cut * 7, data.length - 1)));
          for (const [at, v] of flips) b[Math.floor(at * b.length)] = v;
          arena.fill(0xa5);
          for (const [name, d] of decoders) {
            try {
              d.decode(kind, b, b.length, out);
            } catch (e) {
              if (!(e instanceof DecodeError)) throw e;
              expect(e.message, name).toMatch(new RegExp(`^${kind}: [^\\n]+$`));
            }
            expect(arena.subarray(0, 4096).every((x) => x === 0xa5) && arena.subarray(8192).every((x) => x === 0xa5), `${name} ${kind}: wrote outside the page`).toBe(true);
          }
        },
      ),
      { numRuns: 3000, seed: 13 },
    );
  });

  it('DBG_KDUMP_DECODER other than js or native: one dbg: line, exit 1', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', dumps['zstd']!, '-e', '::status'], { encoding: 'utf8', env: { ...process.env, DBG_KDUMP_DECODER: 'fast' } });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['dbg: DBG_KDUMP_DECODER=fast: expected js (the JavaScript decoders) or native (native/kdump)']);
    const ok = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', dumps['zstd']!, '-e', '0x205000,8::hexdump -p'], { encoding: 'utf8', env: { ...process.env, DBG_KDUMP_DECODER: 'js' } });
    expect(ok.status, ok.stderr).toBe(0);
  });

  it('the command line prints one dbg: line and exits 1', () => {
    const p = edited('cli', (b) => b.writeInt32LE(99, 8));
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', p, '-e', '::status'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([`dbg: ${p}: kdump header: header_version 99; dbg reads versions 1 to 6`]);
  });
});
