/**
 * Records an emulated machine into a trace: the ExecutionObserver the emulator calls around each
 * slice, gluing the native recorder (hooks on every vCPU's engine) to the TraceWriter.
 *
 * A chunk is cut after the slice that brings it to `chunkTarget` instructions (CHUNK_TARGET), so
 * chunks end on slice boundaries and a killed process loses at most the open chunk.
 *
 * Memory is recorded one of two ways (schema.ts). Eagerly: a write hook on every engine puts each
 * guest write into the chunk's memory rows (mem, mem_mask), which costs the guest most of what
 * recording costs (Unicorn's stores leave its fast path: recorder.c). Lazily ("lazy rows"): no
 * write hook; the kernel tracks which 4 KiB pages of RAM are written (recorder.c, dirtyTrack), and
 * each chunk is stored with the images of its written pages at its end; a reader makes a chunk's
 * memory rows when it needs them, by re-executing it.
 */

import type { ExecutionObserver, InputEvent, ObservedMachine, SliceStop } from '../targets/emulator/execution-observer.js';
import { DbgError } from '../common/errors.js';
import type { StopReason } from '../targets/target.js';
import { nativeRecorder, type NativeRecorder, type RecorderHandle } from './native-recorder.js';
import { pageImagesOf, type PageImages } from './trace-db-writer.js';
import { TraceWriter } from './trace-writer.js';

export interface RecorderOptions {
  /** Instructions between register checkpoints inside a slice (default 8192). */
  checkpointEvery?: number;
  /** Instructions per stored chunk (default 2^20). */
  chunkTarget?: number;
  /** Name of the guest for the trace's meta. */
  guest?: string;
  /** The guest's symbol file (absolute path), which `dbg replay` loads by default. */
  symbols?: string;
  /** Overwrite an existing file. */
  replace?: boolean;
  /**
   * Stop recording (the guest runs on) once the trace holds this many bytes; default
   * $DBG_RECORD_MAX or 1 GiB. A guest that runs forever must not fill the disk.
   */
  maxBytes?: number;
  /** Told once when recording stops at the size limit. */
  onLimit?: (message: string) => void;
  /** Told after each chunk is stored: instructions recorded and the payload bytes stored so far. */
  onProgress?: (p: { instructions: bigint; bytes: number }) => void;
  /**
   * Record from the machine's fast engines where it has them, block by block (default: true
   * unless $DBG_RECORD_FAST is 0); false records every instruction on the exact engine.
   */
  fast?: boolean;
  /**
   * How memory is recorded (see above): 'lazy' when the machine's RAM can be tracked (else
   * eagerly, with the reason in the trace's meta memory_rows_reason), or 'eager'. Default
   * $DBG_RECORD_ROWS, else DEFAULT_ROWS.
   */
  rows?: 'lazy' | 'eager';
}

/**
 * How memory is recorded when neither the options nor $DBG_RECORD_ROWS say: lazily (issue 10:
 * a write hook alone costs the guest 1.7x; readers make a lazy trace's rows as queries need them,
 * src/targets/replay/chunk-indexer.ts).
 */
const DEFAULT_ROWS: 'lazy' | 'eager' = 'lazy';
/**
 * Instructions per chunk by default: a lazy-rows trace's reader re-executes a chunk from its
 * start for a seek into it (~1.3 ms for 2^18 instructions on the fast engine) and to make its
 * memory rows (~15 ms), so its chunks are shorter; an eager trace's are cut every 2^20.
 */
const CHUNK_TARGET = { lazy: 1 << 18, eager: 1 << 20 };
/**
 * A lazy chunk that has written more pages than this by its target runs on to the eager target:
 * a guest that writes much memory (a store loop over 64 KiB: 17 pages every 2^18 instructions)
 * would otherwise store its pages four times as often, and the writer's thread, deflating and
 * inserting them, falls behind the guest (measured: the guest then waits for it 30% of its time).
 */
const FEW_PAGES = 8;

/** Two ascending lists of page indexes as one (ascending, each index once). */
export function unionPages(a: Uint32Array, b: Uint32Array): Uint32Array {
  if (!a.length || !b.length) return a.length ? a : b;
  const out = new Uint32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    const x = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i++]! : b[j++]!;
    if (n === 0 || out[n - 1] !== x) out[n++] = x;
  }
  return out.subarray(0, n);
}

