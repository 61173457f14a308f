/**
 * The Unicorn engine (libunicorn.so.2) through koffi: the only code in dbg that loads it.
 *
 * Constants are copied from Debian's /usr/include/unicorn/{unicorn,x86}.h (Unicorn 2.0.1) and
 * checked against the headers by test/targets/emulator-unicorn.test.ts, which compiles a C program
 * printing them. Hooks that must be fast (instruction counting, breakpoints, watchpoints) live in
 * the native addon native/emu (see emu-hooks.ts); only rare events (port I/O) call back into JS.
 */

import { createRequire } from 'node:module';
import type * as KoffiNs from 'koffi';
import { DbgError } from '../../common/errors.js';

const require = createRequire(import.meta.url);

export const UC = {
  ARCH_X86: 4,
  MODE_32: 4,
  MODE_64: 8,
  PROT_ALL: 7,
  HOOK_INTR: 1,
  HOOK_INSN: 2,
  HOOK_CODE: 4,
  HOOK_MEM_READ: 1024,
  HOOK_MEM_WRITE: 2048,
  ERR_OK: 0,
  ERR_READ_UNMAPPED: 6,
  ERR_WRITE_UNMAPPED: 7,
  ERR_FETCH_UNMAPPED: 8,
  ERR_INSN_INVALID: 10,
  ERR_EXCEPTION: 21,
  MEM_READ: 16,
  MEM_WRITE: 17,
  MEM_FETCH: 18,
  MEM_READ_UNMAPPED: 19,
  MEM_WRITE_UNMAPPED: 20,
  MEM_FETCH_UNMAPPED: 21,
  MEM_WRITE_PROT: 22,
  MEM_READ_PROT: 23,
  MEM_FETCH_PROT: 24,
  X86_INS_IN: 218,
  X86_INS_OUT: 500,
  /** UC_CTL_WRITE(UC_CTL_CPU_MODEL, 1) */
  CTL_WRITE_CPU_MODEL: 0x44000007,
  /** UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0) */
  CTL_WRITE_TB_FLUSH: 0x4000000a,
  CPU_X86_QEMU64: 0,
  CPU_X86_SKYLAKE_SERVER: 22,
} as const;

/** uc_x86_reg ids (x86.h). */
export const X86_REG = {
  RAX: 35, RBX: 37, RCX: 38, RDX: 40, RSI: 43, RDI: 39, RBP: 36, RSP: 44,
  R8: 106, R9: 107, R10: 108, R11: 109, R12: 110, R13: 111, R14: 112, R15: 113,
  RIP: 41, EFLAGS: 25, RFLAGS: 253,
  CS: 11, SS: 49, DS: 17, ES: 28, FS: 32, GS: 33,
  FS_BASE: 250, GS_BASE: 251,
  CR0: 50, CR2: 52, CR3: 53, CR4: 54, CR8: 58,
  DR6: 72, DR7: 73,
  IDTR: 242, GDTR: 243, LDTR: 244, TR: 245,
  MSR: 248,
} as const;

/** struct uc_x86_mmr { u16 selector; u64 base; u32 limit; u32 flags; }: 24 bytes. */
export interface X86Mmr {
  selector: number;
  base: bigint;
  limit: number;
  flags: number;
}

type Fn = KoffiNs.KoffiFunction;

interface Lib {
  koffi: typeof KoffiNs;
  uc_version: Fn;
  uc_open: Fn;
  uc_close: Fn;
  uc_strerror: Fn;
  uc_mem_map_ptr: Fn;
  uc_mem_read: Fn;
  uc_mem_write: Fn;
  uc_reg_read: Fn;
  uc_reg_write: Fn;
  uc_emu_start: Fn;
  uc_emu_stop: Fn;
  uc_hook_add: Fn;
  uc_hook_del: Fn;
  uc_ctl: Fn;
  uc_context_alloc: Fn;
  uc_context_save: Fn;
  uc_context_restore: Fn;
  uc_context_size: Fn;
  uc_context_free: Fn;
  insnInProto: KoffiNs.IKoffiCType;
  insnOutProto: KoffiNs.IKoffiCType;
  uc_mmio_map: Fn;
  mmioReadProto: KoffiNs.IKoffiCType;
  mmioWriteProto: KoffiNs.IKoffiCType;
  /** libc's prctl, where libc loads (see withoutHugePages). */
  prctl?: Fn;
}

