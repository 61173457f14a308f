/**
 * `dbg replay FILE`: a recorded trace opened as a target of its own. Read-only; the position in
 * history (`seq`) moves with step / continue forward up to the end of the recording, and with
 * the reverse capability (step back, continue back, seek) down to its start.
 *
 *   - memory and registers at the position come from ReplayMachine (checkpoint + re-execution);
 *   - forward continue finds the next breakpoint hit / write-watchpoint trigger by index lookups
 *     (pc stream and memory rows), never by re-executing the distance;
 *   - reverse continue finds the last one before the position the same way. A watchpoint stop
 *     in reverse shows memory as it was before the write, with pc at the writing instruction.
 *   - a trace keeps writes, not reads: read and access watchpoints are found by re-executing
 *     checkpoint windows (back from the position, or forward) with a watch hook, so they cost
 *     ~0.3 ms per 8,192 instructions searched instead of an index lookup.
 */

import { basename } from 'node:path';
import { existsSync, statSync } from 'node:fs';
import type { Arch, Registers } from '../../arch/arch.js';
import { cpuArch, readDescriptors } from '../emulator/x86-64-cpu.js';
import { cr3Root, X86_64Paging, type Walk } from '../../arch/x86-64-paging.js';
import { DbgError, errors } from '../../common/errors.js';
import type { LineWrite } from '../../store/line-rows.js';
import { fileKind } from '../../store/trace-check.js';
import { x86_64Branch } from '../../arch/x86-64-branch.js';
import { walkCalls, type CallTable, type PcClass } from '../../store/call-walker.js';
import { CALLS_SCHEMA, namesCalls, removeCallsDb, writeCallsDb } from '../../store/calls-db.js';
import { interruptibleSql } from '../../store/interruptible-sql.js';
import { TraceReader } from '../../store/trace-reader.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import { symbolTableFor } from '../../symbols/compact-symbol-table.js';
import { translate32 } from '../emulator/paging32.js';
import { X86_REG } from '../emulator/unicorn.js';
import { pagingState } from '../emulator/x86-64-cpu.js';
import type {
  CpuDescriptors,
  Breakpoints,
  Capabilities,
  ExecutionControl,
  History,
  HistoryCall,
  HistoryWrite,
  Mapping,
  PhysAddr,
  PhysicalMemory,
  ReverseExecution,
  Seq,
  StopReason,
  StopStatus,
  Target,
  ThreadInfo,
  Translation,
  VirtAddr,
  WatchKind,
} from '../target.js';
import { elfModule } from '../unwind.js';
import { ReplayMachine } from './replay-machine.js';

export interface ReplayOptions {
  /** Symbol files (the guest's ELF); default: the path the trace recorded, when it exists. */
  readonly symbols?: readonly string[];
  /** The trace this process is recording (a live guest's): its symbol file is the one running, not compared with the recorded code. */
  readonly ownRecording?: boolean;
  /** The history's last instruction as the recorder knows it (TraceReader.knowLastStep). */
  readonly lastStep?: { seq: number; pc: bigint; vcpu: number };
}

interface Watch {
  readonly addr: VirtAddr;
  readonly length: number;
  readonly kind: WatchKind;
  readonly physical: boolean;
}

export class ReplayTarget implements Target {
  readonly name: string;
  readonly kind = 'replay';
  readonly symbols = new SymbolSpace();
  readonly caps: Capabilities;
  readonly warnings: string[] = [];
  private readonly paging: X86_64Paging;
  /** Views of RAM's page-table pages for the walker, by physical page (see tablePage). */
  private readonly tablePages = new Map<number, Uint32Array>();
  /**
   * The machine position (and history end) that the walker's TLB and `pagingStates` belong to:
   * translations hold at one position only (page tables change over the history), so they are
   * dropped when the machine moves.
   */
  private viewAt = { seq: -1, end: -1 };
  /** Per vCPU, CR0 / CR3 / EFER as pagingState reads them, at `viewAt`. */
  private readonly pagingStates: (ReturnType<typeof pagingState> | undefined)[] = [];
  private threadList?: readonly ThreadInfo[];
  private now: number;
  private thread = 1;
  private last: StopReason = { kind: 'none' };
  private readonly bps = new Map<number, VirtAddr>();
  private readonly watches = new Map<number, Watch>();
  private nextId = 1;
  private interruptFlag = false;
  private runningNow = false;
  private callTable: CallTable | undefined;
  private callRows: HistoryCall[] | undefined;
  private callsDb: string | undefined;

