/**
 * The calls of a recorded history, derived once from its pc stream and its inputs: what
 * `dbg report`, the `calls` table of `::sql` / `dbg query` (calls-db.ts) and `::calls` show.
 *
 * A frame opens when
 *   - instruction I on vCPU v is a call and v's next instruction is not the one after it (the
 *     return address is I + size); the frame's entry is that next instruction;
 *   - an interrupt (input table, kind 'interrupt') is delivered to v at seq S: the instruction at
 *     S is the handler's first; the return address is the interrupted rip, the first word of the
 *     interrupt frame the input recorded writing to the stack.
 * A frame closes when a ret/iret on v is followed, on v, by the return address of a frame on v's
 * stack: that frame and every frame above it (entered and never returned: a longjmp, a task
 * switch) close at the ret's seq. Other vCPUs' instructions in between do not matter: each vCPU
 * has its own stack, and "next" always means v's next instruction.
 *
 * When an interrupt arrives right after a call or a ret, the instruction the call or ret went to
 * did not run yet: the interrupted rip is where it went (the handler runs first).
 *
 * Rows come in the order frames opened (call_seq ascending; at one seq, in nesting order), so
 * the frames of one vCPU, read in row order, nest: a consumer rebuilds the stack at any seq by
 * pushing at call_seq and popping after return_seq.
 */

import type { TraceReader } from './trace-reader.js';
import { grown } from '../common/grown.js';

/** What the walker needs to know about the instruction at a pc. */
export interface PcClass {
  readonly kind: 'call' | 'ret' | 'iret' | 'other';
  /** For a call: its return address (pc + size). */
  readonly next: bigint;
  /** A call read through a 40-4F byte: not a call when the vCPU goes on at pc + 1 (a 32-bit inc/dec; x86-64-branch.ts). */
  readonly rex?: boolean;
}

/** One frame. Seqs are positions in the history; pcs virtual addresses. */
export interface CallRow {
  /** The first instruction run in the callee (the handler, for an interrupt). */
  readonly callSeq: number;
  /** The ret/iret that left it; null when the history ends inside it. */
  returnSeq: number | null;
  readonly vcpu: number;
  /** The call instruction, or for an interrupt the interrupted rip. */
  readonly callerPc: bigint;
  /** Where the callee was entered (for an interrupt: the handler's first instruction). */
  readonly calleePc: bigint;
  /** Frames of this vCPU open below it (0: called from outside any recorded frame). */
  readonly depth: number;
  /** Instructions the vCPU ran from the entry through the return (to the end of the history when it never returned). */
  instructions: number;
  /** The interrupt vector, for a frame an interrupt opened. */
  readonly vector: number | null;
}

export interface CallTable {
  readonly rows: CallRow[];
  /** The history end the table was derived up to. */
  readonly end: number;
  /** Calls that were not followed because the stack was MAX_CALL_DEPTH deep. */
  readonly tooDeep: number;
}

/** Per-instruction callbacks: a consumer that needs more than the rows (the report's lanes and tree). */
export interface CallHooks<T extends PcClass> {
  /** A frame opened (before `instruction` is called for its first instruction). */
  open?(row: CallRow, index: number): void;
  /** A frame closed (before `instruction` is called for the vCPU's next instruction). */
  close?(row: CallRow, index: number): void;
  /** Every instruction, in seq order; `depth` = frames open on the vCPU; `index` numbers the distinct pcs from 0 in the order first seen. */
  instruction?(seq: number, vcpu: number, info: T & { readonly pc: bigint }, depth: number, index: number): void;
}

export const MAX_CALL_DEPTH = 512;

/** Index of a pc's low 32-bit half in an Int32Array over a BigUint64Array (host byte order). */
const LO = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

const OTHER = 0;
const CALL = 1;
const RET = 2;
/** A call read through a 40-4F byte (PcClass.rex). */
const CALL_REX = 3;

/**
 * The distinct pcs of a walk, numbered in the order first seen, with what the hot loop needs in
 * typed arrays: the stream is matched on signed 32-bit halves (no BigInt, no boxed number per
 * instruction), through an open-addressing table keyed by the low half that keeps the first pc
 * seen with it (a pc whose high half differs takes the slow path: a Map on the bigint).
 */
class PcTable<T extends PcClass> {
  readonly infos: (T & { readonly pc: bigint })[] = [];
  private readonly index = new Map<bigint, number>();
  kind = new Uint8Array(1024);
  hi = new Int32Array(1024);
  nextLo = new Int32Array(1024);
  nextHi = new Int32Array(1024);
  bits = 12;
  keys = new Int32Array(1 << 12);
  vals = new Int32Array(1 << 12).fill(-1);
  private used = 0;