let lib: Lib | undefined;

function load(): Lib {
  if (lib) return lib;
  const koffi = require('koffi') as typeof KoffiNs;
  let so: KoffiNs.IKoffiLib;
  try {
    so = koffi.load('libunicorn.so.2');
  } catch (e) {
    throw new DbgError('unsupported', `the Unicorn engine (libunicorn.so.2) cannot be loaded: ${(e as Error).message}; install libunicorn2`);
  }
  koffi.opaque('uc_engine');
  koffi.opaque('uc_context');
  lib = {
    koffi,
    uc_version: so.func('unsigned int uc_version(_Out_ unsigned int *major, _Out_ unsigned int *minor)'),
    uc_open: so.func('int uc_open(int arch, int mode, _Out_ uc_engine **uc)'),
    uc_close: so.func('int uc_close(uc_engine *uc)'),
    uc_strerror: so.func('const char *uc_strerror(int code)'),
    uc_mem_map_ptr: so.func('int uc_mem_map_ptr(uc_engine *uc, uint64_t address, size_t size, uint32_t perms, void *ptr)'),
    uc_mem_read: so.func('int uc_mem_read(uc_engine *uc, uint64_t address, _Out_ uint8_t *bytes, size_t size)'),
    uc_mem_write: so.func('int uc_mem_write(uc_engine *uc, uint64_t address, const uint8_t *bytes, size_t size)'),
    uc_reg_read: so.func('int uc_reg_read(uc_engine *uc, int regid, _Out_ void *value)'),
    uc_reg_write: so.func('int uc_reg_write(uc_engine *uc, int regid, const void *value)'),
    uc_emu_start: so.func('int uc_emu_start(uc_engine *uc, uint64_t begin, uint64_t until, uint64_t timeout, size_t count)'),
    uc_emu_stop: so.func('int uc_emu_stop(uc_engine *uc)'),
    uc_hook_add: so.func('int uc_hook_add(uc_engine *uc, _Out_ size_t *hh, int type, void *callback, void *user_data, uint64_t begin, uint64_t end, ...)'),
    uc_hook_del: so.func('int uc_hook_del(uc_engine *uc, size_t hh)'),
    uc_ctl: so.func('int uc_ctl(uc_engine *uc, int control, ...)'),
    uc_context_alloc: so.func('int uc_context_alloc(uc_engine *uc, _Out_ uc_context **context)'),
    uc_context_save: so.func('int uc_context_save(uc_engine *uc, uc_context *context)'),
    uc_context_restore: so.func('int uc_context_restore(uc_engine *uc, uc_context *context)'),
    uc_context_size: so.func('size_t uc_context_size(uc_engine *uc)'),
    uc_context_free: so.func('int uc_context_free(uc_context *context)'),
    insnInProto: koffi.proto('uint32_t uc_cb_insn_in_t(uc_engine *uc, uint32_t port, int size, void *user_data)'),
    insnOutProto: koffi.proto('void uc_cb_insn_out_t(uc_engine *uc, uint32_t port, int size, uint32_t value, void *user_data)'),
    uc_mmio_map: so.func('int uc_mmio_map(uc_engine *uc, uint64_t address, size_t size, void *read_cb, void *user_data_read, void *write_cb, void *user_data_write)'),
    mmioReadProto: koffi.proto('uint64_t uc_cb_mmio_read_t(uc_engine *uc, uint64_t offset, unsigned int size, void *user_data)'),
    mmioWriteProto: koffi.proto('void uc_cb_mmio_write_t(uc_engine *uc, uint64_t offset, unsigned int size, uint64_t value, void *user_data)'),
  };
  try {
    lib.prctl = koffi.load('libc.so.6').func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)');
  } catch {
    // (no prctl: engines are made as they are)
  }
  return lib;
}

