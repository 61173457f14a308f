/**
 * What `dbg report` draws, computed on the CLI side from one pass over the trace's pc stream plus
 * SQL over its tables, so that the page only draws:
 *
 *   lanes      per vCPU, the history cut into ~2,000 coarse buckets and ~128,000 fine ones, each
 *              with the function that ran most of its instructions; and, while they fit
 *              (MAX_RUNS), the exact runs (first seq, length, function, first pc): zoomed in
 *              far enough the timeline shows single instructions
 *   marks      interrupts (input table), halts (hlt executed), the recording session's stops
 *              (stop table: breakpoint and watchpoint hits, steps, Ctrl-C...), the end of the history
 *   heat       bytes written per physical page x time bucket (mem_mask: one row per ~100 writes
 *              of a line, its mask says which bytes), pages named by the symbol written most; of
 *              a lazy-rows trace, the bytes each chunk changed, from its page images (table page)
 *   tree       the call tree with inclusive and exclusive instruction counts
 *   calls      call seq, return seq, vCPU, caller, callee, depth
 *   console    what the guest wrote to COM1 (0x3f8), placed at the seq of each line's first byte
 *
 * Calls (and the call tree built from them) come from src/store/call-walker.ts, the derivation
 * the `calls` table of `::sql` and `::calls` use.
 */

import { basename } from 'node:path';
import { hex } from '../common/format.js';
import type { Disassembler } from '../mdb/disasm.js';
import { MAX_CALL_DEPTH, walkCalls, type PcClass } from '../store/call-walker.js';
import type { TraceReader } from '../store/trace-reader.js';
import type { ReplayTarget } from '../targets/replay/replay-target.js';
import { symbolText } from '../symbols/symbol-text.js';

/** Coarse buckets over the whole history (the first view). */
export const COARSE_BUCKETS = 2000;
/** Fine buckets per coarse one. */
export const FINE_PER_COARSE = 64;
/** Exact runs kept (all vCPUs together); beyond, zooming stops at the fine buckets. */
export const MAX_RUNS = 200_000;
export const MAX_CALL_ROWS = 20_000;
export const HEAT_PAGES = 48;
export const HEAT_BUCKETS = 200;
export const MAX_CONSOLE_BYTES = 65_536;
const MAX_MARKS = 5_000;
/** Function names (tree keys hold one in 21 bits). */
const MAX_NAMES = 2_097_150;
const COM1 = 0x3f8n;

/** One resolution of a lane: bucket i covers [first + i * width, first + (i + 1) * width). */
export interface LaneLevel {
  readonly width: number;
  /** Dominant function per bucket (-1: the vCPU ran nothing there). */
  readonly f: number[];
  /** Instructions the vCPU ran in the bucket. */
  readonly n: number[];
}

export interface Lane {
  readonly vcpu: number;
  readonly instructions: number;
  readonly coarse: LaneLevel;
  readonly fine: LaneLevel;
  /** Exact runs: start seq, length, function, first pc (hex); empty when `runsComplete` is false. */
  readonly runs: { s: number[]; n: number[]; f: number[]; pc: string[] };
}

export interface Mark {
  readonly seq: number;
  readonly vcpu: number | null;
  /** breakpoint, watchpoint, stop (any other stop of the recording session: a step, Ctrl-C...). */
  readonly kind: 'interrupt' | 'halt' | 'end' | 'console' | 'breakpoint' | 'watchpoint' | 'stop';
  readonly label: string;
}

export interface TreeNode {
  /** Function index; the root is -1. */
  readonly f: number;
  readonly parent: number;
  self: number;
  incl: number;
}

export interface ReportData {
  readonly trace: string;
  readonly tracePath: string;
  readonly first: number;
  readonly end: number;
  readonly instructions: number;
  readonly vcpus: number;
  readonly outcome: string;
  readonly symbols: string;
  /** What the report lacks and why (no instructions, no symbols, runs dropped...). */
  readonly lacks: string[];
  readonly funcs: string[];
  readonly lanes: Lane[];
  readonly runsComplete: boolean;
  readonly marks: Mark[];
  readonly heat: {
    pages: { addr: string; label: string; bytes: number }[];
    buckets: number;
    width: number;
    cells: number[][];
    rows: number;
    /** What a cell counts: bytes written (memory rows), or bytes a chunk changed (a lazy-rows trace's page images). */
    hint: string;
  };
  readonly tree: TreeNode[];
  readonly calls: { total: number; rows: (number | null)[][] };
  readonly console: { seq: number; vcpu: number; text: string }[];
}

