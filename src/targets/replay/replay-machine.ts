/**
 * A recorded history brought back to life at any seq: private Unicorn engines (one per recorded
 * vCPU) over a private RAM buffer, positioned by the store's records.
 *
 * How a position S is reached (rr's way, with the trace's index instead of a replay from 0):
 *   1. memory: the RAM buffer is moved from where it is to the state at the start of the
 *      re-execution window, either by applying the window's write records (undo with the old
 *      bytes, redo with the new ones: cheap for a short move) or, for a long move, line by
 *      line: every line written between the two positions gets its value from "last write to
 *      this line at or before" (an index seek each), so the cost follows the number of distinct
 *      lines, not the number of writes;
 *   2. registers: the vCPU that runs at S restarts from its newest checkpoint C <= S (at most
 *      `checkpoint_every` instructions back) and re-executes S - C instructions; the others
 *      take their slice-end checkpoints as they are;
 *   3. the re-executed pc at S is compared with the recorded one (a divergence is reported,
 *      not ignored).
 * Port reads and device register reads (local and I/O APIC, which no replay engine emulates)
 * inside the window are given back from the recorded inputs (IN hook, MMIO pages).
 *
 * Limitation: RAM is changed behind Unicorn's back, so code that the guest rewrote between two
 * positions may run from a stale translation after a seek (no self-modifying code support yet).
 */

import { DbgError, errors } from '../../common/errors.js';
import type { Registers } from '../../arch/arch.js';
import { stateBound } from '../../store/line-rows.js';
import { nativeRecorder } from '../../store/native-recorder.js';
import { traceCorrupt } from '../../store/trace-check.js';
import { upperBound, type Checkpoint, type ChunkWrites, type InputRow, type TraceReader } from '../../store/trace-reader.js';
import { emuHooks, hookResult, HookStop, type HookCtx, type HookResult } from '../emulator/emu-hooks.js';
import { UC, UnicornEngine, X86_REG } from '../emulator/unicorn.js';
import { isTrap, readRegisters } from '../emulator/x86-64-cpu.js';
import { IOAPIC_BASE, LAPIC_BASE, LAPIC_ID } from '../emulator/devices/pc.js';
import { allocGuestRam, releaseGuestRam } from '../emulator/guest-ram.js';
import type { FastEngineHandle } from '../emulator/execution-observer.js';
import { makeFastEngine } from '../emulator/fast-engine.js';
import { driveFromStart } from './chunk-drive.js';
// a lazy-rows trace's memory rows are made by re-executing chunks on a machine of this file
import './chunk-indexer.js';

/**
 * The instructions a run of the engine completed, counted as machine.ts counts them: at the limit
 * the instruction past it was counted, not run; an engine that returned by itself (hlt, the last
 * instruction of a slice that idles) ran every one it counted, and so did one stopped by a trap
 * (int n, int3, into: the last instruction of its slice, the recorded interrupt after it).
 */
function completed(h: HookResult): bigint {
  return h.kind === HookStop.None || (h.kind === HookStop.Interrupt && isTrap(h.intno)) ? h.counter : h.counter - 1n;
}

/**
 * Windows at least this long run on the fast engine: a shorter one (a step, a rung of a reverse
 * step) costs less on the exact engine (~30 ns an instruction) than the two register hand-overs
 * a fast run makes (uc_context copies both ways and a TLB flush, several microseconds).
 */
const FAST_WINDOW = 1024;
/**
 * ...once the vCPU has re-executed this many instructions on its exact engine (or the window would
 * take it past them): a fast engine costs ~1 ms to make, and its first runs translate and decode
 * (capstone) the code the exact engine translated already, and hand over to it at every port
 * read (a boot polls its serial port): what the exact engine spends on some 50k instructions. A
 * replay that runs little (a query of a chunk's first writes, a seek, reverse steps) never makes
 * one: the sample kernel's most written line, 35k instructions into its boot, took 10 ms with a
 * fast engine, 7 ms without.
 */
const FAST_AFTER = 65_536;
/** A drive that tells no one what it runs (driveTo). */
const NO_SINK = { onInput() {}, beforeSlice() {}, afterSlice() {} };

/** An address no instruction is at (the engine's "until" and the hooks' "skip" pc). */
const NO_PC = 0xffff_ffff_ffff_fff0n;

/** Moves of at most this many instructions (within two chunks) go write by write... */
const NEAR_INSNS = 200_000;
/** ...decoding the chunks' writes for moves this short (reverse steps, short seeks)... */
const SHORT_INSNS = 32_768;
/** ...when the chunks write more lines than this (else line by line). */
const LINES_PER_MOVE = 512;
/** ...or more than this on a second move in the same chunks (reverse steps: decoding pays off). */
const LINES_AGAIN = 48;
/** The lines kept of RAM states moved to line by line (see ReplayMachine.snapshots). */
const SNAPSHOT_BYTES = 16 << 20;
/**
 * Above this many lines a move of RAM across chunks reads their rows in one pass (~1 us a row)
 * instead of looking each line up (~20 us): 64k lines, 4 MiB, ~1.3 s of lookups.
 */
const FAR_LINES = 65_536;
/**
 * Reverse steps keep a register state every this many instructions of the window they re-execute
 * (at least: fewer rungs when the window's lines are many, see Ladder), within this many bytes.
 */
const RUNG_INSNS = 128;
const LADDER_BYTES = 8 << 20;

/**
 * Register and RAM states inside one checkpoint window, kept by a reverse step for the next ones.
 * gdb's reverse-stepi goes back one instruction at a time; each step re-executed its window from
 * the checkpoint (the sample kernel's timer loop: 6,700 instructions a step, most of a reverse
 * step's time), now from the rung below it (fewer than `spacing`). A rung holds the running vCPU's
 * uc_context and the RAM the window's chunks write (as runs of whole lines), as they were there;
 * the other vCPUs do not run inside the window. Built as the first reverse step re-executes the
 * window, extended by later ones that go higher.
 */
