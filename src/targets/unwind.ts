/**
 * The target-generic unwinder: a thread's call stack as a list of frames.
 *
 * Used by `::stack` and by kernel dumps. Frame 0 comes from the thread's registers. Each caller
 * comes from the CFI (.eh_frame, else .debug_frame) of the module that holds the pc, when the
 * module has an ELF file with CFI for it (`Module.elf`, `Module.bias`, and the run-time range
 * `start`-`end` that elfModule() gives); else, on x86-64, from where the pc is in its function
 * (the first instruction, just after `push %rbp`, a `ret`: the return address is on top of the
 * stack, as gdb's prologue analyser finds it); else from the frame-pointer chain ([fp] = caller's
 * fp, [fp + ptr] = return address). Every target (live guest, trace, dump) goes through this one
 * walk, so the same machine state gives the same stack whichever target shows it. The walk stops at a zero
 * or unreadable return address, a return address the CFI marks undefined (the outermost frame:
 * `_start`, `clone3`), a stack pointer that does not increase, or `maxFrames` (default 256).
 * Frame 0 at pc 0 or at an unreadable pc (a call through a bad pointer) has its return address
 * on top of the stack, as gdb assumes too.
 *
 * Names are left to callers: `target.symbols.describe(pc - (level > 0 ? 1n : 0n))`, the return
 * address minus one as gdb does, so a call at the very end of a function names that function.
 */

import type { Arch } from '../arch/arch.js';
import { DbgError } from '../common/errors.js';
import { EhFrame, evalDwarfExpr, type ExprContext, type UnwindRow } from '../symbols/eh-frame.js';
import type { ElfFile } from '../symbols/elf-file.js';
import type { Module } from '../symbols/symbol-space.js';
import { symbolTableFor } from '../symbols/compact-symbol-table.js';
import { SymbolTable } from '../symbols/symbol-table.js';
import type { Target } from './target.js';

/**
 * A module for an ELF file loaded at `bias` (run-time minus link-time address): it spans the
 * file's PT_LOAD segments, so that the unwinder finds the file's CFI for the pcs in it.
 */
export function elfModule(name: string, path: string, elf: ElfFile, table: SymbolTable, bias = 0n): Module {
  const loads = elf.loadSegments().filter((p) => p.memsz > 0n);
  if (loads.length === 0) return { name, path, table, elf, bias };
  let start = loads[0]!.vaddr;
  let end = 0n;
  for (const p of loads) {
    if (p.vaddr < start) start = p.vaddr;
    if (p.vaddr + p.memsz > end) end = p.vaddr + p.memsz;
  }
  return { name, path, table, elf, bias, start: start + bias, end: end + bias };
}

/**
 * A mapped module (a process's executable or library) whose symbol table is built on first use:
 * a broken table becomes a warning pushed to `warnings` and an empty table.
 */
export function lazyElfModule(name: string, path: string, elf: ElfFile, bias: bigint, start: bigint, end: bigint, warnings: string[]): Module {
  let table: SymbolTable | undefined;
  return {
    name,
    path,
    start,
    end,
    elf,
    bias,
    get table(): SymbolTable {
      if (!table) {
        try {
          table = symbolTableFor(name, elf, bias);
        } catch (e) {
          if (!(e instanceof DbgError)) throw e;
          warnings.push(`cannot read symbols of "${path}": ${e.message}`);
          table = new SymbolTable(name, [], bias);
        }
      }
      return table;
    },
  };
}

export interface Frame {
  readonly level: number;
  /** The frame's pc: the thread's pc for frame 0, the return address for callers. */
  readonly pc: bigint;
  readonly sp: bigint;
  /** Canonical frame address (the caller's sp before the call), when CFI gave one. */
  readonly cfa?: bigint;
  /**
   * How this frame was found: frame 0 from the registers, callers by CFI or frame pointer, or
   * 'return-address' when frame 0's pc is no code (0, or unreadable: a call through a bad
   * pointer) and its caller is the return address the call left on top of the stack.
   */
  readonly how: 'registers' | 'cfi' | 'frame-pointer' | 'return-address' | 'orc';
  /**
   * The frame's registers by DWARF number, as far as they are known: all of them in frame 0,
   * in callers those the CFI restores plus those it leaves alone (assumed unchanged, as gdb does).
   */
  readonly regs: ReadonlyMap<number, bigint>;
  /**
   * A frame of a function that ended in a tail call (its jump to the next function left no
   * return address): no machine frame of its own, found from the call sites' DWARF. Its pc is
   * where the jump ends, its registers are its caller's (gdb's TAILCALL_FRAME).
   */
  readonly tailCall?: true;
}

