/**
 * One attached gdb: its negotiated features, selected threads and inserted break/watchpoints, and
 * the handling of each typed Request against the target.
 *
 * It knows the target only through target.ts, and the wire only through the Request type and the
 * reply text it returns; framing, acks and the socket belong to the server.
 */

import { describeError, isDbgError, type DbgError } from '../common/errors.js';
import type { Output, SessionView } from '../mdb/dcmd.js';
import { need, type ServedRequests, type StopReplyAhead, type StopReplyPlan, type StopStatus, type Target, type ThreadInfo } from '../targets/target.js';
import type { PointType, Request, ResumeAction, ThreadSel, XferObject } from './request.js';
import { encodeHexPacket, encodePacket } from './packet-codec.js';
import { HostFiles } from './host-files.js';
import { hmpCommand } from './monitor-hmp.js';
import { librariesSvr4, xmlEscape } from './shared-libraries.js';
import { INDEX_IDS, stopNote, stopReply, stopReplyPlan, threadIdText, type StopReplyOptions, type WireIds } from './stop-reply.js';
import { clientArch, decodeRegister, encodeRegister, targetDescription, type TargetDescription } from './target-description.js';

/** What `monitor CMD` runs commands through: the MDB session (or anything with its execute()). */
export type MonitorSession = Pick<SessionView, 'execute'>;

/**
 * The largest packet dbg accepts and gdb may send. gdb sizes its `m` requests from it (256 KiB
 * reads, 512 KiB of hex replies): 16 times fewer round trips than gdbserver's 16 KiB.
 */
export const PACKET_SIZE = 0x80000;

/** What a request produced: a reply packet, or none (k), plus console text to send first. */
export interface Reply {
  readonly packet?: string;
  /** A reply that is these bytes in hex (m): framed straight from the bytes, which is faster. */
  readonly hex?: Buffer;
  /** A reply already framed (a read-ahead hit, a stop reply the target sent). */
  readonly framed?: Buffer;
  /** How many bytes of `framed` went already: the target sent the stop reply itself (StopReplyAhead). */
  readonly written?: number;
  /** Text for gdb's console, sent as O packets before the reply. */
  readonly output?: readonly string[];
  /** The server should close the connection after replying (D, k). */
  readonly close?: 'detach' | 'kill';
  /** An expected failure behind an `E` reply, for the server's log. */
  readonly error?: string;
}

/** A break/watchpoint the client inserted: the target's id, and the Z packet's address and kind/length. */
interface Point {
  readonly type: PointType;
  readonly id: number;
  readonly addr: bigint;
  readonly length: number;
}

/** Errno-style codes gdb prints: E01 bad packet, E0e (EFAULT) unreadable memory, E16 (EINVAL). */
export const E_BAD_PACKET = 'E01';
export const E_FAULT = 'E0e';
export const E_INVAL = 'E16';

export class GdbClient {
  readonly desc: TargetDescription;
  private multiprocess = false;
  /** The client takes fork events (qSupported fork-events+ on a live process). */
  private forkEvents = false;
  /** vfork-events+: vfork and vforkdone stops. */
  private vforkEvents = false;
  /** QThreadEvents:1: thread created and exited stops. */
  private threadEvents = false;
  /** A live process's event catches as they were before this client changed them (restored when it leaves). */
  private catchesBefore?: ReturnType<NonNullable<Target['caps']['processControl']>['catches']>;
  /** The pid and thread numbers on the wire: a live process's own, as gdbserver's (see stop-reply.ts). */
  private readonly ids: WireIds;
  private swbreak = false;
  private hwbreak = false;
  private gThread: number;
  private cThread: number;
  private threadInfoDone = false;
  /** Inserted points by "type,addr,length" -> target id. */
  private readonly points = new Map<string, Point>();
  /** Points z removed, still armed in the target until the guest next runs. */
  private readonly removals = new Map<string, Point>();
  private readonly hardwareIds = new Set<number>();
  private running = false;
  /** The client sent QEnableErrorStrings (lldb): errors as `Exx;HEX` rather than `E.text`. */
  private errorStrings = false;
  /** This client has run the target: `?` reports its last stop as it is, else as a fresh one. */
  private ranHere = false;
  /** The next m reply, read ahead on an immutable target (see scheduleReadAhead). */
  private ahead?: { addr: bigint; length: number; framed: Buffer };
  /** 0x03 bytes that arrived while requests were queued: that many next resumes stop at once. */
  private interruptPending = 0;

  /** The registers a step's stop reply carries (pc, sp, fp): all a target need read for one. */
  private readonly expedited: readonly string[];
  /** The registers any other stop's reply carries (see TargetDescription.expediteEvent). */
  private readonly expeditedEvent: readonly string[];

