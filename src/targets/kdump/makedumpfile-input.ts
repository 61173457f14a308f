/**
 * makedumpfile (1.7.2) reads an ELF vmcore's program headers from right after the ELF header,
 * whatever e_phoff says; QEMU 7.2's dump-guest-memory puts a section header there and the program
 * headers after it. `makedumpfileInput` copies a QEMU ELF dump with its program headers moved to
 * offset 64 (and no section headers), every byte of data at the offset it had, so that
 * `makedumpfile -c|-l|-F ... COPY OUT` reads it. For the tests and the bench, which make
 * kdump-compressed dumps from QEMU's ELF dumps.
 */

import { closeSync, copyFileSync, openSync, readSync, writeSync } from 'node:fs';

export function makedumpfileInput(elf: string, copy: string): void {
  copyFileSync(elf, copy);
  const fd = openSync(copy, 'r+');
  try {
    const h = Buffer.alloc(64);
    readSync(fd, h, 0, 64, 0);
    const ph = Buffer.alloc(h.readUInt16LE(54) * h.readUInt16LE(56));
    readSync(fd, ph, 0, ph.length, Number(h.readBigUInt64LE(32)));
    // The moved headers must end before the first byte any segment (the notes first) has.
    const firstData = Math.min(...Array.from({ length: ph.length / 56 }, (_, i) => Number(ph.readBigUInt64LE(i * 56 + 8))));
    if (64 + ph.length > firstData) throw new Error(`${elf}: no room for the program headers at offset 64`);
    h.writeBigUInt64LE(64n, 32); // e_phoff
    h.writeBigUInt64LE(0n, 40); // e_shoff
    h.writeUInt16LE(64, 52); // e_ehsize
    h.writeUInt16LE(64, 58); // e_shentsize
    h.writeUInt16LE(0, 60); // e_shnum
    h.writeUInt16LE(0, 62); // e_shstrndx
    writeSync(fd, Buffer.concat([h, ph]), 0, 64 + ph.length, 0);
  } finally {
    closeSync(fd);
  }
}