interface Ladder {
  readonly vcpu: number;
  /** The window: its checkpoint's seq, and the next checkpoint's (any vCPU) or the history's end. */
  readonly from: number;
  readonly top: number;
  /** The history's end when it was built (a live recording's grows: then it is dropped). */
  readonly end: number;
  readonly spacing: number;
  /** The most rungs kept (LADDER_BYTES of them). */
  readonly capacity: number;
  /** [offset in RAM, bytes] of the runs of lines the window's chunks write. */
  readonly runs: number[];
  readonly runBytes: number;
  /** By seq, ascending; the first is the checkpoint. */
  readonly rungs: { seq: number; image: Buffer; ram: Buffer }[];
}

/**
 * Between RAM and a rung's copy of the runs of lines a ladder keeps ([offset, bytes] pairs, the
 * copy holding them one after the other): 'gather' copies them out of `ram`, 'scatter' back.
 */
function copyRuns(runs: readonly number[], copy: Buffer, ram: Buffer, way: 'gather' | 'scatter'): void {
  let p = 0;
  for (let k = 0; k < runs.length; k += 2) {
    const off = runs[k]!;
    const n = runs[k + 1]!;
    if (way === 'gather') ram.copy(copy, p, off, off + n);
    else copy.copy(ram, off, p, p + n);
    p += n;
  }
}