export interface UnwindOptions {
  readonly maxFrames?: number;
  /**
   * Keep going past the program's `main` into the C runtime (`__libc_start_main`, `_start`).
   * Off by default, as gdb's `set backtrace past-main`.
   */
  readonly pastMain?: boolean;
}

/** DWARF-numbered register values of one frame; absent = unknown. */
type RegState = Map<number, bigint>;

export function unwind(target: Target, thread: number, opts?: UnwindOptions): Frame[] {
  // Every read goes through `thread`'s view of memory: on a kernel dump each CPU has its own CR3.
  const read: ReadMemory = (addr, length) => target.readVirtual(addr, length, thread);
  const arch = target.arch;
  const max = opts?.maxFrames ?? 256;
  const named = target.registers(thread);
  const pcCol = arch.dwarfReturnColumn;
  const spCol = arch.dwarfRegisters.indexOf(arch.sp);
  const fpCol = arch.dwarfRegisters.indexOf(arch.fp);

  let regs: RegState = new Map();
  arch.dwarfRegisters.forEach((name, n) => {
    const v = named.get(name);
    if (v !== undefined) regs.set(n, v);
  });
  const frames: Frame[] = [];
  let how: Frame['how'] = 'registers';
  // A caller's pc is a return address: look up pc - 1 so a call that ends its function still
  // finds that function's CFI. Not after a signal frame, whose "caller" pc is the interrupted one.
  let isCaller = false;

  while (frames.length < max) {
    const pc = regs.get(pcCol);
    const sp = regs.get(spCol);
    if (pc === undefined || sp === undefined || (pc === 0n && frames.length > 0)) break;
    const lookup: bigint = isCaller ? pc - 1n : pc;
    // The target's own unwinder first (a Linux kernel's ORC tables), then CFI, then frame pointers.
    const own: ReturnType<NonNullable<Target['unwindStep']>> = target.unwindStep?.(thread, namedRegisters(arch, regs), !isCaller);
    if (own?.regs === 'end') {
      frames.push({ level: frames.length, pc, sp, how, regs });
      break;
    }
    const cfi: { row: UnwindRow } | undefined = own ? undefined : cfiFor(target, lookup);
    let next: RegState | undefined = own ? dwarfRegisters(arch, own.regs as ReadonlyMap<string, bigint>) : undefined;
    let cfa: bigint | undefined;
    let signalFrame: boolean = own?.signal ?? false;
    if (cfi) {
      const r = stepCfi(read, arch, regs, cfi.row, pcCol, spCol);
      if (r === 'outermost') {
        frames.push({ level: frames.length, pc, sp, how, regs });
        break;
      }
      if (r) {
        next = r.regs;
        cfa = r.cfa;
        signalFrame = cfi.row.signalFrame;
      }
    }
    frames.push({ level: frames.length, pc, sp, ...(cfa !== undefined ? { cfa } : {}), how, regs });
    if (!opts?.pastMain && isMain(target, lookup)) break;
    let nextHow: Frame['how'] = own ? 'orc' : 'cfi';
    if (!next && frames.length === 1 && !isCode(read, pc)) {
      next = stepReturnAddress(read, arch, regs, pcCol, spCol);
      nextHow = 'return-address';
    }
    if (!next && !cfi && !signalFrame) {
      // No CFI: a frame that has not set up (or has torn down) its frame pointer yet.
      next = stepPrologue(target, read, regs, pc, pcCol, spCol, fpCol, frames.length === 1);
      nextHow = 'return-address';
    }
    if (!next) {
      next = stepFramePointer(read, arch, regs, pcCol, spCol, fpCol);
      nextHow = 'frame-pointer';
    }
    if (!next) break;
    const nsp = next.get(spCol);
    const npc = next.get(pcCol);
    if (nsp === undefined || npc === undefined || npc === 0n) break;
    if (own?.user) {
      // Entered from user mode: its registers are the last frame (its stack is another world).
      frames.push({ level: frames.length, pc: npc, sp: nsp, how: 'orc', regs: next });
      break;
    }
    // The stack grows down: a caller's sp below or at its callee's means a loop or garbage.
    if (nsp < sp || (nsp === sp && npc === pc)) break;
    regs = next;
    how = nextHow;
    isCaller = !signalFrame;
  }
  return frames;
}

