/**
 * A GDB stub as a dbg target (`dbg attach --gdb HOST:PORT`): QEMU's -s, gdbserver, bhyve's -G,
 * Cloud Hypervisor's gdbstub, dbg's own --gdb. What the stub offers becomes capabilities:
 *
 *   core        registers from its target description (g, then p for what g left out), memory
 *               (m, or x when it offers binary-upload; pipelined, WINDOW requests per round trip,
 *               for a stub in no-ack mode or QEMU's), threads (qfThreadInfo/qsThreadInfo, Hg)
 *   execution   vCont;c / vCont;s:TID (or Hc + c/s), the 0x03 byte, stop replies T/S/W/X
 *   breakpoints Z0 (Z1 when Z0 is refused), Z2-Z4 watchpoints; a refusal is one line
 *   reverse     bs / bc, when qSupported says ReverseStep+ / ReverseContinue+ (no positions:
 *               a stub's history has no seq dbg could name)
 *   writes      M and P (G, the whole set read with g and changed, where P is not supported)
 *   physical    QEMU's system stub only: physical memory through its physical-memory mode
 *               (Qqemu.PhyMemMode:1), RAM's ranges from its monitor (qRcmd `info mtree -f`),
 *               translation by walking the guest's page tables over those reads; and with it
 *   snapshot    `::dump FILE`: a QEMU-layout ELF vmcore (elfcore/qemu-core-writer.ts), x86-64
 *   linux       a --symbols vmlinux found running by its linux_banner (KASLR slide): `linux`, the
 *               LinuxPort that ::ps, ::stacks, ::dmesg read the live kernel through (addKernel)
 *   process     gdbserver's auxiliary vector (qXfer:auxv:read): a PIE --symbols file relocated by
 *               AT_ENTRY - e_entry, shared libraries from the dynamic linker's link map
 *
 * Threads are numbered 1.. in the order the stub first lists them, and keep their number (a thread
 * that ends leaves a gap, as in gdb); `tid` is the stub's thread id.
 * Registers and memory are cached until the target next runs or is written. A breakpoint at the
 * pc a thread resumes from is lifted for one step first, as gdb does, so that no stub has to.
 */

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Arch, Registers } from '../../arch/arch.js';
import { DbgError, errors, isDbgError } from '../../common/errors.js';
import { hexAddr } from '../../common/format.js';
import { packetName, RspConnection } from '../../gdb-client/rsp-connection.js';
import { decodeLittle, decodeRegisters, DescriptionError, defaultX86_64, encodeLittle, parseDescription, type RemoteDescription } from '../../gdb-client/target-xml.js';
import { cr3Root, X86_64Paging } from '../../arch/x86-64-paging.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { writeQemuCore } from '../elfcore/qemu-core-writer.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import type { Breakpoints, Capabilities, ExecutionControl, Mapping, MemoryWriter, PhysAddr, PhysicalMemory, RegisterWriter, ReverseExecution, Snapshot, StopReason, StopStatus, Target, ThreadInfo, Translation, VirtAddr, WatchKind } from '../target.js';
import { elfModule } from '../unwind.js';
import type { Module } from '../../symbols/symbol-space.js';
import { AT_ENTRY } from '../elfcore/core-notes.js';
import { readLinkMap } from '../elfcore/process-core-solibs.js';
import { symbolTableFor } from '../../symbols/compact-symbol-table.js';
import { bannerRelease, findKaslrSlide, START_KERNEL_MAP } from '../../os/linux/kaslr.js';
import { linuxTasks } from '../../os/linux/tasks.js';
import type { LinuxPort } from '../../os/linux/port.js';
import { KERNEL_TYPE_HOMES } from '../../os/linux/type-homes.js';
import { TypeSpace } from '../../types/type-space.js';
import { ObjectSpace } from '../../types/typed-object.js';

export interface RemoteOptions {
  /** Symbol files (the guest kernel, the program gdbserver runs). */
  readonly symbols?: readonly string[];
  /** Milliseconds the stub has to answer each packet (default 10 s). */
  readonly timeoutMs?: number;
  /** Console text the stub sends (O packets). */
  readonly onConsole?: (text: string) => void;
}

interface Point {
  readonly kind: 'breakpoint' | 'watchpoint';
  /** The Z type: 0 software, 1 hardware, 2 write, 3 read, 4 access. */
  readonly z: number;
  readonly addr: bigint;
  readonly length: number;
  readonly access?: WatchKind;
}

/** gdb's signal numbers (include/gdb/signals.def) for the common ones, which match Linux's. */
const SIGNALS: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 3: 'SIGQUIT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGEMT', 8: 'SIGFPE', 9: 'SIGKILL', 10: 'SIGBUS', 11: 'SIGSEGV', 12: 'SIGSYS', 13: 'SIGPIPE', 14: 'SIGALRM', 15: 'SIGTERM' };

const PAGE = 4096n;
const ET_DYN = 3;
/** Reads sent at once when the stub can take them pipelined: 32 of QEMU's 2 KiB replies. */
const WINDOW = 32;

export class RemoteTarget implements Target {
  readonly kind = 'remote';
  readonly name: string;
  readonly symbols = new SymbolSpace();
  readonly caps: Capabilities;
  readonly arch: Arch;
  readonly warnings: string[] = [];
  private readonly desc: RemoteDescription;
  private readonly features = new Map<string, string>();
  private readonly elves: ElfFile[] = [];
  /** Bytes per m request. */
  private readonly chunk: number;
  private binaryUpload: boolean;
  private readonly vCont: { c: boolean; s: boolean };
  /** The stub's ids of the threads alive at the last listing, in its order. */
  private threadIds: string[] = [];
  /** dbg's number of every thread id ever listed. */
  private readonly numbers = new Map<string, number>();
  private extraInfo = new Map<string, string>();
  private gThread: string | undefined;
  private readonly regCache = new Map<string, Registers>();
  private readonly pageCache = new Map<string, Buffer>();
  private readonly points = new Map<number, Point>();
  /**
   * Addresses of breakpoints removed lately, each with the stops it is still remembered for. A
   * thread that hit a breakpoint while another thread's stop was being reported holds that trap
   * pending in the stub; removing the breakpoint does not always cancel it, so it arrives at a
   * later continue at an address with no breakpoint. Such a trap is the stub's, not the
   * program's: continue past it (as gdb does with its "moribund" locations).
   */
  private readonly removed = new Map<bigint, number>();
  private nextPoint = 1;
  private last: StopStatus;
  private isRunning = false;
  private exited = false;
  private interrupted = false;
  private pUnsupported = false;
  private auxvBytes?: Buffer;
  /** l_names of the link map already looked at (refreshLibraries). */
  private readonly libraries = new Set<string>();
  /** The last qXfer packet sent (for a description found wrong after it was read). */
  private lastXfer = '';
  /** The position-independent program relocated by its load bias (addSymbolFile). */
  private relocated?: { readonly file: string; readonly bias: bigint };
  /** The stub answered P empty: registers are written with G (writeRegisterByG). */
  private noP = false;
  /** How many steps the last run() made (a repeated step stops early at anything but a plain trap). */
  private repeated = 1;
  /** RAM's physical ranges, as QEMU's monitor told them (asked once: RAM does not move). */
  private ram?: readonly { start: PhysAddr; end: PhysAddr }[];
  private readonly paging = new X86_64Paging((a) => this.readPhysical(a, 8).readBigUInt64LE(0));
  /**
   * The stub reads a packet while its last reply is unacknowledged, so reads can be pipelined
   * (RspConnection.askMany): in no-ack mode, or QEMU's system-mode stub, which never waits for acks.
   */
  private readonly pipeline: boolean;
  /** QEMU's system-mode stub: it answers qqemu.PhyMemMode (and reads physical memory in mode 1). */
  readonly qemuSystem: boolean;
  /** The Linux kernel's symbol file (a vmlinux given with --symbols and found running), and its KASLR slide. */
  kernelElf?: ElfFile;
  kernelOffset = 0n;
  /** The kernel's symbol module, and what finds it again while the kernel is not running yet. */
  private kernelModule?: Module;
  private kernelPending?: { file: string; elf: ElfFile; linkAddr: bigint; size: bigint };
  private linuxCache?: LinuxPort;
  /** Sleeping Linux tasks given a thread of their own (::stacks, ADDR::task): their saved context. */
  private readonly taskThreads = new Map<number, { task: bigint; regs: Registers; name: string; tid: number; listed: boolean }>();