  private constructor(
    readonly reader: TraceReader,
    readonly machine: ReplayMachine,
    opts: ReplayOptions,
  ) {
    this.name = `trace "${basename(reader.path)}"`;
    this.paging = new X86_64Paging((a) => this.physU64(a), { tablePage: (page) => this.tablePage(page) });
    const syms = opts.symbols ?? [reader.info.symbols].filter((p) => p !== '');
    for (const path of syms) {
      if (!existsSync(path)) {
        if (opts.symbols) throw errors.notFound(`symbol file "${path}" does not exist`);
        this.warnings.push(`the recorded guest's symbol file "${path}" is gone: no symbols (pass --symbols FILE)`);
        continue;
      }
      // A path the trace names is opened only when it is a regular file (a FIFO would block).
      const st = statSync(path);
      if (!opts.symbols && !st.isFile()) {
        this.warnings.push(`the recorded guest's symbol file "${path}" is ${fileKind(st)}: not read, no symbols (pass --symbols FILE)`);
        continue;
      }
      const elf = ElfFile.open(path);
      this.symbols.add(elfModule(basename(path), path, elf, symbolTableFor(basename(path), elf, 0n)));
    }
    this.now = reader.end;
    machine.seek(this.now);
    for (const { path, elf } of this.symbols.modules) {
      const differs = elf && !opts.ownRecording && this.codeDiffers(elf);
      if (!differs) continue;
      if (opts.symbols) throw errors.badInput(`--symbols ${path} does not match ${this.name}: ${differs}. Give the kernel that was recorded`);
      this.warnings.push(`the recorded guest's symbol file "${path}" has changed since the recording (${differs}): its symbols may be wrong (pass --symbols FILE)`);
    }
    const self = this;
    const reverse: ReverseExecution = {
      bounds: () => ({ first: BigInt(reader.first), last: BigInt(reader.end), now: BigInt(this.now) }),
      stepBack: (thread) => this.stepBack(thread),
      resumeBack: () => this.resumeBack(),
      seek: (seq) => this.seekTo(seq),
    };
    const execution: ExecutionControl = {
      step: (thread, count) => this.stepForward(thread, count),
      resume: () => this.resumeForward(),
      interrupt: () => {
        this.interruptFlag = true;
      },
      get running() {
        return self.runningNow;
      },
    };
    const breakpoints: Breakpoints = {
      addBreakpoint: (addr) => {
        const id = this.nextId++;
        this.bps.set(id, addr);
        return id;
      },
      removeBreakpoint: (id) => {
        if (!this.bps.delete(id) && !this.watches.delete(id)) throw errors.badInput(`no breakpoint or watchpoint ${id}`);
      },
      addWatchpoint: (addr, length, kind, physical) => {
        if ((kind === 'read' || kind === 'access') && physical) {
          throw new DbgError('unsupported', `physical ${kind} watchpoints are not supported by ${this.name}: reads are found by re-execution, which watches virtual addresses`);
        }
        if (!Number.isInteger(length) || length <= 0) throw errors.badInput(`watchpoint length ${length}: expected a positive integer`);
        const id = this.nextId++;
        this.watches.set(id, { addr, length, kind, physical: physical ?? false });
        return id;
      },
      removeWatchpoint: (id) => {
        if (!this.watches.delete(id)) throw errors.badInput(`no watchpoint ${id}`);
      },
    };
    const physical: PhysicalMemory = {
      readPhysical: (addr, length) => this.readPhys(addr, length),
      translate: (addr, thread) => this.translate(addr, thread ?? this.thread),
      physicalRanges: () => [{ start: machine.ramBase, end: machine.ramBase + BigInt(machine.ram.length) }],
    };
    const history: History = {
      path: reader.path,
      whoWrote: (addr, length, thread) => {
        const phys = this.physOf(addr, thread ?? this.thread);
        const w = reader.lastWriteInRange(Number(phys), length, this.now);
        return w ? this.historyWrite(w) : undefined;
      },
      writes: (addr, length, thread, from, to, limit) => {
        const phys = this.physOf(addr, thread ?? this.thread);
        return reader
          .writesTo(Number(phys), length, from === undefined ? reader.first : Number(from), to === undefined ? reader.end : Number(to), limit)
          .map((w) => this.historyWrite(w));
      },
      when: (pc, limit = 100, opts = {}) => {
        // With the count: one scan of the whole history that keeps the first seqs on the way.
        if (opts.count) {
          const all = reader.countPcs([pc], limit);
          return { seqs: all.seqs.map(BigInt), more: all.count > limit, count: all.count };
        }
        const first = reader.findPcs([pc], reader.first, reader.end, limit + 1);
        return { seqs: first.slice(0, limit).map(BigInt), more: first.length > limit };
      },
      summary: () => this.summary(),
      calls: () => this.calls(),
      activity: (buckets) => {
        const rows = reader.db.prepare('SELECT bucket, pc, instructions FROM activity(?)').raw(true).safeIntegers(true).all(buckets) as [bigint, bigint, bigint][];
        return { width: reader.activityWidth(buckets), first: BigInt(reader.first), end: BigInt(reader.end), rows: rows.map(([b, pc, n]) => [Number(b), BigInt.asUintN(64, pc), Number(n)]) };
      },
      sql: (q) => {
        if (namesCalls(q)) reader.attachDerived(this.callsFile(), CALLS_SCHEMA);
        return reader.sql(q);
      },
      sqlInterruptible: (q, signal) => interruptibleSql(reader.path, q, signal, undefined, namesCalls(q) ? { path: this.callsFile(), schema: CALLS_SCHEMA } : undefined),
    };
    this.caps = { reverse, execution, breakpoints, physical, history };
  }