interface PcInfo extends PcClass {
  readonly f: number;
  /** What the page marks: hlt, an `out %al, %dx` (a console byte when dx is COM1). */
  readonly mark: 'hlt' | 'out' | undefined;
}

/** Function names: one index per name. */
class Names {
  readonly list: string[] = [];
  private readonly index = new Map<string, number>();
  of(name: string): number {
    let i = this.index.get(name);
    if (i === undefined && this.list.length >= MAX_NAMES) return this.of('(more functions than a report names)');
    if (i === undefined) {
      i = this.list.length;
      this.list.push(name);
      this.index.set(name, i);
    }
    return i;
  }
}

/**
 * Dominant function per bucket. Runs of one vCPU arrive in seq order, so one bucket is open at a
 * time: its counts are kept per function index (`count`, zeroed again through `touched`, the
 * functions in the order they first ran there: a tie goes to the first), folded into `f` when
 * the next bucket opens.
 */
class LevelAcc {
  readonly f: Int32Array;
  readonly n: Float64Array;
  private open = -1;
  private count: number[] = [];
  private readonly touched: number[] = [];
  constructor(
    readonly width: number,
    size: number,
  ) {
    this.f = new Int32Array(size).fill(-1);
    this.n = new Float64Array(size);
  }
  /** `len` instructions of function `f` from offset `off` (seq - first). */
  add(off: number, len: number, f: number): void {
    while (len > 0) {
      const b = Math.floor(off / this.width);
      if (b !== this.open) this.close(b);
      const take = Math.min(len, (b + 1) * this.width - off);
      while (this.count.length <= f) this.count.push(0);
      if (this.count[f] === 0) this.touched.push(f);
      this.count[f]! += take;
      this.n[b]! += take;
      off += take;
      len -= take;
    }
  }
  private close(next: number): void {
    let most = -1;
    for (const f of this.touched) {
      const c = this.count[f]!;
      if (c > most) {
        most = c;
        this.f[this.open] = f;
      }
      this.count[f] = 0;
    }
    this.touched.length = 0;
    this.open = next;
  }
  done(): LaneLevel {
    this.close(-1);
    return { width: this.width, f: Array.from(this.f), n: Array.from(this.n) };
  }
}

export interface ReportOptions {
  /** The trace path as the user typed it (for the `dbg replay` commands the page shows). */
  readonly tracePath: string;
  readonly disassembler: Disassembler;
}

