/**
 * Interrupt and exception delivery in 32-bit protected mode, as the CPU does it through the IDT
 * (Unicorn never delivers them: its hook takes them, and dbg delivers):
 *   - the 8-byte gate of the vector: 32-bit interrupt gate (clears IF) or trap gate; a software
 *     `int n` whose gate DPL is below the CPL raises #GP (error code vector*8+2) instead;
 *   - the gate's code segment from the GDT; to a more privileged ring, the stack switches to
 *     SS0:ESP0 of the current TSS and the old SS:ESP are pushed first;
 *   - then EFLAGS, CS, EIP and the error code (when the exception has one) are pushed, and TF,
 *     NT, RF and VM are cleared.
 * Segment descriptors are loaded into the engine's segment caches through its raw CPU context (the
 * layout x86-64-cpu.ts documents), since Unicorn's register API writes selectors only.
 * 16-bit gates, task gates, LDT selectors and virtual-8086 mode are refused with a reason.
 */

import { X86_REG, type UnicornEngine } from './unicorn.js';
import { enterProtectedMode32, readSegmentCaches, RFLAGS_IF, RFLAGS_TF, type GuestMemory } from './x86-64-cpu.js';

const CTX_HFLAGS = 192;
const CTX_SEGS = 200;
const SEG_CS = 1;
const SEG_SS = 2;
const HF_CPL = 3;
const HF_CS32 = 1 << 4;
const HF_SS32 = 1 << 5;
const DESC_B = 1 << 22;
const RFLAGS_NT = 0x4000n;
const RFLAGS_RF = 0x10000n;
const RFLAGS_VM = 0x20000n;

export type Delivery =
  | { ok: true; writes: { phys: bigint; data: Buffer; old: Buffer }[]; registers: Map<string, bigint> }
  | { ok: false; why: string; gp?: number };

interface Descriptor {
  base: bigint;
  limit: number;
  flags: number;
}