  static open(path: string, opts: ReplayOptions = {}): ReplayTarget {
    const reader = TraceReader.open(path);
    reader.knowLastStep(opts.lastStep);
    let machine: ReplayMachine | undefined;
    try {
      machine = new ReplayMachine(reader);
      return new ReplayTarget(reader, machine, opts);
    } catch (e) {
      machine?.close();
      reader.close();
      throw e;
    }
  }

  get position(): number {
    return this.now;
  }

  // --- memory ---------------------------------------------------------------------------------

  private physU64(addr: PhysAddr): bigint {
    return this.readPhys(addr, 8).readBigUInt64LE(0);
  }

  private readPhys(addr: PhysAddr, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    this.copyPhys(addr, length, out, 0);
    return out;
  }

  /** Copy `length` bytes of RAM at physical `addr` into `out` at `at`. */
  private copyPhys(addr: PhysAddr, length: number, out: Buffer, at: number): void {
    const off = addr - this.machine.ramBase;
    if (off < 0n || off + BigInt(length) > BigInt(this.machine.ram.length)) {
      throw new DbgError('unmapped', `read of ${length} bytes at physical 0x${addr.toString(16)} failed: outside the recorded RAM (0x${this.machine.ramBase.toString(16)}-0x${(this.machine.ramBase + BigInt(this.machine.ram.length)).toString(16)})`);
    }
    this.machine.ram.copy(out, at, Number(off), Number(off) + length);
  }

