/**
 * The x86-64 CPU model of the emulated machine: register names to Unicorn ids, the processor
 * modes the loaders enter, interrupt delivery through the guest's IDT, and exception names.
 * The machine (machine.ts) knows nothing of x86 beyond what this file exports, so another
 * architecture is another file like this one.
 */

import type { Arch, Registers } from '../../arch/arch.js';
import { X86_64 } from '../../arch/x86-64.js';
import { x86ArchOfMode } from '../../arch/x86-mode.js';
import { DbgError, errors } from '../../common/errors.js';
import { UnicornEngine, X86_REG } from './unicorn.js';
import type { CpuDescriptors, DescriptorCache } from '../target.js';

export const MSR_EFER = 0xc0000080;
export const MSR_KERNEL_GS_BASE = 0xc0000102;

export const CR0_PE = 1n;
export const CR0_ET = 0x10n;
export const CR0_WP = 0x10000n;
export const CR0_PG = 0x80000000n;
export const CR4_PAE = 0x20n;
export const CR4_PGE = 0x80n;
export const EFER_LME = 0x100n;
export const EFER_LMA = 0x400n;
export const EFER_NXE = 0x800n;
export const RFLAGS_IF = 0x200n;
export const RFLAGS_TF = 0x100n;

/** Register name (as arch/x86-64.ts names it) -> Unicorn id, for plain 64-bit registers. */
const REG_IDS: Record<string, number> = {
  rax: X86_REG.RAX, rbx: X86_REG.RBX, rcx: X86_REG.RCX, rdx: X86_REG.RDX,
  rsi: X86_REG.RSI, rdi: X86_REG.RDI, rbp: X86_REG.RBP, rsp: X86_REG.RSP,
  r8: X86_REG.R8, r9: X86_REG.R9, r10: X86_REG.R10, r11: X86_REG.R11,
  r12: X86_REG.R12, r13: X86_REG.R13, r14: X86_REG.R14, r15: X86_REG.R15,
  rip: X86_REG.RIP, eflags: X86_REG.RFLAGS,
  cs: X86_REG.CS, ss: X86_REG.SS, ds: X86_REG.DS, es: X86_REG.ES, fs: X86_REG.FS, gs: X86_REG.GS,
  fs_base: X86_REG.FS_BASE, gs_base: X86_REG.GS_BASE,
  cr0: X86_REG.CR0, cr2: X86_REG.CR2, cr3: X86_REG.CR3, cr4: X86_REG.CR4, cr8: X86_REG.CR8,
};

/** uc_x86_reg ids of the x87, SSE and AVX state (unicorn/x86.h). */
const FP_IDS = {
  ST0: 114, XMM0: 122, YMM0: 154, FPSW: 31, FPCW: 246, FPTAG: 247, MXCSR: 249, FIP: 254, FCS: 255, FDP: 256, FDS: 257, FOP: 258,
} as const;
/** gdb's names of the x87 control registers -> Unicorn id and width in bytes. */
const FP_CONTROL: Record<string, [id: number, bytes: number]> = {
  fctrl: [FP_IDS.FPCW, 2], fstat: [FP_IDS.FPSW, 2], ftag: [FP_IDS.FPTAG, 2], fiseg: [FP_IDS.FCS, 2], fioff: [FP_IDS.FIP, 4],
  foseg: [FP_IDS.FDS, 2], fooff: [FP_IDS.FDP, 4], fop: [FP_IDS.FOP, 2], mxcsr: [FP_IDS.MXCSR, 4],
};

function leBig(b: Buffer): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}

function leBytes(v: bigint, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = BigInt.asUintN(bytes * 8, v);
  for (let i = 0; i < bytes; i++, x >>= 8n) b[i] = Number(x & 0xffn);
  return b;
}

/**
 * The x87, SSE and AVX registers as gdb names them: st0..st7 (80-bit, ST(i) order), fctrl, fstat
 * (with TOP), ftag (the full tag word), fiseg/fioff/foseg/fooff/fop, xmm0..xmm15, mxcsr, and
 * ymm0h..ymm15h (the upper halves; Unicorn 2.0.1 executes no AVX, so they stay as the guest found them).
 */
