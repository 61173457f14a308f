/**
 * The native recorder addon (native/recorder, built by scripts/setup.d/21-recorder.mjs): Unicorn
 * code and memory-write hooks in C that encode a chunk of history at a time. Engines are opaque
 * uc_engine* addresses (bigint) handed over by the emulator target; the store never calls Unicorn
 * itself. The encodings are described in native/recorder/recorder.c and in schema.ts.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DbgError } from '../common/errors.js';

export type RecorderHandle = { readonly __recorder: unique symbol };

/** One finished chunk as cut() returns it. */
export interface NativeChunk {
  /** Seq of the chunk's first instruction. */
  readonly first: bigint;
  /** Instructions in the chunk. */
  readonly count: number;
  /** The pc stream (nibbles). */
  readonly pcs: Buffer;
  /**
   * The chunk's memory writes before encoding: the lines written (an opaque array of this build)
   * and the address of the recorder's write log of `writes` records (capacity `logCap`), which
   * moves to the caller: encodeRows() makes the memory rows of them, on the trace writer's
   * thread, and gives the log back to the recorder. Call it once for every chunk cut.
   */
  readonly lineImages: Buffer;
  readonly log: bigint;
  readonly logCap: number;
  readonly lines: number;
  readonly writes: number;
  /** Checkpoints: u64 seq | u8 vcpu | u8 flags | u32 n | n bytes. */
  readonly ckpts: Buffer;
  /** Guest writes the page walk could not translate: u64 seq | u64 virtual | u8 vcpu | u8 len (0: > 8 bytes) | 8 B data. */
  readonly untranslated: Buffer;
}