  /**
   * The page-table page at physical `page` as little-endian words, straight over RAM (no copy: a
   * view sees RAM as the machine moves), so a walk costs no allocation; undefined outside RAM.
   */
  private tablePage(page: number): Uint32Array | undefined {
    let view = this.tablePages.get(page);
    if (!view) {
      const ram = this.machine.ram;
      const off = page - Number(this.machine.ramBase);
      if (off < 0 || off + 4096 > ram.length) return undefined;
      view = new Uint32Array(ram.buffer, ram.byteOffset + off, 1024);
      this.tablePages.set(page, view);
    }
    return view;
  }

  /** Drop the translations and paging states of another position (see viewAt). */
  private syncView(): void {
    const seq = this.machine.position;
    if (seq >= 0 && seq === this.viewAt.seq && this.reader.end === this.viewAt.end) return;
    this.paging.flush();
    this.pagingStates.length = 0;
    // A machine between positions (a watch search re-executing) keeps nothing.
    this.viewAt = { seq, end: this.reader.end };
  }

  translate(virt: VirtAddr, thread: number): Translation {
    const w = this.walk(virt, thread);
    return w.fault !== undefined ? { virt, steps: w.steps, fault: w.fault } : { virt, phys: w.phys, pageSize: w.pageSize, steps: w.steps };
  }

  /** The translation of `virt`, whose steps (the walk's entries) are only made if read: physOf does not. */
  private walk(virt: VirtAddr, thread: number): Walk | Translation {
    const vcpu = this.vcpuOf(thread);
    this.syncView();
    const e = this.machine.engine(vcpu);
    const ps = this.machine.position >= 0 ? (this.pagingStates[vcpu] ??= pagingState(e)) : pagingState(e);
    if (!ps.paging) return { virt, phys: ps.longMode ? virt : virt & 0xffff_ffffn, pageSize: 4096, steps: [] };
    if (!ps.longMode) return translate32((a, n) => this.readPhys(a, n), virt & 0xffff_ffffn, ps.cr3, e.readReg(X86_REG.CR4));
    return this.paging.translate(cr3Root(ps.cr3), virt);
  }

  private physOf(addr: VirtAddr, thread: number): PhysAddr {
    const t = this.walk(addr, thread);
    if (t.phys === undefined) throw new DbgError('unmapped', `0x${addr.toString(16)} is not mapped at seq ${this.now} (${t.fault})`);
    return t.phys;
  }

  readVirtual(addr: VirtAddr, length: number, thread = this.thread): Buffer {
    const out = Buffer.alloc(length);
    for (let done = 0; done < length; ) {
      const va = BigInt.asUintN(64, addr + BigInt(done));
      const n = Math.min(length - done, 4096 - Number(va & 0xfffn));
      this.copyPhys(this.physOf(va, thread), n, out, done);
      done += n;
    }
    return out;
  }

  mappings(): readonly Mapping[] {
    const start = this.machine.ramBase;
    return [{ start, end: start + BigInt(this.machine.ram.length), perms: 'rwx', name: 'recorded RAM (physical)' }];
  }

  // --- threads and registers --------------------------------------------------------------------

  private vcpuOf(thread: number): number {
    if (!Number.isInteger(thread) || thread < 1 || thread > this.reader.vcpus) {
      throw errors.badInput(`thread ${thread} does not exist: the recording has ${this.reader.vcpus} vCPU(s), threads 1-${this.reader.vcpus}`);
    }
    return thread - 1;
  }

  /** The same list every time: a recording's vCPUs never change. */
  threads(): readonly ThreadInfo[] {
    this.threadList ??= Array.from({ length: this.reader.vcpus }, (_, i) => ({ index: i + 1, tid: i, name: `vCPU ${i}`, state: 'replaying' }));
    return this.threadList;
  }

  registers(thread: number, only?: readonly string[]): Registers {
    return this.machine.registers(this.vcpuOf(thread), only);
  }

  descriptors(thread: number): CpuDescriptors {
    return readDescriptors(this.machine.engine(this.vcpuOf(thread)));
  }

  /** The selected vCPU's architecture at this position: i386 until it runs 64-bit code. */
  get arch(): Arch {
    const key = `${this.thread}:${this.now}`;
    if (this.archAt?.key !== key) this.archAt = { key, arch: cpuArch(this.machine.engine(this.thread - 1)) };
    return this.archAt.arch;
  }