/** The index of the first of `rows` (in seq order) at or after `seq`. */
function firstRowAt(rows: readonly InputRow[], seq: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (rows[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Checkpoints are raw uc_context images of the Unicorn build that recorded them: a trace from
 * another build (another version, another context size) is refused, as rr refuses a trace of
 * another format, saying what was found, what this dbg has, and what to do.
 */
function checkBuild(reader: TraceReader, e: UnicornEngine): void {
  const here = nativeRecorder().buildInfo(e.address);
  const { unicorn, contextSize } = reader.info;
  if ((unicorn === undefined || unicorn === here.unicorn) && (contextSize === undefined || contextSize === here.contextSize)) return;
  throw new DbgError(
    'trace-version',
    `trace "${reader.path}" was recorded with Unicorn ${unicorn ?? '(unknown)'} (uc_context of ${contextSize ?? '?'} bytes); this dbg runs Unicorn ${here.unicorn} (uc_context of ${here.contextSize} bytes): ` +
      'its register checkpoints cannot be loaded; replay it with the dbg and libunicorn it was recorded with, or record the guest again',
  );
}

/** A vCPU of a replay machine: its engines, and what its next run is given back. */
interface Cpu {
  /** The exact engine, where the registers live between runs; watchpoint scans run on it. */
  readonly engine: UnicornEngine;
  /** The emulator's hook context of it: instruction limit, virtual-page aliases, CPU features. */
  readonly hooks: HookCtx;
  /**
   * The fast engine (native/emu/emu.c), which runs re-execution windows block by block, handing
   * over to the exact engine for port and device reads (they come back from the trace there):
   * made once the vCPU has run enough (FAST_AFTER); 'none' where this Unicorn build has none or
   * DBG_EMU_EXACT=1.
   */
  fast?: { engine: UnicornEngine; hooks: HookCtx } | 'none';
  /** Instructions re-executed on the exact engine so far. */
  exactRun: number;
  /** The recorded device reads its run is given back, from `next` on (see deviceRead). */
  feed: { rows: InputRow[]; next: number; from: number; fault?: string; lapicId?: number };
  /** The local APIC ID its fast engine answers with (-1: none), as feedDevices last told it. */
  lapicIdTold?: number;
}

/** What ReplayMachine.watchEngines tells of: each engine, as the machine makes it. */
export interface EngineWatcher {
  /** vCPU `vcpu`'s exact engine, made before it runs or is read. */
  exact(vcpu: number, engine: UnicornEngine): void;
  /** Its fast engine, made after the exact one, before it runs. */
  fast(vcpu: number, fast: FastEngineHandle): void;
}

export class ReplayMachine {
  readonly ram: Buffer;
  readonly ramBase: bigint;
  /**
   * Per vCPU, its engines: made when the replay first runs or reads the vCPU (cpu()), vCPU 0's at
   * once. A history whose range is driven or read on one vCPU of several makes the engines of
   * that one (each Unicorn ~0.7 ms to make).
   */
  private readonly cpus: (Cpu | undefined)[] = [];
  /** Per vCPU not made yet: the checkpoint a seek put it at, loaded when it is made. */
  private readonly placed: (Checkpoint | undefined)[] = [];
  private readonly watchers: EngineWatcher[] = [];
  /** The position RAM holds. */
  private memAt: number;
  /** The position registers hold (every vCPU). */
  private regsAt = -1;
  private readonly writeCache = new Map<number, ChunkWrites>();
  /** Chunks a short move went through line by line (see syncMemory). */
  private readonly movedIn = new Set<number>();
  /**
   * RAM at a few positions, as far as chunks c0..c1 can change it: every line those chunks write,
   * as it is at `at`. Reverse steps restore the same checkpoint again and again (the window
   * start); a line-by-line move there costs an index seek per line the chunks write (475 lines
   * of a boot: 10 ms a step), this copy a few microseconds. Newest last; SNAPSHOT_BYTES at most.
   */
  private readonly snapshots: { at: number; c0: number; c1: number; lines: [number, Buffer][] }[] = [];
  /**
   * The windows reverse steps went through last (see Ladder), newest last: two, so that a
   * reverse-continue far back and a continue to where the steps were finds its ladder again.
   */
  private readonly ladders: Ladder[] = [];

  constructor(readonly reader: TraceReader) {
    // reader.info is range-checked (trace-check.ts): nothing below is sized from a raw meta value.
    const size = reader.info.ramSize;
    if (size === 0) throw traceCorrupt(reader.path, 'meta.ram_size is missing: the trace does not say how much RAM the guest had');
    this.ramBase = reader.info.ramBase;
    this.ram = allocGuestRam(size);
    for (const [page, data] of reader.initialPages()) {
      const off = page * 4096 - Number(this.ramBase);
      if (off >= 0 && off + 4096 <= size) data.copy(this.ram, off);
    }
    this.memAt = reader.first;
    try {
      // (vCPU 0's engine says which Unicorn build this is: checkBuild)
      this.cpu(0);
    } catch (err) {
      // A trace refused here (another build's, an engine that will not map its RAM) leaves no
      // engine behind: the caller gets the error, not the object, and could not close them.
      this.close();
      throw err;
    }
  }

  /** vCPU v's engines, made on first use (and told to the watchers), with the checkpoint a seek placed there. */
  private cpu(v: number): Cpu {
    const made = this.cpus[v];
    if (made) return made;
    const r = this.reader;
    if (!Number.isInteger(v) || v < 0 || v >= r.vcpus) throw errors.badInput(`vCPU ${v} does not exist: the recording has ${r.vcpus}`);
    // The CPU model of the dbg machine (meta.cpu_model when a recorder names another): page
    // walks and instruction behaviour depend on its features (1 GiB pages, NX...).
    // (on small pages: a replay is often made for one query, see UnicornEngine)
    const e = new UnicornEngine('x86-64', r.info.cpuModel ?? UC.CPU_X86_SKYLAKE_SERVER, { hugeCode: false });
    let c: Cpu;
    try {
      e.mapHost(this.ramBase, this.ram);
      // The same engine set-up as the live machine's (native/emu): Unicorn 2.0.1 wants every
      // virtual page the guest touches mapped (aliased onto RAM on first use), and NX / 1 GiB
      // pages enabled; its counting hook ends a re-execution after exactly N instructions.
      c = { engine: e, hooks: emuHooks().create(e.address, this.ram), exactRun: 0, feed: { rows: [], next: 0, from: 0 } };
    } catch (err) {
      e.close();
      throw err;
    }
    // (from here close() takes the engine down)
    this.cpus[v] = c;
    // The live machine's device registers: reads answer with the recorded values (writes
    // change no RAM, and nothing here models the devices); guarded, they are not open bus.
    if (this.ram.length <= IOAPIC_BASE) {
      for (const base of [LAPIC_BASE, IOAPIC_BASE]) {
        e.mapMmio(BigInt(base), 0x1000, { read: (off, n) => this.deviceRead(v, base + off, n), write: () => {} });
        emuHooks().guard(c.hooks, BigInt(base), 0x1000n);
      }
    }
    // Port reads come back from the recorded inputs (hook added before any translation).
    nativeRecorder().feedPorts(e.address, new Uint32Array(0));
    if (v === 0) checkBuild(r, e);
    const placed = this.placed[v];
    this.placed[v] = undefined;
    if (placed) this.restore(v, placed);
    for (const w of this.watchers) w.exact(v, e);
    return c;
  }

  /**
   * vCPU v's fast engine for a window of `insns` instructions, when one pays: a window of at least
   * FAST_WINDOW on a vCPU that has run FAST_AFTER instructions (made now when it has not been).
   */
  private fastFor(v: number, c: Cpu, insns: number): { engine: UnicornEngine; hooks: HookCtx } | undefined {
    if (insns < FAST_WINDOW) return undefined;
    if (c.fast === undefined && c.exactRun + insns >= FAST_AFTER) this.makeFast(v, c);
    return c.fast === 'none' ? undefined : c.fast;
  }

  private makeFast(v: number, c: Cpu): void {
    const fast = makeFastEngine(this.ram, this.ramBase, this.reader.info.cpuModel ?? UC.CPU_X86_SKYLAKE_SERVER);
    if ('off' in fast) {
      c.fast = 'none';
      return;
    }
    c.fast = fast;
    if (this.ram.length <= IOAPIC_BASE) for (const base of [LAPIC_BASE, IOAPIC_BASE]) emuHooks().guard(fast.hooks, BigInt(base), 0x1000n);
    for (const w of this.watchers) w.fast(v, this.fastHandle(fast));
  }

  private fastHandle(fast: { engine: UnicornEngine; hooks: HookCtx }): FastEngineHandle {
    return { address: fast.engine.address, recordTo: (sink) => emuHooks().recordTo(fast.hooks, sink ?? null) };
  }

  /**
   * `w` is told of every engine of the machine before it runs: of those made so far now, of each
   * made later as it is made (a recorder attaches its hooks so: chunk-indexer.ts).
   */
  watchEngines(w: EngineWatcher): void {
    this.watchers.push(w);
    this.cpus.forEach((c, v) => {
      if (!c) return;
      w.exact(v, c.engine);
      if (c.fast && c.fast !== 'none') w.fast(v, this.fastHandle(c.fast));
    });
  }

  /**
   * A device register read by vCPU v's current instruction (inside uc_emu_start: no throwing).
   * The recorded read of that instruction, in order; a read the trace does not hold (a trace of a
   * dbg that did not record them, or a divergence) stops the re-execution, which reports it.
   */
  private deviceRead(v: number, phys: number, size: number): number {
    const c = this.cpus[v]!;
    const f = c.feed;
    if (f.fault) return 0xffff_ffff;
    if (phys === LAPIC_ID && size === 4 && f.lapicId !== undefined) return f.lapicId;
    const seq = f.from + Number(emuHooks().counter(c.hooks)) - 1;
    const r = f.rows[f.next];
    if (r && r.seq === seq && Number(r.detail.phys) === phys && r.detail.size === size) {
      f.next++;
      return Number(r.detail.value) >>> 0;
    }
    const held = r ? `; the next it holds is at 0x${Number(r.detail.phys).toString(16)} at seq ${r.seq}` : '';
    f.fault = `re-executing seq ${seq} read the device register at 0x${phys.toString(16)} (${size} bytes), which the trace does not hold${held}: the trace does not replay (traces recorded before dbg recorded device reads have none: record the guest again)`;
    emuHooks().requestStop(c.hooks);
    return 0xffff_ffff;
  }

  /** Give vCPU v's next run, which starts at seq `from`, the device reads recorded in `rows`. */
  private feedDevices(v: number, from: number, rows: InputRow[]): void {
    // A trace that tells the local APIC's ID (schema 9) holds no read of it: the value in force at
    // `from` answers them (a write of the register ends its slice, so a run sees one value), on
    // the fast engine without leaving it.
    const lapicId = this.reader.tellsLapicIds ? this.reader.lapicIdAt(v, from) : undefined;
    const c = this.cpus[v]!;
    c.feed = { rows: rows.filter((i) => i.kind === 'mmio-read' && i.vcpu === v), next: 0, from, ...(lapicId !== undefined ? { lapicId } : {}) };
    // (a size of 0 turns the answer off: read on the exact engine, from the rows). Every
    // re-execution window comes here (a reverse step's too): the engine is told only a change.
    if (c.fast && c.fast !== 'none' && this.reader.tellsLapicIds && this.ram.length <= IOAPIC_BASE && c.lapicIdTold !== (lapicId ?? -1)) {
      emuHooks().guardValue(c.fast.hooks, BigInt(LAPIC_ID), lapicId === undefined ? 0n : 4n, BigInt(lapicId ?? 0));
      c.lapicIdTold = lapicId ?? -1;
    }
  }

  /** The device read that stopped vCPU v's run, as a damaged-trace error. */
  private checkFeed(v: number): void {
    const fault = this.cpus[v]!.feed.fault;
    if (fault) throw traceCorrupt(this.reader.path, fault);
  }

  /**
   * Load a checkpoint into vCPU v's engine, or for a vCPU not made yet keep it to load when it is
   * (see cpu()); an image of the wrong size is a damaged trace.
   */
  private restore(v: number, c: Checkpoint): void {
    const cpu = this.cpus[v];
    // (every engine has vCPU 0's context size)
    const size = this.cpus[0]!.engine.contextSize;
    if (c.image.length !== size) {
      throw traceCorrupt(this.reader.path, `the checkpoint at seq ${c.seq} of vCPU ${v} holds ${c.image.length} bytes, expected a uc_context of ${size} bytes`);
    }
    if (!cpu) {
      this.placed[v] = c;
      return;
    }
    try {
      nativeRecorder().contextRestore(cpu.engine.address, c.image);
      // the TLB entries lead virtual pages to physical RAM as the tables had it before
      emuHooks().flushTlb(cpu.hooks);
      if (cpu.fast && cpu.fast !== 'none') emuHooks().flushTlb(cpu.fast.hooks);
    } catch (err) {
      // the addon refuses an image whose uc_context header does not fit the engine
      throw traceCorrupt(this.reader.path, `the checkpoint at seq ${c.seq} of vCPU ${v} does not load: ${(err as Error).message}`);
    }
  }

  get position(): number {
    return this.regsAt;
  }

  /** vCPU `vcpu`'s exact engine (made now when it was not), with its registers where the machine is. */
  engine(vcpu: number): UnicornEngine {
    return this.cpu(vcpu).engine;
  }

  registers(vcpu: number, only?: readonly string[]): Registers {
    return readRegisters(this.engine(vcpu), only);
  }

  /** The vCPU that executes instruction `s` (or executed the last one, at the end). */
  runningAt(s: number): number {
    const r = this.reader;
    if (r.end === r.first || r.vcpus === 1) return 0;
    // (a lazy trace's pcs are made by re-executing: its slices say it)
    if (r.lazyPcs) return r.vcpuAt(Math.min(s, r.end - 1));
    return r.step(Math.min(s, r.end - 1)).vcpu;
  }

  /** Put every vCPU and RAM at position `s` (state before instruction s runs). */
  seek(s: number): void {
    const r = this.reader;
    r.checkSeq(s);
    if (s === this.regsAt) return;
    const running = this.runningAt(s);
    if (this.canRunOn(running, s)) {
      // A short move forward in the same slice: go on from here (no checkpoint to restore, no
      // memory to move), as a run of the report's many nearby seeks (console bytes) needs.
      this.reexecute(running, this.regsAt, s);
      this.regsAt = s;
      this.checkPc(running, s);
      return;
    }
    const back = s < this.regsAt;
    if (back && this.climbDown(running, s)) {
      this.regsAt = s;
      this.checkPc(running, s);
      return;
    }
    let window: { vcpu: number; from: number; image: Buffer } | undefined;
    const loads: Checkpoint[] = [];
    for (let v = 0; v < r.vcpus; v++) {
      const c = r.checkpoint(v, s);
      if (!c) {
        if (v === running) throw traceCorrupt(r.path, `no register checkpoint of vCPU ${v} at or before seq ${s}`);
        continue;
      }
      loads.push(c);
      // The running vCPU's newest checkpoint is in its current slice (each slice starts with
      // one): it ran every instruction since. The others are as they were at their slice end.
      if (v === running && c.seq < s) window = { vcpu: v, from: c.seq, image: c.image };
    }
    // RAM first: a lazy-rows trace's move runs vCPUs (driveTo)
    this.syncMemory(window ? window.from : s);
    for (const c of loads) this.restore(c.vcpu, c);
    if (window) {
      const ladder = back ? this.newLadder(window.vcpu, window.from, window.image, s) : undefined;
      if (ladder) this.climb(ladder, window.from, s);
      else this.reexecute(window.vcpu, window.from, s);
      this.hostWritesUpTo(window.from, s);
    }
    this.regsAt = s;
    this.checkPc(running, s);
  }

  /**
   * A move back to `s` from a rung of the ladder, when the machine and `s` are both in its window:
   * RAM and the running vCPU from the highest rung at or below `s`, then re-executed up to it.
   */
  private climbDown(running: number, s: number): boolean {
    const at = this.regsAt;
    const l = this.ladders.find((x) => x.vcpu === running && x.end === this.reader.end && x.from <= s && s < x.top && x.from <= at && at <= x.top);
    if (!l || this.memAt !== at) return false;
    let i = l.rungs.length - 1;
    while (l.rungs[i]!.seq > s) i--;
    const rung = l.rungs[i]!;
    copyRuns(l.runs, rung.ram, this.ram, 'scatter');
    this.memAt = rung.seq;
    const c = this.cpu(running);
    nativeRecorder().contextRestore(c.engine.address, rung.image);
    emuHooks().flushTlb(c.hooks);
    if (rung.seq < s) this.climb(l, rung.seq, s);
    this.hostWritesUpTo(rung.seq, s);
    return true;
  }

  /**
   * A ladder for the window of `vcpu` starting at checkpoint `from` (RAM and registers there),
   * replacing the older of the two kept; undefined where it would not pay or not hold: a move back
   * of less than a rung, a window whose lines are too many, or one with a debugger write inside it.
   */
  private newLadder(vcpu: number, from: number, image: Buffer, s: number): Ladder | undefined {
    const r = this.reader;
    if (s - from < 2 * RUNG_INSNS) return undefined;
    const top = Math.min(this.nextCheckpoint(from), r.end);
    if (this.inputs(from, top + 1).some((i) => i.kind === 'memory-write')) return undefined;
    const base = Number(this.ramBase);
    const runs: number[] = [];
    let runBytes = 0;
    // what the window may write: its chunks' lines, or in a lazy-rows trace their pages
    const [c0, c1] = [r.chunkIndexOf(from), r.chunkIndexOf(top)];
    const unit = r.lazyRows ? 4096 : 64;
    for (const n of r.lazyRows ? r.pagesBetween(c0, c1 + 1, false) : r.linesWritten(c0, c1)) {
      const off = n * unit - base;
      if (off < 0 || off + unit > this.ram.length) continue;
      runBytes += unit;
      const k = runs.length;
      if (k > 0 && runs[k - 2]! + runs[k - 1]! === off) runs[k - 1]! += unit;
      else runs.push(off, unit);
    }
    const rungs = Math.floor(LADDER_BYTES / (runBytes + image.length));
    if (rungs < 4) return undefined;
    const spacing = Math.max(RUNG_INSNS, Math.ceil((top - from) / rungs));
    const ladder: Ladder = { vcpu, from, top, end: r.end, spacing, capacity: rungs, runs, runBytes, rungs: [] };
    this.keepRung(ladder, from, image);
    const same = this.ladders.findIndex((x) => x.vcpu === vcpu && x.from === from);
    if (same >= 0) this.ladders.splice(same, 1);
    this.ladders.push(ladder);
    if (this.ladders.length > 2) this.ladders.shift();
    return ladder;
  }

  /** The first checkpoint (any vCPU) after `seq`, or Infinity; the last answer is kept. */
  private nextCheckpoint(seq: number): number {
    const m = this.nextMemo;
    if (m && m.seq === seq && m.end === this.reader.end) return m.next;
    const next = this.reader.nextCheckpointSeq(seq) ?? Infinity;
    this.nextMemo = { seq, next, end: this.reader.end };
    return next;
  }

  private nextMemo?: { seq: number; next: number; end: number };

  /**
   * Re-execute the ladder's vCPU from `from` (a rung or its checkpoint) to `to`, keeping rungs above
   * the highest on the way, and one at `to` when it is above them all by a quarter of the spacing:
   * a step back onto `to` again after a step forward from it (gdb's reverse-stepi, stepi,
   * reverse-stepi; the server's rehearsal does that hundreds of times) then restores it instead of
   * climbing up to 127 instructions from the rung below.
   */
  private climb(l: Ladder, from: number, to: number): void {
    const highest = l.rungs[l.rungs.length - 1]!.seq;
    let at = from;
    for (let next = highest + l.spacing; next < to; next += l.spacing) {
      if (next <= at) continue;
      this.reexecute(l.vcpu, at, next);
      this.keepRung(l, next);
      at = next;
    }
    this.reexecute(l.vcpu, at, to);
    if (to - l.rungs[l.rungs.length - 1]!.seq >= l.spacing / 4) this.keepRung(l, to);
  }

  /** The machine as it is now (at `seq`) as the ladder's next rung, while it has room; `image`: its registers when known. */
  private keepRung(l: Ladder, seq: number, image?: Buffer): void {
    if (l.rungs.length >= l.capacity) return;
    const ram = Buffer.allocUnsafe(l.runBytes);
    copyRuns(l.runs, ram, this.ram, 'gather');
    l.rungs.push({ seq, image: image ?? nativeRecorder().contextSave(this.cpu(l.vcpu).engine.address), ram });
  }

  /**
   * After re-executing (from, s]: the debugger's writes in it, which re-execution does not make.
   * Inside a slice there are none but at `s` itself: written while the machine stood there, with
   * nothing run since (no slice began, so no checkpoint follows them), e.g. at the end of a
   * history cut by ::discard. Their lines are taken whole from the trace's state at `s`.
   */
  private hostWritesUpTo(from: number, s: number): void {
    const base = Number(this.ramBase);
    for (const i of this.inputs(from + 1, s + 1)) {
      if (i.kind !== 'memory-write') continue;
      const phys = typeof i.detail.phys === 'string' && /^0x[0-9a-f]{1,12}$/.test(i.detail.phys) ? Number(i.detail.phys) : NaN;
      const len = typeof i.detail.data === 'string' ? i.detail.data.length >> 1 : 0;
      if (!Number.isFinite(phys) || len === 0) throw traceCorrupt(this.reader.path, `the memory-write input at seq ${i.seq} names no address or data`);
      for (let line = Math.floor(phys / 64); line * 64 < phys + len; line++) {
        const off = line * 64 - base;
        if (off >= 0 && off + 64 <= this.ram.length) this.reader.lineAt(line, s).copy(this.ram, off);
      }
    }
  }

  /**
   * vCPU `vcpu` from where its engine is (a checkpoint load()ed) for `count` instructions from
   * seq `from`, over RAM as it is: a re-recording (rerecord.ts) drives the history forward slice
   * by slice and keeps RAM itself, so nothing is moved and no recorded pc is looked at. RAM is
   * then at the slice's end; registers at no position a seek knows (the next one restores them).
   */
  runSlice(vcpu: number, from: number, count: number): void {
    this.regsAt = -1;
    if (count > 0) this.reexecute(vcpu, from, from + count);
    this.memAt = from + count;
  }

  /** Load checkpoint `c` into its vCPU's engine (a re-recording's start-ups and register writes). */
  load(c: Checkpoint): void {
    this.restore(c.vcpu, c);
    this.regsAt = -1;
  }

  /** The re-executed pc at `s` is the recorded one (else the trace does not replay). */
  private checkPc(running: number, s: number): void {
    // (a lazy trace's pcs would be made by re-executing what was just re-executed)
    if (s >= this.reader.end || this.reader.lazyPcs) return;
    const want = this.reader.step(s).pc;
    const got = this.engine(running).readReg(X86_REG.RIP);
    if (got !== want) {
      throw traceCorrupt(this.reader.path, `replay diverged from the recording at seq ${s}: re-executed pc 0x${got.toString(16)}, recorded 0x${want.toString(16)} (vCPU ${running})`);
    }
  }

  /**
   * Whether `s` is reached from the present position by re-executing `running` alone: forward,
   * at most one checkpoint interval, RAM at the position, the same slice of the same vCPU (its
   * newest checkpoint at or before s is at or before the position: every slice starts with one,
   * so no other vCPU ran in between) and no input but port reads in between (an interrupt, a
   * debugger write change state that re-execution does not make).
   */
  private canRunOn(running: number, s: number): boolean {
    const r = this.reader;
    const at = this.regsAt;
    if (at < 0 || s <= at || s - at > (r.info.checkpointEvery ?? 8192) || this.memAt !== at || s > r.end) return false;
    if (this.runningAt(at) !== running) return false;
    const c = this.checkpointSeq(running, s);
    if (c === undefined || c > at) return false;
    return this.inputs(at + 1, s + 1).every((i) => i.kind === 'port-in' || i.kind === 'mmio-read');
  }

  /**
   * The seq of vCPU v's newest checkpoint at or before s. Forward steps ask at every instruction
   * (reading one decodes its image: ~0.13 ms); the answer holds until the next checkpoint of any
   * vCPU, so it is kept with that bound.
   */
  private checkpointSeq(v: number, s: number): number | undefined {
    const m = this.ckptMemo;
    if (m && m.v === v && m.seq <= s && s < m.next && m.end === this.reader.end) return m.seq;
    const c = this.reader.checkpoint(v, s);
    if (!c) return undefined;
    this.ckptMemo = { v, seq: c.seq, next: this.reader.nextCheckpointSeq(c.seq) ?? Infinity, end: this.reader.end };
    return c.seq;
  }

  private ckptMemo?: { v: number; seq: number; next: number; end: number };

  /**
   * The recorded inputs in [from, to). Reverse steps re-execute from the same checkpoint to an
   * ever earlier position (three queries a step, each parsing every port read of the window):
   * the inputs of one checkpoint interval past `from` are read once and kept. Forward steps ask
   * twice an instruction: the rows (in seq order) are cut by binary search, not scanned.
   */
  private inputs(from: number, to: number): InputRow[] {
    const m = this.inputsMemo;
    if (m && m.end === this.reader.end && m.from <= from && to <= m.to) return m.rows.slice(firstRowAt(m.rows, from), firstRowAt(m.rows, to));
    const end = Math.max(to, from + (this.reader.info.checkpointEvery ?? 8192) + 1);
    const rows = this.reader.inputs(from, end);
    this.inputsMemo = { from, to: end, end: this.reader.end, rows };
    return rows.filter((i) => i.seq < to);
  }

  private inputsMemo?: { from: number; to: number; end: number; rows: InputRow[] };

  /** The recorded inputs in [from, to) are `rows` (a drive of a chunk read them: chunk-drive.ts). */
  knowInputs(from: number, to: number, rows: InputRow[]): void {
    this.inputsMemo = { from, to, end: this.reader.end, rows };
  }

  private reexecute(vcpu: number, from: number, to: number): void {
    const c = this.cpu(vcpu);
    const { engine: e, hooks } = c;
    const rows = this.inputs(from, to);
    const ins = rows.filter((i) => i.kind === 'port-in' && i.vcpu === vcpu);
    nativeRecorder().feedPorts(e.address, Uint32Array.from(ins, (i) => Number(i.detail.value)));
    const fast = this.fastFor(vcpu, c, to - from);
    this.feedDevices(vcpu, from, rows);
    // Unicorn's aliasing of virtual pages (first touches differ from the recording run) leaves
    // page-fault addresses in CR2; the guest never saw a #PF (the machine stops at exceptions).
    const cr2 = e.readReg(X86_REG.CR2);
    let err: number;
    if (fast) {
      err = emuHooks().runFast(fast.hooks, hooks, BigInt(to - from), NO_PC);
    } else {
      emuHooks().arm(hooks, BigInt(to - from), NO_PC);
      err = e.start(e.readReg(X86_REG.RIP), NO_PC);
      c.exactRun += to - from;
    }
    e.writeReg(X86_REG.CR2, cr2);
    const done = completed(hookResult(hooks));
    this.checkFeed(vcpu);
    if (done !== BigInt(to - from)) {
      throw traceCorrupt(this.reader.path, `re-executing seq ${from}..${to} stopped after ${done} instructions (Unicorn error ${err}): the trace does not replay`);
    }
    this.memAt = to;
  }

  /**
   * Accesses a trace does not keep (reads): found by re-executing, one checkpoint window at a
   * time, with the emulator's watchpoint hook on [addr, addr + length) (virtual). `bits`: 1 read,
   * 2 write, 3 both. Returns the seqs of matching instructions in [from, to) of the window.
   */
  private scanWindow(start: number, end: number, from: number, addr: bigint, length: number, bits: number, firstOnly: boolean): number[] {
    this.seek(start);
    const vcpu = this.runningAt(start);
    const { engine: e, hooks } = this.cpu(vcpu);
    const addon = emuHooks();
    const id = 0x7fff_fff0;
    addon.add(hooks, id, addr, addr + BigInt(length) - 1n, bits);
    const hits: number[] = [];
    let pos = start;
    try {
      while (pos < end) {
        const rows = this.reader.inputs(pos, end);
        const ins = rows.filter((i) => i.kind === 'port-in' && i.vcpu === vcpu);
        nativeRecorder().feedPorts(e.address, Uint32Array.from(ins, (i) => Number(i.detail.value)));
        this.feedDevices(vcpu, pos, rows);
        addon.arm(hooks, BigInt(end - pos), NO_PC);
        const cr2 = e.readReg(X86_REG.CR2);
        e.start(e.readReg(X86_REG.RIP), NO_PC);
        e.writeReg(X86_REG.CR2, cr2);
        this.checkFeed(vcpu);
        const h = hookResult(hooks);
        if (h.kind === HookStop.None) {
          // The engine returned by itself: hlt (the recording's last instruction, or an idle vCPU).
          pos += Number(h.counter);
          break;
        }
        if (h.kind !== HookStop.Watch) {
          if (completed(h) !== BigInt(end - pos)) throw traceCorrupt(this.reader.path, `re-executing seq ${pos}..${end} stopped early: the trace does not replay`);
          pos = end;
          break;
        }
        const hit = pos + Number(h.counterAtStop) - 1;
        if (hit >= from) hits.push(hit);
        pos += Number(h.counter) - 1;
        if (firstOnly && hits.length) break;
      }
    } finally {
      addon.remove(hooks, id);
      this.memAt = pos;
      this.regsAt = -1;
    }
    return hits;
  }

  /** The last instruction in [from, to) that accesses [addr, addr + length) (see scanWindow). */
  lastAccess(addr: bigint, length: number, bits: number, from: number, to: number): number | undefined {
    let end = to;
    while (end > from) {
      const vcpu = this.runningAt(end - 1);
      const c = this.reader.checkpoint(vcpu, end - 1);
      if (!c) return undefined;
      const hits = this.scanWindow(c.seq, end, from, addr, length, bits, false);
      if (hits.length) return hits[hits.length - 1];
      end = c.seq;
    }
    return undefined;
  }

  /** The first instruction in [from, to) that accesses [addr, addr + length); the search runs from `start` (<= from). */
  firstAccess(addr: bigint, length: number, bits: number, from: number, to: number, start = from): number | undefined {
    while (start < to) {
      const end = Math.min(this.reader.nextCheckpointSeq(start) ?? to, to);
      const hits = this.scanWindow(start, end, from, addr, length, bits, true);
      if (hits.length) return hits[0];
      start = end;
    }
    return undefined;
  }

  private writesOf(chunk: number): ChunkWrites {
    let w = this.writeCache.get(chunk);
    if (!w) {
      w = this.reader.chunkWrites(chunk);
      if (this.writeCache.size >= 8) this.writeCache.delete(this.writeCache.keys().next().value!);
      this.writeCache.set(chunk, w);
    }
    return w;
  }

  /** Move RAM to position `s`. */
  syncMemory(s: number): void {
    const r = this.reader;
    if (s === this.memAt || r.chunkCount === 0) {
      this.memAt = s;
      return;
    }
    if (r.lazyRows) {
      this.driveTo(s);
      return;
    }
    const lo = Math.min(s, this.memAt);
    const hi = Math.max(s, this.memAt);
    const c0 = r.chunkIndexOf(lo);
    const c1 = r.chunkIndexOf(hi);
    const base = Number(this.ramBase);
    const snap = this.snapshots.find((x) => x.at === s && x.c0 <= c0 && c1 <= x.c1);
    if (snap) {
      for (const [off, bytes] of snap.lines) bytes.copy(this.ram, off);
      this.memAt = s;
      return;
    }
    // Write by write when the chunks' writes are decoded already, or for a short move when
    // decoding pays off; else line by line: an index seek and one row's decode per line the
    // chunks wrote (~20 us each). Decoding costs ~1 us per write (~100 per row), 100 ms and more
    // for a chunk: for a first move in the chunks only when they wrote many lines; for a later
    // one (reverse steps go on there) when it costs less than ~20 line-by-line moves. A chunk that
    // writes a few hot lines (a timer loop: 11 lines, 176k writes) is never decoded.
    const cached = this.writeCache.has(c0) && this.writeCache.has(c1);
    let decode = false;
    if (!cached && c1 - c0 <= 1 && hi - lo <= SHORT_INSNS) {
      let lines = 0;
      let rows = 0;
      for (let c = c0; c <= c1; c++) {
        const n = r.chunkRows(c);
        lines += n.lines;
        rows += n.rows;
      }
      decode = lines > LINES_PER_MOVE || (this.movedIn.has(c1) && rows < 4 * lines);
      if (this.movedIn.size >= 64) this.movedIn.clear();
      this.movedIn.add(c1);
    }
    if (c1 - c0 <= 1 && ((cached && hi - lo <= NEAR_INSNS) || decode)) {
      // The window's writes: order in (stateBound(lo), stateBound(hi)].
      const bLo = stateBound(lo);
      const bHi = stateBound(hi);
      const apply = (w: { phys: number; len: number }, bytes: Buffer) => {
        const off = w.phys - base;
        if (off >= 0 && off + w.len <= this.ram.length) bytes.copy(this.ram, off);
      };
      if (s < this.memAt) {
        for (let c = c1; c >= c0; c--) {
          const cw = this.writesOf(c);
          for (let k = upperBound(cw.order, bHi) - 1; k >= 0 && cw.order[k]! > bLo; k--) apply(cw.list[k]!, cw.list[k]!.old);
        }
      } else {
        for (let c = c0; c <= c1; c++) {
          const cw = this.writesOf(c);
          const stop = upperBound(cw.order, bHi);
          for (let k = upperBound(cw.order, bLo); k < stop; k++) apply(cw.list[k]!, cw.list[k]!.data);
        }
      }
    } else if (c1 - c0 >= 2 && r.rowsByChunk && this.linesOf(c0, c1) > FAR_LINES) {
      // A far move over many lines (opening a long recording at its end, a seek back to its
      // start): the chunks between in one pass, then the chunk holding `s` line by line.
      const forward = s > this.memAt;
      const cs = forward ? c1 : c0; // the chunk holding s
      const [from, to] = forward ? [c0, cs - 1] : [cs + 1, c1];
      for (const [lines, images] of r.rowImages(from, to, forward)) {
        for (let i = 0; i < lines.length; i++) {
          const off = lines[i]! * 64 - base;
          if (off >= 0 && off + 64 <= this.ram.length) this.ram.set(images.subarray(64 * i, 64 * i + 64), off);
        }
      }
      for (const line of r.linesWritten(cs, cs)) {
        const off = line * 64 - base;
        if (off >= 0 && off + 64 <= this.ram.length) r.lineAt(line, s).copy(this.ram, off);
      }
    } else {
      const lines: [number, Buffer][] = [];
      for (const line of r.linesWritten(c0, c1)) {
        const off = line * 64 - base;
        if (off >= 0 && off + 64 <= this.ram.length) {
          const bytes = r.lineAt(line, s);
          bytes.copy(this.ram, off);
          lines.push([off, bytes]);
        }
      }
      this.keepSnapshot({ at: s, c0, c1, lines });
    }
    this.memAt = s;
  }

  /**
   * A lazy-rows trace's move of RAM to `s`: the pages written between the present chunk's start
   * and the start of the chunk holding `s` from their images (TraceReader.pageAtChunkStart), then
   * that chunk driven from its start up to `s` on the fast engines (chunk-drive.ts: ~5 ms for 2^20
   * instructions), which leaves the vCPUs' registers anywhere: seek() restores them after.
   */
  private driveTo(s: number): void {
    const r = this.reader;
    driveFromStart(r, this, { chunk: r.chunkIndexOf(this.memAt), mid: true }, r.chunkIndexOf(s), NO_SINK, s);
    this.memAt = s;
    this.regsAt = -1;
  }

  /** Distinct lines chunks [c0, c1] wrote, counted per chunk (a line in several counts each time). */
  private linesOf(c0: number, c1: number): number {
    let n = 0;
    for (let c = c0; c <= c1 && n <= FAR_LINES; c++) n += this.reader.chunkRows(c).lines;
    return n;
  }

  private keepSnapshot(snap: { at: number; c0: number; c1: number; lines: [number, Buffer][] }): void {
    if (snap.lines.length * 64 > SNAPSHOT_BYTES) return;
    this.snapshots.push(snap);
    let bytes = this.snapshots.reduce((n, x) => n + x.lines.length * 64, 0);
    while (bytes > SNAPSHOT_BYTES || this.snapshots.length > 8) bytes -= this.snapshots.shift()!.lines.length * 64;
  }

  /** vCPU `vcpu`'s fast engine, for a recorder's block sink (rerecord.ts), when it has one. */
  fastEngine(vcpu: number): FastEngineHandle | undefined {
    // (made now: a re-recording runs the whole history, and its recorder attaches to it first)
    const c = this.cpu(vcpu);
    if (c.fast === undefined) this.makeFast(vcpu, c);
    return c.fast === 'none' ? undefined : this.fastHandle(c.fast!);
  }

  close(): void {
    for (const c of this.cpus) {
      if (!c) continue;
      if (c.fast && c.fast !== 'none') {
        emuHooks().destroy(c.fast.hooks);
        c.fast.engine.close();
      }
      emuHooks().destroy(c.hooks);
      nativeRecorder().unfeedPorts(c.engine.address);
      c.engine.close();
    }
    this.cpus.length = 0;
    releaseGuestRam(this.ram);
  }
}
