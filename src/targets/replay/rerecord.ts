/**
 * A trace re-executed from its start with a recorder attached: its history recorded a second
 * time, from nothing but what a recording must keep (the RAM it began with, the register state
 * at each slice start, the inputs), and compared with the recorded one table by table.
 *
 * That is what `dbg traces --verify` runs, and the ground the recorder's next step stands on
 * (issue 10): a recording that keeps only that much, with the pc stream and the memory rows made
 * afterwards by this re-execution, costs what the guest's own run costs; this check says whether
 * the rest can be made again from it, byte for byte.
 *
 * The drive mirrors the live machine's (machine.ts, execution-observer.ts): for each slice, in
 * seq order, the inputs that came between slices (an interrupt's stack frame, a debugger's
 * write, a vCPU's start-up) are given to the recorder and put in RAM, the vCPU's slice-start
 * checkpoint is loaded, `beforeSlice`, the replay engine runs the slice's instructions with the
 * recorded port and device reads given back, `afterSlice`; the chunk is cut where the recording
 * cut it. The re-recording runs on the replay's fast engines as the recording ran on the live
 * machine's (or on the exact ones with DBG_EMU_EXACT=1 or DBG_RECORD_FAST=0: the same history
 * either way, test/store/fast-recording.test.ts).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DbgError } from '../../common/errors.js';
import { exitCleanlyOnSignals } from '../../common/exit-signals.js';
import { EmulatorRecorder } from '../../store/emulator-recorder.js';
import { nativeRecorder } from '../../store/native-recorder.js';
import { traceCorrupt } from '../../store/trace-check.js';
import { TraceReader, type InputRow } from '../../store/trace-reader.js';
import type { ExecutionObserver, InputEvent, MachineState, ObservedMachine } from '../emulator/execution-observer.js';
import { UC, UnicornEngine, X86_REG } from '../emulator/unicorn.js';
import { ReplayMachine } from './replay-machine.js';

export interface VerifyResult {
  readonly instructions: number;
  readonly chunks: number;
  /** The first difference between the recording and its re-execution, or undefined. */
  readonly difference?: string;
}

