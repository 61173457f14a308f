/**
 * The memory rows of a lazy-rows trace (trace-reader.ts, TraceReader.lazyRows), made when a query
 * first needs them: the chunk re-executed from its start on a replay machine of its own, with the
 * recorder's write hooks on its engines, as the eager recorder would have run them live.
 *
 * A lazy-rows recording keeps the pc stream, the checkpoints, the inputs and, per chunk, the
 * pages it wrote as they were at its end; that is all a chunk's re-execution needs (RAM at its
 * start is the pages' images before it), and what it makes is, byte for byte, what the eager
 * recorder stores (rerecord.ts, `dbg traces --verify`, checks the same drive against recorded
 * rows). The machine stays at the end of the chunk it ran last, so chunks asked for in order
 * move few pages.
 *
 * A query that needs only the first writes of a line (::history -n N) reads them with
 * lineReading: the chunk is driven a stretch at a time (STRIDE instructions) and the line's writes
 * are read out of the recorder's log between stretches (each record once: a cursor keeps where
 * the last look stopped), so the query costs the instructions up to its answer, not the chunk's (2^18 of a boot's first chunk, cold translations: ~20 ms of re-execution, ~6 ms to
 * encode and keep the rows; the sample kernel's most written line is first written 35k
 * instructions in). The drive stays where it paused: a later query of the chunk goes on from
 * there and rows() of it finishes it (TraceReader.close too, for the next reader); a query of
 * another chunk gives it up.
 */

import { LINE_CURSOR_BYTES, nativeRecorder, type RecorderHandle } from '../../store/native-recorder.js';
import { traceCorrupt } from '../../store/trace-check.js';
import { setChunkIndexer, type ChunkIndexer, type TraceReader } from '../../store/trace-reader.js';
import type { FastEngineHandle, InputEvent } from '../emulator/execution-observer.js';
import { stretchesFromStart, type ChunkSink } from './chunk-drive.js';
import { ReplayMachine } from './replay-machine.js';

/**
 * Instructions a stretch of a paced drive: a pause costs a stop and a restart of the fast engine
 * (register hand-overs, a TLB refill) and one look at the recorder's log, a few microseconds
 * against ~0.1 ms of re-execution.
 */
const STRIDE = 8192;

/** A chunk being driven, from its start: its stretches, and whether it reached its end. */
interface Drive {
  readonly chunk: number;
  readonly steps: Generator<number, void, void>;
  readonly pace: { stride: number };
  done: boolean;
}

class Indexer implements ChunkIndexer {
  private machine: ReplayMachine | undefined;
  private h: RecorderHandle | undefined;
  private sink: ChunkSink | undefined;
  /** The exact engines the recorder is attached to, by vCPU (made as the drives need them). */
  private engines: bigint[] = [];
  private fasts: FastEngineHandle[] = [];
  /** Where RAM is: at the start of `chunk` (before the inputs stored with it), or inside it (mid). */
  private ram = { chunk: 0, mid: false };
  /** The chunk the recorder is open on, driven as far as a line's reading needed (to its end: done). */
  private drive: Drive | undefined;

  constructor(private readonly reader: TraceReader) {}

  private start(): { m: ReplayMachine; h: RecorderHandle; sink: ChunkSink } {
    if (this.machine && this.h && this.sink) return { m: this.machine, h: this.h, sink: this.sink };
    const r = this.reader;
    const m = new ReplayMachine(r);
    this.machine = m;
    const n = nativeRecorder();
    const h = n.create(r.info.checkpointEvery ?? 8192);
    this.h = h;
    n.setRamBuffer(h, m.ram, m.ramBase);
    // the recorder's hooks on each engine the machine makes (it makes those of the vCPUs the
    // drives run, the fast ones once they pay), before it runs
    m.watchEngines({
      exact: (v, e) => {
        n.attach(h, e.address, v, false);
        this.engines[v] = e.address;
      },
      fast: (v, f) => {
        f.recordTo(n.attachFast(h, this.engines[v]!, f.address, false));
        this.fasts.push(f);
      },
    });
    this.sink = {
      onInput: (e: InputEvent) => {
        if (e.kind === 'interrupt') for (const w of e.writes) n.hostWrite(h, w.phys, w.data, w.old);
        else if (e.kind === 'memory-write') n.hostWrite(h, e.phys, e.data, e.old);
      },
      // (the engine of a vCPU made as its first slice begins: attached above, then told)
      beforeSlice: (v: number) => n.beginSlice(h, m.engine(v).address),
      afterSlice: (v: number, executed: number) => void n.endSlice(h, this.engines[v]!, executed),
    };
    // RAM as recording began is chunk 0's start
    this.ram = { chunk: 0, mid: false };
    return { m, h, sink: this.sink };
  }