  static attach(host: string, port: number, opts: RemoteOptions = {}): RemoteTarget {
    const conn = RspConnection.open(host, port, opts.timeoutMs ?? 10_000);
    if (opts.onConsole) conn.onConsole = opts.onConsole;
    try {
      return new RemoteTarget(conn, opts);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  private constructor(
    private readonly conn: RspConnection,
    opts: RemoteOptions,
  ) {
    this.name = `gdb stub ${conn.where}`;
    const sup = this.ask('qSupported:swbreak+;hwbreak+;vContSupported+;xmlRegisters=i386');
    for (const f of sup.split(';')) {
      const eq = f.indexOf('=');
      if (eq > 0) this.features.set(f.slice(0, eq), f.slice(eq + 1));
      else if (f.endsWith('+')) this.features.set(f.slice(0, -1), '+');
    }
    let noAck = false;
    if (this.features.get('QStartNoAckMode') === '+' && this.ask('QStartNoAckMode') === 'OK') {
      conn.noAck();
      noAck = true;
    }
    // Only QEMU's softmmu stub knows this query (an unknown q packet is answered empty).
    const phyMode = this.ask('qqemu.PhyMemMode');
    this.qemuSystem = phyMode === '0' || phyMode === '1';
    // Left in physical mode by an earlier client that went away: virtual addresses again.
    if (phyMode === '1') this.okOrThrow('Qqemu.PhyMemMode:0', "leaving QEMU's physical memory mode");
    this.pipeline = noAck || this.qemuSystem;
    const size = parseInt(this.features.get('PacketSize') ?? '', 16);
    // A reply is `size` bytes of hex at most; gdb's default when the stub does not say is 400 bytes.
    this.chunk = Number.isFinite(size) && size >= 64 ? Math.min(1 << 20, Math.floor((size - 8) / 2)) : 200;
    this.binaryUpload = this.features.get('binary-upload') === '+';
    // The stop first: gdbserver describes the registers of the thread it selects there.
    const stop = this.ask('?');
    this.desc = this.features.get('qXfer:features:read') === '+' ? this.readDescription() : defaultX86_64();
    if (this.features.get('qXfer:features:read') !== '+') this.warnings.push(`${this.name} offers no target description (qXfer:features:read): assuming gdb's default x86-64 register layout`);
    this.arch = this.desc.arch;
    const vc = this.ask('vCont?');
    const actions = vc.startsWith('vCont') ? vc.split(';').slice(1) : [];
    this.vCont = { c: actions.includes('c'), s: actions.includes('s') };
    this.refreshThreads();
    this.last = this.stopOf(stop, 'none');
    for (const s of opts.symbols ?? []) this.addSymbolFile(s);
    this.refreshLibraries();
    this.caps = this.capabilities();
  }

  // --- the wire ---------------------------------------------------------------------------------

  private ask(packet: string): string {
    return this.conn.ask(packet);
  }

  /** A reply that must be OK; an error reply is `what` refused, with the stub's code. */
  private okOrThrow(packet: string, what: string): void {
    const r = this.ask(packet);
    if (r === 'OK') return;
    if (r === '') throw this.conn.fail(`the stub does not support ${what}`, packet, 'unsupported');
    throw this.conn.fail(`the stub refused ${what}: ${r.slice(0, 40)}`, packet, 'bad-input');
  }

  /**
   * A qXfer object read to its end (binary: one latin1 character per byte), in pieces of the
   * packet size: `m` + data means more follows, `l` + data is the last piece. `fail` makes the
   * error for a reply that is neither, or an object that does not end (1 MiB at most).
   */
  private readXfer(object: string, annex: string, fail: (why: string, packet: string) => Error): string {
    let text = '';
    for (;;) {
      const packet = `qXfer:${object}:read:${annex}:${text.length.toString(16)},${Math.max(256, this.chunk).toString(16)}`;
      this.lastXfer = packet;
      const r = this.ask(packet);
      if (r[0] !== 'm' && r[0] !== 'l') throw fail(`the stub answered "${r.slice(0, 20)}"${annex ? ` for annex ${annex}` : ''}`, packet);
      text += r.slice(1);
      if (r[0] === 'l') return text;
      if (r.length === 1 || text.length > 1 << 20) throw fail(`${annex ? `annex ${annex}` : object} does not end`, packet);
    }
  }

  private readDescription(): RemoteDescription {
    try {
      return parseDescription((annex) => this.readXfer('features', annex, (why) => new DescriptionError(why)));
    } catch (e) {
      if (e instanceof DescriptionError) throw this.conn.fail(`a target description dbg cannot use: ${e.message}`, this.lastXfer, 'corrupt');
      throw e;
    }
  }

  /** The process's auxiliary vector (qXfer:auxv:read, gdbserver's), read once. */
  private auxv(): Buffer {
    if (this.features.get('qXfer:auxv:read') !== '+') throw errors.unsupported(this.name, 'the auxiliary vector (qXfer:auxv:read)');
    this.auxvBytes ??= Buffer.from(this.readXfer('auxv', '', (why, p) => this.conn.fail(`an auxiliary vector dbg cannot use: ${why}`, p, 'corrupt')), 'latin1');
    return this.auxvBytes;
  }

  /**
   * Where a position-independent program was loaded, as gdb finds it: AT_ENTRY of the process's
   * auxiliary vector against the ELF's e_entry (their difference is the load bias), or why not:
   * the stub has no auxv, the vector has no AT_ENTRY, or the difference is not page-aligned (the
   * file is not the program the stub runs).
   */
  private loadBias(elf: ElfFile): { bias: bigint } | { why: string } {
    if (this.features.get('qXfer:auxv:read') !== '+') return { why: 'the stub offers no auxiliary vector (qXfer:auxv:read) to find its load address in' };
    const w = this.arch.pointerBytes;
    const value = this.auxvMap().get(AT_ENTRY);
    if (value === undefined) return { why: `the process's auxiliary vector (${this.auxv().length} bytes) has no AT_ENTRY` };
    const bias = BigInt.asUintN(w * 8, value - elf.header.entry);
    if (bias % PAGE === 0n) return { bias };
    return { why: `the process's entry point (AT_ENTRY ${hexAddr(value, w * 2)}) is not the file's (e_entry ${hexAddr(elf.header.entry, w * 2)}) moved by whole pages: is it the program the stub runs?` };
  }

  /** The auxiliary vector's (type, value) pairs up to AT_NULL. */
  private auxvMap(): Map<bigint, bigint> {
    const v = this.auxv();
    const w = this.arch.pointerBytes;
    const out = new Map<bigint, bigint>();
    for (let o = 0; o + 2 * w <= v.length; o += 2 * w) {
      const type = w === 8 ? v.readBigUInt64LE(o) : BigInt(v.readUInt32LE(o));
      if (type === 0n) break;
      out.set(type, w === 8 ? v.readBigUInt64LE(o + w) : BigInt(v.readUInt32LE(o + w)));
    }
    return out;
  }

  /**
   * The shared libraries the program has loaded, as gdb's solib-svr4 finds them: the dynamic
   * linker's link map in the process's memory (from AT_PHDR, as for a process core), each object
   * added with its l_addr as bias when its l_name is a regular file on this machine. Read at attach
   * and after each continue (a library loads while the program runs, never during a step). A
   * library that is not here (a stub on another machine) or not an ELF file is left out: its
   * frames show as addresses.
   */
  private refreshLibraries(): void {
    if (this.features.get('qXfer:auxv:read') !== '+' || this.exited || this.arch.pointerBytes !== 8) return;
    const map = readLinkMap((a, n) => this.readVirtual(a, n), this.auxvMap());
    for (const e of map.entries) {
      if (e.name === '' || this.libraries.has(e.name)) continue;
      this.libraries.add(e.name);
      try {
        if (!statSync(e.name).isFile()) continue;
        const elf = ElfFile.open(e.name);
        this.elves.push(elf);
        this.symbols.add(elfModule(basename(e.name), e.name, elf, symbolTableFor(basename(e.name), elf, e.bias), e.bias));
      } catch (err) {
        if (!isDbgError(err) && (err as NodeJS.ErrnoException).code === undefined) throw err;
      }
    }
  }

  // --- capabilities -----------------------------------------------------------------------------

  private capabilities(): Capabilities {
    const self = this;
    const execution: ExecutionControl = {
      step: (t, n) => this.step(t, n ?? 1),
      resume: (only) => this.resume(only),
      interrupt: () => {
        if (this.isRunning) {
          this.interrupted = true;
          this.conn.interrupt();
        }
      },
      get running() {
        return self.isRunning;
      },
    };
    const breakpoints: Breakpoints = {
      addBreakpoint: (a) => this.addBreakpoint(a),
      removeBreakpoint: (id) => this.removePoint(id, 'breakpoint'),
      addWatchpoint: (a, n, k, phys) => this.addWatchpoint(a, n, k, phys),
      removeWatchpoint: (id) => this.removePoint(id, 'watchpoint'),
    };
    const writeMemory: MemoryWriter = { writeVirtual: (a, d) => this.writeMemory(a, d) };
    const writeRegisters: RegisterWriter = { writeRegister: (t, n, v) => this.writeRegister(t, n, v) };
    const caps: { -readonly [K in keyof Capabilities]: Capabilities[K] } = { execution, breakpoints, writeMemory, writeRegisters };
    if (this.features.get('qXfer:auxv:read') === '+') caps.process = { auxv: () => this.auxv() };
    if (this.qemuSystem) {
      const physical: PhysicalMemory = {
        readPhysical: (a, n) => this.readPhysical(a, n),
        translate: (a, t) => this.translate(a, t ?? this.last.thread),
        physicalRanges: () => this.physicalRanges(),
      };
      caps.physical = physical;
      // The vmcore layout is x86-64's (EM_X86_64, user_regs_struct); an i386 guest has no snapshot.
      if (this.arch.gdbArch === 'i386:x86-64') {
        const snapshot: Snapshot = {
          writeCore: (file) => {
            this.notRunning('write a core');
            writeQemuCore(this, file);
          },
        };
        caps.snapshot = snapshot;
      }
    }
    const rs = this.features.get('ReverseStep') === '+';
    const rc = this.features.get('ReverseContinue') === '+';
    if (rs || rc) {
      const noPositions = (): never => {
        throw errors.unsupported(this.name, 'positions in the recorded history (the stub runs backwards with bs/bc but names no points in time)');
      };
      const reverse: ReverseExecution = {
        positions: false,
        bounds: noPositions,
        seek: noPositions,
        stepBack: (t) => {
          if (!rs) throw errors.unsupported(this.name, 'reverse stepping (the stub offers ReverseContinue only)');
          return this.run(`bs`, 'step', t);
        },
        resumeBack: () => {
          if (!rc) throw errors.unsupported(this.name, 'reverse continue (the stub offers ReverseStep only)');
          return this.run('bc', 'continue');
        },
      };
      caps.reverse = reverse;
    }
    return caps;
  }

  // --- threads ----------------------------------------------------------------------------------

  private refreshThreads(): void {
    const ids: string[] = [];
    let r = this.ask('qfThreadInfo');
    for (let n = 0; r.startsWith('m') && n < 4096; n++) {
      ids.push(...r.slice(1).split(',').filter((s) => s !== ''));
      r = this.ask('qsThreadInfo');
    }
    // A stub without thread listing has one thread: whichever it reports, or "any" (0).
    if (ids.length === 0) ids.push(this.threadIds[0] ?? '0');
    const fresh = ids.filter((id) => !this.threadIds.includes(id));
    if (fresh.length && ids.length <= 64) {
      for (const id of fresh) {
        const x = this.ask(`qThreadExtraInfo,${id}`);
        if (/^(?:[0-9a-fA-F]{2})+$/.test(x)) this.extraInfo.set(id, Buffer.from(x, 'hex').toString('utf8').replace(/[^\x20-\x7e]/g, '?'));
      }
    }
    for (const id of ids) if (!this.numbers.has(id)) this.numbers.set(id, this.numbers.size + 1);
    this.threadIds = ids;
  }

  private tidOf(thread: number): string {
    const id = this.threadIds.find((x) => this.numbers.get(x) === thread);
    if (!Number.isInteger(thread) || id === undefined) {
      const have = this.threadIds.map((x) => this.numbers.get(x)!);
      throw errors.badInput(`thread ${thread} does not exist: ${this.name} has thread${have.length > 1 ? `s ${have.join(', ')}` : ` ${have[0] ?? 1}`}`);
    }
    return id;
  }

  private indexOf(id: string | undefined): number {
    if (id === undefined) return this.last?.thread ?? 1;
    if (!this.threadIds.includes(id)) this.refreshThreads();
    return this.threadIds.includes(id) ? this.numbers.get(id)! : 1;
  }

  threads(): readonly ThreadInfo[] {
    const out: ThreadInfo[] = this.threadIds.map((id) => ({
      index: this.numbers.get(id)!,
      tid: parseInt(id.replace(/^p[0-9a-f]+\./i, ''), 16) || 0,
      name: this.extraInfo.get(id) ?? `thread ${id}`,
      state: this.exited ? 'exited' : this.isRunning ? 'running' : 'stopped',
    }));
    for (const [index, t] of this.taskThreads) if (t.listed) out.push({ index, tid: t.tid, name: t.name, state: 'sleeping' });
    return out;
  }

  private selectG(id: string): void {
    if (this.gThread === id) return;
    this.okOrThrow(`Hg${id}`, `selecting thread ${id}`);
    this.gThread = id;
  }

  // --- registers and memory ---------------------------------------------------------------------

  registers(thread: number): Registers {
    const task = this.taskThreads.get(thread);
    if (task) return new Map(task.regs);
    const id = this.tidOf(thread);
    this.notRunning('read registers');
    if (this.exited) throw errors.state(`no registers: the program under ${this.name} has exited`);
    const have = this.regCache.get(id);
    if (have) return new Map(have);
    this.selectG(id);
    return this.registersFromG(id, this.ask('g'));
  }

  /** The registers of thread `id` from its g reply (and p for those it leaves out), cached. */
  private registersFromG(id: string, g: string): Registers {
    if (g.startsWith('E') || !/^[0-9a-fA-Fx]*$/.test(g)) throw this.conn.fail(`the stub cannot read the registers of thread ${id}: ${g.slice(0, 40) || 'empty reply'}`, 'g', 'corrupt');
    const regs = decodeRegisters(this.desc, g);
    // Registers a g reply leaves out (it may stop at the core set): one p each.
    let covered = 0;
    for (const r of this.desc.registers) {
      covered += r.bits / 4;
      if (covered <= g.length || this.pUnsupported) continue;
      const p = this.ask(`p${r.regnum.toString(16)}`);
      if (p === '') {
        this.pUnsupported = true;
        continue;
      }
      const v = p.length === r.bits / 4 ? decodeLittle(p) : undefined;
      if (v !== undefined) regs.set(r.name, v);
    }
    if (!regs.has(this.arch.pc)) throw this.conn.fail(`a g reply of ${g.length / 2} bytes without ${this.arch.pc} (the description needs ${this.desc.registers.reduce((s, r) => s + r.bits / 8, 0)})`, 'g', 'corrupt');
    this.regCache.set(id, regs);
    return new Map(regs);
  }

  readVirtual(addr: bigint, length: number, thread?: number): Buffer {
    if (length === 0) return Buffer.alloc(0);
    if (thread !== undefined && this.taskThreads.has(thread)) thread = this.kernelCpu();
    const id = this.tidOf(thread ?? this.last.thread);
    this.notRunning('read memory');
    addr = BigInt.asUintN(this.arch.pointerBytes * 8, addr);
    if (length > 2 * Number(PAGE)) return this.readDirect(id, addr, length);
    // Small reads (stacks, symbols, structures) go through whole cached pages.
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const at = addr + BigInt(done);
      const base = at - (at % PAGE);
      const key = `${id}:${base}`;
      let page = this.pageCache.get(key);
      if (!page) {
        page = this.readDirect(id, base, Number(PAGE), at);
        this.pageCache.set(key, page);
      }
      const off = Number(at - base);
      const n = Math.min(length - done, page.length - off);
      page.copy(out, done, off, off + n);
      done += n;
    }
    return out;
  }

  /**
   * `length` bytes at `addr` in requests the stub's packet size allows, WINDOW of them per round
   * trip when the stub takes them pipelined. A short reply ends the window: the read goes on from
   * the first byte missing. `first`: the address asked for (messages).
   */
  private readDirect(id: string, addr: bigint, length: number, first = addr): Buffer {
    this.selectG(id);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const pieces: { at: bigint; n: number }[] = [];
      for (let off = done; off < length && pieces.length < (this.pipeline ? WINDOW : 1); off += this.chunk) {
        pieces.push({ at: addr + BigInt(off), n: Math.min(this.chunk, length - off) });
      }
      const got = this.readPieces(pieces);
      for (let i = 0; i < pieces.length; i++) {
        const g = got[i]!;
        if (g.length === 0) {
          const at = pieces[i]!.at;
          throw new DbgError('unmapped', `read of ${length} bytes at ${hexAddr(first > at ? first : at, this.arch.pointerBytes * 2)} failed: ${this.name} cannot read ${hexAddr(at, this.arch.pointerBytes * 2)}`);
        }
        g.copy(out, done);
        done += g.length;
        if (g.length < pieces[i]!.n) break;
      }
    }
    return out;
  }