  /** vFile: the files this client opened, and which it may open. */
  private readonly files: HostFiles;

  /**
   * The server's socket to this client while a reply written there goes out in order (else -1),
   * for a target that sends stop replies itself; and the last plan made for it (armReplyAhead).
   */
  private readonly replyFd?: () => number;
  private plan?: StopReplyPlan;
  /** The client is in no-ack mode and the server holds nothing of it unanswered: the target may answer its next requests (ServedRequests). */
  private readonly quiet?: () => boolean;

  constructor(
    readonly target: Target,
    private readonly monitor: MonitorSession | undefined,
    opts: { allowHostIo?: boolean; replyFd?: () => number; quiet?: () => boolean } = {},
  ) {
    this.files = new HostFiles(target, opts.allowHostIo === true);
    this.replyFd = opts.replyFd;
    this.quiet = opts.quiet;
    const machine = target.kind === 'emulator' || target.kind === 'replay';
    const osabi = target.kind === 'process-core' ? 'GNU/Linux' : target.caps.reverse ? 'none' : undefined;
    this.desc = targetDescription(clientArch(target), osabi, machine ? 'machine' : 'dump');
    this.expedited = this.desc.expedite.map((n) => this.desc.registers[n]!.name);
    this.expeditedEvent = this.desc.expediteEvent.map((n) => this.desc.registers[n]!.name);
    const pc = target.caps.processControl;
    this.ids = pc ? { pid: pc.pid, tid: (index) => pc.tidOf(index) ?? index } : INDEX_IDS;
    this.gThread = this.cThread = this.validThread(target.status().thread);
  }

  get isRunning(): boolean {
    return this.running;
  }

  /**
   * The 0x03 byte: stop a running guest (its resume promise then settles with 'interrupted').
   * `queued`: requests are waiting their turn (gdb never does that in all-stop mode, but a client
   * may), so the next resume among them also stops as soon as it starts: a client can always get
   * control back with 0x03, whatever it sent before.
   */
  interrupt(queued = false): void {
    if (this.running) this.target.caps.execution?.interrupt();
    if (queued) this.interruptPending++;
  }

  /** The queue drained: an interrupt that found nothing to stop is forgotten. */
  settle(): void {
    this.interruptPending = 0;
  }

  /** Forget everything this client inserted (on detach, kill or a vanished connection). */
  cleanup(): void {
    const bp = this.target.caps.breakpoints;
    for (const { type, id } of [...this.points.values(), ...this.removals.values()]) {
      try {
        if (type === 'sw' || type === 'hw') bp?.removeBreakpoint(id);
        else bp?.removeWatchpoint(id);
      } catch {
        // Already gone (the target was reset or closed): nothing left to undo.
      }
    }
    this.points.clear();
    this.removals.clear();
    this.hardwareIds.clear();
    this.files.closeAll();
    // fork, vfork and thread events were this client's: the session's own catches come back.
    if (this.catchesBefore) this.target.caps.processControl?.catchEvents(this.catchesBefore);
    this.catchesBefore = undefined;
  }

  /** Change a live process's catches for this client, remembering the session's first. */
  private catchFor(c: Parameters<NonNullable<Target['caps']['processControl']>['catchEvents']>[0]): void {
    const pc = this.target.caps.processControl!;
    this.catchesBefore ??= pc.catches();
    pc.catchEvents(c);
  }

  /**
   * The reply to `req`: the Reply itself when it is ready at once (every request but a resume and
   * monitor), else a promise of it. The server answers a ready reply without a promise or a trip
   * through the microtask queue: those were a tenth of each packet's cost on the server's thread.
   */
  handle(req: Request): Reply | Promise<Reply> {
    let reply: Reply | Promise<Reply>;
    try {
      reply = this.dispatch(this.fromWire(req));
    } catch (e) {
      return this.failed(req, e);
    }
    return reply instanceof Promise ? reply.catch((e: unknown) => this.failed(req, e)) : reply;
  }

  /** A request that failed: a DbgError is an expected failure, answered; anything else is thrown on. */
  private failed(req: Request, e: unknown): Reply {
    if (!isDbgError(e)) throw e;
    // A resume that fails is still answered with a stop (the target is where it was) and the
    // reason as console text: gdb prints it, and lldb, which drops the session on an error
    // reply to a resume, goes on. (O packets are only allowed while the target "runs".)
    if (req.kind === 'resume' || req.kind === 'reverse') return this.didNotRun(e.message);
    return { packet: this.errorReply(e, req.kind), error: e.message };
  }

