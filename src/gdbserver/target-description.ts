/**
 * The register layout gdb is told about (target.xml) and the byte layout of g/G/p/P that follows
 * from it: registers are numbered in the order they appear in the XML, and a `g` reply is their
 * values, little-endian, back to back, `xx` per byte for a value the target does not have.
 *
 * Both x86 descriptions follow gdb's own feature files (gdb/features/i386/{64bit,32bit}-*.xml),
 * since gdb validates org.gnu.gdb.i386.core and .sse by register name before it accepts them:
 *
 *   x86-64 (i386:x86-64)                         i386 (i386)
 *   regno  registers                 feature      regno  registers
 *   0-23   rax..r15 rip eflags cs..gs  core       0-15   eax..edi eip eflags cs..gs
 *   24-39  st0-st7 fctrl..fop          core       16-31  st0-st7 fctrl..fop
 *   40-56  xmm0-xmm15 mxcsr            sse        32-40  xmm0-xmm7 mxcsr
 *   57     orig_rax                    linux      -      (none: x86-64 only, as in gdb)
 *   58-59  fs_base gs_base             segments   41-49  fs_base gs_base k_gs_base cr0 cr2
 *   60-66  k_gs_base cr0 cr2 cr3 cr4 cr8 efer sys             cr3 cr4 cr8 efer, 32 bits wide (sys)
 *          (org.dbg.x86.sys: dbg's own, as QEMU adds its own)
 *   67-82  ymm0h-ymm15h                avx        -      (gdb shows ymm0..ymm15 from xmm and these)
 *
 * Flag types (mxcsr, cr0, cr3, cr4, efer; eflags for emulated guests) carry QEMU 7.2's field names
 * and order, so that `info registers` prints `[ IOPL=0 ZF PF ]`, `[ PG ET PE ]` as it does through
 * QEMU's stub; cores and dumps keep gdb's own eflags fields (`[ PF ZF IF ]`), as gdb prints a core
 * it reads itself. fs_base, gs_base and the system registers are in gdb's general group
 * (`info registers`), as QEMU's are; a process core's description has no system registers.
 */

import type { Arch, Registers } from '../arch/arch.js';
import { X86_64 } from '../arch/x86-64.js';
import { x86ArchOfElf } from '../arch/x86-mode.js';
import { errors } from '../common/errors.js';
import type { Target } from '../targets/target.js';

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
  /**
   * Register numbers for a stop reply that is not a single step (a breakpoint, a watchpoint, a
   * signal): the integer registers and segment bases, then `expedite`'s. gdb shows such a stop as a
   * frame with its arguments, which live in those registers: without them it sends `g` first.
   */
  readonly expediteEvent: readonly number[];
  /** Total bytes of a `g` reply. */
  readonly gBytes: number;
}

type Spec = [name: string, bits: number, type: string, group?: string];
type Field = [name: string, start: number, end?: number];

/** A <flags> type: one-bit fields are bool, wider ones unsigned of the type's size. */
function flags(id: string, bytes: number, fields: Field[]): string {
  const wide = bytes === 8 ? 'uint64' : 'uint32';
  const f = fields.map(([n, a, b]) => `<field name="${n}" start="${a}" end="${b ?? a}" type="${b === undefined ? 'bool' : wide}"/>`);
  return `<flags id="${id}" size="${bytes}">${f.join('')}</flags>`;
}

/** gdb's own eflags fields (gdb/features/i386/64bit-core.xml), as gdb prints a core's. */
const GDB_EFLAGS: Field[] = [
  ['CF', 0], ['', 1], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
  ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
];

// QEMU 7.2's fields (gdb-xml/i386-{32,64}bit.xml), in its order: eflags with IOPL.
const EFLAGS: Field[] = [
  ['', 22, 31], ['ID', 21], ['VIP', 20], ['VIF', 19], ['AC', 18], ['VM', 17], ['RF', 16], ['', 15], ['NT', 14], ['IOPL', 12, 13],
  ['OF', 11], ['DF', 10], ['IF', 9], ['TF', 8], ['SF', 7], ['ZF', 6], ['', 5], ['AF', 4], ['', 3], ['PF', 2], ['', 1], ['CF', 0],
];
const MXCSR: Field[] = [
  ['IE', 0], ['DE', 1], ['ZE', 2], ['OE', 3], ['UE', 4], ['PE', 5], ['DAZ', 6], ['IM', 7], ['DM', 8], ['ZM', 9], ['OM', 10], ['UM', 11], ['PM', 12], ['FZ', 15],
];
const CR0: Field[] = [['PG', 31], ['CD', 30], ['NW', 29], ['AM', 18], ['WP', 16], ['NE', 5], ['ET', 4], ['TS', 3], ['EM', 2], ['MP', 1], ['PE', 0]];
const CR4: Field[] = [
  ['VME', 0], ['PVI', 1], ['TSD', 2], ['DE', 3], ['PSE', 4], ['PAE', 5], ['MCE', 6], ['PGE', 7], ['PCE', 8], ['OSFXSR', 9], ['OSXMMEXCPT', 10],
  ['UMIP', 11], ['LA57', 12], ['VMXE', 13], ['SMXE', 14], ['FSGSBASE', 16], ['PCIDE', 17], ['OSXSAVE', 18], ['SMEP', 20], ['SMAP', 21], ['PKE', 22],
];
const EFER: Field[] = [['TCE', 15], ['FFXSR', 14], ['LMSLE', 13], ['SVME', 12], ['NXE', 11], ['LMA', 10], ['LME', 8], ['SCE', 0]];

