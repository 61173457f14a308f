/**
 * A small deterministic machine behind the Target contract, so the protocol layer can be tested
 * (and driven by a real gdb) without the emulator or a dump.
 *
 * Code at 0x401000..0x401100 is all `nop` (0x90) except that every instruction at an address
 * ending in 0 "stores" its low pc byte at DATA + (pc >> 4 & 0xf): a predictable write for
 * watchpoints. Each step advances rip by 1 on the stepping thread. With `reverse`, every step is
 * recorded and can be undone exactly.
 */

import { X86_64 } from '../../src/arch/x86-64.js';
import type { Registers } from '../../src/arch/arch.js';
import { DbgError, errors } from '../../src/common/errors.js';
import { SymbolSpace } from '../../src/symbols/symbol-space.js';
import type {
  Breakpoints,
  Capabilities,
  ExecutionControl,
  Mapping,
  ReverseExecution,
  StopStatus,
  Target,
  ThreadInfo,
  WatchKind,
} from '../../src/targets/target.js';

export const CODE = 0x401000n;
export const CODE_END = 0x401100n;
export const DATA = 0x600000n;
const DATA_SIZE = 0x2000;

interface Undo {
  thread: number;
  rip: bigint;
  addr?: bigint;
  old?: number;
}

export interface FakeOptions {
  execution?: boolean;
  reverse?: boolean;
  threads?: number;
  /** Instructions each resume slice runs before yielding to the event loop. */
  slice?: number;
}

export class FakeTarget implements Target {
  readonly name = 'fake target';
  readonly kind: string;
  readonly arch = X86_64;
  readonly symbols = new SymbolSpace();
  readonly caps: Capabilities;
  readonly data = Buffer.alloc(DATA_SIZE);
  readonly code = Buffer.alloc(Number(CODE_END - CODE), 0x90);
  readonly regs: Registers[] = [];
  private stop: StopStatus;
  private readonly bps = new Map<number, bigint>();
  private readonly wps = new Map<number, { addr: bigint; length: number; kind: WatchKind }>();
  private nextId = 1;
  private interrupted = false;
  private isRunning = false;
  readonly history: Undo[] = [];
  private future = 0; // steps undone that a forward run would replay (replay semantics: history end)
  closed = false;
  /** Number of guest instructions executed in total (forward), for tests. */
  executed = 0;

  constructor(readonly opts: FakeOptions = {}) {
    this.kind = opts.execution ? 'emulator' : 'process-core';
    for (let i = 0; i < (opts.threads ?? 2); i++) {
      const r: Registers = new Map();
      for (const n of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15']) {
        r.set(n, BigInt(i * 0x100 + n.length));
      }
      r.set('rip', CODE + BigInt(i * 0x80));
      r.set('rsp', 0x7ffe0000n - BigInt(i) * 0x1000n);
      r.set('rbp', 0x7ffe0100n - BigInt(i) * 0x1000n);
      r.set('eflags', 0x246n);
      r.set('cs', 0x33n);
      r.set('ss', 0x2bn);
      r.set('fs_base', 0x7f0000001000n);
      this.regs.push(r);
    }
    this.stop = { reason: opts.execution ? { kind: 'none' } : { kind: 'signal', signal: 11, name: 'SIGSEGV' }, thread: 1, pc: CODE };
    const caps: { -readonly [K in keyof Capabilities]: Capabilities[K] } = {};
    if (opts.execution) {
      caps.execution = this.execution();
      caps.breakpoints = this.breakpoints();
      caps.writeMemory = { writeVirtual: (a, d) => this.write(a, d) };
      caps.writeRegisters = {
        writeRegister: (t, n, v) => {
          this.regsOf(t).set(n, v);
        },
      };
    }
    if (opts.reverse) caps.reverse = this.reverseExecution();
    this.caps = caps;
  }

  readVirtual(addr: bigint, length: number): Buffer {
    const inRange = (base: bigint, buf: Buffer): boolean => addr >= base && addr + BigInt(length) <= base + BigInt(buf.length);
    if (inRange(CODE, this.code)) return Buffer.from(this.code.subarray(Number(addr - CODE), Number(addr - CODE) + length));
    if (inRange(DATA, this.data)) return Buffer.from(this.data.subarray(Number(addr - DATA), Number(addr - DATA) + length));
    throw errorsUnmapped(addr, length);
  }

  mappings(): readonly Mapping[] {
    return [
      { start: CODE, end: CODE_END, perms: 'r-x', name: 'code' },
      { start: DATA, end: DATA + BigInt(DATA_SIZE), perms: 'rw-', name: 'data' },
    ];
  }

  threads(): readonly ThreadInfo[] {
    return this.regs.map((_, i) => ({ index: i + 1, tid: 100 + i, name: `cpu${i}`, state: 'stopped' }));
  }

  registers(thread: number): Registers {
    return new Map(this.regsOf(thread));
  }

  status(): StopStatus {
    return this.stop;
  }

  close(): void {
    this.closed = true;
  }

  private regsOf(thread: number): Registers {
    const r = this.regs[thread - 1];
    if (!r) throw errors.badInput(`no thread ${thread}: fake target has threads 1-${this.regs.length}`);
    return r;
  }