  private dispatch(req: Request): Reply | Promise<Reply> {
    const t = this.target;
    const ahead = this.ahead;
    this.ahead = undefined;
    switch (req.kind) {
      case 'query-supported':
        return { packet: this.supported(req.features) };
      case 'start-noack':
        return { packet: 'OK' };
      case 'enable-error-strings':
        this.errorStrings = true;
        return { packet: 'OK' };
      case 'halt-reason':
        return { packet: this.stopText(this.ranHere ? t.status() : freshStop(t.status())) };
      case 'read-registers': {
        const regs = t.registers(this.gThread);
        return { packet: this.desc.registers.map((r) => encodeRegister(r, regs)).join('') };
      }
      case 'write-registers':
        return this.writeRegisters(req.data);
      case 'read-register': {
        const reg = this.desc.registers[req.regno];
        if (!reg) return { packet: E_INVAL };
        return { packet: encodeRegister(reg, t.registers(this.gThread)) };
      }
      case 'write-register': {
        const reg = this.desc.registers[req.regno];
        if (!reg || req.data.length !== reg.bits / 8) return { packet: E_INVAL };
        need(t, 'writeRegisters').writeRegister(this.gThread, reg.name, decodeRegister(req.data));
        return { packet: 'OK' };
      }
      case 'read-memory': {
        if (ahead && ahead.addr === req.addr && ahead.length === req.length) {
          this.scheduleReadAhead(req.addr + BigInt(req.length), req.length);
          return { framed: ahead.framed };
        }
        const data = this.readMemory(req.addr, req.length);
        if (typeof data === 'string') return { packet: data };
        if (data.length === req.length) this.scheduleReadAhead(req.addr + BigInt(req.length), req.length);
        return { hex: data };
      }
      case 'write-memory':
        if (req.data.length > 0) need(t, 'writeMemory').writeVirtual(req.addr, req.data);
        return { packet: 'OK' };
      case 'insert-point':
      case 'remove-point':
        return this.point(req.kind === 'insert-point', req.type, req.addr, req.length);
      case 'resume-query':
        return { packet: t.caps.execution ? 'vCont;c;C;s;S' : '' };
      case 'resume':
        return this.resume(req.actions);
      case 'reverse':
        return this.reverse(req.action);
      case 'set-thread':
        if (req.thread.kind === 'thread') {
          if (!this.hasThread(req.thread.index)) return { packet: E_INVAL };
          if (req.op === 'g') this.gThread = req.thread.index;
          else this.cThread = req.thread.index;
        }
        return { packet: 'OK' };
      case 'thread-alive':
        return { packet: req.thread.kind !== 'thread' || this.hasThread(req.thread.index) ? 'OK' : E_INVAL };
      case 'current-thread':
        return { packet: `QC${threadIdText(this.gThread, this.multiprocess, this.ids)}` };
      case 'thread-info':
        if (req.first) this.threadInfoDone = false;
        if (this.threadInfoDone) return { packet: 'l' };
        this.threadInfoDone = true;
        return { packet: 'm' + t.threads().map((th) => threadIdText(th.index, this.multiprocess, this.ids)).join(',') };
      case 'xfer-read':
        if (req.object === 'threads') return this.threadsReply(req.offset, req.length);
        return { packet: this.xfer(req.object, req.annex, req.offset, req.length) };
      case 'attached':
        return { packet: '1' };
      case 'monitor':
        return this.runMonitor(req.command);
      case 'symbol-lookup':
        return { packet: 'OK' };
      case 'detach':
        // D;PID of a fork child that gdb lets go: the target has detached it already.
        if (req.pid !== undefined && req.pid !== this.ids.pid) return { packet: 'OK' };
        return { packet: 'OK', close: 'detach' };
      case 'kill':
        return { packet: this.multiprocess ? 'OK' : undefined, close: 'kill' };
      case 'offsets':
        return { packet: this.offsets() };
      case 'file':
        return { packet: this.file(req) };
      case 'catch-syscalls':
        return this.catchSyscalls(req.on ? req.nrs : undefined);
      case 'thread-events': {
        const pc = t.caps.processControl;
        if (!pc) return { packet: '' };
        this.threadEvents = req.on;
        this.options = undefined;
        this.catchFor({ threads: req.on });
        return { packet: 'OK' };
      }
      case 'must-reply-empty':
      case 'unknown':
        return { packet: '' };
    }
  }

  /** System calls this client asked to stop at (QCatchSyscalls), so that :0 clears only those. */
  private readonly syscalls = new Set<number>();