function namedRegisters(arch: Arch, regs: RegState): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [n, v] of regs) out.set(arch.dwarfRegisters[n]!, v);
  return out;
}

function dwarfRegisters(arch: Arch, named: ReadonlyMap<string, bigint>): RegState {
  const out: RegState = new Map();
  arch.dwarfRegisters.forEach((name, n) => {
    const v = named.get(name);
    if (v !== undefined) out.set(n, v);
  });
  return out;
}

/** Whether `pc` is in the executable's (the first module's) `main`. */
function isMain(target: Target, pc: bigint): boolean {
  const exe = target.symbols.modules[0];
  if (!exe || exe.start === undefined || exe.end === undefined || pc < exe.start || pc >= exe.end) return false;
  const r = exe.table.resolve(pc);
  return r !== undefined && r.inside && r.sym.name === 'main';
}

/** The CFI row for run-time address `pc`, from the module that holds it: .eh_frame, then .debug_frame. */
function cfiFor(target: Target, pc: bigint): { row: UnwindRow } | undefined {
  for (const m of target.symbols.modules) {
    if (!m.elf || m.start === undefined || m.end === undefined || pc < m.start || pc >= m.end) continue;
    const link = pc - (m.bias ?? 0n);
    for (const cfi of [EhFrame.of(m.elf), EhFrame.debugFrameOf(m.elf)]) {
      try {
        const row = cfi?.rowFor(link);
        if (row) return { row };
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
      }
    }
    return undefined;
  }
  return undefined;
}

/** Memory as the unwound thread sees it. */
type ReadMemory = (addr: bigint, length: number) => Buffer;

function readWord(read: ReadMemory, arch: Arch, addr: bigint, size = arch.pointerBytes): bigint {
  const b = read(addr, size);
  let v = 0n;
  for (let i = 0; i < size; i++) v |= BigInt(b[arch.littleEndian ? i : size - 1 - i]!) << BigInt(8 * i);
  return v;
}

/**
 * The caller's registers by the CFI row; 'outermost' when the row says there is no caller
 * (return address undefined); undefined when a value the rule needs cannot be had.
 */