function readFpRegisters(e: UnicornEngine, regs: Registers): void {
  for (let i = 0; i < 8; i++) regs.set(`st${i}`, leBig(e.readRegBytes(FP_IDS.ST0 + i, 10)));
  for (const [name, [id, bytes]] of Object.entries(FP_CONTROL)) regs.set(name, leBig(e.readRegBytes(id, bytes)));
  for (let i = 0; i < 16; i++) {
    const y = e.readRegBytes(FP_IDS.YMM0 + i, 32);
    regs.set(`xmm${i}`, leBig(y.subarray(0, 16)));
    regs.set(`ymm${i}h`, leBig(y.subarray(16)));
  }
}

/** Write one x87/SSE/AVX register by gdb's name; false when `name` is none of them. */
function writeFpRegister(e: UnicornEngine, name: string, value: bigint): boolean {
  const ctl = FP_CONTROL[name];
  if (ctl) {
    e.writeRegBytes(ctl[0], leBytes(value, ctl[1]));
    return true;
  }
  const m = /^(st|xmm|ymm)(\d+)(h?)$/.exec(name);
  if (!m) return false;
  const n = Number(m[2]);
  if (m[1] === 'st' && n < 8 && !m[3]) e.writeRegBytes(FP_IDS.ST0 + n, leBytes(value, 10));
  else if (m[1] === 'xmm' && n < 16 && !m[3]) e.writeRegBytes(FP_IDS.XMM0 + n, leBytes(value, 16));
  else if (m[1] === 'ymm' && n < 16 && m[3]) {
    const y = e.readRegBytes(FP_IDS.YMM0 + n, 32);
    leBytes(value, 16).copy(y, 16);
    e.writeRegBytes(FP_IDS.YMM0 + n, y);
  } else return false;
  return true;
}

/** The 32-bit registers (arch/i386.ts) and the 64-bit ones they are the low halves of. */
const LOW_HALVES: Record<string, string> = {
  eax: 'rax', ecx: 'rcx', edx: 'rdx', ebx: 'rbx', esp: 'rsp', ebp: 'rbp', esi: 'rsi', edi: 'rdi', eip: 'rip',
};

/**
 * Every register of arch/x86-64.ts, read from the engine, and the 32-bit names of arch/i386.ts
 * (the low halves, as QEMU's gdbstub reads them outside 64-bit mode), whatever the CPU's mode:
 * a client that was told i386 keeps its register layout when the guest enters long mode.
 */
export function readRegisters(e: UnicornEngine, only?: readonly string[]): Registers {
  // A few general registers (a stop reply's pc, sp, fp): read those alone (the whole set, with
  // x87/SSE/AVX, is ~60 engine calls, ~0.3 ms).
  if (only?.every((n) => REG_IDS[n] !== undefined || LOW_HALVES[n] !== undefined)) {
    const some: Registers = new Map();
    for (const n of only) some.set(n, LOW_HALVES[n] ? e.readReg(REG_IDS[LOW_HALVES[n]]!) & 0xffff_ffffn : e.readReg(REG_IDS[n]!));
    return some;
  }
  const regs: Registers = new Map();
  for (const def of X86_64.registers) {
    const id = REG_IDS[def.name];
    if (id !== undefined) regs.set(def.name, e.readReg(id));
    else if (def.name === 'efer') regs.set('efer', e.readMsr(MSR_EFER));
    else if (def.name === 'k_gs_base') regs.set('k_gs_base', e.readMsr(MSR_KERNEL_GS_BASE));
  }
  // Not in the arch's display list, but wanted by ::dump's QEMU note and by the GDB server.
  const gdt = e.readMmr(X86_REG.GDTR);
  const idt = e.readMmr(X86_REG.IDTR);
  regs.set('gdtr_base', gdt.base);
  regs.set('gdtr_limit', BigInt(gdt.limit));
  regs.set('idtr_base', idt.base);
  regs.set('idtr_limit', BigInt(idt.limit));
  for (const [low, full] of Object.entries(LOW_HALVES)) regs.set(low, regs.get(full)! & 0xffff_ffffn);
  readFpRegisters(e, regs);
  return regs;
}