  private archAt: { key: string; arch: Arch } | undefined;

  status(): StopStatus {
    const vcpu = this.machine.runningAt(this.now);
    this.thread = vcpu + 1;
    return { reason: this.last, thread: vcpu + 1, pc: this.machine.engine(vcpu).readReg(41), seq: BigInt(this.now) };
  }

  // --- time travel ------------------------------------------------------------------------------

  private stop(reason: StopReason): StopStatus {
    this.last = reason;
    return this.status();
  }

  private go(s: number): void {
    this.machine.seek(s);
    this.now = s;
  }

  async seekTo(seq: Seq): Promise<StopStatus> {
    const s = Number(seq);
    if (seq < BigInt(this.reader.first) || seq > BigInt(this.reader.end)) {
      throw errors.badInput(`seq ${seq} is outside the recorded history [${this.reader.first}, ${this.reader.end}]`);
    }
    this.go(s);
    return this.stop(s === this.reader.first ? { kind: 'history-begin' } : s === this.reader.end ? { kind: 'history-end' } : { kind: 'step' });
  }

  // A step either way is taken at once: its stop is returned itself (ExecutionControl.step), so the
  // GDB server answers it without a trip through the microtask queue.
  stepBack(_thread: number): StopStatus {
    if (this.now <= this.reader.first) return this.stop({ kind: 'history-begin' });
    this.go(this.now - 1);
    return this.stop({ kind: 'step' });
  }

  stepForward(_thread: number, count = 1): StopStatus {
    if (this.now >= this.reader.end) return this.stop({ kind: 'history-end' });
    this.go(Math.min(this.now + count, this.reader.end));
    return this.stop({ kind: 'step' });
  }

  private bpPcs(): bigint[] {
    return [...this.bps.values()];
  }

  /** The newest event strictly before the position: a breakpoint pc ran, or a watched range was written. */
  async resumeBack(): Promise<StopStatus> {
    let best: { seq: number; reason: StopReason } | undefined;
    const consider = (seq: number, reason: StopReason) => {
      if (seq < this.now && (!best || seq > best.seq)) best = { seq, reason };
    };
    const pcs = this.bpPcs();
    if (pcs.length) {
      const s = this.reader.lastPc(pcs, this.reader.first, this.now);
      if (s !== undefined) {
        const pc = this.reader.step(s).pc;
        const id = [...this.bps].find(([, a]) => a === pc)![0];
        consider(s, { kind: 'breakpoint', id, addr: pc });
      }
    }
    const reads: [number, Watch][] = [];
    for (const [id, w] of this.watches) {
      if (w.kind === 'exec') {
        const s = this.lastExec(w, this.now);
        if (s !== undefined) consider(s, { kind: 'watchpoint', id, addr: this.reader.step(s).pc, access: 'exec', length: w.length });
        continue;
      }
      if (w.kind === 'read' || w.kind === 'access') {
        reads.push([id, w]);
        continue;
      }
      const phys = w.physical ? w.addr : this.physOf(w.addr, this.thread);
      const hit = this.reader.lastWriteInRange(Number(phys), w.length, this.now);
      // A host write at the position itself is already part of it: look before it.
      if (hit && !(hit.host && hit.seq >= this.now)) consider(hit.seq, { kind: 'watchpoint', id, addr: w.addr, access: 'write', length: w.length });
    }
    // Reads last: re-execution only needs to search after the newest indexed event.
    for (const [id, w] of reads) {
      const floor: number = best ? best.seq + 1 : this.reader.first;
      const s = this.machine.lastAccess(w.addr, w.length, w.kind === 'read' ? 1 : 3, floor, this.now);
      if (s !== undefined) consider(s, { kind: 'watchpoint', id, addr: w.addr, access: w.kind, length: w.length });
    }
    if (!best) {
      this.go(this.reader.first);
      return this.stop({ kind: 'history-begin' });
    }
    this.go(best.seq);
    return this.stop(best.reason);
  }