function descriptor(e: UnicornEngine, mem: GuestMemory, selector: number, what: string): Descriptor | string {
  if (selector & 4) return `${what} selector 0x${selector.toString(16)} is in the LDT; dbg delivers through GDT segments only`;
  if ((selector & ~7) === 0) return `${what} selector is null`;
  const gdt = e.readMmr(X86_REG.GDTR);
  const at = selector & ~7;
  if (at + 7 > gdt.limit) return `${what} selector 0x${selector.toString(16)} is past the GDT limit 0x${gdt.limit.toString(16)}`;
  let d: Buffer;
  try {
    d = mem.readVirt(gdt.base + BigInt(at), 8);
  } catch (err) {
    return `GDT entry of ${what} selector 0x${selector.toString(16)} unreadable: ${(err as Error).message}`;
  }
  const lo = d.readUInt32LE(0);
  const hi = d.readUInt32LE(4);
  if (!(hi & 0x8000)) return `${what} segment 0x${selector.toString(16)} is not present`;
  let limit = (lo & 0xffff) | (hi & 0xf0000);
  if (hi & 0x800000) limit = ((limit << 12) | 0xfff) >>> 0;
  const base = BigInt(((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0);
  return { base, limit, flags: hi & 0x00ffff00 };
}

function setSegment(ctx: Buffer, seg: number, selector: number, d: Descriptor): void {
  const o = CTX_SEGS + seg * 24;
  ctx.writeUInt32LE(selector, o);
  ctx.writeBigUInt64LE(d.base, o + 8);
  ctx.writeUInt32LE(d.limit >>> 0, o + 16);
  ctx.writeUInt32LE(d.flags >>> 0, o + 20);
}

/** Deliver `vector` (see the header). `software`: an `int n` instruction, RIP already after it. */
export function deliverInterrupt32(e: UnicornEngine, mem: GuestMemory, vector: number, errorCode?: bigint, software = false): Delivery {
  const rflags = e.readReg(X86_REG.RFLAGS);
  if (rflags & RFLAGS_VM) return { ok: false, why: 'the vCPU is in virtual-8086 mode, which dbg does not deliver interrupts in' };
  const idt = e.readMmr(X86_REG.IDTR);
  const v = `IDT gate 0x${vector.toString(16)}`;
  if (vector * 8 + 7 > idt.limit) return { ok: false, why: `IDT limit 0x${idt.limit.toString(16)} does not cover vector 0x${vector.toString(16)}`, gp: vector * 8 + 2 };
  let gate: Buffer;
  try {
    gate = mem.readVirt(idt.base + BigInt(vector * 8), 8);
  } catch (err) {
    return { ok: false, why: `${v} unreadable: ${(err as Error).message}` };
  }
  const attr = gate[5]!;
  const type = attr & 0x1f;
  const gateDpl = (attr >> 5) & 3;
  const ctx = e.saveContext();
  let hflags = ctx.readUInt32LE(CTX_HFLAGS);
  const cpl = hflags & HF_CPL;
  if (software && gateDpl < cpl) return { ok: false, why: `${v} has DPL ${gateDpl}, below the CPL ${cpl} of the int instruction`, gp: vector * 8 + 2 };
  if (!(attr & 0x80)) return { ok: false, why: `${v} is not present`, gp: vector * 8 + 2 };
  if (type !== 0xe && type !== 0xf) {
    const kind = type === 0x5 ? 'a task gate' : type === 0x6 || type === 0x7 ? 'a 16-bit gate' : `type ${type & 0xf}, not an interrupt or trap gate`;
    return { ok: false, why: `${v} is ${kind}; dbg delivers through 32-bit interrupt and trap gates` };
  }
  const selector = gate.readUInt16LE(2);
  const target = BigInt((gate.readUInt16LE(0) | (gate.readUInt16LE(6) << 16)) >>> 0);
  const code = descriptor(e, mem, selector, `${v}'s code`);
  if (typeof code === 'string') return { ok: false, why: code };
  if (!(code.flags & 0x800) || !(code.flags & 0x1000)) return { ok: false, why: `${v}'s selector 0x${selector.toString(16)} is not a code segment` };
  const conforming = (code.flags & 0x400) !== 0;
  const newCpl = conforming ? cpl : (code.flags >> 13) & 3;
  if (newCpl > cpl) return { ok: false, why: `${v} leads to ring ${newCpl}, less privileged than the current ring ${cpl}`, gp: selector & ~3 };
  const caches = readSegmentCaches(e);
  const eip = e.readReg(X86_REG.RIP) & 0xffff_ffffn;
  const cs = BigInt(caches.cs!.selector);
  const esp = e.readReg(X86_REG.RSP) & 0xffff_ffffn;
  const words: bigint[] = [];
  let stackBase: bigint;
  let newEsp: bigint;
  let ss: { selector: number; d: Descriptor } | undefined;
  if (newCpl < cpl) {
    const tr = caches.tr!;
    let tss: Buffer;
    try {
      tss = mem.readVirt(tr.base + 4n, 6);
    } catch (err) {
      return { ok: false, why: `the TSS at 0x${tr.base.toString(16)} (ESP0, SS0) is unreadable: ${(err as Error).message}` };
    }
    const ss0 = tss.readUInt16LE(4);
    const d = descriptor(e, mem, ss0, 'TSS SS0');
    if (typeof d === 'string') return { ok: false, why: d };
    ss = { selector: (ss0 & ~3) | newCpl, d };
    stackBase = d.base;
    newEsp = BigInt(tss.readUInt32LE(0));
    words.push(BigInt(caches.ss!.selector), esp);
  } else {
    stackBase = caches.ss!.base;
    newEsp = esp;
  }
  words.push(rflags & 0xffff_ffffn, cs, eip);
  if (errorCode !== undefined) words.push(errorCode);
  const frame = Buffer.alloc(words.length * 4);
  words.reverse().forEach((w, i) => frame.writeUInt32LE(Number(BigInt.asUintN(32, w)), i * 4));
  newEsp = BigInt.asUintN(32, newEsp - BigInt(frame.length));
  const at = BigInt.asUintN(32, stackBase + newEsp);
  let phys: bigint;
  let old: Buffer;
  try {
    old = mem.readVirt(at, frame.length);
    phys = mem.writeVirt(at, frame);
  } catch (err) {
    return { ok: false, why: `interrupt frame at 0x${at.toString(16)} not writable: ${(err as Error).message}` };
  }
  const newCs = (selector & ~3) | newCpl;
  setSegment(ctx, SEG_CS, newCs, code);
  if (ss) setSegment(ctx, SEG_SS, ss.selector, ss.d);
  const ssFlags = ss ? ss.d.flags : caches.ss!.flags;
  hflags = (hflags & ~(HF_CPL | HF_CS32 | HF_SS32)) | newCpl | (code.flags & DESC_B ? HF_CS32 : 0) | (ssFlags & DESC_B ? HF_SS32 : 0);
  ctx.writeUInt32LE(hflags >>> 0, CTX_HFLAGS);
  e.restoreContext(ctx);
  const newFlags = (type === 0xe ? rflags & ~RFLAGS_IF : rflags) & ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
  const rsp = (e.readReg(X86_REG.RSP) & ~0xffff_ffffn) | newEsp;
  e.writeReg(X86_REG.RSP, ss || ssFlags & DESC_B ? newEsp : rsp);
  e.writeReg(X86_REG.RFLAGS, newFlags);
  e.writeReg(X86_REG.RIP, target);
  const registers = new Map<string, bigint>([
    ['rsp', e.readReg(X86_REG.RSP)],
    ['eflags', newFlags],
    ['rip', target],
    ['cs', BigInt(newCs)],
  ]);
  if (ss) registers.set('ss', BigInt(ss.selector));
  return { ok: true, writes: [{ phys, data: frame, old }], registers };
}

/**
 * Start a vCPU as a start-up IPI does: real mode, CS = vector << 8 (base vector << 12), IP = 0,
 * the other segments 0 with 64 KiB limits, CR0 = ET, paging and long mode off, IF clear.
 */
export function enterRealMode(e: UnicornEngine, vector: number): void {
  enterProtectedMode32(e, 0n, 0xffff); // clears long mode and EFER, which the register API cannot
  e.writeReg(X86_REG.CR0, 0x10n);
  e.writeReg(X86_REG.CR3, 0n);
  const ctx = e.saveContext();
  for (let seg = 0; seg < 6; seg++) {
    const sel = seg === SEG_CS ? vector << 8 : 0;
    setSegment(ctx, seg, sel, { base: BigInt(sel << 4), limit: 0xffff, flags: seg === SEG_CS ? 0x9b00 : 0x9300 });
  }
  // hflags: CPL 0, 16-bit code and stack, no PE (bit 7), no long mode (bits 14, 15), no ADDSEG
  const hf = ctx.readUInt32LE(CTX_HFLAGS) & ~(HF_CPL | HF_CS32 | HF_SS32 | (1 << 6) | (1 << 7) | (1 << 14) | (1 << 15));
  ctx.writeUInt32LE(hf >>> 0, CTX_HFLAGS);
  e.restoreContext(ctx);
  for (const r of [X86_REG.RAX, X86_REG.RBX, X86_REG.RCX, X86_REG.RDX, X86_REG.RSI, X86_REG.RDI, X86_REG.RBP, X86_REG.RSP]) e.writeReg(r, 0n);
  e.writeReg(X86_REG.RFLAGS, 0x2n);
  e.writeReg(X86_REG.RIP, 0n);
}