export interface NativeRecorder {
  create(checkpointEvery: number): RecorderHandle;
  /** The calling thread (the trace writer's) scheduled as SCHED_BATCH: it does not preempt the guest's when it wakes; false where refused. */
  batchThread(): boolean;
  setRam(h: RecorderHandle, hostAddr: bigint, physBase: bigint, size: number): void;
  /** Guest RAM is `ram` (kept alive by the caller), at guest-physical `physBase`. */
  setRamBuffer(h: RecorderHandle, ram: Buffer, physBase: bigint): void;
  /**
   * Hooks on an engine; `flush` (default true) drops code translated before (an engine that never
   * ran needs none). `writes` (default true) false: no write hook, and hostWrite records nothing:
   * no memory rows at all (a lazy-rows recording, where dirtyPages' page images stand for them);
   * every engine of a recorder is attached the same way.
   */
  attach(h: RecorderHandle, uc: bigint, vcpu: number, flush?: boolean, writes?: boolean): void;
  /**
   * Records the vCPU of the attached exact engine `exactUc` from its fast engine `fastUc` too
   * (native/emu/emu.c): a write hook there (unless `writes` is false, as for attach), and the
   * address of the block sink (native/common/block-sink.h) to connect to the fast engine.
   * Disconnect it before detaching.
   */
  attachFast(h: RecorderHandle, exactUc: bigint, fastUc: bigint, flush?: boolean, writes?: boolean): bigint;
  detach(h: RecorderHandle, uc: bigint): void;
  beginSlice(h: RecorderHandle, uc: bigint): void;
  endSlice(h: RecorderHandle, uc: bigint, executed: number | bigint): bigint;
  /** A host write; `old` = the bytes it replaced, when RAM already holds the new ones. */
  hostWrite(h: RecorderHandle, phys: bigint, data: Buffer, old?: Buffer): void;
  /** The 64 bytes of a line written in the open chunk, as they are now; null when not written. */
  lineNow(h: RecorderHandle, line: bigint): Buffer | null;
  /**
   * The writes to `line` logged in the open chunk that `cursor` has not given yet, as encodeRows()
   * encodes a chunk's rows (of that line alone; the first row's initial image is the line before
   * them); empty when there are none. Between slices only. `cursor` (LINE_CURSOR_BYTES, all zero
   * from the chunk's start) is moved past them: the log position read to, the line's records read
   * there, the writes given and the line after them (recorder.c draws it). A cursor of another
   * drive of the chunk must come with its first 16 bytes (position and records read) zeroed.
   */
  lineRows(h: RecorderHandle, line: bigint, cursor: Buffer): Buffer;
  /**
   * A checkpoint between slices; flags 2 (default) = the vCPU is not running from here; at `seq`
   * (default: the instructions the hooks counted, which a lazy recording's do not).
   */
  checkpointNow(h: RecorderHandle, uc: bigint, flags?: number, seq?: bigint): void;
  cut(h: RecorderHandle): NativeChunk;
  /** The memory rows of a chunk cut() returned (u64 line | u32 n | u64 mask | n bytes, sorted by line); gives its log back. */
  encodeRows(lineImages: Buffer, log: bigint, writes: number, logCap: number): Buffer;
  /** The same into `into` when it holds rowsBound(lines, writes) bytes: the rows' length. */
  encodeRows(lineImages: Buffer, log: bigint, writes: number, logCap: number, into: Buffer): number | Buffer;
  /** The most bytes encodeRows() makes of a chunk of `lines` lines and `writes` writes. */
  rowsBound(lines: number, writes: number): number;
  seq(h: RecorderHandle): bigint;
  /** The pc and vCPU of the open chunk's last instruction; null when it has none. */
  lastStep(h: RecorderHandle): [bigint, number] | null;
  setSeq(h: RecorderHandle, seq: bigint): void;
  /** lastOnly: the arrays hold only instruction count - 1. */
  decodePcs(pcs: Buffer, count: number, lastOnly?: boolean): { pc: BigUint64Array; vcpu: Uint8Array };
  /** decodePcs into `pc` and `vcpu` (at least `count` cells each), which the caller reuses. */
  decodePcsInto(pcs: Buffer, count: number, pc: BigUint64Array, vcpu: Uint8Array): void;
  /** Offsets i < below of the chunk whose pc is one of `targets`. */
  findPcs(pcs: Buffer, count: number, targets: BigUint64Array, below: number): Float64Array;
  /** Indexes of the 4 KiB pages of `ram` that are not all zero (pages never written are not read: pages.c). */
  nonZeroPages(ram: Buffer): Uint32Array;
  /** `src` as raw DEFLATE into `into` (at least deflateRawBound(src.length) bytes): its length (deflate.c). */
  deflateRaw(src: Buffer, into: Buffer): number;
  deflateRawBound(length: number): number;
  /**
   * The 4 KiB pages `at` (page indexes into `ram`) packed for the trace's `page` table: per page
   * its index (32-bit little-endian), a 16-bit length n and n bytes of raw DEFLATE, or n = 0 and
   * the page's 4096 bytes, left for deflateRaw; pages all zero whose byte in `seen` (one per page
   * of RAM) is clear are left out, and every page packed gets its byte set (deflate.c).
   */
  packPages(ram: Buffer, at: Uint32Array, seen: Uint8Array): Buffer;
  ckptDecode(key: Buffer, delta: Buffer): Buffer;
  contextRestore(uc: bigint, image: Buffer): void;
  contextSave(uc: bigint): Buffer;
  /** uc_emu_start(uc, begin, 0, 0, count); returns the uc_err. */
  run(uc: bigint, begin: bigint, count: number | bigint): number;
  /** IN instructions on this engine return `values` in order (hook added on the first call, no flush). */
  feedPorts(uc: bigint, values: Uint32Array): void;
  unfeedPorts(uc: bigint): void;
  /** The Unicorn build an engine runs ("major.minor.patch") and its uc_context size: recorded in a trace's meta. */
  buildInfo(uc: bigint): { unicorn: string; contextSize: number };
  /** The recorder's page walk over `ram` (physical address, or null when not mapped); for tests. */
  pageWalk(ram: Buffer, ramBase: bigint, cr0: bigint, cr3: bigint, cr4: bigint, efer: bigint, virt: bigint): bigint | null;
  /** A recorded slice of exactly `count` instructions, stopped from the recorder's hook; uc_err. */
  runSlice(h: RecorderHandle, uc: bigint, begin: bigint, count: number | bigint): number;
  /**
   * Start tracking writes to `ram` (kept alive by the caller; private anonymous memory on 4 KiB
   * boundaries, as the live machine's RAM is): undefined, or why it cannot ("userfaultfd:
   * Operation not permitted", "kernel lacks UFFD_FEATURE_WP_ASYNC"...). Userfaultfd write
   * protection in asynchronous mode: no hook, the kernel marks the pages written (recorder.c).
   */
  dirtyTrack(h: RecorderHandle, ram: Buffer): string | undefined;
  /** Indexes (byte offset / 4096) of the tracked pages written since dirtyTrack or the last call, ascending. */
  dirtyPages(h: RecorderHandle): Uint32Array;
  /**
   * How many tracked pages were written since dirtyTrack or the last dirtyPages, counted up to
   * atMost + 1; unlike dirtyPages it protects nothing (the guest writes on unhindered).
   */
  dirtyCount(h: RecorderHandle, atMost: number): number;
  /**
   * What dirtyPages gives, right after a dirtyCount that counted no more than its bound (it
   * listed every page written) with nothing run or written since: those pages protected again
   * without a second walk of the RAM (recorder.c); throws otherwise.
   */
  dirtyTakeListed(h: RecorderHandle): Uint32Array;
  /**
   * Of the pages `at` (as dirtyPages listed them), those packPages left out as still zero for
   * the first time (`seen`) are unprotected and marked released: how many (recorder.c).
   */
  dirtyRelease(h: RecorderHandle, at: Uint32Array, seen: Uint8Array): number;
  /** Tracking ends (also when the recorder is collected); harmless when not tracking. */
  dirtyStop(h: RecorderHandle): void;
}

let loaded: NativeRecorder | undefined;

/** The addon, or DbgError('unsupported') saying how to build it. */
/** The bytes of a cursor of lineRows (recorder.c draws its layout). */
export const LINE_CURSOR_BYTES = 88;

export function nativeRecorder(): NativeRecorder {
  if (loaded) return loaded;
  loaded = createRequire(import.meta.url)(nativeRecorderPath()) as NativeRecorder;
  return loaded;
}

/**
 * Where the native recorder's addon is: it is also the SQLite extension the trace writer loads
 * (native/recorder/sqlite-rows.c, entry point sqlite3_recorder_init).
 */
export function nativeRecorderPath(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  // From src/store (vitest) or dist/src/store (compiled): find native/recorder upwards.
  const candidates = [join(root, 'native'), join(root, '..', 'native')].map((d) => join(d, 'recorder', 'build', 'Release', 'recorder.node'));
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new DbgError('unsupported', 'the native recorder (native/recorder) is not built: run `node scripts/setup.mjs` (needs gcc and libunicorn-dev), or pass --no-record');
  }
  return path;
}
