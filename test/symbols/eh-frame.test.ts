/**
 * The CFI reader against binutils: every row `readelf --debug-dump=frames-interp` prints for libc
 * and for a gcc-built program must be the row EhFrame computes at that address, through the
 * `.eh_frame_hdr` table and through the index built when there is no table.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BufferByteSource } from '../../src/common/byte-source.js';
import { EhFrame, evalDwarfExpr, type UnwindRow } from '../../src/symbols/eh-frame.js';
import { ElfFile, PT_GNU_EH_FRAME } from '../../src/symbols/elf-file.js';
import { debuggee, fixturesSrc } from '../helpers/debuggee.js';

interface ReadelfRow {
  loc: bigint;
  cfa: string;
  cols: Map<string, string>;
}

/** Rows of `readelf -wF` for `section`: one table per FDE, a header line naming the columns. */
function readelfRows(file: string, section = '.eh_frame'): ReadelfRow[] {
  // readelf exits 1 over warnings about debug links it cannot follow: only its output matters.
  const text = spawnSync('readelf', ['-wF', file], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout;
  const rows: ReadelfRow[] = [];
  let header: string[] | undefined;
  let inFde = false;
  let inSection = false;
  for (const line of text.split('\n')) {
    const sec = /^Contents of the (\S+) section/.exec(line);
    if (sec) inSection = sec[1] === section;
    if (!inSection) continue;
    if (/^[0-9a-f]{8} [0-9a-f]+ [0-9a-f]+ (FDE|CIE)/.test(line)) {
      inFde = line.includes(' FDE ');
      header = undefined;
      continue;
    }
    if (!inFde) continue;
    if (line.startsWith('   LOC')) {
      header = line.trim().split(/\s+/).slice(2);
      continue;
    }
    const m = /^([0-9a-f]{16}) (.*)$/.exec(line);
    if (!m || !header) continue;
    // A register rule prints as "r5 (rdi)": keep the name.
    const fields = m[2]!.replace(/\br\d+ \((\w+)\)/g, '$1').trim().split(/\s+/);
    rows.push({ loc: BigInt('0x' + m[1]), cfa: fields[0]!, cols: new Map(header.map((h, i) => [h, fields[i + 1]!])) });
  }
  return rows;
}

const dwarfNames = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'ra'];

/** Our row in readelf's notation. */
function render(row: UnwindRow, cols: Iterable<string>): { cfa: string; cols: Map<string, string> } {
  const cfa = row.cfa.kind === 'expr' ? 'exp' : `${dwarfNames[row.cfa.reg]}${row.cfa.offset < 0n ? '' : '+'}${row.cfa.offset}`;
  const out = new Map<string, string>();
  for (const c of cols) {
    const rule = row.registers.get(dwarfNames.indexOf(c));
    let s: string;
    switch (rule?.kind) {
      case undefined:
      case 'undefined':
        s = 'u';
        break;
      case 'same':
        s = 's';
        break;
      case 'offset':
        s = `c${rule.offset < 0n ? '' : '+'}${rule.offset}`;
        break;
      case 'val-offset':
        s = `v${rule.offset < 0n ? '' : '+'}${rule.offset}`;
        break;
      case 'register':
        s = dwarfNames[rule.reg]!;
        break;
      case 'expr':
        s = 'exp';
        break;
      case 'val-expr':
        s = 'vexp';
        break;
    }
    out.set(c, s);
  }
  return { cfa, cols: out };
}

function compareAll(eh: EhFrame, rows: ReadelfRow[]): number {
  let mismatches = 0;
  for (const r of rows) {
    const ours = eh.rowFor(r.loc);
    const got = ours ? render(ours, r.cols.keys()) : undefined;
    const same = got && got.cfa === r.cfa && [...r.cols].every(([k, v]) => got.cols.get(k) === v);
    if (!same) {
      mismatches++;
      if (mismatches < 5) expect({ loc: r.loc.toString(16), cfa: got?.cfa, cols: got && Object.fromEntries(got.cols) }).toEqual({ loc: r.loc.toString(16), cfa: r.cfa, cols: Object.fromEntries(r.cols) });
    }
  }
  return mismatches;
}