export class EmulatorRecorder implements ExecutionObserver {
  private inputCount = 0;
  readonly writer: TraceWriter;
  private readonly n: NativeRecorder;
  private readonly h: RecorderHandle;
  private engines: bigint[] = [];
  /** The fast engines whose blocks this recorder hears of (disconnected before detaching). */
  private fastEngines: { address: bigint; recordTo(sink: bigint | undefined): void }[] = [];
  private readonly chunkTarget: number;
  private chunkFirst = 0n;
  /** Where recording began (the stored history's end while nothing is stored). */
  private recordStart = 0n;
  private machine: ObservedMachine | undefined;
  private detached = false;
  /**
   * The last instruction stored (what a reader opened now finds at the end of the history,
   * without decoding the chunk: a reverse step's first check).
   */
  lastStored: { seq: number; pc: bigint; vcpu: number } | undefined;
  /** Recording stopped at the size limit: the observer methods do nothing from then on. */
  private full = false;
  private stoppedAt: bigint | undefined;
  private readonly maxBytes: number;
  /** A byte per 4 KiB page of RAM, set once the trace holds an image of it (pageImagesOf). */
  private seen = new Uint8Array(0);
  /** Memory is recorded lazily: page images, no memory rows. */
  private lazy = false;

  /** A lazy recording needs no instruction told: the machine runs slices on its fast engines. */
  get hearsInstructions(): boolean {
    return !this.lazy;
  }
  /**
   * Of a lazy-rows recording: each chunk the trace holds, in order, with the RAM pages written in
   * it (indexes of 4 KiB pages in `machine.ram`): the pages whose images discardAfter stores again.
   */
  private stored: { first: bigint; pages: Uint32Array }[] = [];

  constructor(
    readonly path: string,
    private readonly opts: RecorderOptions = {},
  ) {
    this.n = nativeRecorder();
    this.chunkTarget = opts.chunkTarget ?? CHUNK_TARGET[this.rowsAsked()];
    this.h = this.n.create(opts.checkpointEvery ?? 8192);
    this.maxBytes = opts.maxBytes ?? (Number(process.env.DBG_RECORD_MAX) || 1 << 30);
    this.writer = new TraceWriter(
      path,
      {
        arch: 'x86-64',
        guest: opts.guest ?? '',
        symbols: opts.symbols ?? '',
        checkpoint_every: opts.checkpointEvery ?? 8192,
        chunk_target: this.chunkTarget,
        created: new Date().toISOString(),
      },
      opts.replace ?? false,
    );
  }

  attach(machine: ObservedMachine): void {
    this.machine = machine;
    this.n.setRamBuffer(this.h, machine.ram, machine.ramBase);
    this.n.setSeq(this.h, machine.seq);
    this.chunkFirst = machine.seq;
    this.recordStart = machine.seq;
    this.writer.setMeta('ram_base', `0x${machine.ramBase.toString(16)}`);
    this.writer.setMeta('ram_size', machine.ram.length);
    this.writer.setMeta('vcpus', machine.vcpuCount);
    this.writer.setMeta('first_seq', machine.seq.toString());
    // What made the checkpoints: another Unicorn build cannot load them (checked by replay).
    const build = this.n.buildInfo(machine.engineAddress(0));
    this.writer.setMeta('unicorn_version', build.unicorn);
    this.writer.setMeta('context_size', build.contextSize);
    this.seen = new Uint8Array(Math.ceil(machine.ram.length / 4096));
    for (const i of this.writer.writeInitialRam(machine.ram, machine.ramBase)) this.seen[i] = 1;
    // Tracked from here (after ram_init was read: the first chunk's page images are relative to
    // it; reading RAM before does not touch the pages never written, tracked ones would be).
    const rows = this.rowsAsked();
    const why = rows === 'eager' ? undefined : machine.ramBase % 4096n ? 'the RAM does not start on a 4 KiB page' : this.n.dirtyTrack(this.h, machine.ram);
    this.lazy = rows === 'lazy' && why === undefined;
    if (this.lazy) {
      this.writer.setMeta('memory_rows', 'lazy');
      // and no pc stream: chunk-indexer.ts makes a chunk's pcs with its rows
      this.writer.setMeta('pcs', 'lazy');
    }
    else if (why !== undefined) this.writer.setMeta('memory_rows_reason', why);
    this.engines = [];
    this.fastEngines = [];
    const fast = this.opts.fast ?? process.env.DBG_RECORD_FAST !== '0';
    for (let v = 0; v < machine.vcpuCount; v++) {
      const uc = machine.engineAddress(v);
      this.engines.push(uc);
      this.n.attach(this.h, uc, v, machine.seq > 0n, !this.lazy);
      // a lazy recording hears of no block: the fast engines run as unrecorded (hearsInstructions)
      const f = fast && !this.lazy ? machine.fastEngine?.(v) : undefined;
      if (f) {
        f.recordTo(this.n.attachFast(this.h, uc, f.address, machine.seq > 0n, !this.lazy));
        this.fastEngines.push(f);
      }
    }
    // The state every vCPU starts the recording in.
    for (const uc of this.engines) this.n.checkpointNow(this.h, uc);
  }

