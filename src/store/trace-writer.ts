/**
 * Writes a trace on a thread of its own, so that the guest runs on one core while SQLite stores
 * its history on another: the recording thread cuts a chunk (native/recorder) and hands it over;
 * the writer's thread (trace-writer-worker.ts) stores it in one transaction (trace-db-writer.ts)
 * and checkpoints the WAL while the guest runs on.
 *
 *   recording thread                          writer's thread
 *   ----------------                          ---------------
 *   writeChunk, addStop, setMeta... --ops-->  TraceDbWriter, one op after the other
 *   drain(): waits for every op        <----  shared counters: ops done, bytes, instructions,
 *   failure(): the first write that           where the stored history ends; a failure
 *              failed, and where the          (a full disk, an I/O error) as a message; ops
 *              stored history ends            after it are dropped, so the trace has no gap
 *
 * What reads the trace (time travel on the live guest) drains first: every chunk handed over is
 * then committed. A write that fails is reported at the next chunk handed over or the next
 * drain. Chunks wait for the writer up to QUEUE_BUDGET bytes of their buffers (MAX_QUEUED chunks at
 * most); the recording thread waits beyond that.
 * close() waits for everything and the WAL's fold, so a trace closed is one self-contained file.
 * With DBG_RECORD_THREAD=0 the ops run on the recording thread, as they come (for comparing).
 */

import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { checkoutRoot } from '../common/checkout-root.js';
import { DbgError, isDbgError, type ErrorCode } from '../common/errors.js';
import { nativeRecorder, type NativeChunk } from './native-recorder.js';
import { createTrace, markWriting, type Db } from './schema.js';
import { encodeRows, pageCopiesOf, portInDetail, storedInput, storesChunk, TraceDbWriter, type ChunkRecord, type InputRecord, type PageImages, type StopRecord, type StoredInput } from './trace-db-writer.js';
import { lockTrace } from './trace-folder.js';

export type { InputRecord, StopRecord } from './trace-db-writer.js';

/** What the recording thread asks of the writer's, in order. */
export type WriterOp =
  | { readonly k: 'chunk'; readonly c: ChunkRecord }
  | { readonly k: 'stop'; readonly stop: StopRecord }
  | { readonly k: 'meta'; readonly key: string; readonly value: string | number }
  | { readonly k: 'ram'; readonly pages: readonly number[]; readonly data: Uint8Array }
  | { readonly k: 'truncate'; readonly seq: bigint; readonly images?: PageImages }
  | { readonly k: 'finish' }
  | { readonly k: 'close' };

/**
 * A write that failed: the error (code 'bug': not a DbgError, the message is the first line of
 * its stack), and where the stored history ends (undefined: where recording began).
 */
export interface WriteFailure {
  readonly code: ErrorCode | 'bug';
  readonly message: string;
  readonly at: bigint | undefined;
}

/**
 * The shared counters (a SharedArrayBuffer of SHARED_BYTES):
 *
 *   Int32    [0] ops done   [1] a failure was posted   [2] the writer's thread ended
 *   BigInt64 [2] payload bytes stored   [3] instructions stored   [4] chunks stored
 *            [5] seq where the stored history ends (-1: nothing stored yet)
 */
export const SHARED_BYTES = 48;
const DONE = 0;
const FAILED = 1;
const ENDED = 2;

/** About what a page image takes deflated, for stats() before it is stored. */
const PAGE_BYTES = 1024;

/**
 * What may be handed over and not yet stored before the recording thread waits: the bytes of the
 * chunks' buffers (a chunk's write log counted at LOG_RECORD bytes a write) and a count of chunks.
 * A booting guest writes pages in bursts (xv6 fills its free memory: ~1,000 page images a chunk
 * for 60 chunks): with 4 chunks at most, the guest waited for the writer's thread in the burst
 * (~60 ms of a 0.7 s recorded boot) although that thread is idle most of the rest of the run;
 * a budget in bytes lets the burst queue, and bounds memory as the count did (each chunk of an
 * eager recording, with its log, ~1-5 MB).
 */
const QUEUE_BUDGET = 64 << 20;
const MAX_QUEUED = 256;
/** Bytes of one write in a chunk's log (recorder.c, LogRec). */
const LOG_RECORD = 24;