/** Everything the page shows, for the trace `target` replays. */
export async function reportData(target: ReplayTarget, opts: ReportOptions): Promise<ReportData> {
  const reader = target.reader;
  const lacks: string[] = [];
  const names = new Names();
  const total = reader.end - reader.first;
  const vcpus = reader.vcpus;
  const hasSymbols = target.symbols.modules.length > 0;
  if (!hasSymbols) lacks.push('no symbols: the trace names no symbol file that exists and none was given (--symbols FILE); functions are shown as 4 KiB code pages');
  for (const w of target.warnings ?? []) lacks.push(w);
  if (total === 0) lacks.push('no instructions: the trace holds no recorded instruction (the guest never ran while recording)');
  if (reader.meta.get('outcome') === undefined) lacks.push('how the recording ended: the trace records no outcome (its process died while recording, or an older dbg made it); the history ends at the last chunk that was committed');

  const coarseWidth = Math.max(1, Math.ceil(total / COARSE_BUCKETS));
  const fineWidth = Math.max(1, Math.ceil(coarseWidth / FINE_PER_COARSE));
  const coarse = Array.from({ length: vcpus }, () => new LevelAcc(coarseWidth, Math.ceil(total / coarseWidth)));
  const fine = Array.from({ length: vcpus }, () => new LevelAcc(fineWidth, Math.ceil(total / fineWidth)));
  const runs = Array.from({ length: vcpus }, () => ({ s: [] as number[], n: [] as number[], f: [] as number[], pc: [] as string[] }));
  let runCount = 0;
  let runsComplete = true;
  const laneInsns = new Float64Array(vcpus);

  // Per distinct pc: function and what the page marks (halts, port writes); call and return
  // detection is the store's (call-walker.ts), the same that ::calls and the calls table use.
  const fnOf = new Map<bigint, number>();
  const fn = (pc: bigint): number => {
    let f = fnOf.get(pc);
    if (f === undefined) {
      const r = hasSymbols ? target.symbols.resolve(pc) : undefined;
      f = names.of(r && r.inside ? symbolText(r.sym.name) : `code page ${hex(pc & ~0xfffn)}`);
      fnOf.set(pc, f);
    }
    return f;
  };
  const describe = (pc: bigint): PcInfo => ({ ...target.branchAt(pc), f: fn(pc), mark: markOf(target, opts.disassembler, pc) });

  // Call tree: node 0 is the root; a vCPU's node is a child of it.
  const tree: TreeNode[] = [{ f: -1, parent: -1, self: 0, incl: 0 }];
  // Keyed parent * 2^21 + function (names beyond 2^21 would collide: they are refused below).
  const childIndex = new Map<number, number>();
  const child = (parent: number, f: number): number => {
    const key = parent * 2097152 + f;
    let c = childIndex.get(key);
    if (c === undefined) {
      c = tree.length;
      tree.push({ f, parent, self: 0, incl: 0 });
      childIndex.set(key, c);
    }
    return c;
  };
  const vcpuRoot = Array.from({ length: vcpus }, (_, v) => child(0, names.of(`vCPU ${v}`)));
  /** The tree node of each open frame, per vCPU (the walker's stacks, mirrored). */
  const stacks: number[][] = Array.from({ length: vcpus }, () => []);

  const inputs = total > 0 ? reader.inputs(reader.first, reader.end + 1) : [];
  const marks: Mark[] = [];
  for (const i of inputs) {
    if (marks.length >= MAX_MARKS) break;
    if (i.kind !== 'interrupt' || i.vcpu === null) continue;
    const vector = Number(i.detail['vector'] ?? -1);
    marks.push({ seq: i.seq, vcpu: i.vcpu, kind: 'interrupt', label: `interrupt 0x${vector.toString(16)}` });
  }
  const outSeqs: { seq: number; vcpu: number }[] = [];
  let halts = 0;

  const prevSeq = new Float64Array(vcpus).fill(-1);
  const runStart = new Float64Array(vcpus).fill(-1);
  const runF = new Int32Array(vcpus).fill(-1);
  const runPc = new Array<bigint>(vcpus).fill(0n);
  const flushRun = (v: number, end: number): void => {
    if (runStart[v]! < 0) return;
    const s = runStart[v]!;
    const len = end - s;
    coarse[v]!.add(s - reader.first, len, runF[v]!);
    fine[v]!.add(s - reader.first, len, runF[v]!);
    if (runsComplete) {
      if (runCount >= MAX_RUNS) runsComplete = false;
      else {
        const r = runs[v]!;
        r.s.push(s);
        r.n.push(len);
        r.f.push(runF[v]!);
        r.pc.push(hex(runPc[v]!));
        runCount++;
      }
    }
  };
  // The node instructions count to, per vCPU: the innermost open frame's, else (outside any
  // call) that of the last function run there, looked up once per change of function.
  const inFrame = new Int32Array(vcpus).fill(-1);
  const topF = new Int32Array(vcpus).fill(-1);
  const topNode = new Int32Array(vcpus);
  const treeNode = (v: number, f: number): number => {
    if (inFrame[v]! >= 0) return inFrame[v]!;
    if (topF[v] !== f) {
      topF[v] = f;
      topNode[v] = child(vcpuRoot[v]!, f);
    }
    return topNode[v]!;
  };
  const vectorName = (vector: number): number => names.of(`interrupt 0x${vector.toString(16)}`);
  /** Exclusive instructions per tree node (folded into the nodes after the walk). */
  const self: number[] = [];

  const table = walkCalls(reader, describe, {
    open(row) {
      const caller = treeNode(row.vcpu, fn(row.callerPc));
      const entered = row.vector === null ? caller : child(caller, vectorName(row.vector));
      const node = child(entered, fn(row.calleePc));
      stacks[row.vcpu]!.push(node);
      inFrame[row.vcpu] = node;
    },
    close(row) {
      const st = stacks[row.vcpu]!;
      st.pop();
      inFrame[row.vcpu] = st.length ? st[st.length - 1]! : -1;
    },
    instruction(seq, v, pi) {
      laneInsns[v]!++;
      const node = treeNode(v, pi.f);
      while (self.length <= node) self.push(0);
      self[node]!++;
      if (pi.f !== runF[v]) {
        flushRun(v, seq);
        runStart[v] = seq;
        runF[v] = pi.f;
        runPc[v] = pi.pc;
      }
      if (pi.mark !== undefined) {
        if (pi.mark === 'hlt') {
          halts++;
          if (marks.length < MAX_MARKS) marks.push({ seq, vcpu: v, kind: 'halt', label: 'hlt' });
        } else if (outSeqs.length < MAX_CONSOLE_BYTES) outSeqs.push({ seq, vcpu: v });
      }
      prevSeq[v] = seq;
    },
  });
  for (let i = 0; i < self.length; i++) tree[i]!.self = self[i]!;
  const callTotal = table.rows.length;
  const callRows: (number | null)[][] = table.rows
    .slice(0, MAX_CALL_ROWS)
    .map((r) => [r.callSeq, r.returnSeq, r.vcpu, fn(r.callerPc), r.vector === null ? fn(r.calleePc) : vectorName(r.vector), r.depth]);
  const tooDeep = table.tooDeep > 0;
  for (let v = 0; v < vcpus; v++) {
    // A run ends where the vCPU's last instruction does (not at the end of the history).
    if (runStart[v]! >= 0) flushRun(v, prevSeq[v]! + 1);
  }
  if (!runsComplete) {
    for (const r of runs) for (const k of ['s', 'n', 'f', 'pc'] as const) r[k].length = 0;
    lacks.push(`single-instruction detail: the history has more than ${MAX_RUNS} function runs; zooming stops at buckets of ${fineWidth} instructions`);
  }
  const idle = Array.from(laneInsns).flatMap((n, v) => (n === 0 ? [v] : []));
  if (total > 0 && idle.length) lacks.push(`instructions on vCPU${idle.length === 1 ? '' : 's'} ${idle.join(', ')}: ${idle.length === 1 ? 'it' : 'they'} ran none in this history (their lanes are empty)`);
  if (tooDeep) lacks.push(`calls deeper than ${MAX_CALL_DEPTH} frames were not followed`);
  if (callTotal > MAX_CALL_ROWS) lacks.push(`the calls table lists the first ${MAX_CALL_ROWS} of ${callTotal} calls`);
  if (halts > 0 && marks.length >= MAX_MARKS) lacks.push(`marks: only the first ${MAX_MARKS} are shown`);
  marks.push(...stopMarks(target, lacks));
  if (total > 0) {
    const lastV = reader.step(reader.end - 1).vcpu;
    marks.push({ seq: reader.end - 1, vcpu: lastV, kind: 'end', label: `end of history (${String(reader.meta.get('outcome') ?? 'unfinished')})` });
  }
  // Inclusive counts: children come after their parents in the array.
  for (const n of tree) n.incl = n.self;
  for (let i = tree.length - 1; i > 0; i--) tree[tree[i]!.parent]!.incl += tree[i]!.incl;

  const consoleLines = await consoleOf(target, outSeqs, lacks);
  for (const l of consoleLines) if (marks.length < MAX_MARKS + 1000) marks.push({ seq: l.seq, vcpu: l.vcpu, kind: 'console', label: l.text });

  return {
    trace: basename(reader.path),
    tracePath: opts.tracePath,
    first: reader.first,
    end: reader.end,
    instructions: total,
    vcpus,
    outcome: String(reader.meta.get('outcome') ?? 'unfinished'),
    symbols: target.symbols.modules.map((m) => m.path).join(', '),
    lacks,
    funcs: names.list,
    lanes: Array.from({ length: vcpus }, (_, v) => ({ vcpu: v, instructions: laneInsns[v]!, coarse: coarse[v]!.done(), fine: fine[v]!.done(), runs: runs[v]! })),
    runsComplete,
    marks,
    heat: heatmap(target, reader, total, lacks),
    tree,
    calls: { total: callTotal, rows: callRows },
    console: consoleLines,
  };
}