  /** How memory is to be recorded: the options', else $DBG_RECORD_ROWS, else DEFAULT_ROWS. */
  private rowsAsked(): 'lazy' | 'eager' {
    const env = process.env.DBG_RECORD_ROWS;
    return this.opts.rows ?? (env === 'lazy' || env === 'eager' ? env : DEFAULT_ROWS);
  }

  /** The images of RAM pages (indexes of 4 KiB pages in the machine's RAM) as they are now. */
  private pageImages(at: Uint32Array): PageImages {
    return pageImagesOf(this.machine!.ram, this.machine!.ramBase, at, this.seen);
  }

  /** The recorder's hooks off every engine, its block sinks off every fast engine first; RAM no longer tracked. */
  private unhook(): void {
    this.n.dirtyStop(this.h);
    for (const f of this.fastEngines) {
      f.recordTo(undefined);
      this.n.detach(this.h, f.address);
    }
    this.fastEngines = [];
    for (const uc of this.engines) this.n.detach(this.h, uc);
  }

  private engine(vcpu: number): bigint {
    const uc = this.engines[vcpu];
    if (uc === undefined) throw new DbgError('state', `recorder: vCPU ${vcpu} was not attached`);
    return uc;
  }

  beforeSlice(vcpu: number, seq: bigint): void {
    if (this.full) return;
    const mine = this.n.seq(this.h);
    if (mine !== seq) throw new DbgError('state', `recorder out of step: the machine is at seq ${seq}, the recorder at ${mine}`);
    this.n.beginSlice(this.h, this.engine(vcpu));
  }

  afterSlice(vcpu: number, executed: number, _stop: SliceStop): void {
    if (this.full) return;
    const next = this.n.endSlice(this.h, this.engine(vcpu), executed);
    // (a number: a chunk is far below 2^53 instructions, and no BigInt is made per slice for it)
    const ran = Number(next - this.chunkFirst);
    if (ran < this.chunkTarget) return;
    if (this.lazy && this.opts.chunkTarget === undefined && ran < CHUNK_TARGET.eager) {
      // a look at how many pages were written so far (see FEW_PAGES), protecting none: many, on
      // to the eager target; few, the cut is here
      if (this.looked) return;
      this.looked = true;
      if (this.n.dirtyCount(this.h, FEW_PAGES) > FEW_PAGES) return;
      // few: the look listed them all, and they are taken as dirtyPages would (no second walk)
      this.cut(true);
      return;
    }
    this.cut();
  }

  /** afterSlice looked at the open lazy chunk's written pages (FEW_PAGES), until the chunk is cut. */
  private looked = false;

  onStop(seq: bigint, vcpu: number, reason: StopReason): void {
    if (this.writeFailed()) return;
    const point = reason.kind === 'breakpoint' || reason.kind === 'watchpoint' ? { id: reason.id, addr: reason.addr } : {};
    this.writer.addStop({ seq, vcpu, kind: reason.kind, ...point });
  }