/**
 * Runs the ops on a TraceDbWriter (on the writer's thread, or on the recording thread with
 * DBG_RECORD_THREAD=0), keeping the shared counters. After a failure only `finish` and `close`
 * run: a later chunk stored after one that failed would leave a hole in the history.
 */
export class WriterSide {
  private failed = false;
  private readonly i32: Int32Array;
  private readonly i64: BigInt64Array;

  constructor(
    private readonly open: () => TraceDbWriter,
    shared: SharedArrayBuffer,
    private readonly report: (f: WriteFailure) => void,
  ) {
    this.i32 = new Int32Array(shared, 0, 4);
    this.i64 = new BigInt64Array(shared, 0, SHARED_BYTES / 8);
  }

  private writer: TraceDbWriter | undefined;

  run(op: WriterOp): void {
    try {
      // A chunk not stored gives its write log back all the same.
      if (this.failed && op.k === 'chunk') encodeRows(op.c);
      if (!this.failed || op.k === 'finish' || op.k === 'close') {
        const w = (this.writer ??= this.open());
        apply(w, op);
        const s = w.stats();
        this.i64[2] = BigInt(s.bytes);
        this.i64[3] = BigInt(s.instructions);
        this.i64[4] = BigInt(s.chunks);
        this.i64[5] = s.end ?? -1n;
      }
    } catch (e) {
      if (!this.failed) {
        this.failed = true;
        const end = this.i64[5]!;
        const message = isDbgError(e) ? e.message : `${String(e).split('\n')[0]} (a bug in dbg)`;
        this.report({ code: isDbgError(e) ? e.code : 'bug', message, at: end < 0n ? undefined : end });
        Atomics.store(this.i32, FAILED, 1);
      }
    } finally {
      Atomics.add(this.i32, DONE, 1);
      Atomics.notify(this.i32, DONE);
    }
  }

  /** The thread ends: wake whoever waits for it. */
  ended(): void {
    Atomics.store(this.i32, ENDED, 1);
    Atomics.notify(this.i32, DONE);
  }
}

function apply(w: TraceDbWriter, op: WriterOp): void {
  switch (op.k) {
    case 'chunk':
      return w.writeChunk(op.c);
    case 'stop':
      return w.addStop(op.stop);
    case 'meta':
      return w.setMeta(op.key, op.value);
    case 'ram':
      return w.writeInitialRam(op.pages, asBuffer(op.data));
    case 'truncate':
      return w.truncateAfter(op.seq, op.images);
    case 'finish':
      return w.finish();
    case 'close':
      return w.close();
  }
}

/** Buffers cross the thread boundary as plain Uint8Arrays. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** The compiled worker, found as interruptible-sql.ts finds its own (a worker thread cannot load TypeScript). */
function workerFile(): string {
  return join(checkoutRoot(), 'dist', 'src', 'store', 'trace-writer-worker.js');
}

/** The buffer behind `b` when `b` is all of it (then it moves to the writer's thread instead of being copied). */
function movable(b: Uint8Array): ArrayBuffer[] {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.byteLength > 0 && b.buffer instanceof ArrayBuffer ? [b.buffer] : [];
}

/** What a writer's thread is given to start: its trace, the shared counters, the port for failures. */
export interface WriterStart {
  readonly path: string;
  readonly shared: SharedArrayBuffer;
  readonly port: MessagePort;
}

/** A writer's thread started ahead (prewarmTraceWriter), waiting for its trace. */
let spare: Worker | undefined;

/**
 * Start the next trace writer's thread now, before its trace is known: a Node thread and the
 * modules it loads (SQLite, the recorder) take ~40-60 ms of CPU, which `dbg live` otherwise spends
 * beside the guest's start, after the trace is made. The thread waits for its WriterStart; one
 * never used ends with the process (it does not hold it).
 */
export function prewarmTraceWriter(): void {
  if (spare || process.env.DBG_RECORD_THREAD === '0') return;
  spare = new Worker(workerFile(), { workerData: { waitForStart: true } });
  spare.unref();
  const w = spare;
  // a thread that failed to start is not handed out (the writer makes its own and reports)
  w.once('error', () => {
    if (spare === w) spare = undefined;
  });
}