  /** The next event after the position (forward replay), or the end of the history. */
  async resumeForward(): Promise<StopStatus> {
    let best: { seq: number; reason: StopReason } | undefined;
    const consider = (seq: number, reason: StopReason) => {
      if (seq > this.now && (!best || seq < best.seq)) best = { seq, reason };
    };
    const pcs = this.bpPcs();
    if (pcs.length) {
      const s = this.reader.findPcs(pcs, this.now + 1, this.reader.end, 1)[0];
      if (s !== undefined) {
        const pc = this.reader.step(s).pc;
        consider(s, { kind: 'breakpoint', id: [...this.bps].find(([, a]) => a === pc)![0], addr: pc });
      }
    }
    const reads: [number, Watch][] = [];
    for (const [id, w] of this.watches) {
      if (w.kind === 'exec') {
        const s = this.reader.findPcs(this.execPcs(w), this.now + 1, this.reader.end, 1)[0];
        if (s !== undefined) consider(s, { kind: 'watchpoint', id, addr: this.reader.step(s).pc, access: 'exec', length: w.length });
        continue;
      }
      if (w.kind === 'read' || w.kind === 'access') {
        reads.push([id, w]);
        continue;
      }
      const phys = w.physical ? w.addr : this.physOf(w.addr, this.thread);
      // A write by instruction s is seen after it completes: the stop is at s + 1.
      let next: LineWrite | undefined;
      for (const x of this.reader.iterWrites(Number(phys), w.length, this.now, this.reader.end)) {
        if (x.host ? x.seq > this.now : x.seq + 1 > this.now) {
          next = x;
          break;
        }
      }
      if (next) consider(next.host ? next.seq : next.seq + 1, { kind: 'watchpoint', id, addr: w.addr, access: 'write', length: w.length });
    }
    // A read is seen after the reading instruction completes, as a live watchpoint stops.
    for (const [id, w] of reads) {
      const ceiling: number = best ? best.seq - 1 : this.reader.end;
      // The instruction at the position counts (as gdb reports a watchpoint again after a
      // reverse stop at the accessing instruction); a breakpoint there is stepped over.
      const s = this.machine.firstAccess(w.addr, w.length, w.kind === 'read' ? 1 : 3, this.now, ceiling);
      if (s !== undefined) consider(s + 1, { kind: 'watchpoint', id, addr: w.addr, access: w.kind, length: w.length });
    }
    if (!best) {
      this.go(this.reader.end);
      return this.stop({ kind: 'history-end' });
    }
    this.go(best.seq);
    return this.stop(best.reason);
  }

  /** Exec watchpoints: every instruction start in the range that the history ever ran. */
  private execPcs(w: Watch): bigint[] {
    const out = new Set<bigint>();
    const end = w.addr + BigInt(w.length);
    for (let id = 0; id < this.reader.chunkCount; id++) {
      for (const pc of this.reader.pcs(id).pc) if (pc >= w.addr && pc < end) out.add(pc);
      if (out.size > 4096) break;
    }
    return [...out];
  }

  private lastExec(w: Watch, before: number): number | undefined {
    const pcs = this.execPcs(w);
    return pcs.length ? this.reader.lastPc(pcs, this.reader.first, before) : undefined;
  }

  private historyWrite(w: LineWrite): HistoryWrite {
    const base: HistoryWrite = { seq: BigInt(w.seq), host: w.host, phys: BigInt(w.phys), old: w.old, data: w.data };
    if (w.host || w.seq >= this.reader.end) return base;
    const st = this.reader.step(w.seq);
    return { ...base, vcpu: st.vcpu, pc: st.pc };
  }

  /** The calls of the history (call-walker.ts), derived on first use; code is classified as it is at the end of the history. */
  callTableOf(): CallTable {
    this.callTable ??= walkCalls(this.reader, (pc) => this.branchAt(pc));
    return this.callTable;
  }