  onInput(event: InputEvent): void {
    if (this.full) return;
    this.inputCount++;
    switch (event.kind) {
      case 'interrupt':
        for (const w of event.writes) this.n.hostWrite(this.h, w.phys, w.data, w.old);
        this.writer.addInput({
          seq: event.seq,
          vcpu: event.vcpu,
          kind: 'interrupt',
          detail: { vector: event.vector, registers: Object.fromEntries(event.registers), writes: event.writes.map((w) => ({ phys: w.phys, data: w.data.toString('hex') })), ...(event.inSlice ? { inSlice: true } : {}) },
        });
        break;
      case 'memory-write':
        this.n.hostWrite(this.h, event.phys, event.data, event.old);
        this.writer.addInput({ seq: event.seq, kind: 'memory-write', detail: { phys: event.phys, data: event.data.toString('hex') } });
        break;
      case 'port-in':
        this.writer.addPortIn(event.seq, event.vcpu, event.port, event.size, event.value);
        break;
      case 'mmio-read':
        this.writer.addInput({ seq: event.seq, vcpu: event.vcpu, kind: 'mmio-read', detail: { phys: `0x${event.phys.toString(16)}`, size: event.size, value: event.value } });
        break;
      case 'lapic-id':
        this.writer.addInput({ seq: event.seq, vcpu: event.vcpu, kind: 'lapic-id', detail: { value: event.value } });
        break;
      case 'cpu-start':
        this.writer.addInput({ seq: event.seq, vcpu: event.vcpu, kind: 'cpu-start', detail: { by: event.by } });
        this.checkpointAt(event.vcpu, event.seq);
        break;
      case 'register-write':
        this.writer.addInput({ seq: event.seq, vcpu: event.vcpu, kind: 'register-write', detail: { name: event.name, value: event.value } });
        this.checkpointAt(event.vcpu, event.seq);
        break;
    }
  }

  /**
   * A checkpoint of `vcpu` at `seq` (a start-up, a register write): where the hooks counted, or
   * in a lazy recording, where no hook counts inside a slice, where the machine says.
   */
  private checkpointAt(vcpu: number, seq: bigint): void {
    if (this.lazy) this.n.checkpointNow(this.h, this.engine(vcpu), 2, seq);
    else this.n.checkpointNow(this.h, this.engine(vcpu));
  }

  /**
   * Store everything recorded so far (the open chunk becomes a stored chunk) and wait until it
   * is (trace-writer.ts: the trace is written on a thread of its own). When the trace reaches its
   * size limit, or cannot be written (a full disk, an I/O error: the chunk's transaction is
   * rolled back), recording stops at the end of what is stored and the guest runs on unrecorded.
   */
  flush(): void {
    this.cut();
    // Even once recording stopped: what was handed over before is stored before anyone reads it.
    this.writer.drain();
    if (!this.writeFailed()) this.checkLimit();
  }

  /**
   * End the open chunk here, without waiting for it to be stored (flush() waits): a re-recording
   * (rerecord.ts) cuts where the recording it repeats cut.
   */
  cutChunk(): void {
    this.cut();
  }

  /**
   * The open chunk handed to the writer (stored on its thread while the guest runs on). `listed`:
   * a look (dirtyCount) just listed every page written in it.
   */
  private cut(listed = false): void {
    if (this.writeFailed()) return;
    const last = this.n.lastStep(this.h);
    const c = this.n.cut(this.h);
    // Guest writes the recorder's page walk could not translate are inputs of their own kind:
    // replay re-executes them (Unicorn translates as it did live); queries by physical address
    // do not see them, and say nothing false about them.
    for (let o = 0; o + 26 <= c.untranslated.length; o += 26) {
      const len = c.untranslated[o + 17]!;
      this.writer.addInput({
        seq: c.untranslated.readBigUInt64LE(o),
        vcpu: c.untranslated[o + 16]!,
        kind: 'untranslated-write',
        detail: { virt: c.untranslated.readBigUInt64LE(o + 8), ...(len ? { data: c.untranslated.subarray(o + 18, o + 18 + len) } : {}) },
      });
    }
    // A lazy-rows chunk: the pages written in it (guest, host and debugger writes alike), as they are at its end.
    this.looked = false;
    const written = this.lazy ? (listed ? this.n.dirtyTakeListed(this.h) : this.n.dirtyPages(this.h)) : undefined;
    const images = written && this.pageImages(written);
    // the pages still zero that a scan protected with the written ones (a huge page being filled)
    if (written) this.n.dirtyRelease(this.h, written, this.seen);
    if (this.writer.writeChunk(c, images) && written) this.stored.push({ first: c.first, pages: written });
    this.chunkFirst = this.n.seq(this.h);
    if (c.count > 0) this.lastStored = last ? { seq: Number(this.chunkFirst) - 1, pc: last[0], vcpu: last[1] } : undefined;
    this.opts.onProgress?.({ instructions: this.chunkFirst, bytes: this.writer.stats().bytes });
    this.checkLimit();
  }

