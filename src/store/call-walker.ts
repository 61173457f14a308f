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

/** What the walker needs to know about the instruction at a pc. */
export interface PcClass {
  readonly kind: 'call' | 'ret' | 'iret' | 'other';
  /** For a call: its return address (pc + size). */
  readonly next: bigint;
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
  /** Every instruction, in seq order; `depth` = frames open on the vCPU. */
  instruction?(seq: number, vcpu: number, info: T & { readonly pc: bigint }, depth: number): void;
}

export const MAX_CALL_DEPTH = 512;

/** Index of a pc's low 32-bit half in a Uint32Array over a BigUint64Array (host byte order). */
const LO = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;

type Info<T> = T & { readonly pc: bigint; readonly hi: number; readonly nextLo: number; readonly nextHi: number };

/**
 * Walk the history of `reader`; `describe` classifies a pc (called once per distinct pc, and for
 * each interrupted rip).
 */
export function walkCalls<T extends PcClass>(reader: TraceReader, describe: (pc: bigint) => T, hooks: CallHooks<T> = {}): CallTable {
  const vcpus = reader.vcpus;
  const pcIndex = new Map<bigint, number>();
  // The first pc seen with these low 32 bits: the stream is matched on 32-bit halves (no BigInt per instruction).
  const byLo = new Map<number, number>();
  const pcs: Info<T>[] = [];
  const info = (pc: bigint): number => {
    let i = pcIndex.get(pc);
    if (i !== undefined) return i;
    i = pcs.length;
    const d = describe(pc);
    pcs.push({ ...d, pc, hi: Number(pc >> 32n), nextLo: Number(d.next & 0xffffffffn), nextHi: Number((d.next >> 32n) & 0xffffffffn) });
    pcIndex.set(pc, i);
    const lo = Number(pc & 0xffffffffn);
    if (!byLo.has(lo)) byLo.set(lo, i);
    return i;
  };

  const rows: CallRow[] = [];
  const stacks: { ret: bigint; row: number; start: number }[][] = Array.from({ length: vcpus }, () => []);
  const ran = new Float64Array(vcpus);
  const prevIdx = new Int32Array(vcpus).fill(-1);
  const prevSeq = new Float64Array(vcpus).fill(-1);
  let tooDeep = 0;
  const interrupts = reader.chunkCount ? reader.inputs(reader.first, reader.end + 1).filter((i) => i.kind === 'interrupt' && i.vcpu !== null && i.vcpu < vcpus) : [];
  let nextIrq = 0;

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
    const d = reader.pcs(id);
    const words = new Uint32Array(d.pc.buffer, d.pc.byteOffset, count * 2);
    for (let k = 0; k < count; k++) {
      const seq = base + k;
      const v = d.vcpu[k]!;
      if (v >= vcpus) continue;
      const lo = words[2 * k + LO]!;
      const hi = words[2 * k + 1 - LO]!;
      let idx = byLo.get(lo);
      if (idx === undefined || pcs[idx]!.hi !== hi) idx = info(d.pc[k]!);
      const pi = pcs[idx]!;
      ran[v]!++;
      while (nextIrq < interrupts.length && interrupts[nextIrq]!.seq < seq) nextIrq++;
      let irqHere = nextIrq;
      while (irqHere < interrupts.length && interrupts[irqHere]!.seq === seq && interrupts[irqHere]!.vcpu !== v) irqHere++;
      const irq = irqHere < interrupts.length && interrupts[irqHere]!.seq === seq ? interrupts[irqHere] : undefined;
      const irqRip = irq ? ripOf(irq.detail) : undefined;
      // Where v's previous instruction went: here, or (an interrupt came first) the interrupted rip.
      const arrivedLo = irqRip === undefined ? lo : Number(irqRip & 0xffffffffn);
      const arrivedHi = irqRip === undefined ? hi : Number((irqRip >> 32n) & 0xffffffffn);
      const arrived = irqRip ?? pi.pc;
      const p = prevIdx[v]!;
      const st = stacks[v]!;
      if (p >= 0) {
        const pp = pcs[p]!;
        if (pp.kind === 'call' && (arrivedLo !== pp.nextLo || arrivedHi !== pp.nextHi)) {
          open(v, seq, pp.next, pp.pc, arrived, null);
        } else if (pp.kind === 'ret' || pp.kind === 'iret') {
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
      for (let n = nextIrq; n < interrupts.length && interrupts[n]!.seq === seq; n++) {
        const i = interrupts[n]!;
        if (i.vcpu !== v) continue;
        const rip = ripOf(i.detail) ?? -1n;
        open(v, seq, rip, rip, pi.pc, Number(i.detail['vector'] ?? -1));
      }
      hooks.instruction?.(seq, v, pi, st.length);
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
