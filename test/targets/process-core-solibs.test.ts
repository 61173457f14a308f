/**
 * Libraries of a process core found as gdb finds them, compared with gdb.
 *
 * test/fixtures-src/frames.c (blocked in pause(), inside libc) is built by gcc at -O0 and at -O2
 * without frame pointers (so the stack through pause() needs libc's CFI) and dumped by gcore.
 * Each test lays out a directory from the host's own copies of the libraries:
 *
 *   sysroot           ROOT + the dynamic linker's name (lib/x86_64-linux-gnu/libc.so.6,
 *                     lib64/ld-linux-x86-64.so.2), not the NT_FILE path (usr/lib/...)
 *   solib-search-path one flat directory of base names, and an empty sysroot
 *
 * and asks `gdb -batch -ex 'set sysroot ROOT' -ex bt prog core` and dbg the same question.
 * Then the bad input: a sysroot that is not there, libraries that are not ELF files, and link
 * maps damaged in a copy of the core (a loop, pointers into nothing, a lying r_version).
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { ElfFile, PT_LOAD } from '../../src/symbols/elf-file.js';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { unwind } from '../../src/targets/unwind.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { tempDir } from '../mdb/helpers.js';

const builds = {
  O0: ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread'],
  O2: ['-O2', '-g', '-fomit-frame-pointer', '-pthread'],
} as const;

let tmp: ReturnType<typeof tempDir>;
const dbgs = new Map<string, Debuggee>();
beforeAll(async () => {
  tmp = tempDir('dbg-solibs-');
  for (const [k, flags] of Object.entries(builds)) dbgs.set(k, await debuggee('frames', { cflags: flags }));
});
afterAll(() => tmp?.cleanup());

/** The libraries' link-map names (the executable and the vDSO left out) of `core`. */
function libraryNames(core: string): string[] {
  const t = ProcessCoreTarget.open(core);
  try {
    return t.linkMap.entries.slice(1).map((e) => e.name).filter((n) => n.startsWith('/'));
  } finally {
    t.close();
  }
}

/** A sysroot as gdb needs it: a copy of each host library at ROOT + the dynamic linker's name. */
function gdbSysroot(name: string, core: string): string {
  const root = join(tmp.dir, name);
  for (const lib of libraryNames(core)) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(realpathSync(lib), join(root, lib));
  }
  return root;
}

interface BtFrame {
  pc: bigint;
  /** The function gdb names at this pc: the outermost of its inline frames. */
  name: string;
}