  /** Stop at the size limit (the bytes stored so far: the writer's thread may be a few chunks behind). */
  private checkLimit(): void {
    if (this.writer.stats().bytes < this.maxBytes) return;
    // Every chunk handed over will be stored: the history ends where the last one does.
    this.stop(this.chunkFirst, `recording stopped at seq ${this.chunkFirst}: the trace "${this.path}" reached ${this.maxBytes} bytes (set DBG_RECORD_MAX=BYTES for more); the guest runs on unrecorded`);
  }

  /**
   * True once recording stopped. A write of the trace that failed (a full disk, an I/O error:
   * reported by the writer after the fact) stops it at the end of the stored history.
   */
  private writeFailed(): boolean {
    if (this.full) return true;
    const f = this.writer.failure();
    if (!f) return false;
    const at = f.at ?? this.recordStart;
    this.lastStored = undefined;
    this.stop(at, `recording stopped at seq ${at}: writing the trace failed (${f.message}); it holds the history up to there; the guest runs on unrecorded`);
    return true;
  }

  /** Recording ends at `seq` (the end of the stored history); the trace is made self-contained. */
  private stop(seq: bigint, message: string): void {
    this.full = true;
    this.stoppedAt = seq;
    this.unhook();
    this.writer.finish();
    this.opts.onLimit?.(message);
  }

  /**
   * The machine was put back at position `seq` (Machine.rewind): forget the history after it and
   * record on from there (the next chunk starts at `seq`).
   */
  discardAfter(seq: bigint): void {
    if (this.full) throw new DbgError('state', `cannot discard the recorded future: recording stopped at seq ${this.stoppedAt}`);
    this.flush();
    if (this.full) throw new DbgError('state', `cannot discard the recorded future: recording stopped at seq ${this.stoppedAt}`);
    this.writer.truncateAfter(seq, this.lazy ? this.imagesAt(seq) : undefined);
    // The chunk that held `seq` keeps the checkpoints the state at `seq` needs; the next slice
    // starts the next chunk with its own.
    this.n.setSeq(this.h, seq);
    this.chunkFirst = seq;
    this.lastStored = undefined;
    this.inputCount++;
  }

  /**
   * Of a lazy-rows recording whose machine was put back at `seq` (RAM as it is there), with every
   * chunk stored: the page images of the chunk holding `seq`, cut there (the writer finds that
   * chunk as this does: the last one stored that starts at or before `seq`). The pages that differ
   * between its start and `seq` are among those written in it; pages written since the last cut
   * (the rewind's, when it came after) are added: each holds its state at `seq` now.
   */
  private imagesAt(seq: bigint): PageImages | undefined {
    const now = this.n.dirtyPages(this.h);
    let k = this.stored.length;
    while (k > 0 && this.stored[k - 1]!.first > seq) k--;
    this.stored.length = k;
    const held = this.stored[k - 1];
    if (!held) return undefined;
    held.pages = unionPages(held.pages, now);
    return this.pageImages(held.pages);
  }

  /** Say in the trace how its run ended (meta.outcome: "ok", "failed (...)"); `dbg traces` shows it. */
  setOutcome(outcome: string): void {
    try {
      // After the last chunk: a run that dies while that chunk commits leaves no outcome (and
      // `dbg traces` says "unfinished"), never an "ok" over a history that lost its end.
      if (!this.detached) this.flush();
      this.writer.setMeta('outcome', outcome);
    } catch {
      // A trace that cannot be written any more (a full disk) keeps what it has.
    }
  }

  /**
   * Inputs recorded so far (a register or memory write by the debugger, an interrupt...): with
   * `seq`, what tells whether the history changed, since an input can come at the same seq.
   */
  get inputs(): number {
    return this.inputCount;
  }

  /** Seq of the next instruction (once recording stopped: the end of the stored history). */
  get seq(): bigint {
    this.writeFailed();
    return this.stoppedAt ?? this.n.seq(this.h);
  }

  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.flush();
    if (!this.full) this.unhook();
    this.writer.close();
    this.machine = undefined;
  }
}