/** A slice of the recorded history: vCPU `vcpu` ran [from, to). */
interface Slice {
  readonly vcpu: number;
  readonly from: number;
  readonly to: number;
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
      if (from !== undefined) slices.push({ vcpu: c.vcpu, from, to: c.seq });
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
function poke(reader: TraceReader, m: ReplayMachine, i: InputRow, phys: bigint, data: Buffer): Buffer {
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
function replayInput(reader: TraceReader, m: ReplayMachine, strays: Map<string, number[]>, i: InputRow): InputEvent | undefined {
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
    default:
      return undefined;
  }
}

/** What a re-execution tells of the history it runs: an EmulatorRecorder's observer methods. */
export type ChunkSink = Pick<ExecutionObserver, 'onInput' | 'beforeSlice' | 'afterSlice'>;

/**
 * Re-execute chunk `k` on `m`, whose RAM and vCPUs are as the chunk began (before the inputs
 * stored with it), telling `sink` what happens as the live machine told its recorder; `inputs`
 * holds the history's inputs from the chunk's on (at least), `next` the first of them, and
 * moves past the chunk's; `at` is told the seq each slice starts at and the one after it.
 */
export function driveChunk(reader: TraceReader, m: ReplayMachine, k: number, inputs: { rows: readonly InputRow[]; next: number }, sink: ChunkSink, at: (seq: bigint) => void): void {
  const end = reader.chunkFirst(k) + reader.chunkCountOf(k);
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
  for (const sl of slices) {
    upTo(sl.from, true);
    const c = reader.checkpoint(sl.vcpu, sl.from);
    if (!c || c.seq !== sl.from) throw traceCorrupt(reader.path, `no checkpoint of vCPU ${sl.vcpu} at the start of its slice at seq ${sl.from}`);
    m.load(c);
    at(BigInt(sl.from));
    sink.beforeSlice(sl.vcpu, BigInt(sl.from));
    upTo(sl.to, false);
    m.runSlice(sl.vcpu, sl.from, sl.to - sl.from);
    sink.afterSlice(sl.vcpu, sl.to - sl.from, { kind: 'quantum' });
    at(BigInt(sl.to));
  }
  upTo(end, false);
  // those at the chunk's end that came before it was cut
  for (; inputs.next < rows.length && rows[inputs.next]!.seq === end && recordedIn(reader, k, strays, rows[inputs.next]!); inputs.next++) give(rows[inputs.next]!);
}

/**
 * Re-execute the whole history of `reader` with a recorder writing `out`. The event loop turns
 * between chunks, so that a signal's handler (Ctrl-C:
 * exitCleanlyOnSignals) runs within a chunk's time, not at the end.
 */
export async function rerecord(reader: TraceReader, out: string): Promise<void> {
  const m = new ReplayMachine(reader);
  let seq = BigInt(reader.first);
  const machine: ObservedMachine = {
    vcpuCount: reader.vcpus,
    engineAddress: (v) => m.engine(v).address,
    fastEngine: (v) => m.fastEngine(v),
    ram: m.ram,
    ramBase: m.ramBase,
    get seq() {
      return seq;
    },
    saveState(): MachineState {
      throw new DbgError('state', 'a re-recording has no machine state to save');
    },
    loadState(): void {
      throw new DbgError('state', 'a re-recording has no machine state to load');
    },
  };
  let rec: EmulatorRecorder | undefined;
  try {
    // Every vCPU as recording began: its first checkpoint (the recorder's attach took them; a
    // register written before anything ran has a later one at the same seq).
    const started = new Set<number>();
    for (const r of reader.chunkCount ? reader.checkpointRows(0) : []) {
      if (r.seq !== reader.first || started.has(r.vcpu)) continue;
      started.add(r.vcpu);
      m.load(reader.checkpointById(r.id)!);
    }
    const info = reader.info;
    rec = new EmulatorRecorder(out, {
      checkpointEvery: info.checkpointEvery ?? 8192,
      // cut where the recording cut, not by size
      chunkTarget: Number.MAX_SAFE_INTEGER,
      replace: true,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
    rec.attach(machine);
    const inputs = { rows: reader.inputs(reader.first, reader.end + 1), next: 0 };
    for (let k = 0; k < reader.chunkCount; k++) {
      driveChunk(reader, m, k, inputs, rec, (s) => (seq = s));
      rec.cutChunk();
      await new Promise((resolve) => setImmediate(resolve));
    }
    rec.detach();
    rec = undefined;
  } finally {
    rec?.detach();
    m.close();
  }
}

/** The tables a re-recording must give back as they are, with the columns compared. */
const COMPARED: readonly { table: string; what: string; columns: string; order: string; key: string }[] = [
  { table: 'ram_init', what: 'initial RAM page', columns: 'page, data', order: 'page', key: "printf('page 0x%x', page)" },
  { table: 'chunk', what: '', columns: 'id, first, count, writes, lines', order: 'id', key: "printf('chunk %d (seq %d, %d instructions)', id, first, count)" },
  { table: 'mem', what: 'memory row', columns: 'chunk, line, part, data', order: 'chunk, line, part', key: "printf('chunk %d, line 0x%x (physical 0x%x) part %d', chunk, line, line * 64, part)" },
  { table: 'mem_mask', what: 'memory mask', columns: 'line, chunk, part, first, mask', order: 'chunk, line, part', key: "printf('chunk %d, line 0x%x part %d', chunk, line, part)" },
  { table: 'input', what: 'input', columns: 'seq, vcpu, kind, detail', order: 'seq, kind', key: "printf('%s at seq %d', kind, seq)" },
];

/** The first row where `a` and `b` (attached as schemas) differ, said in words; undefined when none. */
function firstDifference(db: Database.Database): string | undefined {
  for (const t of COMPARED) {
    for (const [x, y, how] of [
      ['a', 'b', 'recorded, not made again by re-execution'],
      ['b', 'a', 'made by re-execution, not in the recording'],
    ] as const) {
      const row = db.prepare(`SELECT ${t.key} AS k FROM (SELECT ${t.columns} FROM ${x}.${t.table} EXCEPT SELECT ${t.columns} FROM ${y}.${t.table}) ORDER BY ${t.order} LIMIT 1`).get() as { k: string } | undefined;
      if (row) return `${t.what ? `${t.what} ` : ''}${row.k}: ${how}`;
    }
  }
  return undefined;
}

/**
 * The first instruction whose pc or vCPU the re-execution did not give back. Compared decoded:
 * a chunk cut short by ::discard -f keeps its whole pc stream, of which `count` instructions count.
 */
function firstPcDifference(a: TraceReader, b: TraceReader): string | undefined {
  for (let k = 0; k < a.chunkCount; k++) {
    const x = a.pcs(k);
    const y = b.pcs(k);
    for (let i = 0; i < x.pc.length; i++) {
      if (x.pc[i] !== y.pc[i] || x.vcpu[i] !== y.vcpu[i]) {
        const seq = a.chunkFirst(k) + i;
        return `instruction at seq ${seq}: pc 0x${x.pc[i]!.toString(16)} on vCPU ${x.vcpu[i]} recorded, ${y.pc[i] === undefined ? 'none' : `0x${y.pc[i]!.toString(16)} on vCPU ${y.vcpu[i]}`} re-executed`;
      }
    }
  }
  return undefined;
}

/**
 * uc_context bytes of CPUX86State's lazy flags (cc_dst, cc_src, cc_src2, cc_op, after the
 * context's 16-byte header): how far the flags are computed depends on where the engine's
 * translated blocks ended, which differs between the fast engines of a recording and the exact
 * ones of a re-execution. Two images that differ only there hold the same registers when
 * Unicorn computes the same EFLAGS from both.
 */
const LAZY_FLAGS = [16 + 144, 16 + 172] as const;

/**
 * The first register checkpoint of the recording that its re-execution did not take with the
 * same registers (the same image, or one that differs only in how far the flags are computed),
 * each row against the re-execution's row of the same seq, vCPU and flags, in order. The
 * re-execution may take more (the exact engines checkpoint inside slices too).
 */
function firstCheckpointDifference(a: TraceReader, b: TraceReader, cpuModel: number): string | undefined {
  let scratch: UnicornEngine | undefined;
  const eflags = (image: Buffer): bigint => {
    scratch ??= new UnicornEngine('x86-64', cpuModel);
    nativeRecorder().contextRestore(scratch.address, image);
    return scratch.readReg(X86_REG.EFLAGS);
  };
  try {
    for (let k = 0; k < a.chunkCount; k++) {
      const made = new Map<string, number[]>();
      for (const r of b.checkpointRows(k)) {
        const key = `${r.seq}:${r.vcpu}:${r.flags}`;
        made.set(key, [...(made.get(key) ?? []), r.id]);
      }
      for (const r of a.checkpointRows(k)) {
        const where = `register checkpoint at seq ${r.seq} of vCPU ${r.vcpu}`;
        const again = made.get(`${r.seq}:${r.vcpu}:${r.flags}`)?.shift();
        if (again === undefined) return `${where}: recorded, not taken again by re-execution`;
        const x = a.checkpointById(r.id)!.image;
        const y = b.checkpointById(again)!.image;
        if (x.equals(y)) continue;
        let at = -1;
        for (let i = 0; i < x.length && at < 0; i++) if (x[i] !== y[i] && (i < LAZY_FLAGS[0] || i >= LAZY_FLAGS[1])) at = i;
        if (at >= 0) return `${where}: byte ${at} of its image is 0x${x[at]!.toString(16)} recorded, 0x${y[at]!.toString(16)} re-executed`;
        const [fx, fy] = [eflags(x), eflags(y)];
        if (fx !== fy) return `${where}: EFLAGS 0x${fx.toString(16)} recorded, 0x${fy.toString(16)} re-executed`;
      }
    }
    return undefined;
  } finally {
    scratch?.close();
  }
}

/**
 * Re-record the trace of `reader` into a scratch file and compare the two; the scratch file is
 * removed, also when SIGINT, SIGTERM or SIGHUP ends the process meanwhile.
 */
export async function verifyTrace(reader: TraceReader): Promise<VerifyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'dbg-verify-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const unhook = exitCleanlyOnSignals(remove);
  try {
    const out = join(dir, 'again.trace');
    await rerecord(reader, out);
    const db = new Database(':memory:');
    const again = TraceReader.open(out);
    try {
      db.prepare('ATTACH DATABASE ? AS a').run(reader.path);
      db.prepare('ATTACH DATABASE ? AS b').run(out);
      const difference = firstDifference(db) ?? firstPcDifference(reader, again) ?? firstCheckpointDifference(reader, again, reader.info.cpuModel ?? UC.CPU_X86_SKYLAKE_SERVER);
      return { instructions: reader.end - reader.first, chunks: reader.chunkCount, ...(difference ? { difference } : {}) };
    } finally {
      again.close();
      db.close();
    }
  } finally {
    unhook();
    remove();
  }
}