/**
 * The recording session's stops. A stop's seq is the instruction that was to run next: one at
 * the end of the history (the session stopped, then the recording ended) is drawn on the last
 * instruction.
 */
function stopMarks(target: ReplayTarget, lacks: string[]): Mark[] {
  const reader = target.reader;
  if (reader.version < 5) {
    lacks.push(`stops: the trace has schema version ${reader.version}, which did not record where the session stopped (record it again for breakpoint and watchpoint marks)`);
    return [];
  }
  const stops = reader.stops();
  if (stops.length > MAX_MARKS) lacks.push(`stops: only the first ${MAX_MARKS} of ${stops.length} are marked`);
  const last = Math.max(reader.first, reader.end - 1);
  return stops.slice(0, MAX_MARKS).map((st) => {
    const kind = st.kind === 'breakpoint' || st.kind === 'watchpoint' ? st.kind : 'stop';
    let label = kind === 'stop' ? `stop: ${st.kind}` : `${st.kind} ${st.id ?? '?'}`;
    if (st.addr !== null) {
      const sym = target.symbols.describe(st.addr);
      label += ` at ${hex(st.addr)}${sym ? ` (${sym})` : ''}`;
    }
    return { seq: Math.min(st.seq, last), vcpu: st.vcpu, kind, label };
  });
}

