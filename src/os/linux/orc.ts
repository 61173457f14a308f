/**
 * The x86-64 kernel's ORC unwind tables (CONFIG_UNWINDER_ORC), as arch/x86/kernel/unwind_orc.c
 * reads them: how to find each frame's caller in a kernel built without frame pointers, across
 * interrupt, exception and syscall entry (whose pt_regs ORC describes).
 *
 *   .orc_unwind_ip   s32 per entry: the entry's ip relative to the s32's own address, sorted
 *   .orc_unwind      6 bytes per entry: s16 sp_offset, s16 bp_offset, then bit fields
 *                    sp_reg:4 bp_reg:4 and, before Linux 6.4, type:2 end:1 (CALL 0, REGS 1,
 *                    REGS_PARTIAL 2), from 6.4 type:3 signal:1 (UNDEFINED 0, END_OF_STACK 1,
 *                    CALL 2, REGS 3, REGS_PARTIAL 4)
 *
 * The tables come from vmlinux's sections or, with kallsyms only, from the kernel image in the
 * dump (__start_orc_unwind_ip, __stop_orc_unwind_ip, __start_orc_unwind); each loaded module's
 * from its struct module (arch.orc_unwind_ip, arch.orc_unwind, arch.num_orcs; needs vmlinux's types).
 *
 * A step: the CFA is sp_reg + sp_offset (SP_INDIRECT, BP_INDIRECT: read through it); CALL: the
 * return address is just below the CFA, which is the caller's sp; REGS: a full pt_regs at the
 * CFA; REGS_PARTIAL: an iret frame (ip, cs, flags, sp, ss) at the CFA. bp is PREV_SP: read at CFA
 * + bp_offset; BP: read at bp + bp_offset; UNDEFINED: unchanged (or pt_regs' bp).
 */

import { DbgError } from '../../common/errors.js';
import { readInPieces, type PagedSection } from '../../symbols/dwarf/dwarf-sections.js';
import type { ElfFile } from '../../symbols/elf-file.js';
import type { LinuxPort } from './port.js';
import { linuxTasks } from './tasks.js';

const REG_UNDEFINED = 0;
const REG_PREV_SP = 1;
const REG_BP = 4;
const REG_SP = 5;
const REG_BP_INDIRECT = 8;
const REG_SP_INDIRECT = 9;

/** pt_regs (arch/x86/include/asm/ptrace.h), by dbg's register names. */
const PT_REGS: readonly [string, number][] = [
  ['r15', 0], ['r14', 8], ['r13', 16], ['r12', 24], ['rbp', 32], ['rbx', 40], ['r11', 48], ['r10', 56], ['r9', 64], ['r8', 72],
  ['rax', 80], ['rcx', 88], ['rdx', 96], ['rsi', 104], ['rdi', 112], ['rip', 128], ['cs', 136], ['eflags', 144], ['rsp', 152], ['ss', 160],
];

type Kind = 'call' | 'regs' | 'regs-partial' | 'end' | 'undefined';

export interface OrcStep {
  /** The caller's registers (dbg names), or 'end' at the bottom of a kernel stack. */
  readonly regs: Map<string, bigint> | 'end';
  /** True when the caller was interrupted (its pc is not a return address). */
  readonly signal: boolean;
  /** The caller runs in user mode (cs & 3): its frame is the last. */
  readonly user: boolean;
}

/** A table's bytes: in a buffer, or read in pieces as they are asked for (PagedSection). */
export type TableBytes = Buffer | PagedSection;

export class OrcTable {
  private readonly count: number;

  constructor(
    /** The s32s of .orc_unwind_ip, and the run-time address of the first. */
    private readonly ips: Buffer,
    private readonly ipsAt: bigint,
    private readonly entries: TableBytes,
    /** Linux 6.4+'s layout (type:3 signal:1). */
    private readonly newLayout: boolean,
    /** How far past its last entry's ip the table still answers. */
    private readonly slack = 0x100000n,
  ) {
    this.count = Math.min(ips.length >> 2, Math.floor((Buffer.isBuffer(entries) ? entries.length : entries.buf.length) / 6));
  }

  get size(): number {
    return this.count;
  }