  /** One m (or x) request per piece, pipelined when there are several: the bytes of each, maybe fewer than asked; none where refused. */
  private readPieces(pieces: readonly { at: bigint; n: number }[]): Buffer[] {
    const op = this.binaryUpload ? 'x' : 'm';
    const packets = pieces.map((p) => `${op}${p.at.toString(16)},${p.n.toString(16)}`);
    const replies = packets.length === 1 ? [this.ask(packets[0]!)] : this.conn.askMany(packets);
    if (op === 'x' && replies[0] === '') {
      this.binaryUpload = false; // offered but not answered: m from now on
      return this.readPieces(pieces);
    }
    return replies.map((r, i) => this.pieceOf(op, r, packets[i]!, pieces[i]!.n));
  }

  /** The bytes of one m or x reply to a read of `n`. */
  private pieceOf(op: 'm' | 'x', r: string, packet: string, n: number): Buffer {
    if (op === 'x') return r.startsWith('b') ? Buffer.from(r.slice(1, 1 + n), 'latin1') : Buffer.alloc(0);
    if (/^E[0-9a-fA-F]{2}/.test(r) || r === '' || r.startsWith('E.')) return Buffer.alloc(0);
    if (r.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(r)) throw this.conn.fail(`a reply that is not hex bytes: "${packetName(r)}"`, packet, 'corrupt');
    if (r.length / 2 > n) throw this.conn.fail(`${r.length / 2} bytes for a read of ${n}`, packet, 'corrupt');
    return Buffer.from(r, 'hex');
  }