/** The CPU's architecture now: x86-64 in 64-bit mode (EFER.LMA and CS.L), i386 otherwise. */
export function cpuArch(e: UnicornEngine): Arch {
  const efer = e.readMsr(MSR_EFER);
  if ((efer & EFER_LMA) === 0n) return x86ArchOfMode(efer, false);
  return x86ArchOfMode(efer, (readSegmentCaches(e).cs!.flags & DESC_L) !== 0);
}

/** Names writeRegister accepts. */
export function writableRegisterNames(): string[] {
  return [...Object.keys(REG_IDS), ...Object.keys(LOW_HALVES), 'efer', 'k_gs_base', 'st0-st7', ...Object.keys(FP_CONTROL), 'xmm0-xmm15', 'ymm0h-ymm15h'];
}

/**
 * Write one register. A 32-bit name (eax, eip) writes the whole 64-bit register, zero-extended,
 * as a 32-bit move does in 64-bit mode.
 */
export function writeRegister(e: UnicornEngine, name: string, value: bigint): void {
  const n = name.toLowerCase().replace(/^%/, '');
  const alias = n === 'rflags' ? 'eflags' : n === 'pc' ? 'rip' : n === 'sp' ? 'rsp' : n === 'fp' ? 'rbp' : n;
  const low = LOW_HALVES[alias];
  const id = REG_IDS[low ?? alias];
  if (low !== undefined && id !== undefined) e.writeReg(id, BigInt.asUintN(32, value));
  else if (id !== undefined) e.writeReg(id, value);
  else if (alias === 'efer') e.writeMsr(MSR_EFER, value);
  else if (alias === 'k_gs_base') e.writeMsr(MSR_KERNEL_GS_BASE, value);
  else if (writeFpRegister(e, alias, value)) return;
  else throw errors.badInput(`unknown register "${name}": expected one of ${writableRegisterNames().join(', ')}`);
}

export function isLongMode(e: UnicornEngine): boolean {
  return (e.readMsr(MSR_EFER) & EFER_LMA) !== 0n;
}

/** What the page walker needs: paging on, the root table. */
export function pagingState(e: UnicornEngine): { paging: boolean; cr3: bigint; longMode: boolean } {
  const cr0 = e.readReg(X86_REG.CR0);
  return { paging: (cr0 & CR0_PG) !== 0n, cr3: e.readReg(X86_REG.CR3), longMode: isLongMode(e) };
}

/*
 * Unicorn's register API writes a segment register's selector only (no descriptor load), and
 * cannot clear EFER.LMA, so processor modes are set in the raw CPU context (uc_context: a 16-byte
 * header, then QEMU 5's CPUX86State, whose head is fixed):
 *   +16 regs[16]  +144 eip  +152 eflags  +192 u32 hflags  +200 segs[6] (ES CS SS DS FS GS), each
 *   { u32 selector; u32 pad; u64 base; u32 limit; u32 flags }  (24 bytes)
 * EFER's offset is found once per process by writing it through the API and comparing contexts.
 */
const CTX_HFLAGS = 192;
const CTX_SEGS = 200;
const HF_CS32 = 1 << 4;
const HF_SS32 = 1 << 5;
const HF_ADDSEG = 1 << 6;
const HF_LMA = 1 << 14;
const HF_CS64 = 1 << 15;
/** The L bit (64-bit code) of a segment cache's flags (QEMU's DESC_L_MASK). */
const DESC_L = 1 << 21;
const SEG_ORDER = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;
let eferOffset = -1;

function findEfer(e: UnicornEngine): number {
  if (eferOffset >= 0) return eferOffset;
  const old = e.readMsr(MSR_EFER);
  e.writeMsr(MSR_EFER, EFER_LME);
  const a = e.saveContext();
  e.writeMsr(MSR_EFER, EFER_LME | EFER_NXE);
  const b = e.saveContext();
  e.writeMsr(MSR_EFER, old);
  for (let o = 0; o + 8 <= a.length; o += 8) {
    const x = a.readBigUInt64LE(o);
    if ((x & ~EFER_LMA) === EFER_LME && b.readBigUInt64LE(o) === (x | EFER_NXE)) return (eferOffset = o);
  }
  throw new DbgError('unsupported', 'cannot set the processor mode on this Unicorn build (EFER not found in the CPU context)');
}