  constructor(private readonly describe: (pc: bigint) => T) {}

  /** The index of the first pc seen whose low half is `lo`; -1 when none. */
  byLo(lo: number): number {
    const mask = (1 << this.bits) - 1;
    for (let h = Math.imul(lo, 0x9e3779b1) >>> (32 - this.bits); ; h = (h + 1) & mask) {
      const i = this.vals[h]!;
      if (i < 0 || this.keys[h] === lo) return i;
    }
  }

  /** The index of `pc`, described on first sight. */
  of(pc: bigint): number {
    let i = this.index.get(pc);
    if (i !== undefined) return i;
    i = this.infos.length;
    const d = this.describe(pc);
    this.infos.push({ ...d, pc });
    this.index.set(pc, i);
    if (i >= this.kind.length) {
      const n = this.kind.length * 2;
      this.kind = grown(this.kind, n);
      this.hi = grown(this.hi, n);
      this.nextLo = grown(this.nextLo, n);
      this.nextHi = grown(this.nextHi, n);
    }
    this.kind[i] = d.kind === 'call' ? (d.rex ? CALL_REX : CALL) : d.kind === 'ret' || d.kind === 'iret' ? RET : OTHER;
    this.hi[i] = Number(BigInt.asIntN(32, pc >> 32n));
    this.nextLo[i] = Number(BigInt.asIntN(32, d.next));
    this.nextHi[i] = Number(BigInt.asIntN(32, d.next >> 32n));
    const lo = Number(BigInt.asIntN(32, pc));
    if (this.byLo(lo) < 0) this.insert(lo, i);
    return i;
  }

  private insert(lo: number, i: number): void {
    if (++this.used * 2 > this.vals.length) {
      const keys = this.keys;
      const vals = this.vals;
      this.bits++;
      this.keys = new Int32Array(1 << this.bits);
      this.vals = new Int32Array(1 << this.bits).fill(-1);
      for (let h = 0; h < vals.length; h++) if (vals[h]! >= 0) this.place(keys[h]!, vals[h]!);
    }
    this.place(lo, i);
  }

  private place(lo: number, i: number): void {
    const mask = (1 << this.bits) - 1;
    let h = Math.imul(lo, 0x9e3779b1) >>> (32 - this.bits);
    while (this.vals[h]! >= 0) h = (h + 1) & mask;
    this.keys[h] = lo;
    this.vals[h] = i;
  }
}

/**
 * Walk the history of `reader`; `describe` classifies a pc (called once per distinct pc, and for
 * each interrupted rip).
 */