  private catchSyscalls(nrs: readonly number[] | 'all' | undefined): Reply {
    const pc = this.target.caps.processControl;
    if (!pc) return { packet: '' };
    for (const nr of this.syscalls) pc.catchSyscall(nr, false, false);
    this.syscalls.clear();
    const list = nrs === 'all' ? [...Array(1024).keys()].filter((n) => pc.syscallName(n) !== undefined) : (nrs ?? []);
    for (const nr of list) {
      if (nr >= 1024) continue;
      pc.catchSyscall(nr, true, true);
      this.syscalls.add(nr);
    }
    return { packet: 'OK' };
  }

  /**
   * qOffsets: where the main executable was loaded relative to its link addresses, so gdb can
   * relocate a position-independent executable (gdb would otherwise need the auxiliary vector).
   * Empty for a fixed-address executable or kernel: nothing to relocate.
   */
  private offsets(): string {
    // With the auxiliary vector gdb relocates the whole executable itself (AT_ENTRY against e_entry),
    // as it does with gdbserver; Text/Data/Bss would move only those three sections.
    if (this.target.caps.process) return '';
    const main = this.target.symbols.modules[0];
    if (!main?.bias) return '';
    const b = BigInt.asUintN(64, main.bias).toString(16);
    return `Text=${b};Data=${b};Bss=${b}`;
  }

  private supported(features: readonly string[]): string {
    const has = (f: string): boolean => features.includes(f);
    this.options = undefined;
    this.multiprocess = has('multiprocess+');
    const caps = this.target.caps;
    this.swbreak = has('swbreak+') && !!caps.breakpoints;
    this.hwbreak = has('hwbreak+') && !!caps.breakpoints;
    const out = [
      `PacketSize=${PACKET_SIZE.toString(16)}`,
      'QStartNoAckMode+',
      'qXfer:features:read+',
      'qXfer:threads:read+',
      'vContSupported+',
    ];
    if (this.target.symbols.find('_r_debug')) out.push('qXfer:libraries-svr4:read+');
    if (caps.process) out.push('qXfer:auxv:read+');
    if (caps.processControl) out.push('QCatchSyscalls+', 'QThreadEvents+');
    // A live process's forks as gdb's fork events: every fork stops and gdb decides (it detaches
    // the child with D;PID, which the target has already done: the child runs on either way).
    if (caps.processControl && this.multiprocess && has('fork-events+')) {
      this.forkEvents = true;
      this.catchFor({ fork: true });
      out.push('fork-events+');
    }
    // vfork too, and the end of the child's hold on the memory: gdb keeps its breakpoints out of
    // the parent in between (the target has taken its own out already).
    if (caps.processControl && this.multiprocess && has('vfork-events+')) {
      this.vforkEvents = true;
      this.catchFor({ vfork: true, vforkDone: true });
      out.push('vfork-events+');
    }
    if (this.files.execFile() !== undefined) out.push('qXfer:exec-file:read+');
    if (this.multiprocess) out.push('multiprocess+');
    if (this.swbreak) out.push('swbreak+');
    if (this.hwbreak) out.push('hwbreak+');
    if (caps.reverse) out.push('ReverseStep+', 'ReverseContinue+');
    return out.join(';');
  }

  private stopText(stop: StopStatus, signal?: number, description?: string): string {
    const thread = this.validThread(stop.thread);
    // A step (or nothing happening) shows a pc; any other stop a frame with its arguments. A live
    // process keeps the three: its tracer writes step and breakpoint replies itself with those
    // (StopReplyPlan), and the replies made here must be the same.
    const event = stop.reason.kind !== 'step' && stop.reason.kind !== 'none' && !this.target.caps.processControl;
    let regs;
    try {
      regs = this.target.registers(thread, event ? this.expeditedEvent : this.expedited);
    } catch {
      regs = undefined; // gdb asks with g; the stop itself is still worth reporting
    }
    return stopReply(stop, regs, this.replyOptions(), { thread, expedite: event ? this.desc.expediteEvent : this.desc.expedite, signal, description });
  }

  /** The options of this client's stop replies, made again only after it negotiated something (see StopReplyOptions). */
  private replyOptions(): StopReplyOptions {
    return (this.options ??= {
      ids: this.ids,
      forkEvents: this.forkEvents,
      vforkEvents: this.vforkEvents,
      threadEvents: this.threadEvents,
      desc: this.desc,
      multiprocess: this.multiprocess,
      swbreak: this.swbreak,
      hwbreak: this.hwbreak,
      hardwareIds: this.hardwareIds,
    });
  }

  private options?: StopReplyOptions;