/** Set flat segments (code 0x08, data 0x10), EFER and the mode bits of hflags. */
function setFlatMode(e: UnicornEngine, longMode: boolean, efer: bigint): void {
  const at = findEfer(e);
  const c = e.saveContext();
  const codeFlags = longMode ? 0x00af9b00 : 0x00cf9b00;
  SEG_ORDER.forEach((name, i) => {
    const o = CTX_SEGS + i * 24;
    c.writeUInt32LE(name === 'cs' ? 0x08 : 0x10, o);
    c.writeBigUInt64LE(0n, o + 8);
    c.writeUInt32LE(0xffffffff, o + 16);
    c.writeUInt32LE(name === 'cs' ? codeFlags : 0x00cf9300, o + 20);
  });
  let hf = c.readUInt32LE(CTX_HFLAGS) & ~(HF_CS32 | HF_SS32 | HF_ADDSEG | HF_LMA | HF_CS64);
  hf |= HF_CS32 | HF_SS32 | (longMode ? HF_LMA | HF_CS64 : 0);
  c.writeUInt32LE(hf >>> 0, CTX_HFLAGS);
  c.writeBigUInt64LE(efer, at);
  e.restoreContext(c);
}

/**
 * 32-bit protected mode, paging off, flat segments from a GDT the loader wrote at `gdtBase`
 * (null, code 0x08, data 0x10: the state QEMU's multiboot loader leaves). Works on an engine
 * opened in 64-bit mode (so CPUID reports long mode), by clearing EFER and reloading CS.
 */
export function enterProtectedMode32(e: UnicornEngine, gdtBase: bigint, gdtLimit: number): void {
  e.writeMmr(X86_REG.GDTR, { selector: 0, base: gdtBase, limit: gdtLimit, flags: 0 });
  e.writeMmr(X86_REG.IDTR, { selector: 0, base: 0n, limit: 0x3ff, flags: 0 });
  e.writeReg(X86_REG.CR4, 0n);
  e.writeReg(X86_REG.CR0, CR0_PE | CR0_ET);
  setFlatMode(e, false, 0n);
  e.writeReg(X86_REG.RFLAGS, 0x2n);
}

/** 64-bit long mode, paging on with `cr3`, flat segments (code 0x08 is 64-bit, data 0x10). */
export function enterLongMode(e: UnicornEngine, cr3: bigint, gdtBase: bigint, gdtLimit: number): void {
  e.writeMmr(X86_REG.GDTR, { selector: 0, base: gdtBase, limit: gdtLimit, flags: 0 });
  e.writeReg(X86_REG.CR4, CR4_PAE | CR4_PGE);
  e.writeReg(X86_REG.CR3, cr3);
  e.writeReg(X86_REG.CR0, CR0_PG | CR0_WP | CR0_ET | CR0_PE);
  setFlatMode(e, true, EFER_LME | EFER_LMA | EFER_NXE);
  e.writeReg(X86_REG.CR3, cr3);
  e.writeReg(X86_REG.RFLAGS, 0x2n);
}

/**
 * What a CPU holds after RESET and Unicorn leaves zero, as QEMU sets it: the x87 control word
 * 0x37f with every register empty, MXCSR 0x1f80 (SSE exceptions masked), and LDT and TR caches
 * present with 64 KiB limits. A guest that divides by zero in SSE before setting MXCSR faults on
 * an MXCSR of 0, where real hardware and QEMU do not.
 */
export function powerOn(e: UnicornEngine): void {
  e.writeReg(FP_IDS.FPCW, 0x37fn);
  e.writeReg(FP_IDS.FPTAG, 0xffffn);
  e.writeReg(FP_IDS.MXCSR, 0x1f80n);
  e.writeMmr(X86_REG.LDTR, { selector: 0, base: 0n, limit: 0xffff, flags: 0x8200 });
  e.writeMmr(X86_REG.TR, { selector: 0, base: 0n, limit: 0xffff, flags: 0x8b00 });
}

