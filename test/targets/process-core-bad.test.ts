/**
 * Bad input to the process-core target: cores cut short, notes that lie, section headers past the
 * end, missing executables and libraries, addresses the core does not have. Each case starts from
 * a real gcore core and damages a copy of it; each asserts the error code and message.
 */

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { ElfFile, PT_LOAD, PT_NOTE, type ProgramHeader } from '../../src/symbols/elf-file.js';
import { NT_FILE, NT_PRSTATUS } from '../../src/targets/elfcore/core-notes.js';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { unwind } from '../../src/targets/unwind.js';
import type { Target } from '../../src/targets/target.js';
import { X86_64 } from '../../src/arch/x86-64.js';
import { SymbolSpace } from '../../src/symbols/symbol-space.js';
import { debuggee, kernelCoreUnavailable, skipReason, type Debuggee } from '../helpers/debuggee.js';

let d: Debuggee;
let tmp: string;
let phdrs: readonly ProgramHeader[];
let notes: { type: number; offset: number; descOffset: number }[];

beforeAll(async () => {
  d = await debuggee('threads', { kernelCore: true });
  tmp = mkdtempSync(join(tmpdir(), 'dbg-core-bad-'));
  const elf = ElfFile.open(d.core);
  phdrs = elf.programHeaders();
  notes = elf.notes().map((n) => ({ type: n.type, offset: n.offset, descOffset: n.offset + 12 + ((n.name.length + 1 + 3) & ~3) }));
  elf.close();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the gcore core, changed by `edit` (bytes in, bytes out). */
function damaged(name: string, edit: (b: Buffer) => Buffer | void): string {
  const p = join(tmp, name);
  const b = readFileSync(d.core);
  writeFileSync(p, edit(b) ?? b);
  return p;
}

function failure(f: () => unknown): DbgError {
  try {
    f();
  } catch (e) {
    if (e instanceof DbgError) return e;
    throw e;
  }
  throw new Error('expected a DbgError');
}

describe('process core: bad input', () => {
  it.skipIf(skipReason('the cut kernel-written core test', kernelCoreUnavailable()))('opens a core cut in the middle of PT_LOAD data, warns, and refuses reads past the cut', () => {
    // The kernel writes the notes first and memory after them (gcore the other way round), so a
    // kernel-written core cut short keeps its threads.
    if (!d.kernelCore) throw new Error(`this test needs a kernel-written core: ${d.kernelCoreProblem}`);
    const elf = ElfFile.open(d.kernelCore);
    const loads = elf.programHeaders().filter((p) => p.type === PT_LOAD && p.filesz >= 0x4000);
    elf.close();
    const victim = loads[loads.length - 1]!;
    const cut = victim.offset + victim.filesz / 2;
    const p = join(tmp, 'cut-load.core');
    copyFileSync(d.kernelCore, p);
    truncateSync(p, cut);
    const t = ProcessCoreTarget.open(p, { exe: d.exe });
    try {
      expect(t.warnings).toContainEqual(expect.stringMatching(/^core ".*cut-load\.core" is truncated: its PT_LOAD segments need 0x[0-9a-f]+ bytes but the file has 0x[0-9a-f]+; memory past the cut cannot be read$/));
      expect(t.threads().length).toBe(4);
      expect(t.readVirtual(victim.vaddr, 16).length).toBe(16); // before the cut
      const past = victim.vaddr + BigInt(victim.filesz) - 16n;
      const e = failure(() => t.readVirtual(past, 16));
      expect(e.code).toBe('corrupt');
      expect(e.message).toMatch(
        new RegExp(`^read of 16 bytes at 0x${past.toString(16).padStart(16, '0')} failed: core ".*cut-load\\.core" is truncated: PT_LOAD ${victim.index} \\(0x[0-9a-f]{16}-0x[0-9a-f]{16}\\) needs file bytes up to 0x[0-9a-f]+, but the file ends at 0x${cut.toString(16)}$`),
      );
    } finally {
      t.close();
    }
  });

  it('refuses a core cut in the middle of its notes, naming the note segment', () => {
    const note = phdrs.find((p) => p.type === PT_NOTE)!;
    const p = join(tmp, 'cut-notes.core');
    copyFileSync(d.core, p);
    truncateSync(p, note.offset + Math.floor(note.filesz / 2));
    const e = failure(() => ProcessCoreTarget.open(p));
    expect(e.code).toBe('corrupt');
    expect(e.message).toMatch(/cut-notes\.core: PT_NOTE segment \d+ \(0x[0-9a-f]+ bytes at offset 0x[0-9a-f]+\) runs past the end of the file \(size 0x[0-9a-f]+\); the file is truncated$/);
  });

  it('refuses a note whose descsz runs past its segment', () => {
    const first = notes.find((n) => n.type === NT_PRSTATUS)!;
    const p = damaged('lying-descsz.core', (b) => void b.writeUInt32LE(0x7fffff, first.offset + 4));
    const e = failure(() => ProcessCoreTarget.open(p));
    expect(e.code).toBe('corrupt');
    expect(e.message).toMatch(/lying-descsz\.core: note \d+ at offset 0x[0-9a-f]+ in PT_NOTE segment \d+ claims namesz 5 and descsz 8388607, which run past the end of its segment/);
  });

  it('refuses an NT_PRSTATUS too short for its registers', () => {
    const first = notes.find((n) => n.type === NT_PRSTATUS)!;
    // Shrink the descriptor and turn the bytes it gave up into a padding note nobody reads.
    const p = damaged('short-prstatus.core', (b) => {
      b.writeUInt32LE(64, first.offset + 4);
      const rest = first.descOffset + 64;
      b.writeUInt32LE(0, rest); // namesz
      b.writeUInt32LE(0x150 - 64 - 12, rest + 4); // descsz
      b.writeUInt32LE(0x7fff, rest + 8); // type
    });
    const e = failure(() => ProcessCoreTarget.open(p));
    expect(e.code).toBe('corrupt');
    expect(e.message).toMatch(/short-prstatus\.core: note \d+ \(type 0x1\) at offset 0x[0-9a-f]+: NT_PRSTATUS descriptor has 64 bytes; x86-64 needs at least 328 \(pr_reg of 27 registers at offset 112\)$/);
  });

  it('refuses an NT_FILE whose count lies', () => {
    const f = notes.find((n) => n.type === NT_FILE)!;
    const p = damaged('lying-ntfile.core', (b) => void b.writeBigUInt64LE(1n << 40n, f.descOffset));
    const e = failure(() => ProcessCoreTarget.open(p));
    expect(e.code).toBe('corrupt');
    expect(e.message).toMatch(/lying-ntfile\.core: note \d+ \(type 0x46494c45\) at offset 0x[0-9a-f]+: NT_FILE claims 1099511627776 mappings, whose table needs \d+ bytes, but the note has \d+$/);
  });

  it('opens a core whose section headers point past the end of the file, with a warning', () => {
    const p = damaged('bad-shoff.core', (b) => {
      b.writeBigUInt64LE(BigInt(b.length + 0x1000), 0x28); // e_shoff
      b.writeUInt16LE(64, 0x3a); // e_shentsize
      b.writeUInt16LE(3, 0x3c); // e_shnum
    });
    const t = ProcessCoreTarget.open(p, { exe: d.exe });
    try {
      expect(t.warnings).toEqual([expect.stringMatching(/^core ".*bad-shoff\.core": section header table \(3 entries at offset 0x[0-9a-f]+\) runs past the end of the file \(size 0x[0-9a-f]+\); ignored, a core does not need it$/)]);
      expect(unwind(t, 1).length).toBe(3);
    } finally {
      t.close();
    }
  });

  it('reads a kernel-style core with no section headers at all', () => {
    const p = damaged('no-shdrs.core', (b) => {
      b.writeBigUInt64LE(0n, 0x28);
      b.writeUInt16LE(0, 0x3c);
      b.writeUInt16LE(0, 0x3e);
    });
    const t = ProcessCoreTarget.open(p);
    try {
      expect(t.warnings).toEqual([]);
      expect(unwind(t, 4).map((f) => t.symbols.describe(f.pc - (f.level ? 1n : 0n))?.replace(/\+.*/, ''))).toContain('reader');
    } finally {
      t.close();
    }
  });

  it('warns about a missing library by name and keeps working', () => {
    // A sysroot holding the executable and ld.so but not libc.
    const root = join(tmp, 'sysroot-no-libc');
    const t0 = ProcessCoreTarget.open(d.core);
    const files = [...new Set(t0.fileMappings.map((f) => f.path))];
    t0.close();
    for (const f of files.filter((f) => !f.endsWith('/libc.so.6'))) {
      mkdirSync(join(root, dirname(f)), { recursive: true });
      symlinkSync(f, join(root, f));
    }
    const libc = files.find((f) => f.endsWith('/libc.so.6'))!;
    const t = ProcessCoreTarget.open(d.core, { sysroot: root });
    try {
      // Tried as the dynamic linker named it, then as NT_FILE did, both under the sysroot.
      const linkName = t.linkMap.entries.find((e) => e.name.endsWith('/libc.so.6'))!.name;
      expect(t.warnings).toEqual([
        expect.stringMatching(new RegExp(`^cannot read symbols of library "${linkName}" mapped at 0x[0-9a-f]{16}: tried "${root}${linkName}" \\(no such file\\), "${root}${libc}" \\(no such file\\)$`)),
      ]);
      expect(t.symbols.modules.map((m) => m.name)).toEqual(['threads', 'ld-linux-x86-64.so.2', '[vdso]']);
      expect(t.readVirtual(t.symbols.lookup('global_int'), 4).readInt32LE(0)).toBe(-123456);
      // libc's code is not in a gcore core, and its file is gone: say so.
      const rip = t.registers(4).get('rip')!;
      const e = failure(() => t.readVirtual(rip, 4));
      expect(e.code).toBe('unmapped');
      expect(e.message).toMatch(new RegExp(`^read of 4 bytes at 0x${rip.toString(16).padStart(16, '0')} failed: core ".*gcore\\.core" leaves out the file-backed page at 0x[0-9a-f]{16} and "${root}${libc}" cannot be read$`));
    } finally {
      t.close();
    }
  });

  it('warns about a missing executable and suggests --exe', () => {
    const t = ProcessCoreTarget.open(d.core, { exe: join(tmp, 'no-such-exe') });
    try {
      expect(t.warnings).toEqual([expect.stringMatching(/^cannot read symbols of the executable ".*no-such-exe" \(for .*\/threads\) mapped at 0x[0-9a-f]{16}: no such file$/)]);
      expect(t.threads().length).toBe(4);
      expect(t.symbols.modules.map((m) => m.name)).toContain('libc.so.6');
    } finally {
      t.close();
    }
  });

  it('warns when --exe is another build than the program the core was made of', async () => {
    const other = await debuggee('threads', { cflags: ['-O0', '-g0', '-fno-omit-frame-pointer', '-pthread', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables'] });
    const t = ProcessCoreTarget.open(d.core, { exe: other.exe });
    try {
      expect(t.warnings).toEqual([
        expect.stringMatching(/^the executable ".*\/threads" \(for .*\/threads\) does not match the core: its build-id is [0-9a-f]{40}, the core's copy has [0-9a-f]{40}; its symbols and code may be wrong$/),
      ]);
    } finally {
      t.close();
    }
  });

  it('reads anonymous memory past p_filesz as zeros', () => {
    // The heap: anonymous, read-write, larger than two pages. Halve its p_filesz in a copy.
    const t0 = ProcessCoreTarget.open(d.core, { exe: d.exe });
    const head = t0.readVirtual(t0.symbols.lookup('list_head'), 8).readBigUInt64LE(0);
    t0.close();
    const heap = phdrs.find((p) => p.type === PT_LOAD && p.vaddr <= head && head < p.vaddr + p.memsz)!;
    const half = (heap.filesz / 2) & ~0xfff;
    const p = damaged('short-filesz.core', (b) => void b.writeBigUInt64LE(BigInt(half), 64 + heap.index * 56 + 32));
    const t = ProcessCoreTarget.open(p, { exe: d.exe });
    try {
      const past = heap.vaddr + BigInt(half);
      expect(t.readVirtual(past, 64)).toEqual(Buffer.alloc(64));
      expect(t.readVirtual(heap.vaddr + heap.memsz - 16n, 16)).toEqual(Buffer.alloc(16));
      // Across the boundary: file bytes, then zeros.
      const across = t.readVirtual(past - 8n, 16);
      expect(across.subarray(0, 8)).toEqual(readFileSync(d.core).subarray(heap.offset + half - 8, heap.offset + half));
      expect(across.subarray(8)).toEqual(Buffer.alloc(8));
      expect(t.mappings().find((m) => m.start === heap.vaddr)).toMatchObject({ perms: 'rw-', name: '', present: true });
    } finally {
      t.close();
    }
  });

  it('refuses reads of addresses the core does not have, naming the nearest mapping', () => {
    const t = ProcessCoreTarget.open(d.core);
    try {
      const e = failure(() => t.readVirtual(0x10n, 16));
      expect(e.code).toBe('unmapped');
      const first = t.mappings()[0]!;
      expect(e.message).toBe(`read of 16 bytes at 0x0000000000000010 failed: not mapped in core "${d.core}" (nearest 0x${first.start.toString(16)}-0x${(first.end - 1n).toString(16)})`);
      // A read that starts mapped and runs off the end names the first missing byte.
      const last = t.mappings().at(-1)!;
      const e2 = failure(() => t.readVirtual(last.end - 8n, 16));
      expect(e2.message).toMatch(/^read of 16 bytes at 0x[0-9a-f]{16} failed: 0x[0-9a-f]{16} is not mapped in core /);
    } finally {
      t.close();
    }
  });

  it('refuses an unknown thread, a non-ELF file and an ELF that is not a core', () => {
    const t = ProcessCoreTarget.open(d.core);
    try {
      const e = failure(() => t.registers(9));
      expect(e.code).toBe('bad-input');
      expect(e.message).toBe(`no thread 9 in core "${d.core}": threads are numbered 1 to 4`);
    } finally {
      t.close();
    }
    const text = join(tmp, 'notes.txt');
    writeFileSync(text, 'not a core\n');
    const e1 = failure(() => ProcessCoreTarget.open(text));
    expect(e1.code).toBe('bad-input');
    expect(e1.message).toBe(`${text}: not an ELF file (no \\x7fELF magic at offset 0)`);
    const e2 = failure(() => ProcessCoreTarget.open(d.exe));
    expect(e2.code).toBe('bad-input');
    expect(e2.message).toBe(`${d.exe}: not a core file (ELF type 3, expected ET_CORE = 4)`);
    const e3 = failure(() => ProcessCoreTarget.open(join(tmp, 'absent.core')));
    expect(e3.code).toBe('not-found');
  });
});

describe('process core: random damage', () => {
  it('never fails with anything but a DbgError, whatever bytes of the headers and notes are changed', () => {
    const note = phdrs.find((p) => p.type === PT_NOTE)!;
    const original = readFileSync(d.core);
    // Only the parts a reader parses: ELF header, program headers, notes (not the 20 MB of memory).
    const regions: [number, number][] = [
      [0, 64 + phdrs.length * 56],
      [note.offset, note.filesz],
    ];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const p = join(tmp, 'fuzz.core');
    const others: string[] = [];
    for (let round = 0; round < Number(process.env.DBG_FUZZ_ROUNDS ?? 40); round++) {
      const b = Buffer.from(original);
      for (let k = 0; k < 1 + rand(8); k++) {
        const [start, len] = regions[rand(regions.length)]!;
        b[start + rand(len)] = rand(256);
      }
      writeFileSync(p, b);
      try {
        const t = ProcessCoreTarget.open(p, { exe: d.exe });
        try {
          for (const th of t.threads()) {
            t.registers(th.index);
            for (const f of unwind(t, th.index, { maxFrames: 64 })) t.symbols.describe(f.pc);
          }
          t.mappings();
          t.status();
          for (const m of t.mappings().slice(0, 8)) {
            try {
              t.readVirtual(m.start, 64);
            } catch (e) {
              if (!(e instanceof DbgError)) throw e;
            }
          }
        } finally {
          t.close();
        }
      } catch (e) {
        if (!(e instanceof DbgError)) others.push(`round ${round}: ${e instanceof Error ? e.stack : String(e)}`);
      }
    }
    expect(others).toEqual([]);
  });
});

describe('unwinder on stacks that lie', () => {
  /**
   * A target with no modules (so no CFI): registers as given, memory from one buffer at `base`,
   * and readable (zero) code at 0x400000-0x4fffff.
   */
  function fakeTarget(regs: Record<string, bigint>, base: bigint, mem: Buffer): Target {
    return {
      name: 'fake target',
      kind: 'test',
      arch: X86_64,
      caps: {},
      symbols: new SymbolSpace(),
      readVirtual(addr: bigint, length: number): Buffer {
        if (addr >= 0x40_0000n && addr + BigInt(length) <= 0x50_0000n) return Buffer.alloc(length);
        const off = Number(addr - base);
        if (addr < base || off + length > mem.length) throw new DbgError('unmapped', `read of ${length} bytes at 0x${addr.toString(16)} failed`);
        return mem.subarray(off, off + length);
      },
      mappings: () => [],
      threads: () => [{ index: 1, tid: 1, name: 'LWP 1', state: 'stopped' }],
      registers: () => new Map(Object.entries(regs)),
      status: () => ({ reason: { kind: 'none' }, thread: 1, pc: regs.rip! }),
      close() {},
    };
  }
  const base = 0x7000_0000n;
  const stack = (words: bigint[]) => {
    const b = Buffer.alloc(words.length * 8);
    words.forEach((w, i) => b.writeBigUInt64LE(w, i * 8));
    return b;
  };

  it('stops at a frame-pointer chain that loops', () => {
    // [base] = saved rbp pointing back at itself, [base + 8] = a return address.
    const t = fakeTarget({ rip: 0x40_1000n, rsp: base, rbp: base }, base, stack([base, 0x40_2000n]));
    const frames = unwind(t, 1);
    expect(frames.map((f) => [f.pc, f.how])).toEqual([
      [0x40_1000n, 'registers'],
      [0x40_2000n, 'frame-pointer'],
    ]);
  });

  it('stops at maxFrames on a long chain, and at an unreadable frame', () => {
    const words: bigint[] = [];
    for (let i = 0; i < 400; i++) words.push(base + BigInt((i + 1) * 16), 0x40_0000n + BigInt(i));
    const t = fakeTarget({ rip: 0x40_1000n, rsp: base, rbp: base }, base, stack(words));
    expect(unwind(t, 1, { maxFrames: 10 }).length).toBe(10);
    // The chain runs off the end of readable memory after 400 frames; the default limit is 256.
    expect(unwind(t, 1).length).toBe(256);
    const short = fakeTarget({ rip: 0x40_1000n, rsp: base, rbp: base }, base, stack(words.slice(0, 20)));
    expect(unwind(short, 1).length).toBe(11); // frame 0 + 10 callers; the 11th saved rbp is unreadable
  });

  it('takes the caller of a call through a NULL pointer from the top of the stack', () => {
    const t = fakeTarget({ rip: 0n, rsp: base, rbp: base + 0x100n }, base, stack([0x40_3000n]));
    const frames = unwind(t, 1);
    expect(frames.slice(0, 2).map((f) => [f.pc, f.sp, f.how])).toEqual([
      [0n, base, 'registers'],
      [0x40_3000n, base + 8n, 'return-address'],
    ]);
  });
});