const PR_SET_THP_DISABLE = 41;
const PR_GET_THP_DISABLE = 42;

/**
 * `make()` with transparent huge pages off for this process (prctl PR_SET_THP_DISABLE, which the
 * kernel checks as pages are faulted in), then as they were. Where they are off already, or
 * prctl fails, just `make()`.
 */
function withoutHugePages<T>(l: Lib, make: () => T): T {
  if (!l.prctl || l.prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) !== 0 || l.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) !== 0) return make();
  try {
    return make();
  } finally {
    l.prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0);
  }
}

/** "major.minor.patch" of the loaded library (uc_version's result packs major, minor, patch, extra a byte each). */
export function unicornVersion(): string {
  const l = load();
  const maj = [0];
  const min = [0];
  const packed = Number(l.uc_version(maj, min));
  return `${maj[0]}.${min[0]}.${(packed >>> 8) & 0xff}`;
}

export function ucErrorText(code: number): string {
  return String(load().uc_strerror(code));
}

/** Port I/O handlers; run inside uc_emu_start (keep them short, never throw). */
/** A device's MMIO page(s): offsets are from the region's start. */
export interface MmioHandlers {
  read(offset: number, size: number): number;
  write(offset: number, size: number, value: number): void;
}

export interface PortHandlers {
  in(port: number, size: number): number;
  out(port: number, size: number, value: number): void;
}

/**
 * One Unicorn x86 engine. Every method throws DbgError('state') naming the Unicorn error, except
 * `start`, which returns the raw uc_err (a guest fault is not a dbg error).
 */
export class UnicornEngine {
  private readonly l: Lib;
  private readonly handle: unknown;
  /**
   * [0] is 1 once close() ran. An element, not a field: setting the handle to undefined at close
   * changed the type of a field every engine has, and a `closed` field written a second time made
   * V8 drop its assumption that the field is constant; either threw away all code optimised on
   * engines, every engine's (the GDB server's rehearsal closes a scratch machine just before the
   * user's client comes). A typed array's elements are not part of any object's shape.
   */
  private readonly shut = new Uint8Array(1);
  private readonly callbacks: KoffiNs.IKoffiRegisteredCallback[] = [];
  private readonly u64 = new BigUint64Array(1);
  private readonly mmr = Buffer.alloc(24);
  private readonly msr = Buffer.alloc(16);
  /** Room for the widest register (ZMM: 64 bytes). */
  private readonly wide = Buffer.alloc(64);
  private ctxHandle: unknown;
  readonly contextSize: number;

  /**
   * `hugeCode`: whether QEMU's code buffer may begin on a transparent huge page (default true).
   * QEMU asks for them there (MADV_HUGEPAGE), and the engine's set-up writes its first bytes:
   * making an engine then faults in and zeroes 2 MiB, ~0.3 ms of the ~0.7 ms it takes. An engine
   * that runs long (the live machine's) may gain from the huge page; one made for a query (a
   * replay's) does not: false makes it with huge pages off for the while, its buffer's first 2 MiB
   * then on small pages (the buffer's further pages are what the kernel gives as they are reached).
   */
  constructor(mode: 'x86-64', cpuModel: number = UC.CPU_X86_QEMU64, opts: { hugeCode?: boolean } = {}) {
    const l = load();
    this.l = l;
    const out = [null];
    const m = mode === 'x86-64' ? UC.MODE_64 : UC.MODE_32;
    // (uc_context_size sets the engine up: its code buffer is made there)
    const open = (): { handle: unknown; contextSize: number } => {
      this.check(l.uc_open(UC.ARCH_X86, m, out), 'uc_open');
      this.check(l.uc_ctl(out[0], UC.CTL_WRITE_CPU_MODEL, 'int', cpuModel), 'setting the CPU model');
      return { handle: out[0], contextSize: Number(l.uc_context_size(out[0])) };
    };
    const opened = opts.hugeCode === false ? withoutHugePages(l, open) : open();
    // (each field assigned once, here: see `shut`)
    this.handle = opened.handle;
    this.contextSize = opened.contextSize;
    const ctx = [null];
    this.check(l.uc_context_alloc(this.handle, ctx), 'uc_context_alloc');
    this.ctxHandle = ctx[0];
  }