/** What the page marks at the instruction at `pc` (decoded by the disassembler). */
function markOf(target: ReplayTarget, dis: Disassembler, pc: bigint): PcInfo['mark'] {
  let bytes: Buffer;
  try {
    bytes = target.readVirtual(pc, 16);
  } catch {
    return undefined;
  }
  const insn = dis.decode(bytes, pc, 1)[0];
  if (!insn) return undefined;
  const m = insn.mnemonic;
  return m === 'hlt' ? 'hlt' : m.startsWith('out') && /%dx/.test(insn.operands) && /%al/.test(insn.operands) ? 'out' : undefined;
}

/**
 * The COM1 output: the byte in al at every `out %al, %dx` whose dx is 0x3f8, read from the
 * registers the replay machine has at that seq (ports writes are not inputs: the trace keeps
 * no record of them, so they are re-derived).
 */
async function consoleOf(target: ReplayTarget, outs: { seq: number; vcpu: number }[], lacks: string[]): Promise<{ seq: number; vcpu: number; text: string }[]> {
  const lines: { seq: number; vcpu: number; text: string }[] = [];
  let cur: { seq: number; vcpu: number; text: string } | undefined;
  const rev = target.caps.reverse!;
  for (const o of outs) {
    await rev.seek(BigInt(o.seq));
    const regs = target.registers(o.vcpu + 1);
    if (((regs.get('rdx') ?? 0n) & 0xffffn) !== COM1) continue;
    const c = Number((regs.get('rax') ?? 0n) & 0xffn);
    if (c === 10) {
      if (cur) lines.push(cur);
      cur = undefined;
      continue;
    }
    cur ??= { seq: o.seq, vcpu: o.vcpu, text: '' };
    if (c !== 13) cur.text += c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  if (cur) lines.push(cur);
  if (outs.length >= MAX_CONSOLE_BYTES) lacks.push(`console: only the first ${MAX_CONSOLE_BYTES} port writes were read`);
  if (lines.length === 0) lacks.push('console: the guest wrote nothing to COM1 (port 0x3f8) in this history');
  return lines;
}

/** Bytes written per page x time bucket, for the pages written most. */
function heatmap(target: ReplayTarget, reader: TraceReader, total: number, lacks: string[]): ReportData['heat'] {
  const width = Math.max(1, Math.ceil(total / HEAT_BUCKETS));
  const buckets = Math.max(1, Math.ceil(total / width));
  const perPage = new Map<number, { bytes: number; cells: Float64Array; lines: Map<number, number> }>();
  let rows = 0;
  const bucketOf = (seq: number) => Math.min(buckets - 1, Math.max(0, Math.floor((seq - reader.first) / width)));
  // bytes written to line `l` in [from, to): spread over the buckets of that span
  const add = (l: number, bytes: number, from: number, to: number) => {
    const page = Math.floor(l / 64);
    let p = perPage.get(page);
    if (!p) perPage.set(page, (p = { bytes: 0, cells: new Float64Array(buckets), lines: new Map() }));
    p.bytes += bytes;
    const b0 = bucketOf(from);
    const b1 = Math.max(b0, bucketOf(to - 1));
    for (let b = b0; b <= b1; b++) p.cells[b]! += bytes / (b1 - b0 + 1);
    p.lines.set(l, (p.lines.get(l) ?? 0) + bytes);
  };
  if (reader.lazyRows) {
    // A lazy-rows trace keeps no memory rows: the pages each chunk wrote, as they were at its
    // end (table page), say which bytes the chunk changed, at page and chunk granularity.
    for (const [chunk, page] of reader.db.prepare('SELECT chunk, page FROM main.page ORDER BY page, chunk').raw().iterate() as Iterable<[number, number]>) {
      const before = reader.pageAtChunkStart(page, chunk);
      const after = reader.pageAtChunkStart(page, chunk + 1);
      const from = reader.chunkFirst(chunk);
      let changed = false;
      for (let off = 0; off < 4096; off += 64) {
        let bytes = 0;
        for (let i = off; i < off + 64; i++) if (before[i] !== after[i]) bytes++;
        if (bytes) add(page * 64 + off / 64, bytes, from, from + reader.chunkCountOf(chunk));
        changed ||= bytes > 0;
      }
      if (changed) rows++;
    }
  } else {
    for (const [line, first, mask] of reader.db.prepare('SELECT line, first, mask FROM mem_mask').raw().safeIntegers(true).iterate() as Iterable<[bigint, bigint, bigint]>) {
      rows++;
      add(Number(line), popcount(BigInt.asUintN(64, mask)), Number(first), Number(first) + 1);
    }
  }
  if (rows === 0) lacks.push('memory writes: the history holds no guest write to RAM');
  const top = [...perPage.entries()].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, HEAT_PAGES).sort((a, b) => a[0] - b[0]);
  if (perPage.size > HEAT_PAGES) lacks.push(`memory writes: the ${HEAT_PAGES} pages written most of ${perPage.size}`);
  const loads = target.symbols.modules.flatMap((m) => (m.elf ? m.elf.loadSegments().map((s) => ({ s, bias: m.bias ?? 0n })) : []));
  const label = (line: number): string | undefined => {
    const phys = BigInt(line) * 64n;
    for (const { s, bias } of loads) {
      if (phys >= s.paddr && phys < s.paddr + s.memsz) {
        const r = target.symbols.resolve(s.vaddr + bias + (phys - s.paddr));
        if (r) return symbolText(r.sym.name);
      }
    }
    return undefined;
  };
  return {
    buckets,
    width,
    rows,
    hint: reader.lazyRows
      ? 'Bytes changed per physical page (rows) over time (columns), from the pages each chunk wrote as they were at its end (a lazy-rows trace): a chunk\'s changes are spread over its columns, a byte written twice in a chunk or rewritten with its value is not seen.'
      : 'Bytes written per physical page (rows) over time (columns).',
    pages: top.map(([page, p]) => {
      const named = new Map<string, number>();
      for (const [l, n] of p.lines) {
        const name = label(l);
        if (name) named.set(name, (named.get(name) ?? 0) + n);
      }
      const best = [...named.entries()].sort((a, b) => b[1] - a[1])[0];
      return { addr: hex(BigInt(page) * 4096n), label: best ? best[0] + (named.size > 1 ? ` +${named.size - 1}` : '') : '', bytes: p.bytes };
    }),
    cells: top.map(([, p]) => Array.from(p.cells)),
  };
}

function popcount(x: bigint): number {
  let n = 0;
  while (x) {
    x &= x - 1n;
    n++;
  }
  return n;
}