  /**
   * Arms a target that sends stop replies itself (StopReplyAhead) for the next run, with this
   * client's reply parts: the same plan object while they stay the same, so that the target
   * converts it once. Only for a live process's wire ids, which are the ones the target has.
   */
  private armReplyAhead(): { ahead: StopReplyAhead; served: string[] } | undefined {
    const ahead = this.target.caps.stopReplyAhead;
    const fd = ahead && this.ids !== INDEX_IDS && this.replyFd ? this.replyFd() : -1;
    if (fd < 0) return undefined;
    const plan = stopReplyPlan(fd, this.replyOptions());
    if (!plan) return undefined;
    // (the registers are the client's target description's, the same for all its life)
    const p = this.plan;
    if (!p || p.fd !== plan.fd || p.step !== plan.step || p.breakpoint !== plan.breakpoint) this.plan = plan;
    // The software breakpoints the target may take out and put back for the client (z0/Z0), by key;
    // every removal was carried out before this run (flushRemovals), so all are in.
    const served = this.quiet?.() ? [...this.points].filter(([, pt]) => pt.type === 'sw').map(([key]) => key) : undefined;
    ahead!.arm(this.plan!, served && this.servedRequests(served));
    return { ahead: ahead!, served: served ?? [] };
  }

  /** What the target may answer for this client after a stop it sent (ServedRequests): the points `keys` name, qXfer:threads. */
  private servedRequests(keys: readonly string[]): ServedRequests {
    const pc = this.target.caps.processControl;
    const threads = this.target.threads();
    return {
      points: keys.map((key) => {
        const pt = this.points.get(key)!;
        return { addr: pt.addr, kind: pt.length };
      }),
      threads: pc && { doc: this.threadsDocument(threads, () => '\0'), tids: threads.map((th) => pc.tidOf(th.index) ?? 0) },
    };
  }

  /** The z0/Z0 the target answered (ServedRequests): each of `keys` parked or not as it says. */
  private parkServed(keys: readonly string[], parked: readonly boolean[]): void {
    keys.forEach((key, i) => {
      const from = parked[i] ? this.points : this.removals;
      const point = from.get(key);
      if (!point) return;
      from.delete(key);
      (parked[i] ? this.removals : this.points).set(key, point);
    });
  }

  /**
   * m: gdb accepts a short reply, so a read that runs into unmapped memory returns the bytes up
   * to the first unreadable page; only a read whose first byte is unreadable is an error.
   */
  private readMemory(addr: bigint, length: number): Buffer | string {
    if (length === 0) return '';
    try {
      return this.target.readVirtual(addr, length, this.gThread);
    } catch (e) {
      if (!isDbgError(e) || e.code !== 'unmapped') throw e;
    }
    const page = 4096n;
    let good = 0;
    let next = addr;
    while (good < length) {
      const chunk = Math.min(length - good, Number(((next / page) + 1n) * page - next));
      try {
        this.target.readVirtual(next, chunk, this.gThread);
      } catch {
        break;
      }
      good += chunk;
      next += BigInt(chunk);
    }
    return good === 0 ? E_FAULT : this.target.readVirtual(addr, good, this.gThread);
  }

  /**
   * gdb reads big ranges (dump, x/1000) as a run of m requests, each sent once the previous reply
   * is decoded. On a target whose memory cannot change (a dump: no execution, no writes, no
   * history), the next piece is read and framed while gdb decodes this one, after the reply has
   * gone out (setImmediate). Any other request drops it, so nothing stale is ever served.
   */
  private scheduleReadAhead(addr: bigint, length: number): void {
    const c = this.target.caps;
    if (c.execution || c.writeMemory || c.writeRegisters || c.reverse) return;
    const thread = this.gThread;
    setImmediate(() => {
      if (this.ahead || this.gThread !== thread) return;
      try {
        this.ahead = { addr, length, framed: encodeHexPacket(this.target.readVirtual(addr, length, thread)) };
      } catch {
        // Past the end of what is mapped: the request, if it comes, is answered the usual way.
      }
    });
  }

  private writeRegisters(data: Buffer): Reply {
    if (data.length !== this.desc.gBytes) return { packet: E_INVAL };
    const current = this.target.registers(this.gThread);
    const writer = need(this.target, 'writeRegisters');
    let off = 0;
    for (const reg of this.desc.registers) {
      const bytes = reg.bits / 8;
      const v = decodeRegister(data.subarray(off, off + bytes));
      off += bytes;
      const old = current.get(reg.name);
      if (old !== undefined && BigInt.asUintN(reg.bits, old) !== v) writer.writeRegister(this.gThread, reg.name, v);
    }
    return { packet: 'OK' };
  }