export class TraceWriter {
  private readonly unlock: () => void;
  private readonly shared = new SharedArrayBuffer(SHARED_BYTES);
  private readonly i32 = new Int32Array(this.shared, 0, 4);
  private readonly i64 = new BigInt64Array(this.shared, 0, SHARED_BYTES / 8);
  private readonly worker: Worker | undefined;
  private readonly port: MessagePort | undefined;
  private readonly side: WriterSide | undefined;
  private posted = 0;
  /**
   * Chunks handed over and maybe not stored yet, oldest first: the op count each was posted at,
   * the bytes the trace is about to hold of it (stats), the bytes of its buffers (QUEUE_BUDGET).
   */
  private readonly unstored: { op: number; bytes: number; held: number }[] = [];
  /** The `held` bytes of `unstored`. */
  private heldBytes = 0;
  private readonly pendingInputs: StoredInput[] = [];
  private failed: WriteFailure | undefined;
  private closed = false;
  private readonly creator: Db;

  constructor(
    readonly path: string,
    meta: Record<string, string | number>,
    replace = false,
  ) {
    // One recording per trace: a second dbg recording into it is refused (trace-folder.ts).
    this.unlock = lockTrace(path);
    try {
      // Kept open while recording: the trace is in WAL mode, its -wal beside it, from the start
      // (the writer's thread opens its own connection when it starts).
      this.creator = createTrace(path, meta, replace);
    } catch (e) {
      this.unlock();
      throw e;
    }
    markWriting(path, true);
    this.i64[5] = -1n;
    if (process.env.DBG_RECORD_THREAD === '0') {
      this.side = new WriterSide(() => new TraceDbWriter(path), this.shared, (f) => (this.failed ??= f));
      return;
    }
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const started = spare;
    spare = undefined;
    if (started) {
      this.worker = started;
      started.postMessage({ path, shared: this.shared, port: port2 } satisfies WriterStart, [port2]);
    } else this.worker = new Worker(workerFile(), { workerData: { path, shared: this.shared, port: port2 }, transferList: [port2] });
    // The recording thread waits for it where it must (drain, close): it never holds the process.
    this.worker.unref();
    // A thread that could not start (its module failed to load) never counts an op: say so to whoever waits.
    const ended = (): void => {
      Atomics.store(this.i32, ENDED, 1);
      Atomics.notify(this.i32, DONE);
    };
    this.worker.once('error', ended);
    this.worker.once('exit', ended);
  }

  private post(op: WriterOp, transfer: ArrayBuffer[] = []): void {
    this.posted++;
    if (this.side) this.side.run(op);
    else this.worker!.postMessage(op, transfer);
  }

  /** Wait until `n` ops are done (or the writer's thread ended: then a failure says so). */
  private waitFor(n: number): void {
    for (;;) {
      const done = Atomics.load(this.i32, DONE);
      if (done >= n) return;
      if (Atomics.load(this.i32, ENDED)) {
        this.failed ??= this.failure() ?? { code: 'bug', message: `trace "${this.path}": the trace writer's thread ended with ${n - done} writes not done`, at: this.storedEnd() };
        return;
      }
      Atomics.wait(this.i32, DONE, done, 1000);
    }
  }

  private storedEnd(): bigint | undefined {
    const end = Atomics.load(this.i64, 5);
    return end < 0n ? undefined : end;
  }

  /** The first write that failed, if one did (then nothing is stored after it). */
  failure(): WriteFailure | undefined {
    if (!this.failed && this.port && Atomics.load(this.i32, FAILED)) {
      this.failed = receiveMessageOnPort(this.port)?.message as WriteFailure | undefined;
    }
    return this.failed;
  }

  /** Wait until everything handed over is stored (or failed: see failure()). */
  drain(): void {
    this.waitFor(this.posted);
    this.pruneStored();
  }

  /** Forget the chunks the writer's thread has stored. */
  private pruneStored(): void {
    const done = Atomics.load(this.i32, DONE);
    while (this.unstored.length > 0 && this.unstored[0]!.op <= done) this.heldBytes -= this.unstored.shift()!.held;
  }

  /** RAM as it is when recording starts: its non-zero 4 KiB pages (their indexes in `ram` returned). */
  writeInitialRam(ram: Buffer, physBase: bigint): Uint32Array {
    const at = nativeRecorder().nonZeroPages(ram);
    const { pages, data } = pageCopiesOf(ram, physBase, at);
    this.post({ k: 'ram', pages, data }, movable(data));
    return at;
  }

  /** Kept until the next chunk is written, in the same transaction. */
  addInput(input: InputRecord): void {
    this.pendingInputs.push(storedInput(input));
  }