/** The same file with its PT_GNU_EH_FRAME turned into PT_NULL: no table, so the index is used. */
function withoutHdr(path: string): ElfFile {
  const b = Buffer.from(readFileSync(path));
  const elf = new ElfFile(new BufferByteSource(path, b));
  const h = elf.header;
  for (const p of elf.programHeaders()) if (p.type === PT_GNU_EH_FRAME) b.writeUInt32LE(0, h.phoff + p.index * h.phentsize);
  return new ElfFile(new BufferByteSource(path, b));
}

const LIBC = '/usr/lib/x86_64-linux-gnu/libc.so.6';

describe('.eh_frame CFI, compared with readelf -wF', () => {
  let exe: string;
  beforeAll(async () => {
    exe = (await debuggee('threads', { kernelCore: true })).exe;
  });

  it('gives the row readelf gives at every row of libc (by .eh_frame_hdr)', () => {
    const rows = readelfRows(LIBC);
    expect(rows.length).toBeGreaterThan(5000);
    const elf = ElfFile.open(LIBC);
    try {
      expect(compareAll(EhFrame.of(elf)!, rows)).toBe(0);
    } finally {
      elf.close();
    }
  });

  it('gives the same rows for libc through its own FDE index when there is no .eh_frame_hdr', () => {
    const rows = readelfRows(LIBC).filter((_, i) => i % 7 === 0);
    const elf = withoutHdr(LIBC);
    expect(elf.programHeaders().some((p) => p.type === PT_GNU_EH_FRAME)).toBe(false);
    expect(compareAll(EhFrame.of(elf)!, rows)).toBe(0);
  });

  it('gives the row readelf gives for a gcc -O0 program, and nothing outside its FDEs', () => {
    const rows = readelfRows(exe);
    expect(rows.length).toBeGreaterThan(10);
    const elf = ElfFile.open(exe);
    try {
      const eh = EhFrame.of(elf)!;
      expect(compareAll(eh, rows)).toBe(0);
      expect(eh.rowFor(0n)).toBeUndefined();
      expect(eh.rowFor(0xffff_ffffn)).toBeUndefined();
    } finally {
      elf.close();
    }
  });

  it('reads .debug_frame, where gcc -g puts the CFI of code built without unwind tables', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbg-debug-frame-'));
    try {
      const exe = join(dir, 'prog');
      execFileSync('gcc', ['-O0', '-g', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-pthread', '-o', exe, join(fixturesSrc, 'threads.c')]);
      const rows = readelfRows(exe, '.debug_frame');
      expect(rows.length).toBeGreaterThan(10);
      const elf = ElfFile.open(exe);
      try {
        const dbg = EhFrame.debugFrameOf(elf)!;
        expect(compareAll(dbg, rows)).toBe(0);
        // The program's functions are in .debug_frame only.
        expect(EhFrame.of(elf)?.rowFor(rows[0]!.loc)).toBeUndefined();
      } finally {
        elf.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('evaluates the PLT CFA expression gcc emits (rsp + 8, + 8 more past the 11th byte of a PLT entry)', () => {
    // DW_OP_breg7 8; DW_OP_breg16 0; DW_OP_lit15; DW_OP_and; DW_OP_lit11; DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus
    const expr = Buffer.from([0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22]);
    const ctx = (rip: bigint) => ({
      register: (n: number) => (n === 7 ? 0x1000n : n === 16 ? rip : 0n),
      readMemory: () => 0n,
      addressSize: 8,
      littleEndian: true,
    });
    expect(evalDwarfExpr(expr, ctx(0x4010n + 5n))).toBe(0x1008n);
    expect(evalDwarfExpr(expr, ctx(0x4010n + 12n))).toBe(0x1010n);
    // DW_OP_deref of the CFA pushed first, as a register rule's expression gets it.
    const deref = evalDwarfExpr(Buffer.from([0x23, 0x10, 0x06]), { ...ctx(0n), readMemory: (a: bigint) => a * 2n }, 0x100n);
    expect(deref).toBe(0x220n);
  });

  it('refuses malformed expressions with corrupt errors, not crashes', () => {
    const ctx = { register: () => 0n, readMemory: () => 0n, addressSize: 8, littleEndian: true };
    expect(() => evalDwarfExpr(Buffer.from([0x22]), ctx)).toThrow(/DWARF expression pops an empty stack/);
    expect(() => evalDwarfExpr(Buffer.from([0xe0]), ctx)).toThrow(/unsupported DWARF operation 0xe0 in CFI/);
    expect(() => evalDwarfExpr(Buffer.from([0x2f, 0xfd, 0xff]), ctx)).toThrow(/runs for more than 10000 steps/);
  });
});