  private write(addr: bigint, d: Buffer): void {
    if (addr >= DATA && addr + BigInt(d.length) <= DATA + BigInt(DATA_SIZE)) d.copy(this.data, Number(addr - DATA));
    else if (addr >= CODE && addr + BigInt(d.length) <= CODE_END) d.copy(this.code, Number(addr - CODE));
    else throw errorsUnmapped(addr, d.length);
  }

  /** One instruction of `thread`; returns the stop it causes, if any (watchpoints). */
  private exec(thread: number): StopStatus | undefined {
    const r = this.regsOf(thread);
    const pc = r.get('rip')!;
    const undo: Undo = { thread, rip: pc };
    let hit: StopStatus | undefined;
    if ((pc & 0xfn) === 0n) {
      const addr = DATA + ((pc >> 4n) & 0xfn);
      undo.addr = addr;
      undo.old = this.data[Number(addr - DATA)]!;
      for (const [id, w] of this.wps) {
        if (w.kind !== 'read' && addr >= w.addr && addr < w.addr + BigInt(w.length)) {
          hit = { reason: { kind: 'watchpoint', id, addr: w.addr, access: w.kind, length: w.length }, thread, pc: pc + 1n };
        }
      }
      this.data[Number(addr - DATA)] = Number(pc & 0xffn);
    }
    r.set('rip', pc + 1n >= CODE_END ? CODE : pc + 1n);
    this.history.push(undo);
    if (this.history.length > 1_000_000) this.history.splice(0, 500_000); // bounded, like a ring
    this.executed++;
    return hit;
  }

  private bpAt(thread: number): StopStatus | undefined {
    const pc = this.regsOf(thread).get('rip')!;
    for (const [id, a] of this.bps) if (a === pc) return { reason: { kind: 'breakpoint', id, addr: a }, thread, pc };
    return undefined;
  }

  private execution(): ExecutionControl {
    const self = this;
    return {
      get running() {
        return self.isRunning;
      },
      step: async (thread) => {
        this.regsOf(thread);
        this.exec(thread);
        this.stop = this.bpAt(thread) ?? { reason: { kind: 'step' }, thread, pc: this.regsOf(thread).get('rip')! };
        return this.stop;
      },
      resume: async () => {
        this.isRunning = true;
        this.interrupted = false;
        const thread = this.stop.thread;
        try {
          for (;;) {
            for (let i = 0; i < (this.opts.slice ?? 1000); i++) {
              const w = this.exec(thread);
              const s = w ?? this.bpAt(thread);
              if (s) return (this.stop = s);
            }
            await new Promise((r) => setImmediate(r));
            if (this.interrupted) {
              return (this.stop = { reason: { kind: 'interrupted' }, thread, pc: this.regsOf(thread).get('rip')! });
            }
          }
        } finally {
          this.isRunning = false;
        }
      },
      interrupt: () => {
        this.interrupted = true;
      },
    };
  }

  private breakpoints(): Breakpoints {
    return {
      addBreakpoint: (addr) => {
        const id = this.nextId++;
        this.bps.set(id, addr);
        return id;
      },
      removeBreakpoint: (id) => {
        if (!this.bps.delete(id)) throw errors.badInput(`no breakpoint ${id}`);
      },
      addWatchpoint: (addr, length, kind) => {
        const id = this.nextId++;
        this.wps.set(id, { addr, length, kind });
        return id;
      },
      removeWatchpoint: (id) => {
        if (!this.wps.delete(id)) throw errors.badInput(`no watchpoint ${id}`);
      },
    };
  }

  get pointCount(): number {
    return this.bps.size + this.wps.size;
  }

  private undoOne(): Undo | undefined {
    const u = this.history.pop();
    if (!u) return undefined;
    this.regsOf(u.thread).set('rip', u.rip);
    if (u.addr !== undefined) this.data[Number(u.addr - DATA)] = u.old!;
    this.future++;
    return u;
  }

  private reverseExecution(): ReverseExecution {
    return {
      bounds: () => ({ first: 0n, last: BigInt(this.history.length + this.future), now: BigInt(this.history.length) }),
      stepBack: async (thread) => {
        const u = this.undoOne();
        if (!u) return (this.stop = { reason: { kind: 'history-begin' }, thread, pc: this.regsOf(thread).get('rip')! });
        return (this.stop = { reason: { kind: 'step' }, thread: u.thread, pc: u.rip });
      },
      resumeBack: async () => {
        for (;;) {
          const u = this.undoOne();
          if (!u) {
            const t = this.stop.thread;
            return (this.stop = { reason: { kind: 'history-begin' }, thread: t, pc: this.regsOf(t).get('rip')! });
          }
          for (const [id, w] of this.wps) {
            if (u.addr !== undefined && w.kind !== 'read' && u.addr >= w.addr && u.addr < w.addr + BigInt(w.length)) {
              return (this.stop = { reason: { kind: 'watchpoint', id, addr: w.addr, access: w.kind, length: w.length }, thread: u.thread, pc: u.rip });
            }
          }
          const b = this.bpAt(u.thread);
          if (b) return (this.stop = b);
        }
      },
      seek: async () => {
        throw errors.unsupported(this.name, 'seek');
      },
    };
  }
}

function errorsUnmapped(addr: bigint, length: number): DbgError {
  return new DbgError('unmapped', `access of ${length} bytes at 0x${addr.toString(16)} failed: not mapped in fake target`);
}