  // --- physical memory (QEMU's system stub) ----------------------------------------------------

  /**
   * `length` bytes at guest-physical `addr`: QEMU's stub reads physical addresses with m while in
   * its physical-memory mode, which is switched on for this read only (everything else dbg asks
   * is virtual). Not cached: a vmcore is read once.
   */
  private readPhysical(addr: PhysAddr, length: number): Buffer {
    this.notRunning('read physical memory');
    if (length === 0) return Buffer.alloc(0);
    const id = this.tidOf(this.last.thread);
    this.okOrThrow('Qqemu.PhyMemMode:1', "QEMU's physical memory mode");
    try {
      return this.readDirect(id, addr, length);
    } finally {
      this.okOrThrow('Qqemu.PhyMemMode:0', "leaving QEMU's physical memory mode");
    }
  }

  /**
   * The guest's RAM (and ROM) in physical addresses, from the flat view of QEMU's system address
   * space (`info mtree -f` through qRcmd), the ranges dump-guest-memory writes too:
   *
   *   FlatView #2
   *    AS "memory", root: system
   *    ...
   *     0000000000000000-00000000000bffff (prio 0, ram): pc.ram
   *     00000000000c0000-00000000000dffff (prio 1, rom): pc.rom
   *     00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic          <- devices are left out
   *
   * Adjacent ranges are merged. The gdb protocol itself has no way to list physical memory:
   * without QEMU's monitor there is no snapshot (a stub's virtual reads alone cannot make a
   * vmcore whose page tables resolve).
   */
  private physicalRanges(): readonly { start: PhysAddr; end: PhysAddr }[] {
    if (this.ram) return this.ram;
    const text = this.monitor('info mtree -f');
    const views = text.split(/^FlatView #\d+$/m);
    const view = views.find((v) => /^ AS "memory"/m.test(v));
    const out: { start: PhysAddr; end: PhysAddr }[] = [];
    for (const m of (view ?? '').matchAll(/^\s+([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, (?:ram|rom)\)/gm)) {
      const start = BigInt(`0x${m[1]}`);
      const end = BigInt(`0x${m[2]}`) + 1n;
      const last = out[out.length - 1];
      if (last && last.end === start) last.end = end;
      else out.push({ start, end });
    }
    if (out.length === 0) throw this.conn.fail(`QEMU's monitor listed no RAM in "info mtree -f" (${text.length} characters of output)`, 'qRcmd,info mtree -f', 'unsupported');
    this.ram = out;
    return out;
  }

  /** A monitor command through qRcmd: its output (O packets, or a hex reply). */
  private monitor(command: string): string {
    const packet = `qRcmd,${Buffer.from(command, 'utf8').toString('hex')}`;
    let text = '';
    const passOn = this.conn.onConsole;
    this.conn.onConsole = (t) => (text += t);
    let r: string;
    try {
      r = this.ask(packet);
    } finally {
      this.conn.onConsole = passOn;
    }
    if (r === '') throw this.conn.fail(`the stub has no monitor commands (qRcmd)`, packet, 'unsupported');
    if (/^E[0-9a-fA-F]{2}$/.test(r)) throw this.conn.fail(`the stub refused the monitor command "${command}": ${r}`, packet, 'bad-input');
    if (r !== 'OK' && /^(?:[0-9a-fA-F]{2})+$/.test(r)) text += Buffer.from(r, 'hex').toString('utf8');
    return text;
  }

  /** Virtual -> physical through the page tables of `thread`'s CPU (4- or 5-level; none with paging off). */
  private translate(virt: VirtAddr, thread: number): Translation {
    const r = this.registers(thread);
    const cr0 = r.get('cr0') ?? 0n;
    if ((cr0 & 0x8000_0000n) === 0n) return { virt, phys: virt, pageSize: 4096, steps: [] };
    if (((r.get('efer') ?? 0n) & 0x400n) === 0n) return { virt, steps: [], fault: 'the CPU uses 32-bit paging, which dbg walks only in dumps and the emulator' };
    const w = this.paging.translate(cr3Root(r.get('cr3') ?? 0n), virt, ((r.get('cr4') ?? 0n) & 0x1000n) !== 0n ? 5 : 4);
    if (w.fault !== undefined) return { virt, steps: w.steps, fault: w.fault };
    return { virt, phys: w.phys, pageSize: w.pageSize, steps: w.steps, writable: w.writable, user: w.user, executable: w.executable };
  }

  private writeMemory(addr: bigint, data: Buffer): void {
    this.notRunning('write memory');
    this.forget();
    for (let done = 0; done < data.length; done += this.chunk) {
      const part = data.subarray(done, done + this.chunk);
      const at = addr + BigInt(done);
      this.okOrThrow(`M${at.toString(16)},${part.length.toString(16)}:${part.toString('hex')}`, `a write of ${part.length} bytes at ${hexAddr(at)}`);
    }
  }

  private writeRegister(thread: number, name: string, value: bigint): void {
    const id = this.tidOf(thread);
    this.notRunning('write registers');
    const r = this.desc.registers.find((x) => x.name === name);
    if (!r) throw errors.badInput(`register ${name}: ${this.name} describes no such register`);
    this.selectG(id);
    this.forget();
    if (!this.noP) {
      const packet = `P${r.regnum.toString(16)}=${encodeLittle(value, r.bits)}`;
      const reply = this.ask(packet);
      if (reply !== '' && reply !== 'OK') throw this.conn.fail(`the stub refused writing register ${name}: ${reply.slice(0, 40)}`, packet, 'bad-input');
      if (reply === '') this.noP = true;
    }
    if (this.noP) this.writeRegisterByG(r, value);
    if (thread === this.last.thread && name === this.arch.pc) this.last = { ...this.last, pc: BigInt.asUintN(r.bits, value) };
  }

  /**
   * A stub without P (answered empty: QEMU's older stubs, small embedded ones) writes registers
   * only all at once: read g, put the value at the register's place in it, write it back with G.
   *
   *   g/G payload: each described register in order, bitsize/4 hex digits, little-endian
   *   ("xx" marks a byte the stub could not read; G writes it back as 00)
   */
  private writeRegisterByG(r: RemoteDescription['registers'][number], value: bigint): void {
    const g = this.ask('g');
    if (g.startsWith('E') || !/^[0-9a-fA-Fx]*$/.test(g)) throw this.conn.fail(`the stub cannot read the registers to change ${r.name}: ${g.slice(0, 40) || 'empty reply'}`, 'g', 'corrupt');
    let at = 0;
    for (const x of this.desc.registers) {
      if (x === r) break;
      at += x.bits / 4;
    }
    if (at + r.bits / 4 > g.length) throw this.conn.fail(`register ${r.name} is not in the stub's g reply (${g.length / 2} bytes) and the stub does not support P: it cannot be written`, 'g', 'unsupported');
    const next = (g.slice(0, at) + encodeLittle(value, r.bits) + g.slice(at + r.bits / 4)).replace(/x/g, '0');
    const packet = `G${next}`;
    const reply = this.ask(packet);
    if (reply === '') throw this.conn.fail(`the stub supports neither P nor G: registers cannot be written`, packet, 'unsupported');
    if (reply !== 'OK') throw this.conn.fail(`the stub refused writing the registers (G, for ${r.name}): ${reply.slice(0, 40)}`, packet, 'bad-input');
  }

  mappings(): readonly Mapping[] {
    const out: Mapping[] = [];
    for (const m of this.symbols.modules) {
      for (const p of m.elf?.loadSegments() ?? []) {
        out.push({ start: p.vaddr + (m.bias ?? 0n), end: p.vaddr + p.memsz + (m.bias ?? 0n), perms: `${p.flags & 4 ? 'r' : '-'}${p.flags & 2 ? 'w' : '-'}${p.flags & 1 ? 'x' : '-'}`, name: m.name });
      }
    }
    return out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  status(): StopStatus {
    return this.last;
  }

  describe(): string[] {
    const offered = ['QStartNoAckMode', 'qXfer:features:read', 'vContSupported', 'ReverseStep', 'ReverseContinue', 'binary-upload', 'swbreak', 'hwbreak'].filter((f) => this.features.get(f) === '+');
    return [
      `attached to the gdb stub at ${this.conn.where}: ${this.arch.gdbArch}, ${this.desc.registers.length} registers, ${this.threadIds.length} thread(s)${this.exited ? ' (exited)' : ''}`,
      `stub offers: PacketSize=${this.features.get('PacketSize') ?? '?'}${offered.length ? `, ${offered.join(', ')}` : ''}; vCont: ${this.vCont.c ? 'c' : ''}${this.vCont.s ? 's' : ''}${this.vCont.c || this.vCont.s ? '' : 'no'}`,
      ...(this.relocated ? [`${this.relocated.file} relocated by ${hexAddr(this.relocated.bias, this.arch.pointerBytes * 2)} (AT_ENTRY of the process's auxiliary vector against e_entry)`] : []),
    ];
  }

  /**
   * Symbols of `file`. The first position-independent executable (ET_DYN with an entry point) is
   * taken for the program the stub runs and relocated by its load bias (loadBias), as gdb
   * relocates its exec file; other files are used at their link addresses.
   */
  addSymbolFile(file: string): void {
    const elf = ElfFile.open(file);
    this.elves.push(elf);
    if (this.kernelElf === undefined && elf.header.type !== ET_DYN && this.arch.gdbArch === 'i386:x86-64') {
      const banner = symbolTableFor(basename(file), elf, 0n).lookup('linux_banner');
      if (banner && banner.addr >= START_KERNEL_MAP) {
        this.addKernel(file, elf, banner.addr, banner.size);
        return;
      }
    }
    let bias = 0n;
    if (elf.header.type === ET_DYN && elf.header.entry !== 0n && this.relocated === undefined && !this.exited) {
      const b = this.loadBias(elf);
      if ('why' in b) {
        this.warnings.push(`${basename(file)} is position-independent and stays at its link addresses: ${b.why}`);
      } else {
        bias = b.bias;
        this.relocated = { file: basename(file), bias };
      }
    }
    this.symbols.add(elfModule(basename(file), file, elf, symbolTableFor(basename(file), elf, bias), bias));
  }

  /**
   * A Linux vmlinux: found running as crash's `--kaslr auto` finds it in a dump (its linux_banner
   * at the link address plus a multiple of 2 MiB below 1 GiB), read through the stub's virtual
   * reads on a CPU in the kernel, and its symbols biased by that slide. Another kernel's banner
   * where this one's should be is refused; a kernel not found at all keeps its link addresses with
   * a warning. Only QEMU's system stub shows a kernel: under any other (gdbserver runs a process)
   * the file is refused.
   */
  private addKernel(file: string, elf: ElfFile, linkAddr: bigint, size: bigint, pending?: Module): void {
    if (!this.qemuSystem) {
      throw new DbgError('unsupported', `--symbols ${basename(file)} is a Linux kernel, but ${this.name} has no physical memory to find one in (QEMU's system stub, -s or -gdb, has; gdbserver debugs a process)`);
    }
    const text = (elf.readLoaded(linkAddr, Math.min(Number(size) || 256, 512)) ?? Buffer.alloc(0)).toString('latin1').split('\0')[0]!;
    let bias = 0n;
    this.kernelPending = undefined;
    if (text.length > 0) {
      const cpu = this.kernelCpu();
      const read = (a: bigint, n: number) => {
        try {
          return this.readDirect(this.tidOf(cpu), a, n);
        } catch (e) {
          if (isDbgError(e)) return undefined;
          throw e;
        }
      };
      const r = findKaslrSlide(read, linkAddr, text);
      if (r.kind === 'found') bias = r.offset;
      else if (r.kind === 'other-banner') {
        const at = r.offset === 0n ? '' : ` (at KASLR offset 0x${r.offset.toString(16)})`;
        const says = (t: string) => bannerRelease(t) ?? `"${t.split('\n')[0]}"`;
        throw errors.badInput(`--symbols ${basename(file)} is not the kernel running under ${this.name}: the guest's linux_banner${at} says ${says(r.text)}, the file's says ${says(text)}`);
      } else if (!pending) {
        this.warnings.push(`linux_banner of ${basename(file)} is nowhere in the guest's kernel memory yet (tried every KASLR offset): its symbols stay at their link addresses until a stop finds the kernel running`);
      }
      // Attached before the kernel ran (QEMU -S at the reset vector): look again at every stop.
      if (r.kind !== 'found') this.kernelPending = { file, elf, linkAddr, size };
    }
    if (pending && this.kernelPending) return; // still not there: the module stays as it is
    const table = symbolTableFor(basename(file), elf, bias);
    let mod = elfModule(basename(file), file, elf, table, bias);
    // .data..percpu is linked at 0: its symbols are offsets, not part of the image's range.
    const image = elf.loadSegments().filter((p) => p.memsz > 0n && p.vaddr >= START_KERNEL_MAP);
    if (image.length > 0) {
      const lo = image.reduce((m, p) => (p.vaddr < m ? p.vaddr : m), image[0]!.vaddr);
      const hi = image.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
      mod = { ...mod, start: lo + bias, end: hi + bias };
    }
    mod = { ...mod, typeHomes: KERNEL_TYPE_HOMES };
    if (pending) this.symbols.replace(pending, mod);
    else this.symbols.add(mod);
    this.kernelModule = mod;
    this.kernelElf = elf;
    this.kernelOffset = bias;
    this.linuxCache = undefined;
  }

  /** A CPU that runs in the kernel (CS's privilege level 0), whose page tables map the kernel's half; else the stopped one. */
  private kernelCpu(): number {
    for (const t of this.threads()) {
      try {
        if (((this.registers(t.index).get('cs') ?? 3n) & 3n) === 0n) return t.index;
      } catch (e) {
        if (!isDbgError(e)) throw e;
      }
    }
    return this.last.thread;
  }

  /**
   * What dbg's Linux knowledge (src/os/linux/) reads a live kernel through, once a vmlinux was
   * found running (addKernel): kernel memory as a CPU in the kernel sees it, vmlinux's symbols and
   * types. Undefined without one.
   */
  get linux(): LinuxPort | undefined {
    if (!this.kernelElf) return undefined;
    if (this.linuxCache) return this.linuxCache;
    const read = (a: bigint, n: number) => this.readVirtual(a, n, this.kernelCpu());
    let objects: ObjectSpace | undefined;
    return (this.linuxCache = {
      name: `the Linux kernel under ${this.name}`,
      read,
      symbol: (name) => this.symbols.findLoaded(name)?.addr,
      linkValue: (name) => {
        const s = this.symbols.findLoaded(name);
        return s ? s.addr - (s.module.bias ?? 0n) : undefined;
      },
      cpus: this.threadIds.length,
      objects: () => (objects ??= new ObjectSpace(new TypeSpace(this.symbols), this.symbols, { read, littleEndian: true, symbolize: (a) => this.symbols.describe(a) }, 8)),
    });
  }

  /**
   * The thread that shows a Linux task: the CPU it runs on, else a thread of its own whose
   * registers are the context it switched out with (listed in threads() when `listed`).
   */
  taskThread(task: bigint, listed: boolean): number {
    for (const [index, t] of this.taskThreads) {
      if (t.task !== task) continue;
      if (listed) t.listed = true;
      return index;
    }
    const port = this.linux;
    if (!port) throw errors.notFound(`${this.name} has no Linux kernel: attach with --symbols vmlinux`);
    const tasks = linuxTasks(port);
    const info = tasks.info(task);
    if (info.onCpu && info.cpu < this.threadIds.length) return this.numbers.get(this.threadIds[info.cpu]!)!;
    const regs = tasks.savedContext(task);
    const index = this.numbers.size + this.taskThreads.size + 1;
    this.taskThreads.set(index, { task, regs, name: `pid ${info.pid} ${info.comm}`, tid: info.pid, listed });
    return index;
  }

  /**
   * Forget every register and memory byte read so far (gdb's `maint flush register-cache` and
   * `maint flush dcache`): the next read asks the stub again. For a guest changed behind dbg's back,
   * and for benches that time reads rather than the cache.
   */
  flush(): void {
    this.forget();
  }

  close(): void {
    if (!this.exited) {
      try {
        if (this.isRunning) this.conn.interrupt();
        else {
          // As gdb does: our breakpoints and watchpoints out first, or the program goes on with
          // an int3 in its code and no debugger to take the trap (it dies of SIGTRAP).
          for (const p of this.points.values()) this.conn.ask(`z${p.z},${p.addr.toString(16)},${p.length.toString(16)}`, 2000);
          this.points.clear();
          this.conn.ask('D', 2000);
        }
      } catch {
        // Detaching from a stub that is gone: nothing left to release there.
      }
    }
    this.conn.close();
    for (const e of this.elves.splice(0)) e.close();
  }

  // --- breakpoints ------------------------------------------------------------------------------

  private addBreakpoint(addr: bigint): number {
    this.notRunning('insert a breakpoint');
    const packet = (z: number): string => `Z${z},${addr.toString(16)},1`;
    let r = this.ask(packet(0));
    let z = 0;
    if (r === '') {
      z = 1;
      r = this.ask(packet(1));
    }
    if (r !== 'OK') throw this.conn.fail(r === '' ? `the stub supports no breakpoints (Z0 and Z1 answered empty)` : `the stub refused a breakpoint at ${hexAddr(addr, this.arch.pointerBytes * 2)}: ${r.slice(0, 40)}`, packet(z), r === '' ? 'unsupported' : 'bad-input');
    const id = this.nextPoint++;
    this.points.set(id, { kind: 'breakpoint', z, addr, length: 1 });
    return id;
  }

  private addWatchpoint(addr: bigint, length: number, access: WatchKind, physical?: boolean): number {
    this.notRunning('insert a watchpoint');
    if (physical) throw errors.unsupported(this.name, 'watchpoints on physical addresses');
    if (!Number.isInteger(length) || length < 1) throw errors.badInput(`watchpoint length ${length}: expected at least 1 byte`);
    const z = { exec: 1, write: 2, read: 3, access: 4 }[access];
    const packet = `Z${z},${addr.toString(16)},${length.toString(16)}`;
    const r = this.ask(packet);
    if (r === '') throw this.conn.fail(`the stub does not support ${access} watchpoints (Z${z})`, packet, 'unsupported');
    if (r !== 'OK') throw this.conn.fail(`the stub refused a ${access} watchpoint of ${length} byte(s) at ${hexAddr(addr, this.arch.pointerBytes * 2)}: ${r.slice(0, 40)} (hardware watchpoints are few and of 1, 2, 4 or 8 aligned bytes)`, packet, 'bad-input');
    const id = this.nextPoint++;
    this.points.set(id, { kind: 'watchpoint', z, addr, length, access });
    return id;
  }

  private removePoint(id: number, kind: Point['kind']): void {
    const p = this.points.get(id);
    if (!p || p.kind !== kind) throw errors.badInput(`no ${kind} with id ${id}`);
    this.notRunning(`remove a ${kind}`);
    this.points.delete(id);
    this.ask(`z${p.z},${p.addr.toString(16)},${p.length.toString(16)}`);
    if (p.kind === 'breakpoint') this.removed.set(p.addr, 3 * Math.max(1, this.threadIds.length));
  }

  /** `reply` reports a trap at a breakpoint removed lately, where none is inserted now. */
  private isDelayedTrap(reply: string): boolean {
    if (this.removed.size === 0 || !/^T05/i.test(reply) || /;(?:r|a)?watch:/.test(reply)) return false;
    const tid = /thread:([^;]+);/.exec(reply)?.[1];
    const pc = this.registers(this.indexOf(tid)).get(this.arch.pc);
    if (pc === undefined || !this.removed.has(pc)) return false;
    return ![...this.points.values()].some((p) => p.kind === 'breakpoint' && p.addr === pc);
  }

  /** One more stop reported: lately removed breakpoints are remembered for fewer stops. */
  private ageRemoved(): void {
    for (const [addr, left] of this.removed) {
      if (left <= 1) this.removed.delete(addr);
      else this.removed.set(addr, left - 1);
    }
  }

  // --- running ----------------------------------------------------------------------------------

  private notRunning(what: string): void {
    if (this.isRunning) throw errors.state(`cannot ${what} while the guest runs: stop it first (Ctrl-C)`);
    if (this.exited && !what.startsWith('read')) throw errors.state(`cannot ${what}: the program under ${this.name} has exited`);
  }

  /** Forget what was read: the guest ran or was written. */
  private forget(): void {
    this.taskThreads.clear();
    this.regCache.clear();
    this.pageCache.clear();
    this.paging.flush();
  }

  private async step(thread: number, count: number): Promise<StopStatus> {
    if (!Number.isSafeInteger(count) || count < 1) throw errors.badInput(`step count ${count}: expected a whole number of at least 1`);
    let st = this.last;
    // With no breakpoint to lift on the way, the stub repeats the step itself (one hand-over for
    // all of them); a breakpoint makes each step lift the one at its pc.
    const batch = ![...this.points.values()].some((p) => p.kind === 'breakpoint');
    for (let left = count; left > 0; ) {
      const n = batch ? left : 1;
      st = await this.run('s', 'step', thread, n);
      left -= this.repeated;
      if (st.reason.kind !== 'step' || this.interrupted) break;
    }
    return st;
  }

  private async resume(only?: number): Promise<StopStatus> {
    if (only !== undefined) this.tidOf(only);
    // Off a breakpoint first: one step of the thread that stopped there, with it lifted.
    const from = only ?? this.last.thread;
    if (this.breakpointAt(from) !== undefined) {
      const st = await this.run('s', 'step', from);
      if (st.reason.kind !== 'step' || this.interrupted) return st;
    }
    return this.run('c', 'continue', only);
  }

  /** The breakpoint at `thread`'s pc, if one is inserted there. */
  private breakpointAt(thread: number): Point | undefined {
    const pc = this.registers(thread).get(this.arch.pc);
    return [...this.points.values()].find((p) => p.kind === 'breakpoint' && p.addr === pc);
  }

  /**
   * One resume packet: `s` or `c` forward (vCont when the stub has it), `bs` or `bc` backwards;
   * `thread`: that thread alone. A forward or backward step lifts a breakpoint at the pc for it.
   */
  private async run(action: 's' | 'c' | 'bs' | 'bc', mode: 'step' | 'continue', thread?: number, repeat = 1): Promise<StopStatus> {
    this.notRunning(mode === 'step' ? 'step' : 'continue');
    const id = thread === undefined ? undefined : this.tidOf(thread);
    let packet: string;
    if (action === 's' && this.vCont.s) packet = `vCont;s:${id}`;
    else if (action === 'c' && this.vCont.c) packet = id === undefined ? 'vCont;c' : `vCont;c:${id}`;
    else {
      this.okOrThrow(`Hc${id ?? (action === 'c' ? '-1' : '0')}`, 'selecting the thread to run');
      packet = action;
    }
    const lifted = mode === 'step' && thread !== undefined ? this.breakpointAt(thread) : undefined;
    const liftedId = lifted && [...this.points.entries()].find(([, p]) => p === lifted)![0];
    if (lifted) this.ask(`z${lifted.z},${lifted.addr.toString(16)},1`);
    this.forget();
    this.isRunning = true;
    this.interrupted = false;
    let reply: string;
    for (;;) {
      let after: string | undefined;
      try {
        // g goes out with the resume: the registers of the thread that stopped come in the same hand-over.
        ({ reply, then: after, repeated: this.repeated } = await this.conn.run(packet, 'g', repeat));
      } finally {
        this.isRunning = false;
      }
      // Stubs make the thread that stopped the one g reads (QEMU, gdbserver and dbg do; gdb counts on it).
      const stopped = /thread:([^;]+);/.exec(reply)?.[1];
      this.gThread = stopped !== undefined && this.threadIds.includes(stopped) ? stopped : undefined;
      // A step makes no threads; a continue may (or end some).
      if (mode !== 'step' || this.gThread === undefined) this.refreshThreadsIfAlive(reply);
      if (after !== undefined && this.gThread !== undefined) this.registersFromG(this.gThread, after);
      if (action !== 'c' || this.interrupted || !this.isDelayedTrap(reply)) break;
      this.forget();
      this.isRunning = true;
    }
    this.ageRemoved();
    if (lifted && this.points.has(liftedId!)) this.okOrThrow(`Z${lifted.z},${lifted.addr.toString(16)},1`, `re-inserting the breakpoint at ${hexAddr(lifted.addr)}`);
    this.last = this.stopOf(reply, mode, packet);
    if (mode === 'continue') this.refreshLibraries();
    if (this.kernelPending && !this.exited && mode !== 'step') {
      const k = this.kernelPending;
      this.addKernel(k.file, k.elf, k.linkAddr, k.size, this.kernelModule);
    }
    return this.last;
  }

  private refreshThreadsIfAlive(reply: string): void {
    if (reply.startsWith('W') || reply.startsWith('X')) return;
    this.refreshThreads();
  }

  /** A stop reply as a StopStatus; `mode`: what ran ('none' for the stop found at attach). */
  private stopOf(reply: string, mode: 'none' | 'step' | 'continue', packet = '?'): StopStatus {
    const kind = reply[0];
    if (kind === 'W' || kind === 'X') {
      const code = parseInt(reply.slice(1, 3), 16);
      this.exited = true;
      const reason: StopReason = kind === 'W' ? { kind: 'exited', code } : { kind: 'signal', signal: code, name: SIGNALS[code] ?? `signal ${code}` };
      return { reason, thread: 1, pc: 0n };
    }
    if ((kind !== 'T' && kind !== 'S') || !/^[0-9a-fA-F]{2}/.test(reply.slice(1, 3))) {
      throw this.conn.fail(`not a stop reply: "${packetName(reply)}"`, packet, 'corrupt');
    }
    const signal = parseInt(reply.slice(1, 3), 16);
    const fields = new Map<string, string>();
    for (const f of reply.slice(3).split(';')) {
      const c = f.indexOf(':');
      if (c > 0) fields.set(f.slice(0, c), f.slice(c + 1));
    }
    const thread = this.indexOf(fields.get('thread'));
    const pc = this.registers(thread).get(this.arch.pc) ?? 0n;
    const base = { thread, pc };
    const watched = fields.get('watch') ?? fields.get('rwatch') ?? fields.get('awatch');
    if (watched !== undefined) {
      const a = BigInt(`0x${watched || '0'}`);
      const hit = [...this.points.entries()].find(([, p]) => p.kind === 'watchpoint' && a >= p.addr && a < p.addr + BigInt(p.length));
      if (hit) return { ...base, reason: { kind: 'watchpoint', id: hit[0], addr: a, access: hit[1].access!, length: hit[1].length } };
    }
    const replay = fields.get('replaylog');
    if (replay === 'begin') return { ...base, reason: { kind: 'history-begin' } };
    if (replay === 'end') return { ...base, reason: { kind: 'history-end' } };
    if (signal === 5) {
      const bp = [...this.points.entries()].find(([, p]) => p.kind === 'breakpoint' && p.addr === pc);
      if (bp && mode !== 'step') return { ...base, reason: { kind: 'breakpoint', id: bp[0], addr: pc } };
      if (mode === 'step') return { ...base, reason: { kind: 'step' } };
      if (mode === 'none') return { ...base, reason: { kind: 'none' } };
    }
    if (signal === 2 || (this.interrupted && signal === 0)) return { ...base, reason: { kind: 'interrupted' } };
    if (signal === 0 && mode === 'none') return { ...base, reason: { kind: 'none' } };
    return { ...base, reason: { kind: 'signal', signal, name: SIGNALS[signal] ?? `signal ${signal}` } };
  }
}
