/**
 * A chunk of a recorded history driven again on a replay machine: for each slice, in seq order,
 * the inputs that came between slices (an interrupt's stack frame, a debugger's write, a vCPU's
 * start-up) are put in RAM and told to a sink, the vCPU's slice-start checkpoint is loaded, the
 * replay engine runs the slice's instructions with the recorded port and device reads given
 * back. The drive mirrors the live machine's (machine.ts, execution-observer.ts).
 *
 * A re-recording (rerecord.ts) drives every chunk with a recorder as the sink; a lazy-rows
 * trace's rows are made by driving one chunk so (chunk-indexer.ts); a seek in a lazy-rows trace
 * drives the chunk holding its target from the chunk's start, with no sink (replay-machine.ts).
 */

import { traceCorrupt } from '../../store/trace-check.js';
import type { Checkpoint, InputRow, TraceReader } from '../../store/trace-reader.js';
import type { ExecutionObserver, InputEvent } from '../emulator/execution-observer.js';

/** What a drive runs on: a ReplayMachine. */
export interface DrivenMachine {
  readonly ram: Buffer;
  readonly ramBase: bigint;
  load(c: Checkpoint): void;
  runSlice(vcpu: number, from: number, count: number): void;
  /** The history's inputs in [from, to) are `rows` (the drive read them: the machine need not). */
  knowInputs?(from: number, to: number, rows: InputRow[]): void;
}

/**
 * The inputs a drive gives, in seq and id order: `rows` from `next` on. With `more`, rows holds
 * only those read so far, and more(to) reads those before seq `to` first (a paced drive reads
 * what it reaches: chunk 0 of the sample kernel's boot holds 351, ~2 ms of parsing).
 */
interface DriveInputs {
  readonly rows: readonly InputRow[];
  next: number;
  more?(to: number): void;
}

/** A slice of the recorded history: vCPU `vcpu` ran [from, to). */
interface Slice {
  readonly vcpu: number;
  readonly from: number;
  readonly to: number;
  /** The row id of its end checkpoint (none when the history was cut inside it). */
  readonly end?: number;
}

/**
 * Chunk `chunk`'s slices, from its checkpoints: each slice starts with a checkpoint (flag 2
 * clear) and ends with one flagged as its end (2), or with the chunk; those between are inside
 * the slice. The
 * flag-2 checkpoints that end no slice (`strays`: their row ids at each "seq:vcpu", in order) are
 * the ones taken when a vCPU started or the debugger wrote a register (and, left out, when
 * recording began).
 */
function chunkPlan(reader: TraceReader, chunk: number): { slices: Slice[]; strays: Map<string, number[]> } {
  const open = new Map<number, number>();
  const slices: Slice[] = [];
  const strays = new Map<string, number[]>();
  // recording began with one checkpoint of every vCPU (EmulatorRecorder.attach), its first
  const began = new Set<number>();
  for (const c of reader.checkpointRows(chunk)) {
    const from = open.get(c.vcpu);
    if (c.flags & 2) {
      if (from !== undefined) slices.push({ vcpu: c.vcpu, from, to: c.seq, end: c.id });
      else if (chunk === 0 && c.seq === reader.first && !began.has(c.vcpu)) began.add(c.vcpu);
      else strays.set(`${c.seq}:${c.vcpu}`, [...(strays.get(`${c.seq}:${c.vcpu}`) ?? []), c.id]);
      open.delete(c.vcpu);
    } else if (from === undefined) {
      open.set(c.vcpu, c.seq);
    }
  }
  // A slice without its end was cut short where the history was (::discard -f in its middle):
  // it runs to the chunk's end.
  const end = reader.chunkFirst(chunk) + reader.chunkCountOf(chunk);
  for (const [vcpu, from] of open) if (from < end) slices.push({ vcpu, from, to: end });
  return { slices: slices.sort((a, b) => a.from - b.from), strays };
}

/**
 * Whether input `i`, at the seq where chunk `chunk` ends, was recorded in that chunk (it came
 * before the chunk was cut) rather than in the next: inputs say no chunk, what they left does.
 * A register write or a start-up left a checkpoint that ends no slice; an interrupt's stack frame
 * or a debugger's write left host writes in the chunk's memory rows. Port and device reads are
 * inside a slice, so in the chunk that runs it.
 */