  /** `what` on the machine; a failure leaves RAM somewhere in a chunk: start over next time. */
  private guarded<T>(what: () => T): T {
    try {
      return what();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The drive of chunk `c`: the one open, else a new one from the chunk's start (RAM moved there now). */
  private open(c: number): { d: Drive; h: RecorderHandle } {
    const { m, h, sink } = this.start();
    if (this.drive?.chunk === c) return { d: this.drive, h };
    // (another chunk's drive is given up: the recorder's open chunk is dropped)
    if (this.drive) this.ram = { chunk: this.drive.chunk, mid: true };
    this.drive = undefined;
    nativeRecorder().setSeq(h, BigInt(this.reader.chunkFirst(c)));
    const pace = { stride: STRIDE };
    const steps = stretchesFromStart(this.reader, m, this.ram, c, sink, pace);
    this.ram = { chunk: c, mid: true };
    this.drive = { chunk: c, steps, pace, done: false };
    return { d: this.drive, h };
  }

  get driving(): number | undefined {
    return this.drive?.chunk;
  }

  rows(c: number): { rows: Buffer; pcs: Buffer } {
    return this.guarded(() => {
      const { d, h } = this.open(c);
      d.pace.stride = Infinity;
      while (!d.done) d.done = d.steps.next().done === true;
      return this.cut(c, h);
    });
  }

  lineReading(c: number, line: number): { more(): { rows: Buffer; done: boolean } } {
    // where the recorder's log was read to, the writes given and the line after them (recorder.c)
    const cursor = Buffer.alloc(LINE_CURSOR_BYTES);
    let on: Drive | undefined;
    return {
      more: () =>
        this.guarded(() => {
          const { d, h } = this.open(c);
          // another drive of the chunk (this one's was given up) logs at other positions: read its
          // log from the start, past the writes given
          if (on !== d) cursor.fill(0, 0, 16);
          on = d;
          const n = nativeRecorder();
          for (;;) {
            const rows = n.lineRows(h, BigInt(line), cursor);
            if (rows.length || d.done) return { rows, done: d.done };
            d.done = d.steps.next().done === true;
          }
        }),
    };
  }

  /** The rows of chunk `c`, driven to its end; the machine is then at the next chunk's start. */
  private cut(c: number, h: RecorderHandle): { rows: Buffer; pcs: Buffer } {
    const r = this.reader;
    const n = nativeRecorder();
    const first = r.chunkFirst(c);
    const end = first + r.chunkCountOf(c);
    const last = n.lastStep(h);
    const chunk = n.cut(h);
    this.drive = undefined;
    const rows = n.encodeRows(chunk.lineImages, chunk.log, chunk.writes, chunk.logCap);
    // (a trace with its pcs checks them; a lazy one's are these)
    if (chunk.count !== end - first || (!r.lazyPcs && end > first && (!last || last[0] !== r.step(end - 1).pc))) {
      throw traceCorrupt(r.path, `re-executing chunk ${c} to make its memory rows ran ${chunk.count} instructions${last ? ` ending at pc 0x${last[0].toString(16)}` : ''}, the recording ${end - first}: the trace does not replay`);
    }
    this.ram = { chunk: c + 1, mid: false };
    return { rows, pcs: chunk.pcs };
  }

  close(): void {
    const n = nativeRecorder();
    if (this.h) {
      for (const f of this.fasts) {
        f.recordTo(undefined);
        n.detach(this.h, f.address);
      }
      // (per vCPU, of those the machine made: forEach passes over the others' holes)
      this.engines.forEach((uc) => n.detach(this.h!, uc));
    }
    this.fasts = [];
    this.engines = [];
    this.machine?.close();
    this.machine = undefined;
    this.h = undefined;
    this.sink = undefined;
    this.drive = undefined;
  }
}

setChunkIndexer((reader) => new Indexer(reader));