/** gdb's `bt`, one entry per real frame (inline frames folded into the frame that holds them). */
function gdbBt(text: string): BtFrame[] {
  const out: BtFrame[] = [];
  // After the marker: gdb prints frame 0 once already when it loads the core.
  const at = text.indexOf('@@bt\n');
  if (at < 0) throw new Error(`no backtrace in gdb's output: ${text}`);
  for (const line of text.slice(at).split('\n')) {
    const withPc = /^#\d+\s+(0x[0-9a-f]+) in (\S+) \(/.exec(line);
    const inlined = /^#\d+\s+([A-Za-z_]\w*) \(/.exec(line);
    if (withPc) out.push({ pc: BigInt(withPc[1]!), name: withPc[2]! });
    else if (inlined && out.length > 0) out[out.length - 1]!.name = inlined[1]!;
    else if (/^#0\s/.test(line)) throw new Error(`unexpected frame line: ${line}`);
  }
  return out;
}

/** dbg's backtrace of thread 1: pcs and the names of the symbols that hold them. */
function ourBt(t: ProcessCoreTarget): BtFrame[] {
  return unwind(t, 1).map((f) => ({
    pc: f.pc,
    name: (t.symbols.describe(f.pc - (f.level > 0 ? 1n : 0n)) ?? '??').replace(/^.*`/, '').replace(/\+0x[0-9a-f]+$/, ''),
  }));
}

/** The first frames, down to main (gdb stops there; dbg goes on into libc's start code). */
function toMain(frames: BtFrame[]): BtFrame[] {
  const i = frames.findIndex((f) => f.name === 'main');
  return i < 0 ? frames : frames.slice(0, i + 1);
}

describe.each(Object.keys(builds))('frames.c at -%s: libraries as gdb finds them', (level) => {
  let d: Debuggee;
  beforeAll(() => {
    d = dbgs.get(level)!;
  });

  it('a sysroot laid out by the dynamic linker\'s names: the same libraries and backtrace as gdb', () => {
    const root = gdbSysroot(`sysroot-${level}`, d.core);
    const t = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: root });
    try {
      expect(t.warnings).toEqual([]);
      const libc = t.symbols.modules.find((m) => m.name === 'libc.so.6')!;
      expect(libc.path).toBe(join(root, 'lib/x86_64-linux-gnu/libc.so.6'));
      // The kernel's name for the same file is not in this sysroot: only the link map finds it.
      const ntFile = t.fileMappings.find((f) => f.path.endsWith('/libc.so.6'))!.path;
      expect(ntFile).not.toBe('/lib/x86_64-linux-gnu/libc.so.6');
      expect(existsSync(root + ntFile)).toBe(false);

      const gdbText = gdbBatch(d.exe, d.core, ['info sharedlibrary', 'echo @@bt\\n', 'bt'], [`set sysroot ${root}`]);
      expect(gdbText).toContain(`${root}/lib/x86_64-linux-gnu/libc.so.6`);
      const gdb = gdbBt(gdbText);
      expect(gdb.map((f) => f.name)).toEqual(['pause', 'wait_here', 'compute', 'main']);
      expect(toMain(ourBt(t))).toEqual(gdb);
    } finally {
      t.close();
    }
  });

  it('--solib-search-path: libraries by base name, as gdb\'s solib-search-path', () => {
    const flat = join(tmp.dir, `flat-${level}`);
    const empty = join(tmp.dir, `empty-${level}`);
    mkdirSync(flat, { recursive: true });
    mkdirSync(empty, { recursive: true });
    for (const lib of libraryNames(d.core)) copyFileSync(realpathSync(lib), join(flat, lib.slice(lib.lastIndexOf('/') + 1)));
    const t = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: empty, solibSearchPath: [join(tmp.dir, 'no-libs-here-' + level), flat].filter(existsSync) });
    try {
      expect(t.warnings).toEqual([]);
      expect(t.symbols.modules.find((m) => m.name === 'libc.so.6')!.path).toBe(join(flat, 'libc.so.6'));
      const gdbText = gdbBatch(d.exe, d.core, ['info sharedlibrary', 'echo @@bt\\n', 'bt'], [`set sysroot ${empty}`, `set solib-search-path ${flat}`]);
      expect(gdbText).toContain(`${flat}/libc.so.6`);
      expect(toMain(ourBt(t))).toEqual(gdbBt(gdbText));
    } finally {
      t.close();
    }
  });
});

describe('dbg open --sysroot, --solib-search-path', () => {
  const dbg = join(repoRoot, 'bin', 'dbg');
  const open = (args: string[]) => spawnSync(process.execPath, [dbg, 'open', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });

  it('prints the stack through pause() as gdb does, with no warning', () => {
    const d = dbgs.get('O2')!;
    const root = gdbSysroot('sysroot-cli', d.core);
    const r = open([d.core, '--exe', d.exe, '--sysroot', root, '-e', '::stack']);
    expect(r.stderr).toBe('');
    const gdb = gdbBt(gdbBatch(d.exe, d.core, ['echo @@bt\\n', 'bt'], [`set sysroot ${root}`]));
    const lines = r.stdout.trim().split('\n').slice(0, gdb.length);
    expect(lines.map((l) => BigInt(l.split(' ')[0]!))).toEqual(gdb.map((f) => f.pc));
    expect(lines[0]).toMatch(/^0x[0-9a-f]{16} libc\.so\.6`pause\+0x[0-9a-f]+$/);
    expect(lines.slice(1).map((l) => l.split(' ')[1]!.replace(/\+.*/, ''))).toEqual(gdb.slice(1).map((f) => f.name));
  });

  it('refuses a sysroot or search directory that is not there, in one line', () => {
    const d = dbgs.get('O0')!;
    const missing = join(tmp.dir, 'no-such-root');
    const a = open([d.core, '--sysroot', missing, '-e', '::stack']);
    expect([a.status, a.stderr]).toEqual([1, `dbg: --sysroot "${missing}": no such directory\n`]);
    const b = open([d.core, '--sysroot', d.exe, '-e', '::stack']);
    expect([b.status, b.stderr]).toEqual([1, `dbg: --sysroot "${d.exe}": not a directory\n`]);
    const c = open([d.core, '--solib-search-path', `${tmp.dir}:${missing}`, '-e', '::stack']);
    expect([c.status, c.stderr]).toEqual([1, `dbg: --solib-search-path "${missing}": no such directory\n`]);
    const raw = join(tmp.dir, 'raw.bin');
    writeFileSync(raw, 'raw bytes');
    const e = open([raw, '--solib-search-path', tmp.dir, '-e', '::status']);
    expect([e.status, e.stderr]).toEqual([1, `dbg: --solib-search-path does not apply to "${raw}", which is not an ELF file and opens as a raw file\n`]);
  });
});

describe('libraries that are not what the core needs', () => {
  it('skips a library that is not an ELF file, a directory, a FIFO or a device, and says what it tried', () => {
    const d = dbgs.get('O0')!;
    const root = join(tmp.dir, 'sysroot-not-elf');
    mkdirSync(join(root, 'lib/x86_64-linux-gnu'), { recursive: true });
    writeFileSync(join(root, 'lib/x86_64-linux-gnu/libc.so.6'), 'INPUT(libc.so.6)\n');
    mkdirSync(join(root, 'lib64/ld-linux-x86-64.so.2'), { recursive: true });
    // A search directory whose files are a FIFO (opening it must not wait for a writer) and a device.
    const odd = join(tmp.dir, 'search-not-regular');
    mkdirSync(odd, { recursive: true });
    execFileSync('mkfifo', [join(odd, 'libc.so.6')]);
    symlinkSync('/dev/null', join(odd, 'ld-linux-x86-64.so.2'));
    const t = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: root, solibSearchPath: [odd] });
    try {
      const at = '0x[0-9a-f]{16}';
      expect(t.warnings).toEqual([
        expect.stringMatching(new RegExp(`^cannot read symbols of library "/lib/x86_64-linux-gnu/libc\\.so\\.6" mapped at ${at}: tried "${root}/lib/x86_64-linux-gnu/libc\\.so\\.6" \\(not an ELF file \\(no \\\\x7fELF magic at offset 0\\)\\), "${root}/usr/lib/x86_64-linux-gnu/libc\\.so\\.6" \\(no such file\\), "${odd}/libc\\.so\\.6" \\(it is a FIFO, not a regular file\\)$`)),
        expect.stringMatching(new RegExp(`^cannot read symbols of library "/lib64/ld-linux-x86-64\\.so\\.2" mapped at ${at}: tried "${root}/lib64/ld-linux-x86-64\\.so\\.2" \\(it is a directory\\), "${root}/usr/lib/x86_64-linux-gnu/ld-linux-x86-64\\.so\\.2" \\(no such file\\), "${odd}/ld-linux-x86-64\\.so\\.2" \\(it is a device, not a regular file\\)$`)),
      ]);
      expect(t.symbols.modules.map((m) => m.name)).toEqual(['frames', '[vdso]']);
      expect(unwind(t, 1).length).toBeGreaterThan(1);
    } finally {
      t.close();
    }
    // The same sysroot with a search directory that has the real libraries: they are used, silently.
    const flat = join(tmp.dir, 'flat-after-not-elf');
    mkdirSync(flat, { recursive: true });
    for (const lib of libraryNames(d.core)) copyFileSync(realpathSync(lib), join(flat, lib.slice(lib.lastIndexOf('/') + 1)));
    const t2 = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: root, solibSearchPath: [flat] });
    try {
      expect(t2.warnings).toEqual([]);
      expect(t2.symbols.modules.map((m) => m.path)).toContain(join(flat, 'libc.so.6'));
    } finally {
      t2.close();
    }
  });

  it('prefers the candidate whose build-id matches the core over an earlier one that does not', () => {
    const d = dbgs.get('O0')!;
    const root = join(tmp.dir, 'sysroot-wrong-libc');
    mkdirSync(join(root, 'lib/x86_64-linux-gnu'), { recursive: true });
    // Another ELF shared object with a build-id under libc's name: ld.so.
    copyFileSync(realpathSync('/lib64/ld-linux-x86-64.so.2'), join(root, 'lib/x86_64-linux-gnu/libc.so.6'));
    const flat = join(tmp.dir, 'flat-right-libc');
    mkdirSync(flat, { recursive: true });
    copyFileSync(realpathSync('/lib/x86_64-linux-gnu/libc.so.6'), join(flat, 'libc.so.6'));
    const t = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: root, solibSearchPath: [flat] });
    try {
      expect(t.warnings).toEqual([expect.stringMatching(/^cannot read symbols of library "\/lib64\/ld-linux-x86-64\.so\.2" /)]);
      expect(t.symbols.modules.find((m) => m.name === 'libc.so.6')!.path).toBe(join(flat, 'libc.so.6'));
    } finally {
      t.close();
    }
    // Only the wrong one: used, with the mismatch said.
    const t2 = ProcessCoreTarget.open(d.core, { exe: d.exe, sysroot: root });
    try {
      expect(t2.warnings.filter((w) => !w.includes('ld-linux'))).toEqual([
        expect.stringMatching(new RegExp(`^library "${root}/lib/x86_64-linux-gnu/libc\\.so\\.6" \\(for /lib/x86_64-linux-gnu/libc\\.so\\.6\\) does not match the core: its build-id is [0-9a-f]{40}, the core's copy has [0-9a-f]{40}; its symbols and code may be wrong$`)),
      ]);
    } finally {
      t2.close();
    }
  });
});