  private ipOf(i: number): bigint {
    return this.ipsAt + BigInt(i * 4) + BigInt(this.ips.readInt32LE(i * 4));
  }

  /** The entry for `ip`: the last one whose ip is at or below it. */
  private find(ip: bigint): number | undefined {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.ipOf(mid) <= ip) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : found;
  }

  /** Whether `ip` is inside the tables' range (the kernel image's text). */
  covers(ip: bigint): boolean {
    return this.count > 0 && ip >= this.ipOf(0) && ip <= this.ipOf(this.count - 1) + this.slack;
  }

  /**
   * The caller of the frame at `regs`; undefined when ORC says nothing (no entry, a register it
   * cannot give) so that other unwinders may try. `signal`: this frame was interrupted, so its pc
   * is looked up as is, not minus one.
   */
  step(read: (addr: bigint, n: number) => Buffer, regs: ReadonlyMap<string, bigint>, signal: boolean): OrcStep | undefined {
    const ip = regs.get('rip');
    const rsp = regs.get('rsp');
    if (ip === undefined || rsp === undefined || !this.covers(ip)) return undefined;
    const i = this.find(signal ? ip : ip - 1n);
    if (i === undefined) return undefined;
    const e = this.entry(i);
    const spOffset = BigInt(e.readInt16LE(0));
    const bpOffset = BigInt(e.readInt16LE(2));
    const spReg = e[4]! & 0xf;
    const bpReg = e[4]! >> 4;
    const kind = this.kind(e[5]!, spReg);
    if (kind === 'end') return { regs: 'end', signal: false, user: false };
    if (kind === 'undefined') return undefined;
    const u64 = (a: bigint) => read(a, 8).readBigUInt64LE(0);
    const bp = regs.get('rbp');
    let cfa: bigint;
    try {
      switch (spReg) {
        case REG_SP:
          cfa = rsp + spOffset;
          break;
        case REG_BP:
          if (bp === undefined) return undefined;
          cfa = bp + spOffset;
          break;
        case REG_SP_INDIRECT:
          cfa = u64(rsp) + spOffset;
          break;
        case REG_BP_INDIRECT:
          if (bp === undefined) return undefined;
          cfa = u64(bp + spOffset);
          break;
        default:
          return undefined; // DX, DI, R10, R13: only known from a full pt_regs, which dbg does not track
      }
      const next = new Map<string, bigint>();
      let user = false;
      let isSignal = false;
      if (kind === 'call') {
        next.set('rip', u64(cfa - 8n));
        next.set('rsp', cfa);
        for (const r of ['rbx', 'rbp', 'r12', 'r13', 'r14', 'r15']) if (regs.has(r)) next.set(r, regs.get(r)!); // callee-saved
      } else if (kind === 'regs') {
        const pt = read(cfa, 168);
        for (const [name, off] of PT_REGS) next.set(name, pt.readBigUInt64LE(off));
        user = (next.get('cs')! & 3n) === 3n;
        isSignal = true;
      } else {
        const iret = read(cfa, 40);
        next.set('rip', iret.readBigUInt64LE(0));
        next.set('cs', iret.readBigUInt64LE(8));
        next.set('eflags', iret.readBigUInt64LE(16));
        next.set('rsp', iret.readBigUInt64LE(24));
        next.set('ss', iret.readBigUInt64LE(32));
        if (bp !== undefined) next.set('rbp', bp);
        user = (next.get('cs')! & 3n) === 3n;
        isSignal = true;
      }
      if (bpReg === REG_PREV_SP) next.set('rbp', u64(cfa + bpOffset));
      else if (bpReg === REG_BP && bp !== undefined) next.set('rbp', u64(bp + bpOffset));
      return { regs: next, signal: isSignal, user };
    } catch (e) {
      if (e instanceof DbgError) return undefined;
      throw e;
    }
  }

  /** Entry i's 6 bytes. */
  private entry(i: number): Buffer {
    const t = this.entries;
    if (Buffer.isBuffer(t)) return t.subarray(i * 6, i * 6 + 6);
    t.need(i * 6, 6);
    return t.buf.subarray(i * 6, i * 6 + 6);
  }

  private kind(b: number, spReg: number): Kind {
    if (this.newLayout) {
      const type = b & 7;
      return type === 1 ? 'end' : type === 2 ? 'call' : type === 3 ? 'regs' : type === 4 ? 'regs-partial' : 'undefined';
    }
    const type = b & 3;
    const end = (b & 4) !== 0;
    if (spReg === REG_UNDEFINED) return end ? 'end' : 'undefined';
    return type === 0 ? 'call' : type === 1 ? 'regs' : type === 2 ? 'regs-partial' : 'undefined';
  }
}