function recordedIn(reader: TraceReader, chunk: number, strays: Map<string, number[]>, i: InputRow): boolean {
  // schema 8 says
  if (i.chunk !== undefined) return i.chunk === chunk;
  switch (i.kind) {
    case 'register-write':
    case 'cpu-start':
      return (strays.get(`${i.seq}:${i.vcpu ?? 0}`)?.length ?? 0) > 0;
    case 'interrupt': {
      const w = Array.isArray(i.detail.writes) ? (i.detail.writes[0] as { phys?: unknown } | undefined) : undefined;
      return typeof w?.phys === 'string' && reader.hostWriteIn(chunk, Number(w.phys), i.seq);
    }
    case 'memory-write':
      return typeof i.detail.phys === 'string' && reader.hostWriteIn(chunk, Number(i.detail.phys), i.seq);
    default:
      return false;
  }
}

/**
 * The chunk each input of the history (in seq, id order: TraceReader.inputs) was stored with:
 * what schema 8 keeps in input.chunk, found for an older trace as a re-recording finds it.
 */
export function storedChunks(reader: TraceReader): number[] {
  const rows = reader.inputs(reader.first, reader.end + 1);
  const out: number[] = [];
  for (let k = 0; k < reader.chunkCount; k++) {
    const end = reader.chunkFirst(k) + reader.chunkCountOf(k);
    const { strays } = chunkPlan(reader, k);
    while (out.length < rows.length && rows[out.length]!.seq < end) out.push(k);
    for (let i = rows[out.length]; i && i.seq === end && recordedIn(reader, k, strays, i); i = rows[out.length]) {
      // a register write or start-up at the end takes its checkpoint, as replayInput does
      if (i.kind === 'register-write' || i.kind === 'cpu-start') strays.get(`${i.seq}:${i.vcpu ?? 0}`)?.shift();
      out.push(k);
    }
  }
  while (out.length < rows.length) out.push(Math.max(reader.chunkCount - 1, 0));
  return out;
}

function hexBytes(reader: TraceReader, i: InputRow, v: unknown): Buffer {
  if (typeof v !== 'string' || !/^(?:[0-9a-f]{2})+$/.test(v)) throw traceCorrupt(reader.path, `the ${i.kind} input at seq ${i.seq}: its data is not hex bytes`);
  return Buffer.from(v, 'hex');
}

function hexNumber(reader: TraceReader, i: InputRow, v: unknown): bigint {
  if (typeof v !== 'string' || !/^0x[0-9a-f]{1,16}$/.test(v)) throw traceCorrupt(reader.path, `the ${i.kind} input at seq ${i.seq}: ${JSON.stringify(v)} is not a hex number`);
  return BigInt(v);
}

/** Guest-physical bytes into the replay's RAM; what they replaced. */
function poke(reader: TraceReader, m: DrivenMachine, i: InputRow, phys: bigint, data: Buffer): Buffer {
  const off = Number(phys - m.ramBase);
  if (phys < m.ramBase || off + data.length > m.ram.length) throw traceCorrupt(reader.path, `the ${i.kind} input at seq ${i.seq} writes 0x${phys.toString(16)}, outside the guest's RAM`);
  const old = Buffer.from(m.ram.subarray(off, off + data.length));
  data.copy(m.ram, off);
  return old;
}

/**
 * The input `i`, recorded between slices, as the live machine reported it (execution-observer.ts),
 * with its effect on RAM and registers made here. Undefined for what the recorder writes itself
 * (a write its page walk could not translate, stored at the cut).
 */