/**
 * Start `to` in the processor mode of `from` (a secondary CPU starting like its starter): the whole
 * CPU context is copied (segment caches included), then the general registers are cleared.
 */
export function copyMode(from: UnicornEngine, to: UnicornEngine): void {
  to.restoreContext(from.saveContext());
  for (const id of Object.values(REG_IDS).slice(0, 16)) to.writeReg(id, 0n);
  to.writeReg(X86_REG.RFLAGS, 0x2n);
  to.writeReg(X86_REG.CR3, to.readReg(X86_REG.CR3));
}

/** The 8-byte GDT entries the loaders write: null, flat code (64-bit or 32-bit), flat data. */
export function flatGdt(code64: boolean): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(code64 ? 0x00af9b000000ffffn : 0x00cf9b000000ffffn, 8);
  b.writeBigUInt64LE(0x00cf93000000ffffn, 16);
  return b;
}

const VECTOR_NAMES: Record<number, string> = {
  0: '#DE divide error',
  1: '#DB debug',
  2: 'NMI',
  3: '#BP breakpoint (int3)',
  4: '#OF overflow',
  5: '#BR bound range',
  6: '#UD invalid opcode',
  7: '#NM device not available',
  8: '#DF double fault',
  10: '#TS invalid TSS',
  11: '#NP segment not present',
  12: '#SS stack fault',
  13: '#GP general protection',
  14: '#PF page fault',
  16: '#MF x87 error',
  17: '#AC alignment check',
  18: '#MC machine check',
  19: '#XM SIMD error',
};

export function vectorName(v: number): string {
  return VECTOR_NAMES[v] ?? `interrupt 0x${v.toString(16)}`;
}

/** Vectors whose saved RIP is the next instruction (traps), not the faulting one. */
export function isTrap(v: number): boolean {
  return v === 1 || v === 3 || v === 4 || v >= 32;
}

/** Access to guest memory by virtual address (through the vCPU's page tables), for delivery. */
export interface GuestMemory {
  readVirt(addr: bigint, length: number): Buffer;
  /** Returns the guest-physical address written. */
  writeVirt(addr: bigint, data: Buffer): bigint;
}

/** Vectors that push an error code. */
export function hasErrorCode(v: number): boolean {
  return v === 8 || (v >= 10 && v <= 14) || v === 17 || v === 21;
}

/**
 * Deliver `vector` in 64-bit mode at ring 0, as the CPU does through an interrupt or trap gate:
 * switch to the gate's IST stack if it names one (from the TSS), else stay on RSP aligned to 16;
 * push SS, RSP, RFLAGS, CS, RIP (and `errorCode` when given); clear IF (interrupt gates) and TF;
 * load CS:RIP from the gate. Returns what it changed (for the observer), or why it could not.
 * Guests running at ring 3 are not handled (no stack switch through TSS.RSP0).
 */