function stepCfi(
  read: ReadMemory,
  arch: Arch,
  regs: RegState,
  row: UnwindRow,
  pcCol: number,
  spCol: number,
): { regs: RegState; cfa: bigint } | 'outermost' | undefined {
  const mask = (1n << BigInt(arch.pointerBytes * 8)) - 1n;
  const ctx: ExprContext = {
    register(n) {
      const v = regs.get(n);
      if (v === undefined) throw new DbgError('unmapped', `register ${n} is unknown in this frame`);
      return v;
    },
    readMemory: (addr, size) => readWord(read, arch, addr, size),
    addressSize: arch.pointerBytes,
    littleEndian: arch.littleEndian,
  };
  try {
    let cfa: bigint;
    if (row.cfa.kind === 'reg-offset') {
      const base = regs.get(row.cfa.reg);
      if (base === undefined) return undefined;
      cfa = (base + row.cfa.offset) & mask;
    } else cfa = evalDwarfExpr(row.cfa.expr, ctx);

    const ra = row.registers.get(row.returnColumn);
    if (ra?.kind === 'undefined') return 'outermost';

    // Registers without a rule keep their values (callee-saved by convention); sp is the CFA.
    const next: RegState = new Map(regs);
    next.set(spCol, cfa);
    for (const [n, rule] of row.registers) {
      switch (rule.kind) {
        case 'undefined':
          next.delete(n);
          break;
        case 'same':
          break;
        case 'offset':
          next.set(n, readWord(read, arch, (cfa + rule.offset) & mask));
          break;
        case 'val-offset':
          next.set(n, (cfa + rule.offset) & mask);
          break;
        case 'register': {
          const v = regs.get(rule.reg);
          if (v === undefined) next.delete(n);
          else next.set(n, v);
          break;
        }
        case 'expr':
          next.set(n, readWord(read, arch, evalDwarfExpr(rule.expr, ctx, cfa)));
          break;
        case 'val-expr':
          next.set(n, evalDwarfExpr(rule.expr, ctx, cfa));
          break;
      }
    }
    if (row.returnColumn !== pcCol) {
      const v = next.get(row.returnColumn);
      if (v === undefined) return undefined;
      next.set(pcCol, v);
    } else if (!row.registers.has(pcCol)) return undefined;
    return { regs: next, cfa };
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
}

/** Whether `pc` can be code at all: not 0 and readable. */
function isCode(read: ReadMemory, pc: bigint): boolean {
  if (pc === 0n) return false;
  try {
    read(pc, 1);
    return true;
  } catch (e) {
    if (e instanceof DbgError) return false;
    throw e;
  }
}

/**
 * x86-64 without CFI, frame 0 only: the caller when the return address is found from sp alone —
 * at a function's first instruction or a `ret` ([sp]), just after its opening `push %rbp`
 * ([sp + 8], and rbp = [sp]), anywhere in a function that does not open with `push %rbp` ([sp],
 * as gdb's prologue analyser assumes). Undefined otherwise: the rbp chain is right then.
 */
function stepPrologue(target: Target, read: ReadMemory, regs: RegState, pc: bigint, pcCol: number, spCol: number, fpCol: number, innermost: boolean): RegState | undefined {
  const arch = target.arch;
  if (arch.name !== 'x86-64' || !innermost) return undefined;
  const sym = target.symbols.resolve(pc);
  if (!sym || !sym.inside) return undefined;
  let start: Buffer;
  let atPc: number;
  try {
    start = read(pc - sym.offset, 5);
    atPc = read(pc, 1)[0]!;
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
  // `endbr64` (f3 0f 1e fa) may come before the prologue.
  const endbr = start.readUInt32BE(0) === 0xf30f1efa ? 4n : 0n;
  const push = start[Number(endbr)] === 0x55;
  // A function that does not open with `push %rbp` keeps no frame pointer: as gdb's analyser
  // assumes, nothing is pushed where it stops and [sp] is the return address.
  if (sym.offset <= endbr || atPc === 0xc3 || !push) return stepReturnAddress(read, arch, regs, pcCol, spCol);
  if (sym.offset === endbr + 1n) {
    const sp = regs.get(spCol)!;
    const next = stepReturnAddress(read, arch, regs, pcCol, spCol, 8n);
    if (!next) return undefined;
    try {
      next.set(fpCol, readWord(read, arch, sp));
    } catch (e) {
      if (e instanceof DbgError) return undefined;
      throw e;
    }
    return next;
  }
  return undefined;
}

/** The caller of a frame that has not pushed anything yet (or `skip` bytes): [sp + skip] is its return address. */
function stepReturnAddress(read: ReadMemory, arch: Arch, regs: RegState, pcCol: number, spCol: number, skip = 0n): RegState | undefined {
  const sp = regs.get(spCol)! + skip;
  try {
    const next: RegState = new Map(regs);
    next.set(pcCol, readWord(read, arch, sp));
    next.set(spCol, sp + BigInt(arch.pointerBytes));
    return next;
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
}

/** The caller by the frame-pointer chain: [fp] is the caller's fp, [fp + ptr] the return address. */
function stepFramePointer(read: ReadMemory, arch: Arch, regs: RegState, pcCol: number, spCol: number, fpCol: number): RegState | undefined {
  const fp = regs.get(fpCol);
  if (fp === undefined || fp === 0n) return undefined;
  const ptr = BigInt(arch.pointerBytes);
  try {
    const callerFp = readWord(read, arch, fp);
    const ret = readWord(read, arch, fp + ptr);
    const next: RegState = new Map(regs);
    next.set(fpCol, callerFp);
    next.set(pcCol, ret);
    next.set(spCol, fp + 2n * ptr);
    return next;
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
}
