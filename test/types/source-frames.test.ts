/**
 * Source lines, inline frames, arguments and locals from DWARF against gdb 13 as the oracle:
 * test/fixtures-src/frames.c built at -O0 and -O2 and dumped by gcore, and the sample kernel.
 *
 *   ::stack -s / -v   against `bt` / `bt full` (function, file:line, inlined calls, values)
 *   addr::line        against `info line *ADDR` over every few bytes of the program's functions
 *   ::line FILE:LINE  against `break FILE:LINE` (the address and the line gdb reports)
 *   ::bp FILE:LINE    on the emulated sample kernel: it stops where gdb puts the breakpoint
 */

import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { openTarget } from '../../src/targets/open-target.js';
import { debuggee, fixturesSrc, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { failure, run, runJson, sessionOn, tempDir } from '../mdb/helpers.js';

const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const opt = {
  O0: ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread'],
  O2: ['-O2', '-g', '-fno-omit-frame-pointer', '-pthread'],
  // DWARF 4: .debug_loc, .debug_ranges, a version 4 line table; DWARF 2: a version 2 line table
  'O2 -gdwarf-4': ['-O2', '-gdwarf-4', '-fno-omit-frame-pointer', '-pthread'],
  'O0 -gdwarf-2': ['-O0', '-gdwarf-2', '-fno-omit-frame-pointer', '-pthread'],
} as const;

interface GdbFrame {
  readonly func: string;
  readonly file?: string;
  readonly line?: number;
  readonly args: [string, string][];
  readonly locals: [string, string][];
}

/** Splits `a=1, b={x = 1, y = 2}, c=0x1 "s, t"` at its top-level commas. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote = false;
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') {
        cur += c + text[++i];
        continue;
      }
      if (c === '"') quote = false;
    } else if (c === '"') quote = true;
    else if (c === '{' || c === '(' || c === '<') depth++;
    else if (c === '}' || c === ')' || c === '>') depth--;
    else if (c === ',' && depth === 0 && text[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

/** gdb's `bt full`, parsed. */
function parseBt(text: string): GdbFrame[] {
  const frames: GdbFrame[] = [];
  for (const l of text.split('\n')) {
    const m = /^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \((.*)\)(?: at (.+):(\d+)| from .+)?$/.exec(l);
    if (m) {
      const args = m[2] ? splitTop(m[2]).map((a) => a.split(/=(.*)/s).slice(0, 2) as [string, string]) : [];
      frames.push({ func: m[1]!, ...(m[3] ? { file: m[3], line: Number(m[4]) } : {}), args, locals: [] });
      continue;
    }
    const v = /^ {8}(\w+) = (.*)$/.exec(l);
    if (v && frames.length) frames[frames.length - 1]!.locals.push([v[1]!, v[2]!]);
  }
  return frames;
}

interface OurRow {
  function: string;
  inlined: boolean;
  file: string | null;
  line: number | null;
  pc: string;
  args?: { name: string; text: string }[];
  locals?: { name: string; text: string }[];
}

/**
 * Whether our value is gdb's: the same text, entry values included (`x=x@entry=5` when the
 * parameter still holds what the caller's call site passed, `x=7, x@entry=5` when not). `...`
 * (a struct gdb's bt leaves out) matches anything.
 */
function sameValue(gdbText: string, ours: string): boolean {
  return gdbText === '...' || ours === gdbText;
}

const dbgs = new Map<string, Debuggee>();
let tmp: ReturnType<typeof tempDir>;

beforeAll(async () => {
  tmp = tempDir('dbg-lines-');
  for (const [k, flags] of Object.entries(opt)) dbgs.set(k, await debuggee('frames', { cflags: flags }));
});
afterAll(() => tmp?.cleanup());

describe.each(['O0', 'O2', 'O2 -gdwarf-4', 'O0 -gdwarf-2'] as const)('frames.c at -%s against gdb', (level) => {
  let d: Debuggee;
  let s: Session;
  beforeAll(() => {
    d = dbgs.get(level)!;
    s = sessionOn(openTarget(d.core, {}));
  });
  afterAll(() => s?.target.close());

  it('::stack -v names the frames bt full names, inlined calls included, at the same file:line, with the same arguments and locals', async () => {
    const gdb = parseBt(gdbBatch(d.exe, d.core, ['echo @@bt\\n', 'bt full']).split('@@bt\n')[1]!);
    const ours = ((await runJson(s, '::stack -v'))[0] as { frames: OurRow[] }[])[0]!.frames;
    expect(ours.map((r) => r.function.replace(/\+0x[0-9a-f]+$/, '').replace(/^.*`/, ''))).toEqual(gdb.map((g) => g.func));
    expect(ours.filter((r) => r.inlined).map((r) => r.function)).toEqual(['inner']);
    let compared = 0;
    gdb.forEach((g, i) => {
      const r = ours[i]!;
      if (g.file === undefined) return;
      expect([r.file, r.line]).toEqual([g.file, g.line]);
      const args = g.args;
      expect(r.args!.map((a) => a.name)).toEqual(args.map(([n]) => n));
      args.forEach(([n, v], k) => expect(sameValue(v, r.args![k]!.text), `${g.func} arg ${n}: gdb ${v}, dbg ${r.args![k]!.text}`).toBe(true));
      expect(r.locals!.map((a) => a.name)).toEqual(g.locals.map(([n]) => n));
      g.locals.forEach(([n, v], k) => expect(sameValue(v, r.locals![k]!.text), `${g.func} local ${n}: gdb ${v}, dbg ${r.locals![k]!.text}`).toBe(true));
      compared += args.length + g.locals.length;
    });
    expect(compared).toBeGreaterThan(8);
    if (level.startsWith('O2')) {
      // found through DW_OP_entry_value and the caller's DW_TAG_call_site
      expect(ours.find((r) => r.function.startsWith('wait_here'))!.args!.find((a) => a.name === 'why')!.text).toMatch(/^why@entry=0x[0-9a-f]+ "inner"$/);
      expect(ours.find((r) => r.function.startsWith('compute'))!.args!.find((a) => a.name === 'b')!.text).toBe('b@entry=40');
    }
  });

  it('::stack -s prints file:line and the inlined call as its own frame', async () => {
    const lines = await run(s, '::stack -s');
    const src = join(fixturesSrc, 'frames.c');
    expect(lines.some((l) => l.includes(` inner at ${src}:27 (inlined into compute+0x`))).toBe(true);
    expect(lines.find((l) => / compute\+0x[0-9a-f]+ at /.test(l))).toContain(`at ${src}:36`);
    expect(lines.find((l) => / main\+0x[0-9a-f]+ at /.test(l))).toContain(`at ${src}:43`);
    expect(lines[0]).toMatch(/libc\.so\.6`pause\+0x[0-9a-f]+$/);
  });

  it('addr::line agrees with info line *ADDR over the program\'s functions', async () => {
    const exe = sessionOn(openTarget(d.exe, {}));
    try {
      const addrs: bigint[] = [];
      for (const f of ['wait_here', 'compute', 'main']) {
        const sym = exe.target.symbols.find(f)!;
        for (let o = 0n; o < sym.size; o += 3n) addrs.push(sym.addr + o);
      }
      const out = gdbBatch(d.exe, '', addrs.map((a) => `info line *0x${a.toString(16)}`));
      const gdbLines = out.split('\n').filter((l) => l.startsWith('Line ') || l.startsWith('No line'));
      expect(gdbLines.length).toBe(addrs.length);
      for (let i = 0; i < addrs.length; i++) {
        const g = /^Line (\d+) of "(.*)" starts at address (0x[0-9a-f]+).* and ends at (0x[0-9a-f]+)/.exec(gdbLines[i]!);
        const ours = await runJson(exe, `0x${addrs[i]!.toString(16)}::line`);
        const o = ours[0] as { file: string; line: number; start: string; end: string };
        expect([o.file, o.line, BigInt(o.start), BigInt(o.end)], `0x${addrs[i]!.toString(16)}`).toEqual([g![2], Number(g![1]), BigInt(g![3]!), BigInt(g![4]!)]);
      }
    } finally {
      exe.target.close();
    }
  });

  it('::line FILE:LINE gives the address and line gdb\'s break gives, for every line of the file', async () => {
    const exe = sessionOn(openTarget(d.exe, {}));
    try {
      const n = readFileSync(join(fixturesSrc, 'frames.c'), 'utf8').split('\n').length;
      const lines = Array.from({ length: n - 1 }, (_, i) => i + 1);
      const out = gdbBatch(d.exe, '', lines.map((l) => `break frames.c:${l}`));
      const gdbBps = out.split('\n').filter((l) => l.startsWith('Breakpoint ') || l.startsWith('No line'));
      let checked = 0;
      for (const [i, l] of lines.entries()) {
        const g = /^Breakpoint \d+ at (0x[0-9a-f]+): file (.*), line (\d+)\.$/.exec(gdbBps[i] ?? '');
        if (!g) {
          // past the last line with code: gdb says "No line N in file", dbg fails too
          expect((await failure(exe, `::line frames.c:${l}`)).message).toMatch(/^line \d+ is past the last line with code in /);
          continue;
        }
        const ours = (await runJson(exe, `::line frames.c:${l}`))[0] as { addr: string; file: string; line: number }[];
        expect(ours.map((o) => [BigInt(o.addr), o.file, o.line]), `frames.c:${l}`).toEqual([[BigInt(g[1]!), g[2], Number(g[3])]]);
        checked++;
      }
      expect(checked).toBeGreaterThan(20);
    } finally {
      exe.target.close();
    }
  });
});

describe('tailcall.c at -O2 against gdb: frames that left by a tail call', () => {
  let d: Debuggee;
  let s: Session;
  beforeAll(async () => {
    d = await debuggee('tailcall', { cflags: ['-O2', '-g', '-pthread'] });
    s = sessionOn(openTarget(d.core, {}));
  });
  afterAll(() => s?.target.close());

  it('::stack -v shows the frames bt full shows, tail-call frames and entry values included', async () => {
    const gdb = parseBt(gdbBatch(d.exe, d.core, ['echo @@bt\\n', 'bt full']).split('@@bt\n')[1]!);
    const ours = ((await runJson(s, '::stack -v'))[0] as { frames: (OurRow & { tail_call: boolean })[] }[])[0]!.frames;
    const names = ours.map((r) => r.function.replace(/\+0x[0-9a-f]+$/, '').replace(/^.*`/, ''));
    expect(names).toEqual(gdb.map((g) => g.func));
    // main calls hop, which jumps to relay, which jumps to wait_tail: the stack holds no frame of either
    expect(ours.filter((r) => r.tail_call).map((r) => r.function.replace(/\+0x[0-9a-f]+$/, ''))).toEqual(['relay', 'hop']);
    gdb.forEach((g, i) => {
      const r = ours[i]!;
      if (g.file === undefined) return;
      expect([r.file, r.line]).toEqual([g.file, g.line]);
      expect(r.args!.map((a) => [a.name, a.text]), g.func).toEqual(g.args);
    });
    // why is found through the tail-call frames' call sites: relay's jump passes hop's value on
    expect(ours.filter((r) => /^(wait_tail|relay|hop)\+/.test(r.function)).map((r) => r.args!.find((a) => a.name === 'why')!.text)).toEqual(Array(3).fill(expect.stringMatching(/^why@entry=0x[0-9a-f]+ "tail"$/)));
    const text = await run(s, '::stack -s');
    expect(text.find((l) => / relay\+0x[0-9a-f]+ at /.test(l))).toMatch(/ \(tail call\)$/);
  });
});

describe('the sample kernel', () => {
  it('::line FILE:LINE and addr::line agree with gdb on kernel.elf (DWARF 5, ./ file names, discriminators)', async () => {
    const s = sessionOn(openTarget(kernel, {}));
    try {
      const lines = [125, 127, 129, 152, 160, 197, 203, 235];
      const gdbOut = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', kernel, ...lines.flatMap((l) => ['-ex', `break kernel.c:${l}`])], { encoding: 'utf8' }).stdout;
      const bps = gdbOut.split('\n').filter((l) => l.startsWith('Breakpoint '));
      for (const [i, l] of lines.entries()) {
        const g = /^Breakpoint \d+ at (0x[0-9a-f]+): file (.*), line (\d+)\.$/.exec(bps[i]!)!;
        const ours = (await runJson(s, `::line kernel.c:${l}`))[0] as { addr: string; file: string; line: number }[];
        expect(ours.map((o) => [BigInt(o.addr), o.file, o.line])).toEqual([[BigInt(g[1]!), g[2], Number(g[3])]]);
      }
      const la = s.target.symbols.find('log_append')!;
      const info = spawnSync('gdb', ['-nx', '-batch', kernel, '-ex', `info line *0x${(la.addr + 0x4an).toString(16)}`], { encoding: 'utf8' }).stdout.trim();
      const g = /^Line (\d+) of "(.*)" starts at address (0x[0-9a-f]+) .* and ends at (0x[0-9a-f]+)/.exec(info)!;
      const ours = (await runJson(s, 'log_append+0x4a::line'))[0] as { file: string; line: number; start: string; end: string };
      expect([ours.file, ours.line, BigInt(ours.start), BigInt(ours.end)]).toEqual([g[2], Number(g[1]), BigInt(g[3]!), BigInt(g[4]!)]);
    } finally {
      s.target.close();
    }
  });

  it('::bp kernel.c:127 and kernel.c:152::bp on the emulated kernel stop where gdb breaks; ::stack -v there shows the arguments', () => {
    const gdbOut = spawnSync('gdb', ['-nx', '-batch', kernel, '-ex', 'break kernel.c:127'], { encoding: 'utf8' }).stdout;
    const at = /Breakpoint 1 at (0x[0-9a-f]+)/.exec(gdbOut)![1]!;
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'live', '--emulate', kernel, '-m', '64M', '--wait', '-q', '--no-record', '-e', '::bp kernel.c:127; kernel.c:152::bp; :c; ::stack -v'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const out = r.stdout.split('\n');
    expect(out[0]).toBe(`1: breakpoint at 0x${BigInt(at).toString(16).padStart(16, '0')} log_append+0x5; hits 0`);
    expect(out[1]).toMatch(/^2: breakpoint at 0x[0-9a-f]{16} timer_tick\+0x58; hits 0$/);
    expect(out[2]).toBe(`stopped: breakpoint 1 at 0x${BigInt(at).toString(16).padStart(16, '0')} log_append+0x5 on vCPU 0`);
    expect(out[3]).toMatch(/ log_append\+0x5\(rec=rec@entry=0x[0-9a-f]+ "tick-record:", len=len@entry=12\) at \.\/kernel\.c:127$/);
  });

  it('::dis -s puts each source line, with its text, before its code', async () => {
    const d = dbgs.get('O0')!;
    const s = sessionOn(openTarget(d.exe, {}));
    try {
      const lines = await run(s, 'wait_here::dis -s');
      const src = join(fixturesSrc, 'frames.c');
      const i = lines.indexOf(`${src}:16      int local = depth * 2;`);
      expect(i).toBeGreaterThan(0);
      expect(lines[i + 1]).toMatch(/^wait_here\+0x[0-9a-f]+:\s+movl/);
      expect(lines.filter((l) => l.startsWith(src + ':')).map((l) => Number(l.slice(src.length + 1).split(' ')[0]))).toEqual([15, 16, 17, 18, 19, 20, 21, 20, 22]);
    } finally {
      s.target.close();
    }
  });
});

describe('bad line tables and location lists', () => {
  /** A copy of the -O2 program with `bytes` written at `offset` into section `name`. */
  function patched(name: string, section: string, at: number, bytes: number[]): string {
    const src = dbgs.get('O2')!.exe;
    const out = join(tmp.dir, name);
    copyFileSync(src, out);
    const elf = ElfFile.open(out);
    const sec = elf.section(section)!;
    const off = Number(sec.offset) + at;
    elf.close();
    const b = readFileSync(out);
    Buffer.from(bytes).copy(b, off);
    writeFileSync(out, b);
    return out;
  }

  it('a line program of an unknown version is one dbg error naming the program and its offset; symbols still work', async () => {
    const exe = patched('badline', '.debug_line', 4, [99, 0]);
    const s = sessionOn(openTarget(exe, {}));
    try {
      expect((await failure(s, 'main::line')).message).toBe(`${exe}: .debug_line: line program at 0x0: has version 99 (dbg reads 2 to 5)`);
      expect((await failure(s, '::line frames.c:21')).message).toMatch(/\.debug_line: line program at 0x0: has version 99/);
      expect(await run(s, 'main::nm')).toHaveLength(2);
    } finally {
      s.target.close();
    }
  });

  it('a line program cut short by its length is one dbg error', async () => {
    const exe = patched('shortline', '.debug_line', 0, [0xf0, 0xff, 0xff, 0x7f]);
    const s = sessionOn(openTarget(exe, {}));
    try {
      expect((await failure(s, 'main::line')).message).toBe(`${exe}: .debug_line: line program at 0x0: claims 0x7ffffff0 bytes, past the end of the section`);
    } finally {
      s.target.close();
    }
  });

  it('an unknown range-list entry costs that frame its source view, with a one-line warning naming unit and offset', async () => {
    const ranges = spawnSync('objdump', ['--dwarf=Ranges', dbgs.get('O2')!.exe], { encoding: 'utf8' }).stdout;
    const first = parseInt(/Offset: 0x([0-9a-f]+), Index: 0/.exec(ranges)![1]!, 16);
    const exe = patched('badrng', '.debug_rnglists', first, [0x2a]);
    const d = dbgs.get('O2')!;
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', d.core, '--exe', exe, '-e', '::stack -s'], { encoding: 'utf8' });
    const lines = r.stdout.trim().split('\n');
    expect(lines.find((l) => / compute\+0x/.test(l))).toMatch(/ compute\+0x[0-9a-f]+ at .*frames\.c:27$/);
    expect(lines.some((l) => / main\+0x[0-9a-f]+ at .*frames\.c:43$/.test(l))).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`^dbg: frame at 0x[0-9a-f]{16}: .*/badrng: unit at 0x0: unknown DW_RLE entry kind 0x2a at offset 0x${first.toString(16)} of \\.debug_rnglists\n$`));
  });

  it('an unknown location-list entry is an error in that value only; the stack prints', async () => {
    // The first list a DW_AT_location points at (after gcc's location-view pairs), as objdump shows it.
    const dump = spawnSync('objdump', ['--dwarf=loc', dbgs.get('O2')!.exe], { encoding: 'utf8' }).stdout;
    const first = parseInt(/^\s+([0-9a-f]{8}) [0-9a-f]{16} \(base address\)/m.exec(dump)![1]!, 16);
    const exe = patched('badloc', '.debug_loclists', first, [0x2a]);
    const d = dbgs.get('O2')!;
    const s = sessionOn(openTarget(d.core, { exe }));
    try {
      const lines = await run(s, '::stack -v');
      expect(lines.some((l) => new RegExp(`<error: .*: unit at 0x[0-9a-f]+: unknown DW_LLE entry kind 0x2a at offset 0x${first.toString(16)} of \\.debug_loclists>`).test(l))).toBe(true);
      expect(lines.some((l) => / main\+0x[0-9a-f]+\(/.test(l))).toBe(true);
    } finally {
      s.target.close();
    }
  });
});