export function deliverInterrupt(
  e: UnicornEngine,
  mem: GuestMemory,
  vector: number,
  errorCode?: bigint,
): { ok: true; writes: { phys: bigint; data: Buffer; old: Buffer }[]; registers: Map<string, bigint> } | { ok: false; why: string } {
  if (!isLongMode(e)) return { ok: false, why: 'interrupt delivery is emulated in 64-bit mode only' };
  const idt = e.readMmr(X86_REG.IDTR);
  if (vector * 16 + 15 > idt.limit) return { ok: false, why: `IDT limit 0x${idt.limit.toString(16)} does not cover vector 0x${vector.toString(16)}` };
  let gate: Buffer;
  try {
    gate = mem.readVirt(idt.base + BigInt(vector * 16), 16);
  } catch (err) {
    return { ok: false, why: `IDT entry 0x${vector.toString(16)} unreadable: ${(err as Error).message}` };
  }
  const typeAttr = gate[5]!;
  if ((typeAttr & 0x80) === 0) return { ok: false, why: `IDT gate 0x${vector.toString(16)} is not present` };
  const type = typeAttr & 0xf;
  if (type !== 0xe && type !== 0xf) return { ok: false, why: `IDT gate 0x${vector.toString(16)} has type ${type}, not an interrupt or trap gate` };
  if ((e.readReg(X86_REG.CS) & 3n) !== 0n) return { ok: false, why: 'the vCPU runs at ring 3; dbg delivers interrupts at ring 0 only' };
  const selector = BigInt(gate.readUInt16LE(2));
  // Unicorn's register API cannot load a code-segment descriptor, so the gate must keep CS.
  if (selector !== e.readReg(X86_REG.CS)) return { ok: false, why: `IDT gate 0x${vector.toString(16)} switches to code segment 0x${selector.toString(16)}; dbg delivers within the current code segment only` };
  const target = BigInt(gate.readUInt16LE(0)) | (BigInt(gate.readUInt16LE(6)) << 16n) | (BigInt(gate.readUInt32LE(8)) << 32n);
  const rsp = e.readReg(X86_REG.RSP);
  const rflags = e.readReg(X86_REG.RFLAGS);
  let stack = rsp;
  const ist = gate[4]! & 7;
  if (ist) {
    const tr = readSegmentCaches(e).tr!;
    try {
      stack = mem.readVirt(tr.base + 0x24n + BigInt((ist - 1) * 8), 8).readBigUInt64LE(0);
    } catch (err) {
      return { ok: false, why: `IST${ist} of the TSS at 0x${tr.base.toString(16)} unreadable: ${(err as Error).message}` };
    }
  }
  const words = [e.readReg(X86_REG.RIP), e.readReg(X86_REG.CS), rflags, rsp, e.readReg(X86_REG.SS)];
  if (errorCode !== undefined) words.unshift(errorCode);
  const frame = Buffer.alloc(words.length * 8);
  words.forEach((w, i) => frame.writeBigUInt64LE(BigInt.asUintN(64, w), i * 8));
  const newRsp = BigInt.asUintN(64, (stack & ~0xfn) - BigInt(frame.length));
  let phys: bigint;
  let old: Buffer;
  try {
    old = mem.readVirt(newRsp, frame.length);
    phys = mem.writeVirt(newRsp, frame);
  } catch (err) {
    return { ok: false, why: `interrupt frame at 0x${newRsp.toString(16)} not writable: ${(err as Error).message}` };
  }
  const newFlags = type === 0xe ? rflags & ~(RFLAGS_IF | RFLAGS_TF) : rflags & ~RFLAGS_TF;
  e.writeReg(X86_REG.RSP, newRsp);
  e.writeReg(X86_REG.RFLAGS, newFlags);
  e.writeReg(X86_REG.RIP, target);
  return {
    ok: true,
    writes: [{ phys, data: frame, old }],
    registers: new Map([
      ['rsp', newRsp],
      ['eflags', newFlags],
      ['rip', target],
    ]),
  };
}

export type SegmentCache = DescriptorCache;

/** The descriptor caches of every segment register, LDT, TR, GDT and IDT (from the raw context). */
export function readSegmentCaches(e: UnicornEngine, context = e.saveContext()): Record<string, SegmentCache> {
  const out: Record<string, SegmentCache> = {};
  ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'ldt', 'tr', 'gdt', 'idt'].forEach((n, i) => {
    const o = CTX_SEGS + i * 24;
    out[n] = { selector: context.readUInt32LE(o) & 0xffff, base: context.readBigUInt64LE(o + 8), limit: context.readUInt32LE(o + 16), flags: context.readUInt32LE(o + 20) };
  });
  return out;
}

/** Unicorn's ids of DR0-DR3, DR6, DR7 (x86.h: DR0 is 66). */
const DEBUG_REGS = [66, 67, 68, 69, X86_REG.DR6, X86_REG.DR7];

/** What QEMU's `info registers` shows beyond the register file (Target.descriptors). */
export function readDescriptors(e: UnicornEngine, halted?: boolean): CpuDescriptors {
  const c = e.saveContext();
  return { segments: readSegmentCaches(e, c), hflags: c.readUInt32LE(CTX_HFLAGS), debug: DEBUG_REGS.map((id) => e.readReg(id)), ...(halted !== undefined ? { halted } : {}) };
}