  /**
   * Z/z. gdb removes every point when the guest stops and inserts them all again before it
   * resumes; arming a point can be costly for a target (an emulator flushes its translations), so
   * a removal only takes effect at the next resume, and a point inserted again before that is
   * never touched. The guest does not run in between, so no one can tell the difference.
   */
  private point(insert: boolean, type: PointType, addr: bigint, length: number): Reply {
    const bp = this.target.caps.breakpoints;
    // A target that never runs (a dump) cannot hit a point: accepting it lets gdb go on to
    // `continue`, whose answer says why nothing runs (an empty reply here made gdb fall back to
    // writing int3 into memory: "Cannot access memory", or "too many hardware breakpoints").
    if (!bp) return { packet: this.target.caps.execution ? '' : 'OK' };
    const key = `${type},${addr},${length}`;
    if (insert) {
      if (this.points.has(key)) return { packet: 'OK' };
      const parked = this.removals.get(key);
      if (parked) {
        this.removals.delete(key);
        this.points.set(key, parked);
        return { packet: 'OK' };
      }
      const id =
        type === 'sw' || type === 'hw' ? bp.addBreakpoint(addr) : bp.addWatchpoint(addr, Math.max(1, length), type);
      this.points.set(key, { type, id, addr, length });
      if (type === 'hw') this.hardwareIds.add(id);
    } else {
      const have = this.points.get(key);
      if (have) {
        this.points.delete(key);
        this.removals.set(key, have);
      }
    }
    return { packet: 'OK' };
  }

  /** Carry out the removals z asked for (before the guest runs, and when the client leaves). */
  private flushRemovals(): void {
    const bp = this.target.caps.breakpoints;
    for (const { type, id } of this.removals.values()) {
      if (type === 'sw' || type === 'hw') bp?.removeBreakpoint(id);
      else bp?.removeWatchpoint(id);
      this.hardwareIds.delete(id);
    }
    this.removals.clear();
  }

  /** The stop reply, itself when the target stopped at once (a live guest's step: see ExecutionControl.step). */
  private resume(actions: readonly ResumeAction[]): Reply | Promise<Reply> {
    const exec = this.target.caps.execution;
    if (!exec) return this.didNotRun(`${this.target.name} cannot run: execution control is not supported by this target`);
    // All-stop, as KMDB steps: a step action moves that thread alone (a `c` for the others waits
    // until the step is over). Continue actions for named threads only (vCont;c:T, what gdb sends
    // under `set scheduler-locking on|step`) run those alone; one for all threads runs the machine.
    const step = actions.find((a) => a.action === 'step');
    const alone = actions.length === 1 && actions[0]!.thread.kind === 'thread' ? actions[0]!.thread.index : undefined;
    let armed: ReturnType<GdbClient['armReplyAhead']>;
    // Requests the target answered meanwhile (the stop is the last resume's among them), whether
    // the run ended in a stop or failed.
    const park = (): void => {
      const served = armed?.ahead.served();
      if (served) this.parkServed(armed!.served, served.parked);
    };
    let ran: StopStatus | Promise<StopStatus>;
    try {
      ran = this.run(() => {
        // armed right before the run that takes it, so that no plan is left for a later one
        armed = this.armReplyAhead();
        return step ? exec.step(this.pick(step.thread)) : exec.resume(alone);
      });
    } catch (e) {
      park();
      throw e;
    }
    if (ran instanceof Promise) {
      return ran.then(
        (stop) => {
          park();
          return this.resumed(stop, armed);
        },
        (e: unknown) => {
          park();
          throw e;
        },
      );
    }
    park();
    return this.resumed(ran, armed);
  }

  /** The reply to a resume that ended at `stop`. */
  private resumed(stop: StopStatus, armed: ReturnType<GdbClient['armReplyAhead']>): Reply {
    // Sent by the target as stopText would write it (stopReplyPlan; test/e2e/process.test.ts
    // compares the two): rendering it again would only hold up gdb's next request.
    const sent = armed?.ahead.sent();
    if (sent) return { framed: Buffer.from(sent.bytes), written: sent.written };
    const note = stopNote(stop);
    return { packet: this.stopText(stop), output: note ? [note] : undefined };
  }

  /** bs and bc's stop reply, itself when the target stepped back at once (a replay). */
  private reverse(action: 'step' | 'continue'): Reply | Promise<Reply> {
    const rev = need(this.target, 'reverse');
    const ran = this.run(() => (action === 'step' ? rev.stepBack(this.cThread) : rev.resumeBack()));
    if (ran instanceof Promise) return ran.then((stop) => ({ packet: this.stopText(stop) }));
    return { packet: this.stopText(ran) };
  }

