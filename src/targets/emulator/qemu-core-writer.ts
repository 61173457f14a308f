/**
 * `::dump FILE`: the emulated machine as an ELF core in QEMU's dump-guest-memory layout (the
 * physical flavour, as `dump-guest-memory FILE` writes it), which the kernel-dump target opens.
 *
 *   ELF64 header, ET_CORE, EM_X86_64
 *   program headers: PT_NOTE, then one PT_LOAD for RAM (p_paddr = p_vaddr = 0, filesz = memsz)
 *   notes, QEMU's order: every vCPU's NT_PRSTATUS ("CORE", type 1, 336 bytes, pr_pid = cpu + 1,
 *     pr_reg = user_regs_struct at +112), then every vCPU's QEMUCPUState ("QEMU", type 0, 440 bytes):
 *       +0 u32 version = 1   +4 u32 size = 440   +8 rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags
 *       +152 segments cs ds es fs gs ss ldt tr gdt idt, each { u32 selector, limit, flags, pad; u64 base }
 *       +392 cr0 cr1 cr2 cr3 cr4   +432 kernel_gs_base
 *   RAM bytes
 */

import { closeSync, openSync, writeSync } from 'node:fs';
import { DbgError } from '../../common/errors.js';
import type { EmulatorTarget } from './emulator-target.js';
import { readSegmentCaches } from './x86-64-cpu.js';

const NOTE_ALIGN = 4;

function note(name: string, type: number, desc: Buffer): Buffer {
  const n = Buffer.from(name + '\0', 'latin1');
  const pad = (x: number): number => (x + NOTE_ALIGN - 1) & ~(NOTE_ALIGN - 1);
  const b = Buffer.alloc(12 + pad(n.length) + pad(desc.length));
  b.writeUInt32LE(n.length, 0);
  b.writeUInt32LE(desc.length, 4);
  b.writeUInt32LE(type, 8);
  n.copy(b, 12);
  desc.copy(b, 12 + pad(n.length));
  return b;
}

export function writeQemuCore(t: EmulatorTarget, file: string): void {
  const m = t.machine;
  const prstatus: Buffer[] = [];
  const qemu: Buffer[] = [];
  for (const v of m.vcpus) {
    const r = m.registers(v.index);
    const g = (n: string): bigint => r.get(n) ?? 0n;
    const ps = Buffer.alloc(336);
    ps.writeUInt32LE(v.index + 1, 32);
    t.arch.prstatusRegisters.forEach((name, i) => ps.writeBigUInt64LE(BigInt.asUintN(64, name === 'orig_rax' ? -1n : g(name)), 112 + i * 8));
    prstatus.push(note('CORE', 1, ps));
    const q = Buffer.alloc(440);
    q.writeUInt32LE(1, 0);
    q.writeUInt32LE(440, 4);
    ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags'].forEach((n, i) =>
      q.writeBigUInt64LE(g(n), 8 + i * 8),
    );
    const segs = readSegmentCaches(v.engine);
    ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'ldt', 'tr', 'gdt', 'idt'].forEach((n, i) => {
      const s = segs[n]!;
      const o = 152 + i * 24;
      q.writeUInt32LE(s.selector, o);
      q.writeUInt32LE(s.limit >>> 0, o + 4);
      q.writeUInt32LE(s.flags >>> 0, o + 8);
      q.writeBigUInt64LE(s.base, o + 16);
    });
    ['cr0', '', 'cr2', 'cr3', 'cr4'].forEach((n, i) => q.writeBigUInt64LE(n ? g(n) : 0n, 392 + i * 8));
    q.writeBigUInt64LE(g('k_gs_base'), 432);
    qemu.push(note('QEMU', 0, q));
  }
  const notes = Buffer.concat([...prstatus, ...qemu]);
  const phnum = 2;
  const noteOff = 64 + 56 * phnum;
  const ramOff = noteOff + notes.length;
  const hdr = Buffer.alloc(noteOff);
  hdr.write('\x7fELF', 0, 'latin1');
  hdr[4] = 2; // ELFCLASS64
  hdr[5] = 1; // little-endian
  hdr[6] = 1; // EV_CURRENT
  hdr.writeUInt16LE(4, 16); // ET_CORE
  hdr.writeUInt16LE(62, 18); // EM_X86_64
  hdr.writeUInt32LE(1, 20);
  hdr.writeBigUInt64LE(64n, 32); // e_phoff
  hdr.writeUInt16LE(64, 52); // e_ehsize
  hdr.writeUInt16LE(56, 54); // e_phentsize
  hdr.writeUInt16LE(phnum, 56);
  // PT_NOTE
  hdr.writeUInt32LE(4, 64);
  hdr.writeBigUInt64LE(BigInt(noteOff), 64 + 8);
  hdr.writeBigUInt64LE(BigInt(notes.length), 64 + 32);
  hdr.writeBigUInt64LE(BigInt(notes.length), 64 + 40);
  // PT_LOAD: all of RAM
  const o = 64 + 56;
  hdr.writeUInt32LE(1, o);
  hdr.writeUInt32LE(7, o + 4); // RWX
  hdr.writeBigUInt64LE(BigInt(ramOff), o + 8);
  hdr.writeBigUInt64LE(0n, o + 16);
  hdr.writeBigUInt64LE(0n, o + 24);
  hdr.writeBigUInt64LE(BigInt(m.ram.length), o + 32);
  hdr.writeBigUInt64LE(BigInt(m.ram.length), o + 40);
  let fd: number;
  try {
    fd = openSync(file, 'w');
  } catch (e) {
    throw new DbgError('io', `cannot write core "${file}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    writeSync(fd, hdr);
    writeSync(fd, notes);
    let done = 0;
    while (done < m.ram.length) done += writeSync(fd, m.ram, done, Math.min(m.ram.length - done, 16 << 20));
  } finally {
    closeSync(fd);
  }
}