function replayInput(reader: TraceReader, m: DrivenMachine, strays: Map<string, number[]>, i: InputRow): InputEvent | undefined {
  const seq = BigInt(i.seq);
  const d = i.detail;
  const vcpu = i.vcpu ?? 0;
  const need = (what: string): never => {
    throw traceCorrupt(reader.path, `the ${i.kind} input at seq ${i.seq} has no ${what}`);
  };
  // the registers it left: the next checkpoint that ends no slice at its seq (two register
  // writes at one seq left two)
  const registersOf = () => {
    const id = strays.get(`${i.seq}:${vcpu}`)?.shift();
    const c = id === undefined ? undefined : reader.checkpointById(id);
    if (!c) need(`checkpoint of vCPU ${vcpu} at its seq`);
    m.load(c!);
  };
  switch (i.kind) {
    case 'interrupt': {
      const writes = (Array.isArray(d.writes) ? d.writes : need('stack writes')) as { phys?: unknown; data?: unknown }[];
      const regs = (typeof d.registers === 'object' && d.registers !== null ? d.registers : need('registers')) as Record<string, unknown>;
      return {
        kind: 'interrupt',
        seq,
        vcpu,
        vector: typeof d.vector === 'number' ? d.vector : need('vector'),
        writes: writes.map((w) => {
          const phys = hexNumber(reader, i, w.phys);
          const data = hexBytes(reader, i, w.data);
          return { phys, data, old: poke(reader, m, i, phys, data) };
        }),
        registers: new Map(Object.entries(regs).map(([k, v]) => [k, hexNumber(reader, i, v)])),
        ...(d.inSlice === true ? { inSlice: true as const } : {}),
      };
    }
    case 'memory-write': {
      const phys = hexNumber(reader, i, d.phys);
      const data = hexBytes(reader, i, d.data);
      return { kind: 'memory-write', seq, phys, data, old: poke(reader, m, i, phys, data) };
    }
    case 'register-write':
      registersOf();
      return { kind: 'register-write', seq, vcpu, name: typeof d.name === 'string' ? d.name : need('register name'), value: hexNumber(reader, i, d.value) };
    case 'cpu-start':
      registersOf();
      return { kind: 'cpu-start', seq, vcpu, by: typeof d.by === 'number' ? d.by : need('starting vCPU') };
    case 'port-in':
      return { kind: 'port-in', seq, vcpu, port: Number(d.port), size: Number(d.size), value: Number(d.value) };
    case 'mmio-read':
      return { kind: 'mmio-read', seq, vcpu, phys: Number(hexNumber(reader, i, d.phys)), size: Number(d.size), value: Number(d.value) };
    case 'lapic-id':
      return { kind: 'lapic-id', seq, vcpu, value: reader.lapicIdAt(vcpu, Number(seq)) ?? need('value') };
    default:
      return undefined;
  }
}

/** What a re-execution tells of the history it runs: an EmulatorRecorder's observer methods. */
export type ChunkSink = Pick<ExecutionObserver, 'onInput' | 'beforeSlice' | 'afterSlice'>;

/**
 * Chunk `k` of a lazy trace driven from its start on `m` up to `until` (its end by default): RAM
 * first moved there from the start of chunk `from` (mid: RAM is somewhere inside it) with the
 * page images of the chunks between (TraceReader.pagesBetween), then the chunk's own inputs.
 */
export function driveFromStart(reader: TraceReader, m: DrivenMachine, from: { chunk: number; mid: boolean }, k: number, sink: ChunkSink, until = Infinity): void {
  for (const _ of stretchesFromStart(reader, m, from, k, sink, undefined, until));
}

/**
 * driveFromStart in stretches: RAM is moved now, the chunk runs as the generator is pulled. With
 * `pace`, the drive pauses (the generator yields the position reached) wherever it reaches a
 * multiple of `pace.stride` instructions from the chunk's start, so that a query that needs the
 * chunk's first writes drives no further than they are (the chunk indexer's lineReading). The
 * stride is read at each stretch: Infinity drives the rest at once.
 */
export function stretchesFromStart(reader: TraceReader, m: DrivenMachine, from: { chunk: number; mid: boolean }, k: number, sink: ChunkSink, pace?: { stride: number }, until = Infinity): Generator<number, void, void> {
  const base = Number(m.ramBase);
  for (const page of reader.pagesBetween(from.chunk, k, from.mid)) {
    const off = page * 4096 - base;
    if (off >= 0 && off + 4096 <= m.ram.length) reader.pageAtChunkStart(page, k).copy(m.ram, off);
  }
  const first = reader.chunkFirst(k);
  const stop = Math.min(until, first + reader.chunkCountOf(k)) + 1;
  // the chunk's own inputs (those at its start may be the chunk before's), and every input of
  // the seqs read, which the machine's re-executions would otherwise query again
  const all: InputRow[] = [];
  const rows: InputRow[] = [];
  let read = first;
  const more = (to: number) => {
    // (a drive that no longer pauses reads the rest at once: one query, not one a slice)
    to = pace && pace.stride !== Infinity ? Math.min(to, stop) : stop;
    if (to <= read) return;
    for (const i of reader.inputs(read, to)) {
      all.push(i);
      if (i.chunk === k) rows.push(i);
    }
    read = to;
    m.knowInputs?.(first, to, all);
  };
  return chunkStretches(reader, m, k, { rows, next: 0, more }, sink, () => {}, until, pace);
}