  /** `go`'s stop, itself when `go` gave it at once. */
  private run(go: () => StopStatus | Promise<StopStatus>): StopStatus | Promise<StopStatus> {
    this.flushRemovals();
    this.running = true;
    this.ranHere = true;
    let ran: StopStatus | Promise<StopStatus>;
    try {
      ran = go();
      if (this.interruptPending > 0) {
        this.interruptPending--;
        this.target.caps.execution?.interrupt();
      }
    } catch (e) {
      this.running = false;
      throw e;
    }
    if (ran instanceof Promise) {
      return ran.then(
        (stop) => this.ranTo(stop),
        (e: unknown) => {
          this.running = false;
          throw e;
        },
      );
    }
    return this.ranTo(ran);
  }

  private ranTo(stop: StopStatus): StopStatus {
    this.running = false;
    this.gThread = this.cThread = this.validThread(stop.thread);
    return stop;
  }

  /** A resume that could not run: the stop where the target is (signal 0), and why, for the console. */
  private didNotRun(why: string): Reply {
    const stop = this.target.status();
    return {
      // lldb (the client that asked for error strings) needs a reason to stay stopped
      packet: this.stopText({ ...stop, reason: { kind: 'none' } }, 0, this.errorStrings ? `dbg: ${why}` : undefined),
      output: [`dbg: ${why}\n`],
      error: why,
    };
  }

  /**
   * The error reply for a failed request. gdb 13 prints the text of `E.text` for register writes
   * ("Could not write register ...; remote failure reply 'E.text'") and takes it as an error
   * elsewhere, except in m replies, which it would decode as hex: reads keep errno-style codes.
   * lldb asks for `Exx;HEX` with QEnableErrorStrings.
   */
  private errorReply(e: DbgError, kind: Request['kind']): string {
    const code = errorFor(e);
    let text = e.message;
    // gdb's own `record full` rewinds by writing registers; dbg's targets with history go back themselves.
    if (this.target.caps.reverse && (kind === 'write-register' || kind === 'write-registers')) {
      text += "; gdb's `record full` is not needed here, the target runs backwards itself (reverse-stepi, reverse-continue): `record stop` leaves it";
    }
    if (this.errorStrings) return `${code};${Buffer.from(text, 'utf8').toString('hex')}`;
    return TEXT_ERRORS.has(kind) ? `E.${text}` : code;
  }

  /**
   * The request with a live process's LWP ids turned into the target's thread indexes (an id the
   * target never had becomes index 0, which no thread has: the request then fails as for any
   * unknown thread).
   */
  private fromWire(req: Request): Request {
    if (this.ids === INDEX_IDS) return req;
    const pc = this.target.caps.processControl!;
    const sel = (s: ThreadSel): ThreadSel => (s.kind === 'thread' ? { kind: 'thread', index: pc.indexOf(s.index) ?? 0 } : s);
    switch (req.kind) {
      case 'set-thread':
      case 'thread-alive':
        return { ...req, thread: sel(req.thread) };
      case 'resume':
        return { ...req, actions: req.actions.map((a) => ({ ...a, thread: sel(a.thread) })) };
      default:
        return req;
    }
  }

  private pick(sel: ThreadSel): number {
    return sel.kind === 'thread' ? sel.index : this.cThread;
  }

  private hasThread(index: number): boolean {
    return this.target.threads().some((th) => th.index === index);
  }

  private validThread(index: number): number {
    return this.hasThread(index) ? index : (this.target.threads()[0]?.index ?? 1);
  }

  private xfer(object: XferObject, annex: string, offset: number, length: number): string {
    let doc: string;
    if (object === 'auxv') {
      const auxv = this.target.caps.process?.auxv();
      if (!auxv) return E_BAD_PACKET;
      doc = auxv.toString('latin1'); // binary: the framing escapes it
    } else if (object === 'exec-file') {
      const path = this.files.execFile();
      if (path === undefined) return E_BAD_PACKET;
      doc = Buffer.from(path, 'utf8').toString('latin1');
    } else if (object === 'libraries-svr4') {
      const libs = librariesSvr4(this.target);
      if (libs === undefined) return E_FAULT;
      doc = libs;
    } else if (object === 'features') {
      if (annex !== 'target.xml') return E_BAD_PACKET;
      doc = this.desc.xml;
    } else {
      doc = this.threadsXml();
    }
    return xferPart(doc, offset, length);
  }