  /** How the instruction at `pc` enters or leaves a function (x86-64-branch.ts); 'other' where the pc is unreadable. */
  branchAt(pc: bigint): PcClass {
    let bytes: Buffer;
    try {
      bytes = this.readVirtual(pc, 16);
    } catch {
      return { kind: 'other', next: pc };
    }
    const b = x86_64Branch(bytes);
    return { kind: b.kind, next: pc + BigInt(b.size), ...(b.rex ? { rex: true } : {}) };
  }

  private calls(): HistoryCall[] {
    if (this.callRows) return this.callRows;
    const name = (pc: bigint): string | undefined => {
      const r = this.symbols.resolve(pc);
      return r && r.inside ? (r.offset ? `${r.sym.name}+0x${r.offset.toString(16)}` : r.sym.name) : undefined;
    };
    this.callRows = this.callTableOf().rows.map((r) => {
      const caller = name(r.callerPc);
      const callee = name(r.calleePc);
      return {
        callSeq: BigInt(r.callSeq),
        ...(r.returnSeq !== null ? { returnSeq: BigInt(r.returnSeq) } : {}),
        vcpu: r.vcpu,
        depth: r.depth,
        callerPc: r.callerPc,
        ...(caller !== undefined ? { caller } : {}),
        calleePc: r.calleePc,
        ...(callee !== undefined ? { callee } : {}),
        instructions: r.instructions,
        ...(r.vector !== null ? { vector: r.vector } : {}),
      };
    });
    return this.callRows;
  }

  /** The calls table's file (calls-db.ts), written the first time a query names it. */
  private callsFile(): string {
    this.callsDb ??= writeCallsDb(
      this.calls().map((c) => ({
        callSeq: Number(c.callSeq),
        returnSeq: c.returnSeq === undefined ? null : Number(c.returnSeq),
        vcpu: c.vcpu,
        depth: c.depth,
        vector: c.vector ?? null,
        callerPc: c.callerPc,
        caller: c.caller ?? null,
        calleePc: c.calleePc,
        callee: c.callee ?? null,
        instructions: c.instructions,
      })),
    );
    return this.callsDb;
  }

  private summary(): Record<string, string | number> {
    const row = this.reader.sql('SELECT * FROM summary');
    const out: Record<string, string | number> = { trace: this.reader.path };
    row.columns.forEach((c, i) => {
      out[c] = Number(row.rows[0]![i] ?? 0);
    });
    // The recording session's stops (breakpoint and watchpoint hits, steps...): schema 5 on.
    if (this.reader.version >= 5) out.stops = Number(this.reader.sql('SELECT count(*) FROM stop').rows[0]![0] ?? 0);
    out.now = this.now;
    out.guest = String(this.reader.meta.get('guest') ?? '');
    out.created = String(this.reader.meta.get('created') ?? '');
    return out;
  }

  /**
   * How `elf` contradicts the recording, or undefined: the first bytes of each executable PT_LOAD
   * against the guest's RAM at its physical load address (code a kernel does not rewrite), as
   * `dbg open` compares a kernel symbol file with a dump.
   */
  private codeDiffers(elf: ElfFile): string | undefined {
    const { ram, ramBase } = this.machine;
    for (const p of elf.loadSegments()) {
      if ((p.flags & 1) === 0 || p.filesz === 0) continue;
      const want = elf.readLoaded(p.vaddr, Math.min(p.filesz, 256));
      if (!want) continue;
      const at = Number(p.paddr - ramBase);
      if (p.paddr < ramBase || at + want.length > ram.length) return `its code loads at physical 0x${p.paddr.toString(16)}, outside the recorded RAM`;
      if (!ram.subarray(at, at + want.length).equals(want)) return `its code at physical 0x${p.paddr.toString(16)} (PT_LOAD ${p.index}) is not the recorded guest's`;
    }
    return undefined;
  }

  close(): void {
    this.machine.close();
    this.reader.close();
    if (this.callsDb) removeCallsDb(this.callsDb);
    this.callsDb = undefined;
  }
}
