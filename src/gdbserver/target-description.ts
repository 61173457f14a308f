/**
 * The register layout gdb is told about (target.xml) and the byte layout of g/G/p/P that follows
 * from it: registers are numbered in the order they appear in the XML, and a `g` reply is their
 * values, little-endian, back to back, `xx` per byte for a value the target does not have.
 *
 * x86-64 follows gdb's own feature files (gdb/features/i386/64bit-*.xml), since gdb validates
 * org.gnu.gdb.i386.core and .sse by register name before it accepts an i386:x86-64 description:
 *
 *   regno  feature                  registers
 *   0-23   org.gnu.gdb.i386.core    rax..r15 rip eflags cs ss ds es fs gs
 *   24-39                           st0-st7 fctrl fstat ftag fiseg fioff foseg fooff fop
 *   40-56  org.gnu.gdb.i386.sse     xmm0-xmm15 mxcsr
 *   57     org.gnu.gdb.i386.linux   orig_rax
 *   58-59  org.gnu.gdb.i386.segments fs_base gs_base
 *   60-66  org.dbg.x86.sys          cr0 cr2 cr3 cr4 cr8 efer k_gs_base  (dbg's own, as QEMU adds one)
 */

import type { Arch, Registers } from '../arch/arch.js';
import { errors } from '../common/errors.js';

export interface GdbRegister {
  readonly regno: number;
  /** gdb's name, which is also the name in the target's Registers map. */
  readonly name: string;
  readonly bits: number;
  readonly type: string;
  readonly group?: string;
  readonly feature: string;
}

export interface TargetDescription {
  readonly registers: readonly GdbRegister[];
  readonly xml: string;
  /** Register numbers gdb wants in every stop reply: sp, fp, pc. */
  readonly expedite: readonly number[];
  /** Total bytes of a `g` reply. */
  readonly gBytes: number;
}

type Spec = [name: string, bits: number, type: string, group?: string];

const x86Features: [feature: string, regs: Spec[]][] = [
  [
    'org.gnu.gdb.i386.core',
    [
      ...['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi'].map((n): Spec => [n, 64, 'int64']),
      ['rbp', 64, 'data_ptr'],
      ['rsp', 64, 'data_ptr'],
      ...[8, 9, 10, 11, 12, 13, 14, 15].map((n): Spec => [`r${n}`, 64, 'int64']),
      ['rip', 64, 'code_ptr'],
      ['eflags', 32, 'i386_eflags'],
      ...['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((n): Spec => [n, 32, 'int32']),
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((n): Spec => [`st${n}`, 80, 'i387_ext']),
      ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((n): Spec => [n, 32, 'int', 'float']),
    ],
  ],
  [
    'org.gnu.gdb.i386.sse',
    [...Array.from({ length: 16 }, (_, i): Spec => [`xmm${i}`, 128, 'vec128']), ['mxcsr', 32, 'i386_mxcsr', 'vector']],
  ],
  ['org.gnu.gdb.i386.linux', [['orig_rax', 64, 'int']]],
  [
    'org.gnu.gdb.i386.segments',
    [
      ['fs_base', 64, 'int'],
      ['gs_base', 64, 'int'],
    ],
  ],
  [
    'org.dbg.x86.sys',
    [
      ['cr0', 64, 'uint64', 'system'],
      ['cr2', 64, 'code_ptr', 'system'],
      ['cr3', 64, 'uint64', 'system'],
      ['cr4', 64, 'uint64', 'system'],
      ['cr8', 64, 'uint64', 'system'],
      ['efer', 64, 'uint64', 'system'],
      ['k_gs_base', 64, 'uint64', 'system'],
    ],
  ],
];

const x86Types: Record<string, string> = {
  'org.gnu.gdb.i386.core': [
    '<flags id="i386_eflags" size="4">',
    ...[
      ['CF', 0], ['', 1], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
      ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
    ].map(([n, b]) => `<field name="${n}" start="${b}" end="${b}"/>`),
    '</flags>',
  ].join(''),
  'org.gnu.gdb.i386.sse': [
    '<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>',
    '<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>',
    '<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>',
    '<union id="vec128"><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>',
    '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>',
    '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>',
    '<field name="uint128" type="uint128"/></union>',
    '<flags id="i386_mxcsr" size="4">',
    ...[
      ['IE', 0], ['DE', 1], ['ZE', 2], ['OE', 3], ['UE', 4], ['PE', 5], ['DAZ', 6], ['IM', 7], ['DM', 8], ['ZM', 9],
      ['OM', 10], ['UM', 11], ['PM', 12], ['FZ', 15],
    ].map(([n, b]) => `<field name="${n}" start="${b}" end="${b}"/>`),
    '</flags>',
  ].join(''),
};

const cache = new Map<string, TargetDescription>();

/**
 * The description for `arch`. `osabi` ('GNU/Linux' for process cores) tells gdb to load the
 * Linux-specific parts (signal frames, svr4 shared libraries).
 */
export function targetDescription(arch: Arch, osabi?: string): TargetDescription {
  if (arch.name !== 'x86-64') throw errors.unsupported(`the GDB server`, `architecture ${arch.name}`);
  const key = `${arch.name}/${osabi ?? ''}`;
  let d = cache.get(key);
  if (!d) {
    d = build(arch, osabi);
    cache.set(key, d);
  }
  return d;
}

function build(arch: Arch, osabi: string | undefined): TargetDescription {
  const registers: GdbRegister[] = [];
  const parts = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">'];
  parts.push(`<architecture>${arch.gdbArch}</architecture>`);
  if (osabi) parts.push(`<osabi>${osabi}</osabi>`);
  for (const [feature, specs] of x86Features) {
    parts.push(`<feature name="${feature}">`, x86Types[feature] ?? '');
    for (const [name, bits, type, group] of specs) {
      const regno = registers.length;
      registers.push({ regno, name, bits, type, group, feature });
      parts.push(`<reg name="${name}" bitsize="${bits}" type="${type}" regnum="${regno}"${group ? ` group="${group}"` : ''}/>`);
    }
    parts.push('</feature>');
  }
  parts.push('</target>');
  const byName = (n: string): number => registers.find((r) => r.name === n)!.regno;
  return {
    registers,
    xml: parts.join(''),
    expedite: [byName(arch.fp), byName(arch.sp), byName(arch.pc)],
    gBytes: registers.reduce((s, r) => s + r.bits / 8, 0),
  };
}

/** One register's value as gdb wants it: little-endian hex, or `xx` per byte when unknown. */
export function encodeRegister(reg: GdbRegister, values: Registers): string {
  const v = values.get(reg.name);
  const bytes = reg.bits / 8;
  if (v === undefined) return 'xx'.repeat(bytes);
  const b = Buffer.alloc(bytes);
  let x = BigInt.asUintN(reg.bits, v);
  for (let i = 0; i < bytes; i++) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b.toString('hex');
}

export function decodeRegister(data: Buffer): bigint {
  let v = 0n;
  for (let i = data.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]!);
  return v;
}