  /** The uc_engine* as an integer, for the native addons. */
  get address(): bigint {
    return BigInt(this.l.koffi.address(this.handle) as bigint | number);
  }

  private check(err: unknown, what: string): void {
    if (err !== 0) throw new DbgError('state', `Unicorn ${what} failed: ${ucErrorText(Number(err))} (uc_err ${err})`);
  }

  private get h(): unknown {
    if (this.shut[0]) throw new DbgError('state', 'the emulator engine is closed');
    return this.handle;
  }

  /** Map `host` (kept alive by the caller) at guest-physical `addr`. */
  mapHost(addr: bigint, host: Buffer): void {
    this.check(this.l.uc_mem_map_ptr(this.h, addr, host.length, UC.PROT_ALL, host), `mapping ${host.length} bytes at 0x${addr.toString(16)}`);
  }

  readReg(id: number): bigint {
    this.u64[0] = 0n; // registers this build does not know (CR8) are left unwritten: read as 0
    this.check(this.l.uc_reg_read(this.h, id, this.u64), 'uc_reg_read');
    return this.u64[0]!;
  }

  writeReg(id: number, value: bigint): void {
    this.u64[0] = BigInt.asUintN(64, value);
    this.check(this.l.uc_reg_write(this.h, id, this.u64), `writing register ${id}`);
  }

  /** A register wider than 64 bits (x87 80-bit, XMM 128, YMM 256) as its little-endian bytes. */
  readRegBytes(id: number, bytes: number): Buffer {
    this.wide.fill(0);
    this.check(this.l.uc_reg_read(this.h, id, this.wide), `reading register ${id}`);
    return Buffer.from(this.wide.subarray(0, bytes));
  }

  writeRegBytes(id: number, data: Buffer): void {
    const b = Buffer.alloc(Math.max(data.length, 64));
    data.copy(b);
    this.check(this.l.uc_reg_write(this.h, id, b), `writing register ${id}`);
  }

  readMmr(id: number): X86Mmr {
    this.mmr.fill(0);
    this.check(this.l.uc_reg_read(this.h, id, this.mmr), 'uc_reg_read');
    return { selector: this.mmr.readUInt16LE(0), base: this.mmr.readBigUInt64LE(8), limit: this.mmr.readUInt32LE(16), flags: this.mmr.readUInt32LE(20) };
  }

  writeMmr(id: number, v: X86Mmr): void {
    this.mmr.fill(0);
    this.mmr.writeUInt16LE(v.selector, 0);
    this.mmr.writeBigUInt64LE(v.base, 8);
    this.mmr.writeUInt32LE(v.limit >>> 0, 16);
    this.mmr.writeUInt32LE(v.flags >>> 0, 20);
    this.check(this.l.uc_reg_write(this.h, id, this.mmr), `writing register ${id}`);
  }

  readMsr(msr: number): bigint {
    this.msr.fill(0);
    this.msr.writeUInt32LE(msr, 0);
    this.check(this.l.uc_reg_read(this.h, X86_REG.MSR, this.msr), `reading MSR 0x${msr.toString(16)}`);
    return this.msr.readBigUInt64LE(8);
  }

  writeMsr(msr: number, value: bigint): void {
    this.msr.writeUInt32LE(msr, 0);
    this.msr.writeBigUInt64LE(BigInt.asUintN(64, value), 8);
    this.check(this.l.uc_reg_write(this.h, X86_REG.MSR, this.msr), `writing MSR 0x${msr.toString(16)}`);
  }