describe('damaged link maps', () => {
  let d: Debuggee;
  let entries: ProcessCoreTarget['linkMap']['entries'];
  let rDebug: bigint;
  let loads: { vaddr: bigint; offset: number; filesz: number }[];
  beforeAll(() => {
    d = dbgs.get('O0')!;
    const t = ProcessCoreTarget.open(d.core);
    entries = t.linkMap.entries;
    rDebug = t.linkMap.rDebug!;
    t.close();
    const elf = ElfFile.open(d.core);
    loads = elf.programHeaders().filter((p) => p.type === PT_LOAD).map((p) => ({ vaddr: p.vaddr, offset: p.offset, filesz: p.filesz }));
    elf.close();
  });

  /** File offset in the core of virtual address `addr`. */
  function offsetOf(addr: bigint): number {
    const p = loads.find((l) => addr >= l.vaddr && addr < l.vaddr + BigInt(l.filesz))!;
    return p.offset + Number(addr - p.vaddr);
  }

  /** A copy of the core with the 8-byte words at `writes` replaced. */
  function damaged(name: string, writes: [addr: bigint, value: bigint][]): string {
    const b = readFileSync(d.core);
    for (const [addr, value] of writes) b.writeBigUInt64LE(value, offsetOf(addr));
    const p = join(tmp.dir, name);
    writeFileSync(p, b);
    return p;
  }

  const hexA = (a: bigint) => `0x${a.toString(16).padStart(16, '0')}`;
  const where = () => `the dynamic linker's list of libraries \\(r_debug at ${hexA(rDebug)}\\)`;

  it('reads the list of the undamaged core: the executable, the vDSO, libc, ld.so', () => {
    expect(entries.map((e) => e.name)).toEqual(['', 'linux-vdso.so.1', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it('a list that loops: read up to the loop, one warning, libraries still found', () => {
    // libc's l_next points back at the vDSO's entry.
    const p = damaged('loop.core', [[entries[2]!.at + 24n, entries[1]!.at]]);
    const t = ProcessCoreTarget.open(p, { exe: d.exe });
    try {
      expect(t.warnings).toEqual([expect.stringMatching(new RegExp(`^${where()} loops: link_map 2's l_next points back to link_map 1 at ${hexA(entries[1]!.at)}; the list is read up to there$`))]);
      expect(t.linkMap.entries.length).toBe(3);
      expect(t.symbols.modules.map((m) => m.name)).toEqual(['frames', 'libc.so.6', 'ld-linux-x86-64.so.2', '[vdso]']);
    } finally {
      t.close();
    }
  });

  it('pointers into nothing: l_next, l_name, r_map', () => {
    const cases: [string, [bigint, bigint][], RegExp][] = [
      ['next.core', [[entries[2]!.at + 24n, 0xdead0000n]], new RegExp(`^${where()}: link_map 3 at 0x00000000dead0000 cannot be read: 0x00000000dead0000 is not in core ".*next\\.core"; the list is read up to there$`)],
      ['name.core', [[entries[3]!.at + 8n, 0x10n]], new RegExp(`^${where()}: link_map 3 at ${hexA(entries[3]!.at)} cannot be read: 0x0000000000000010 is not in core ".*name\\.core"; the list is read up to there$`)],
      ['prev.core', [[entries[3]!.at + 32n, 0x1234n]], new RegExp(`^${where()}: link_map 3 at ${hexA(entries[3]!.at)} has l_prev 0x0000000000001234, not ${hexA(entries[2]!.at)}; the list is read up to there$`)],
      ['rmap.core', [[rDebug + 8n, 0xffff_ffff_ffff_0000n]], new RegExp(`^${where()}: link_map 0 at 0xffffffffffff0000 cannot be read: 0xffffffffffff0000 is not in core ".*rmap\\.core"; the list is read up to there$`)],
      ['version.core', [[rDebug, 0x7777n]], new RegExp(`^${where()} has r_version 30583, not 1 or 2: not a struct r_debug; libraries are named by NT_FILE only$`)],
    ];
    for (const [name, writes, warning] of cases) {
      const t = ProcessCoreTarget.open(damaged(name, writes), { exe: d.exe });
      try {
        expect([name, t.warnings]).toEqual([name, [expect.stringMatching(warning)]]);
        // NT_FILE still names every library.
        expect(t.symbols.modules.map((m) => m.name)).toEqual(['frames', 'libc.so.6', 'ld-linux-x86-64.so.2', '[vdso]']);
        expect(unwind(t, 1).length).toBeGreaterThan(3);
      } finally {
        t.close();
      }
    }
  });

  it('never fails with anything but a DbgError, whatever bytes of the list are changed', () => {
    const original = readFileSync(d.core);
    const words: number[] = [offsetOf(rDebug), offsetOf(rDebug + 8n)];
    for (const e of entries) for (let k = 0n; k < 40n; k += 8n) words.push(offsetOf(e.at + k));
    let seed = 4242;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const p = join(tmp.dir, 'fuzz-linkmap.core');
    const others: string[] = [];
    for (let round = 0; round < 40; round++) {
      const b = Buffer.from(original);
      for (let k = 0; k < 1 + rand(4); k++) {
        const at = words[rand(words.length)]!;
        // A byte, a near pointer (another entry), or garbage.
        const how = rand(3);
        if (how === 0) b[at + rand(8)] = rand(256);
        else if (how === 1) b.writeBigUInt64LE(entries[rand(entries.length)]!.at + BigInt(rand(64)), at);
        else b.writeBigUInt64LE(BigInt(rand(0x7fffffff)) << BigInt(rand(33)), at);
      }
      writeFileSync(p, b);
      try {
        const t = ProcessCoreTarget.open(p, { exe: d.exe });
        try {
          unwind(t, 1).forEach((f) => t.symbols.describe(f.pc));
          for (const w of t.warnings) expect(w).not.toContain('\n');
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