/** The vec128 union: QEMU's (machine) or gdb 13's, which adds bfloat16 and half lanes (dump). */
function vec128(style: DescriptionStyle): string {
  const half = style === 'dump';
  return [
    half ? '<vector id="v8bf16" type="bfloat16" count="8"/><vector id="v8h" type="ieee_half" count="8"/>' : '',
    '<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>',
    '<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>',
    '<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>',
    '<union id="vec128">',
    half ? '<field name="v8_bfloat16" type="v8bf16"/><field name="v8_half" type="v8h"/>' : '',
    '<field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>',
    '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>',
    '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>',
    '<field name="uint128" type="uint128"/></union>',
  ].join('');
}

interface Feature {
  readonly name: string;
  readonly types: string;
  readonly regs: Spec[];
}

const x87: Spec[] = [
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((n): Spec => [`st${n}`, 80, 'i387_ext']),
  ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((n): Spec => [n, 32, 'int', 'float']),
];
const segments: Spec[] = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((n): Spec => [n, 32, 'int32']);

/**
 * How a description reads: 'machine' for emulated guests, as QEMU's stub describes its CPU
 * (eflags with IOPL, the system registers under `info registers`); 'dump' for cores and kernel
 * dumps, as gdb itself describes what it reads from a core (its own eflags fields; a process
 * core's lack of system registers kept out of `info registers`).
 */
export type DescriptionStyle = 'machine' | 'dump';

/** The features of one x86 description: `w` is 64 (x86-64) or 32 (i386); `p` prefixes flag type ids. */
function x86Features(w: 64 | 32, osabi: string | undefined, style: DescriptionStyle): Feature[] {
  const p = w === 64 ? 'x64' : 'i386';
  const int = `int${w}`;
  const gp: Spec[] =
    w === 64
      ? [
          ...['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi'].map((n): Spec => [n, 64, 'int64']),
          ['rbp', 64, 'data_ptr'],
          ['rsp', 64, 'data_ptr'],
          ...[8, 9, 10, 11, 12, 13, 14, 15].map((n): Spec => [`r${n}`, 64, 'int64']),
          ['rip', 64, 'code_ptr'],
        ]
      : [
          ...['eax', 'ecx', 'edx', 'ebx'].map((n): Spec => [n, 32, 'int32']),
          ['esp', 32, 'data_ptr'],
          ['ebp', 32, 'data_ptr'],
          ...['esi', 'edi'].map((n): Spec => [n, 32, 'int32']),
          ['eip', 32, 'code_ptr'],
        ];
  const bytes = w / 8;
  const bases: Spec[] = [
    ['fs_base', w, int, 'general'],
    ['gs_base', w, int, 'general'],
  ];
  return [
    { name: 'org.gnu.gdb.i386.core', types: flags(`${p}_eflags`, 4, style === 'machine' ? EFLAGS : GDB_EFLAGS), regs: [...gp, ['eflags', 32, `${p}_eflags`], ...segments, ...x87] },
    {
      name: 'org.gnu.gdb.i386.sse',
      types: vec128(style) + flags('i386_mxcsr', 4, MXCSR),
      regs: [...Array.from({ length: w === 64 ? 16 : 8 }, (_, i): Spec => [`xmm${i}`, 128, 'vec128']), ['mxcsr', 32, 'i386_mxcsr', 'vector']],
    },
    // orig_rax: gdb restarts an interrupted system call with it (x86-64 only, as gdb has it).
    ...(w === 64 ? [{ name: 'org.gnu.gdb.i386.linux', types: '', regs: [['orig_rax', 64, 'int']] as Spec[] }] : []),
    // gdb 13 knows org.gnu.gdb.i386.segments on x86-64 only (on i386 it fails an internal
    // assertion): there fs_base and gs_base go with the system registers, as QEMU has them.
    ...(w === 64 ? [{ name: 'org.gnu.gdb.i386.segments', types: '', regs: bases }] : []),
    // A process has no system registers to show: a core's description leaves them out.
    ...(osabi === 'GNU/Linux' ? [] : [sysFeature(p, w, bytes, int, bases)]),
    // Last, so that adding it kept every other register's number.
    ...(w === 64 ? [{ name: 'org.gnu.gdb.i386.avx', types: '', regs: Array.from({ length: 16 }, (_, i): Spec => [`ymm${i}h`, 128, 'uint128']) }] : []),
  ];
}