/**
 * Re-execute chunk `k` on `m`, whose RAM and vCPUs are as the chunk began (before the inputs
 * stored with it), telling `sink` what happens as the live machine told its recorder; `inputs`
 * holds the history's inputs from the chunk's on (at least), `next` the first of them, and
 * moves past the chunk's; `at` is told the seq each slice starts at and the one after it. With
 * `until`, the drive stops at that position (RAM as it is there, the inputs at it included).
 */
export function driveChunk(reader: TraceReader, m: DrivenMachine, k: number, inputs: DriveInputs, sink: ChunkSink, at: (seq: bigint) => void, until = Infinity): void {
  for (const _ of chunkStretches(reader, m, k, inputs, sink, at, until));
}

/** driveChunk, pausing as stretchesFromStart says. */
function* chunkStretches(
  reader: TraceReader,
  m: DrivenMachine,
  k: number,
  inputs: DriveInputs,
  sink: ChunkSink,
  at: (seq: bigint) => void,
  until: number,
  pace?: { stride: number },
): Generator<number, void, void> {
  const first = reader.chunkFirst(k);
  const end = first + reader.chunkCountOf(k);
  const { slices, strays } = chunkPlan(reader, k);
  const rows = inputs.rows;
  const give = (i: InputRow) => {
    const e = replayInput(reader, m, strays, i);
    if (e) sink.onInput(e);
  };
  // the inputs before `s`, and at `s` too when they came between slices (a slice's own port
  // and device reads are given back by the engine's hooks, and reach the recorder in order)
  const upTo = (s: number, atToo: boolean) => {
    for (; inputs.next < rows.length && (rows[inputs.next]!.seq < s || (atToo && rows[inputs.next]!.seq === s)); inputs.next++) give(rows[inputs.next]!);
  };
  // the next position a paced drive pauses at, after `s`
  const pauseAfter = (s: number) => (pace ? first + (Math.floor((s - first) / pace.stride) + 1) * pace.stride : Infinity);
  let paused = first;
  for (const sl of slices) {
    if (sl.from >= until) break;
    // (the inputs up to the slice's end, and at it: an exception it raised, inputs between slices)
    inputs.more?.(Math.min(sl.to, until) + 1);
    upTo(sl.from, true);
    const c = reader.checkpoint(sl.vcpu, sl.from);
    if (!c || c.seq !== sl.from) throw traceCorrupt(reader.path, `no checkpoint of vCPU ${sl.vcpu} at the start of its slice at seq ${sl.from}`);
    m.load(c);
    at(BigInt(sl.from));
    sink.beforeSlice(sl.vcpu, BigInt(sl.from));
    const to = Math.min(sl.to, until);
    upTo(to, false);
    // A pause inside the slice ends a stretch of it, told to the sink as a slice of its own (a
    // recorder takes one more checkpoint there; its pc stream and rows are those of the whole
    // slice run at once).
    let from = sl.from;
    for (let p = pauseAfter(from); p < to; p = pauseAfter(from)) {
      m.runSlice(sl.vcpu, from, p - from);
      sink.afterSlice(sl.vcpu, p - from, { kind: 'quantum' });
      from = paused = p;
      yield p;
      sink.beforeSlice(sl.vcpu, BigInt(p));
    }
    m.runSlice(sl.vcpu, from, to - from);
    // An exception the slice's last instruction raised was delivered as the slice ended, before
    // its end checkpoint: its frame into RAM, and the vCPU as the delivery left it (segment caches
    // and flags the machine's delivery sets, taken from that checkpoint).
    let raised = false;
    for (let i = rows[inputs.next]; to === sl.to && i && i.seq === to && i.kind === 'interrupt' && i.detail.inSlice === true && i.vcpu === sl.vcpu; i = rows[inputs.next]) {
      give(i);
      inputs.next++;
      raised = true;
    }
    if (raised && sl.end !== undefined) m.load(reader.checkpointById(sl.end)!);
    sink.afterSlice(sl.vcpu, to - from, { kind: 'quantum' });
    at(BigInt(to));
    if (pauseAfter(paused) <= to) {
      paused = to;
      yield to;
    }
  }
  inputs.more?.(Math.min(until, end) + 1);
  if (until < end) {
    upTo(until, true);
    return;
  }
  upTo(end, false);
  // those at the chunk's end that came before it was cut
  for (; inputs.next < rows.length && rows[inputs.next]!.seq === end && recordedIn(reader, k, strays, rows[inputs.next]!); inputs.next++) give(rows[inputs.next]!);
}