export function walkCalls<T extends PcClass>(reader: TraceReader, describe: (pc: bigint) => T, hooks: CallHooks<T> = {}): CallTable {
  const vcpus = reader.vcpus;
  const table = new PcTable(describe);
  const pcs = table.infos;

  const rows: CallRow[] = [];
  const stacks: { ret: bigint; row: number; start: number }[][] = Array.from({ length: vcpus }, () => []);
  const ran = new Float64Array(vcpus);
  const prevIdx = new Int32Array(vcpus).fill(-1);
  const prevSeq = new Float64Array(vcpus).fill(-1);
  let tooDeep = 0;
  const interrupts = reader.chunkCount ? reader.inputs(reader.first, reader.end + 1).filter((i) => i.kind === 'interrupt' && i.vcpu !== null && i.vcpu < vcpus) : [];
  let nextIrq = 0;
  const onInstruction = hooks.instruction;

  const open = (v: number, seq: number, ret: bigint, callerPc: bigint, calleePc: bigint, vector: number | null): void => {
    const st = stacks[v]!;
    if (st.length >= MAX_CALL_DEPTH) {
      tooDeep++;
      return;
    }
    const row: CallRow = { callSeq: seq, returnSeq: null, vcpu: v, callerPc, calleePc, depth: st.length, instructions: 0, vector };
    st.push({ ret, row: rows.length, start: ran[v]! - 1 });
    rows.push(row);
    hooks.open?.(row, rows.length - 1);
  };

  for (let id = 0; id < reader.chunkCount; id++) {
    const count = reader.chunkCountOf(id);
    if (count === 0) continue;
    const base = reader.chunkFirst(id);
    const d = reader.pcsScratch(id);
    const words = new Int32Array(d.pc.buffer, d.pc.byteOffset, count * 2);
    const vc = d.vcpu;
    // The seq of the next interrupt (Infinity: none left): instructions before it take the short path.
    let irqSeq = nextIrq < interrupts.length ? interrupts[nextIrq]!.seq : Infinity;
    // The table's arrays, as locals (reloaded when a new pc may have grown them).
    let { kind: kinds, hi: his, keys, vals, bits } = table;
    let mask = (1 << bits) - 1;
    for (let k = 0; k < count; k++) {
      const seq = base + k;
      const v = vc[k]!;
      if (v >= vcpus) continue;
      const lo = words[2 * k + LO]!;
      const hi = words[2 * k + 1 - LO]!;
      let h = Math.imul(lo, 0x9e3779b1) >>> (32 - bits);
      let idx = vals[h]!;
      while (idx >= 0 && keys[h] !== lo) {
        h = (h + 1) & mask;
        idx = vals[h]!;
      }
      if (idx < 0 || his[idx] !== hi) {
        idx = table.of(d.pc[k]!);
        ({ kind: kinds, hi: his, keys, vals, bits } = table);
        mask = (1 << bits) - 1;
      }
      ran[v]!++;
      // Where v's previous instruction went: here, or (an interrupt came first) the interrupted rip.
      let arrivedLo = lo;
      let arrivedHi = hi;
      let irqRip: bigint | undefined;
      if (seq >= irqSeq) {
        while (nextIrq < interrupts.length && interrupts[nextIrq]!.seq < seq) nextIrq++;
        irqSeq = nextIrq < interrupts.length ? interrupts[nextIrq]!.seq : Infinity;
        let irqHere = nextIrq;
        while (irqHere < interrupts.length && interrupts[irqHere]!.seq === seq && interrupts[irqHere]!.vcpu !== v) irqHere++;
        const irq = irqHere < interrupts.length && interrupts[irqHere]!.seq === seq ? interrupts[irqHere] : undefined;
        irqRip = irq ? ripOf(irq.detail) : undefined;
        if (irqRip !== undefined) {
          arrivedLo = Number(BigInt.asIntN(32, irqRip));
          arrivedHi = Number(BigInt.asIntN(32, irqRip >> 32n));
        }
      }
      const p = prevIdx[v]!;
      const st = stacks[v]!;
      if (p >= 0) {
        const kind = kinds[p]!;
        if ((kind === CALL || (kind === CALL_REX && (irqRip ?? pcs[idx]!.pc) !== pcs[p]!.pc + 1n)) && (arrivedLo !== table.nextLo[p] || arrivedHi !== table.nextHi[p])) {
          const pp = pcs[p]!;
          open(v, seq, pp.next, pp.pc, irqRip ?? pcs[idx]!.pc, null);
        } else if (kind === RET && st.length) {
          const arrived = irqRip ?? pcs[idx]!.pc;
          let j = st.length - 1;
          while (j >= 0 && st[j]!.ret !== arrived) j--;
          if (j >= 0) {
            for (let x = st.length - 1; x >= j; x--) {
              const f = st[x]!;
              const row = rows[f.row]!;
              row.returnSeq = prevSeq[v]!;
              row.instructions = ran[v]! - 1 - f.start;
            }
            const closed = st.splice(j);
            for (let x = closed.length - 1; x >= 0; x--) hooks.close?.(rows[closed[x]!.row]!, closed[x]!.row);
          }
        }
      }
      // Interrupts delivered here (more than one: nested deliveries at one instruction).
      if (seq === irqSeq) {
        for (let n = nextIrq; n < interrupts.length && interrupts[n]!.seq === seq; n++) {
          const i = interrupts[n]!;
          if (i.vcpu !== v) continue;
          const rip = ripOf(i.detail) ?? -1n;
          open(v, seq, rip, rip, pcs[idx]!.pc, Number(i.detail['vector'] ?? -1));
        }
      }
      if (onInstruction) onInstruction(seq, v, pcs[idx]!, st.length, idx);
      prevIdx[v] = idx;
      prevSeq[v] = seq;
    }
  }
  // Frames still open at the end of the history ran to it.
  for (let v = 0; v < vcpus; v++) for (const f of stacks[v]!) rows[f.row]!.instructions = ran[v]! - f.start;
  return { rows, end: reader.end, tooDeep };
}

/**
 * The interrupted rip of an interrupt input: the first word of the frame the delivery pushed
 * (detail.writes[0]: [error code,] rip, cs, rflags, rsp, ss; 8 bytes each). detail.registers
 * holds the registers after delivery (rip = the handler), not the interrupted ones.
 */
function ripOf(detail: Record<string, unknown>): bigint | undefined {
  const w = (detail['writes'] as { data?: unknown }[] | undefined)?.[0];
  if (typeof w?.data !== 'string' || !/^([0-9a-f]{2})+$/i.test(w.data)) return undefined;
  const frame = Buffer.from(w.data, 'hex');
  if (frame.length !== 40 && frame.length !== 48) return undefined;
  return frame.readBigUInt64LE(frame.length - 40);
}