  /**
   * A port read (`port-in`) as addInput stores it, its detail made here: a booting xv6 reads
   * ~4,200 ports, and JSON.stringify of a fresh object was ~1 us of the guest's thread each.
   */
  addPortIn(seq: bigint, vcpu: number, port: number, size: number, value: number): void {
    this.pendingInputs.push([seq, vcpu, 'port-in', portInDetail(port, size, value)]);
  }

  /** Stored in a transaction of its own (trace-db-writer.ts). */
  addStop(stop: StopRecord): void {
    this.post({ k: 'stop', stop });
  }

  /**
   * The chunk, with the inputs added since the last one and, for a lazy-rows recording, the
   * images of the pages written in it. Whether the trace will hold it (storesChunk).
   */
  writeChunk(c: NativeChunk, images?: PageImages): boolean {
    const { first, count, pcs, lineImages, log, logCap, ckpts, writes, lines } = c;
    // What the trace is about to hold (before the buffers move to the writer's thread): ~6
    // bytes of memory rows a write (the sample kernel's 5.5), the checkpoints, the page images
    // (those packPages left whole deflated to about PAGE_BYTES).
    const bytes = 6 * writes + ckpts.length + Math.min(images?.data.length ?? 0, PAGE_BYTES * (images?.pages.length ?? 0));
    // (before they move to the writer's thread: then they read as empty)
    const held = pcs.length + lineImages.length + ckpts.length + LOG_RECORD * writes + (images?.data.length ?? 0);
    const record: ChunkRecord = { first, count, pcs, lineImages, log, logCap, ckpts, writes, lines, inputs: this.pendingInputs.splice(0), ...(images ? { images } : {}) };
    const stores = storesChunk(record);
    this.post({ k: 'chunk', c: record }, [...movable(pcs), ...movable(lineImages), ...movable(ckpts), ...(images ? movable(images.data) : [])]);
    this.unstored.push({ op: this.posted, bytes, held });
    this.heldBytes += held;
    this.waitForQueue();
    return stores;
  }

  /** Wait until the chunks handed over and not stored are within QUEUE_BUDGET and MAX_QUEUED (the oldest stored first). */
  private waitForQueue(): void {
    this.pruneStored();
    const q = this.unstored;
    let k = 0;
    for (let bytes = this.heldBytes; k < q.length && (bytes > QUEUE_BUDGET || q.length - k > MAX_QUEUED); k++) bytes -= q[k]!.held;
    if (k === 0) return;
    this.waitFor(q[k - 1]!.op);
    this.pruneStored();
  }

  /**
   * Cut the stored history at position `s` (trace-db-writer.ts; `images`: the page images of the
   * chunk holding `s`, of a lazy-rows recording); waits for it; throws when it failed.
   */
  truncateAfter(s: bigint, images?: PageImages): void {
    if (this.pendingInputs.length > 0) throw new Error('truncateAfter: inputs are pending (flush the recorder first)');
    this.post({ k: 'truncate', seq: s, ...(images ? { images } : {}) }, images ? movable(images.data) : []);
    this.drain();
    const f = this.failure();
    if (f) throw f.code === 'bug' ? new Error(f.message) : new DbgError(f.code, f.message);
  }

  /**
   * Payload bytes stored so far (with an estimate of the chunks handed over and not stored yet:
   * what the trace is about to hold), instructions stored, chunks stored.
   */
  stats(): { bytes: number; instructions: number; chunks: number } {
    this.pruneStored();
    const coming = this.unstored.reduce((n, u) => n + u.bytes, 0);
    return { bytes: Number(Atomics.load(this.i64, 2)) + coming, instructions: Number(Atomics.load(this.i64, 3)), chunks: Number(Atomics.load(this.i64, 4)) };
  }

  setMeta(key: string, value: string | number): void {
    this.post({ k: 'meta', key, value });
  }

  /** No more writes: make the trace one self-contained file (see finishTrace); close() does too. */
  finish(): void {
    if (!this.closed) this.post({ k: 'finish' });
  }

  /** Store everything handed over, fold the WAL, end the writer's thread. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      // The writer's connection folds the WAL when it is the only one.
      this.creator.close();
      this.post({ k: 'close' });
      this.drain();
    } finally {
      markWriting(this.path, false);
      this.unlock();
    }
  }
}