/** Linux 6.4 changed the entry's bit fields; `release` as in OSRELEASE or linux_banner. */
export function orcNewLayout(release: string | undefined): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > 6 || (maj === 6 && min >= 4);
}

/**
 * The ORC tables of a vmlinux file (its .orc_unwind_ip and .orc_unwind), `bias` the KASLR slide.
 * The ips are searched, so read whole; of the entries (2.2 MB in Debian's 6.1 kernel), only the
 * 4 KiB pieces that hold the entries a stack uses: a few dozen pages instead of 540 on a machine
 * where a page of new memory costs more than the read.
 */
export function orcFromElf(elf: ElfFile, bias: bigint, release: string | undefined): OrcTable | undefined {
  const ip = elf.section('.orc_unwind_ip');
  const un = elf.section('.orc_unwind');
  if (!ip || !un || ip.size === 0) return undefined;
  const ips = elf.readLoaded(ip.addr, ip.size);
  // Where readLoaded would read it, when all of it is in the file: else read whole as before.
  const seg = elf.loadSegments().find((p) => un.addr >= p.vaddr && un.addr + BigInt(un.size) <= p.vaddr + p.memsz);
  const rel = seg ? Number(un.addr - seg.vaddr) : 0;
  const entries = seg && rel + un.size <= seg.filesz && seg.offset + rel + un.size <= elf.source.size ? readInPieces(elf, seg.offset + rel, un.size, 4096) : elf.readLoaded(un.addr, un.size);
  if (!ips || !entries) return undefined;
  return new OrcTable(ips, ip.addr + bias, entries, orcNewLayout(release));
}

/** The ORC tables of the kernel image in the dump, located by kallsyms. */
export function orcFromMemory(port: LinuxPort, release: string | undefined): OrcTable | undefined {
  const start = port.symbol('__start_orc_unwind_ip');
  const stop = port.symbol('__stop_orc_unwind_ip');
  const entries = port.symbol('__start_orc_unwind');
  if (start === undefined || stop === undefined || entries === undefined) return undefined;
  const n = Number(stop - start) >> 2;
  if (n <= 0 || n > 4_000_000) throw new DbgError('corrupt', `${port.name}: __start_orc_unwind_ip..__stop_orc_unwind_ip spans ${n} entries: not an ORC table`);
  return new OrcTable(port.read(start, n * 4), start, port.read(entries, n * 6), orcNewLayout(release));
}

/** Each loaded module's ORC tables (struct module's arch.orc_unwind_ip / orc_unwind / num_orcs). */
export function orcOfModules(port: LinuxPort, release: string | undefined, onProblem: (text: string) => void): OrcTable[] {
  const tasks = linuxTasks(port);
  const head = port.symbol('modules');
  if (head === undefined) return [];
  const out: OrcTable[] = [];
  for (const a of tasks.listHead(head, 'struct module', 'list', onProblem, false, 'the module list')) {
    try {
      const m = tasks.objects.at(a, 'struct module');
      const n = Number(m.member('arch.num_orcs').value());
      if (n <= 0) continue;
      if (n > 1_000_000) throw new DbgError('corrupt', `module at 0x${a.toString(16)} claims ${n} ORC entries`);
      const ips = m.member('arch.orc_unwind_ip').value();
      const entries = m.member('arch.orc_unwind').value();
      out.push(new OrcTable(port.read(ips, n * 4), ips, port.read(entries, n * 6), orcNewLayout(release), 0x1000n));
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      onProblem(`the ORC tables of the module at 0x${a.toString(16)}: ${e.message}`);
    }
  }
  return out;
}