/** dbg's own feature: the segment bases (i386) and the system registers, as QEMU's core has them. */
function sysFeature(p: string, w: 64 | 32, bytes: number, int: string, bases: Spec[]): Feature {
  return {
    name: 'org.dbg.x86.sys',
    types:
      flags(`${p}_cr0`, bytes, CR0) +
      flags(`${p}_cr3`, bytes, [['PDBR', 12, w - 1], ['PCID', 0, 11]]) +
      flags(`${p}_cr4`, bytes, w === 64 ? [...CR4].reverse() : CR4) +
      flags(`${p}_efer`, bytes, EFER),
    regs: [
      ...(w === 64 ? [] : bases),
      ['k_gs_base', w, int, 'general'],
      ['cr0', w, `${p}_cr0`, 'general'],
      ['cr2', w, int, 'general'],
      ['cr3', w, `${p}_cr3`, 'general'],
      ['cr4', w, `${p}_cr4`, 'general'],
      ['cr8', w, int, 'general'],
      ['efer', w, `${p}_efer`, 'general'],
    ],
  };
}

const cache = new Map<string, TargetDescription>();

/**
 * The architecture a client is told when it connects; it keeps that register layout for the
 * session. x86-64 when either the CPU runs 64-bit code now or the program is an ELF64 x86-64 file
 * (a 64-bit kernel still in its 32-bit boot code: gdb with that file refuses an i386 description,
 * and QEMU's x86-64 stub also reports 64-bit registers there, their low halves outside long mode);
 * i386 for a 32-bit guest in 32-bit mode, as qemu-system-i386 reports it. A guest that switches to
 * long mode during an i386 session is shown through the i386 layout (the low halves) until the
 * client connects again.
 */
export function clientArch(target: Target): Arch {
  const elf = target.symbols.modules[0]?.elf;
  const fromElf = elf ? x86ArchOfElf(elf.header.machine, elf.is64) : undefined;
  return fromElf === X86_64 ? X86_64 : target.arch;
}

/**
 * The description for `arch`. `osabi` ('GNU/Linux' for process cores) tells gdb to load the
 * Linux-specific parts (signal frames, svr4 shared libraries). 'none' (a guest whose history dbg
 * keeps) is gdb's bare-machine ABI, which has no process record: gdb's own `record full` is then
 * refused at once ("the current architecture doesn't support record function") rather than
 * accepted and broken at its first reverse step, when it would write registers into a past that
 * cannot be written (gdb was left with "Selected thread is running"). An ELF with an ABI note
 * still decides for itself; a kernel has none.
 */
export function targetDescription(arch: Arch, osabi?: string, style: DescriptionStyle = 'dump'): TargetDescription {
  if (arch.name !== 'x86-64' && arch.name !== 'i386') throw errors.unsupported(`the GDB server`, `architecture ${arch.name}`);
  const key = `${arch.name}/${osabi ?? ''}/${style}`;
  let d = cache.get(key);
  if (!d) {
    d = build(arch, osabi, style);
    cache.set(key, d);
  }
  return d;
}

function build(arch: Arch, osabi: string | undefined, style: DescriptionStyle): TargetDescription {
  const registers: GdbRegister[] = [];
  const parts = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">'];
  parts.push(`<architecture>${arch.gdbArch}</architecture>`);
  if (osabi) parts.push(`<osabi>${osabi}</osabi>`);
  for (const { name: feature, types, regs } of x86Features(arch.pointerBytes === 8 ? 64 : 32, osabi, style)) {
    parts.push(`<feature name="${feature}">`, types);
    for (const [name, bits, type, group] of regs) {
      const regno = registers.length;
      registers.push({ regno, name, bits, type, group, feature });
      parts.push(`<reg name="${name}" bitsize="${bits}" type="${type}" regnum="${regno}"${group ? ` group="${group}"` : ''}/>`);
    }
    parts.push('</feature>');
  }
  parts.push('</target>');
  const byName = (n: string): number => registers.find((r) => r.name === n)!.regno;
  const expedite = [byName(arch.fp), byName(arch.sp), byName(arch.pc)];
  const integer = registers.filter((r) => (r.feature === 'org.gnu.gdb.i386.core' && r.regno < byName('st0')) || r.name === 'fs_base' || r.name === 'gs_base');
  return {
    registers,
    xml: parts.join(''),
    expedite,
    expediteEvent: [...integer.map((r) => r.regno).filter((n) => !expedite.includes(n)), ...expedite],
    gBytes: registers.reduce((s, r) => s + r.bits / 8, 0),
  };
}

/** One register's value as gdb wants it: little-endian hex, or `xx` per byte when unknown. */
const scratch64 = Buffer.alloc(8);

export function encodeRegister(reg: GdbRegister, values: Registers): string {
  const v = values.get(reg.name);
  const bytes = reg.bits / 8;
  if (v === undefined) return 'xx'.repeat(bytes);
  if (bytes === 8) {
    // The general registers, three of them in every stop reply: one write, no BigInt per byte.
    scratch64.writeBigUInt64LE(BigInt.asUintN(64, v));
    return scratch64.toString('hex');
  }
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
