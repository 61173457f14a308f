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
 */

import { nativeRecorder, type RecorderHandle } from '../../store/native-recorder.js';
import { traceCorrupt } from '../../store/trace-check.js';
import { setChunkIndexer, type ChunkIndexer, type TraceReader } from '../../store/trace-reader.js';
import type { InputEvent } from '../emulator/execution-observer.js';
import { driveFromStart } from './chunk-drive.js';
import { ReplayMachine } from './replay-machine.js';

class Indexer implements ChunkIndexer {
  private machine: ReplayMachine | undefined;
  private h: RecorderHandle | undefined;
  private engines: bigint[] = [];
  private fasts: { address: bigint; recordTo(sink: bigint | undefined): void }[] = [];
  /** The chunk whose start RAM holds (before the inputs stored with it). */
  private at = 0;

  constructor(private readonly reader: TraceReader) {}

  private start(): { m: ReplayMachine; h: RecorderHandle } {
    if (this.machine && this.h) return { m: this.machine, h: this.h };
    const r = this.reader;
    const m = new ReplayMachine(r);
    this.machine = m;
    const n = nativeRecorder();
    const h = n.create(r.info.checkpointEvery ?? 8192);
    this.h = h;
    n.setRamBuffer(h, m.ram, m.ramBase);
    for (let v = 0; v < r.vcpus; v++) {
      const uc = m.engine(v).address;
      n.attach(h, uc, v, false);
      this.engines.push(uc);
      const f = m.fastEngine(v);
      if (f) {
        f.recordTo(n.attachFast(h, uc, f.address, false));
        this.fasts.push(f);
      }
    }
    // RAM as recording began is chunk 0's start
    this.at = 0;
    return { m, h };
  }

  rows(c: number): { rows: Buffer; pcs: Buffer } {
    try {
      return this.run(c);
    } catch (e) {
      // RAM is somewhere in the chunk: start over from the beginning next time
      this.close();
      throw e;
    }
  }

  private run(c: number): { rows: Buffer; pcs: Buffer } {
    const r = this.reader;
    const { m, h } = this.start();
    const n = nativeRecorder();
    const first = r.chunkFirst(c);
    const end = first + r.chunkCountOf(c);
    n.setSeq(h, BigInt(first));
    const sink = {
      onInput: (e: InputEvent) => {
        if (e.kind === 'interrupt') for (const w of e.writes) n.hostWrite(h, w.phys, w.data, w.old);
        else if (e.kind === 'memory-write') n.hostWrite(h, e.phys, e.data, e.old);
      },
      beforeSlice: (v: number) => n.beginSlice(h, this.engines[v]!),
      afterSlice: (v: number, executed: number) => void n.endSlice(h, this.engines[v]!, executed),
    };
    driveFromStart(r, m, { chunk: this.at, mid: false }, c, sink);
    const last = n.lastStep(h);
    const chunk = n.cut(h);
    const rows = n.encodeRows(chunk.lineImages, chunk.log, chunk.writes, chunk.logCap);
    // (a trace with its pcs checks them; a lazy one's are these)
    if (chunk.count !== end - first || (!r.lazyPcs && end > first && (!last || last[0] !== r.step(end - 1).pc))) {
      throw traceCorrupt(r.path, `re-executing chunk ${c} to make its memory rows ran ${chunk.count} instructions${last ? ` ending at pc 0x${last[0].toString(16)}` : ''}, the recording ${end - first}: the trace does not replay`);
    }
    this.at = c + 1;
    return { rows, pcs: chunk.pcs };
  }

  close(): void {
    const n = nativeRecorder();
    if (this.h) {
      for (const f of this.fasts) {
        f.recordTo(undefined);
        n.detach(this.h, f.address);
      }
      for (const uc of this.engines) n.detach(this.h, uc);
    }
    this.fasts = [];
    this.engines = [];
    this.machine?.close();
    this.machine = undefined;
    this.h = undefined;
  }
}

setChunkIndexer((reader) => new Indexer(reader));