  /** Physical memory as the engine sees it (RAM reads normally go to the shared buffer instead). */
  memRead(addr: bigint, length: number): Buffer {
    const b = Buffer.alloc(length);
    this.check(this.l.uc_mem_read(this.h, addr, b, length), `reading ${length} bytes at 0x${addr.toString(16)}`);
    return b;
  }

  memWrite(addr: bigint, data: Buffer): void {
    this.check(this.l.uc_mem_write(this.h, addr, data, data.length), `writing ${data.length} bytes at 0x${addr.toString(16)}`);
  }

  /** Run from `begin` until `until`; returns the uc_err (0 = stopped normally). */
  start(begin: bigint, until: bigint): number {
    return Number(this.l.uc_emu_start(this.h, begin, until, 0, 0));
  }

  stop(): void {
    if (!this.shut[0]) this.l.uc_emu_stop(this.handle);
  }

  /** IN/OUT instruction hooks calling back into JS. */
  hookPorts(handlers: PortHandlers): void {
    const k = this.l.koffi;
    const cbIn = k.register((_uc: unknown, port: number, size: number) => handlers.in(port, size) >>> 0, k.pointer(this.l.insnInProto));
    const cbOut = k.register((_uc: unknown, port: number, size: number, value: number) => handlers.out(port, size, value), k.pointer(this.l.insnOutProto));
    this.callbacks.push(cbIn, cbOut);
    const hh = [0];
    this.check(this.l.uc_hook_add(this.h, hh, UC.HOOK_INSN, cbIn, null, 1n, 0n, 'int', UC.X86_INS_IN), 'adding the IN hook');
    this.check(this.l.uc_hook_add(this.h, hh, UC.HOOK_INSN, cbOut, null, 1n, 0n, 'int', UC.X86_INS_OUT), 'adding the OUT hook');
  }

  /** Map a device's registers at guest-physical [addr, addr + size): accesses call back into JS. */
  mapMmio(addr: bigint, size: number, handlers: MmioHandlers): void {
    const k = this.l.koffi;
    const cbRead = k.register((_uc: unknown, off: number | bigint, n: number) => handlers.read(Number(off), n) >>> 0, k.pointer(this.l.mmioReadProto));
    const cbWrite = k.register((_uc: unknown, off: number | bigint, n: number, value: number | bigint) => handlers.write(Number(off), n, Number(BigInt.asUintN(32, BigInt(value)))), k.pointer(this.l.mmioWriteProto));
    this.callbacks.push(cbRead, cbWrite);
    this.check(this.l.uc_mmio_map(this.h, addr, size, cbRead, null, cbWrite, null), `mapping device registers at 0x${addr.toString(16)}`);
  }

  /** The whole CPU state (registers, control, segments, MSRs, FPU) as bytes. */
  saveContext(): Buffer {
    this.check(this.l.uc_context_save(this.h, this.ctxHandle), 'uc_context_save');
    // uc_context_size() covers the whole allocation: a small header (size, mode, arch) and the
    // CPU state; copying all of it keeps this independent of the header's layout.
    const view = this.l.koffi.view(this.ctxHandle as never, this.contextSize) as ArrayBuffer;
    return Buffer.from(new Uint8Array(view));
  }

  restoreContext(data: Buffer): void {
    const view = this.l.koffi.view(this.ctxHandle as never, data.length) as ArrayBuffer;
    Buffer.from(view).set(data);
    this.check(this.l.uc_context_restore(this.h, this.ctxHandle), 'uc_context_restore');
  }

  close(): void {
    if (this.shut[0]) return;
    this.shut[0] = 1;
    this.l.uc_context_free(this.ctxHandle);
    this.l.uc_close(this.handle);
    for (const cb of this.callbacks) this.l.koffi.unregister(cb);
    this.callbacks.length = 0;
  }
}