  /**
   * qXfer:threads:read, which gdb sends after every stop: the framed reply is kept while the
   * document and the part asked for stay the same (a stepi's threads seldom change).
   */
  private threadsReply(offset: number, length: number): Reply {
    const doc = this.threadsXml();
    const last = this.threadsFramed;
    if (last && last.doc === doc && last.offset === offset && last.length === length) return { framed: last.framed };
    const framed = encodePacket(xferPart(doc, offset, length));
    this.threadsFramed = { doc, offset, length, framed };
    return { framed };
  }

  private threadsFramed?: { doc: string; offset: number; length: number; framed: Buffer };

  /**
   * qXfer:threads:read's document. gdb reads it after every stop; a target that returns the same
   * list object again (a replay: its vCPUs never change) gets the document made for it last time.
   */
  private threadsXml(): string {
    const list = this.target.threads();
    const last = this.threadsDoc;
    if (last?.list === list && last.multiprocess === this.multiprocess) return last.doc;
    const doc = this.threadsDocument(list, (th) => xmlEscape(th.name));
    this.threadsDoc = { list, multiprocess: this.multiprocess, doc };
    return doc;
  }

  /** The document of `list`, each thread's name as `name` gives it (the target's, escaped; or a NUL for a target that puts them in itself). */
  private threadsDocument(list: readonly ThreadInfo[], name: (th: ThreadInfo) => string): string {
    // Threads of a machine are its CPUs (thread N is CPU N-1); a process core does not record
    // which core each thread last ran on, so it says nothing rather than a wrong "0".
    const cpus = this.target.kind !== 'process-core';
    const items = list.map((th) => `<thread id="${threadIdText(th.index, this.multiprocess, this.ids)}"${cpus ? ` core="${th.index - 1}"` : ''} name="${name(th)}"></thread>`);
    return `<?xml version="1.0"?><threads>${items.join('')}</threads>`;
  }

  private threadsDoc?: { list: readonly ThreadInfo[]; multiprocess: boolean; doc: string };

  private file(req: Extract<Request, { kind: 'file' }>): string {
    switch (req.op) {
      case 'setfs':
        return 'F0'; // one filesystem: the host's, seen through the allowlist
      case 'open':
        return this.files.openFile(req.path, req.flags);
      case 'pread':
        return this.files.pread(req.fd, req.count, req.offset);
      case 'fstat':
        return this.files.fstat(req.fd);
      case 'close':
        return this.files.close(req.fd);
    }
  }

  private async runMonitor(command: string): Promise<Reply> {
    // QEMU monitor habits first (help, info registers, x, xp, gva2gpa); anything else is MDB.
    try {
      const hmp = hmpCommand(this.target, this.gThread, command);
      if (hmp) return { packet: 'OK', output: hmp.map((l) => l + '\n') };
    } catch (e) {
      if (!isDbgError(e)) throw e;
      return { packet: 'OK', output: [`dbg: ${e.message}\n`] };
    }
    if (!this.monitor) {
      return { packet: 'OK', output: ['dbg: no command session is attached to this GDB server; monitor is unavailable\n'] };
    }
    const lines: string[] = [];
    const out: Output = {
      jsonMode: false,
      line: (text) => lines.push(text + '\n'),
      json: (value) => lines.push(JSON.stringify(value) + '\n'),
    };
    try {
      await this.monitor.execute(command, out);
    } catch (e) {
      lines.push(`dbg: ${describeError(e)}\n`);
    }
    return { packet: 'OK', output: lines };
  }
}

/**
 * The stop a new client is told about: where the target is, without the reasons that belong to
 * the previous client's session (its breakpoint or watchpoint ids, a history end it ran into),
 * which would name points this client never set. What the target itself is (a core's signal, a
 * halt, a fault, a panic, an interrupt) is kept.
 */
function freshStop(stop: StopStatus): StopStatus {
  switch (stop.reason.kind) {
    case 'breakpoint':
    case 'watchpoint':
    case 'history-begin':
    case 'history-end':
      return { ...stop, reason: { kind: 'step' } };
    default:
      return stop;
  }
}

/** The reply to a qXfer read of `length` bytes at `offset` of `doc`: `m` and a part, or `l` and the last part. */
function xferPart(doc: string, offset: number, length: number): string {
  return (offset + length >= doc.length ? 'l' : 'm') + doc.slice(offset, offset + length);
}

/** Requests whose error reply gdb 13 shows or at least takes as an error when it is `E.text`. */
const TEXT_ERRORS = new Set<Request['kind']>(['write-registers', 'write-register', 'write-memory', 'insert-point', 'remove-point', 'set-thread']);

function errorFor(e: DbgError): string {
  switch (e.code) {
    case 'unmapped':
      return E_FAULT;
    case 'bad-input':
      return E_INVAL;
    default:
      return E_BAD_PACKET;
  }
}


