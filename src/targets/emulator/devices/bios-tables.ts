/**
 * What a PC BIOS leaves in memory for the kernel, written by the loader: the BIOS data area
 * (COM1's port at 0x400, the EBDA segment at 0x40e, base memory in KiB at 0x413, the CRTC port at
 * 0x463), a blank 80x25 text screen (space on grey), an MP floating pointer and MP configuration
 * table (spec 1.4) in the BIOS area at 0xf0000 naming every vCPU's local APIC, the ISA bus, the
 * I/O APIC and the ISA interrupts' pins, and ACPI 1.0 tables (RSDP at 0xf0800, RSDT, MADT) that
 * say the same.
 */

import { IOAPIC_BASE, LAPIC_BASE } from './pc.js';
import { TEXT_BUFFER } from './cga.js';

export const EBDA = 0x9fc00;
export const MP_FLOATING = 0xf0000;
const MP_CONFIG = 0xf0010;
export const ACPI_RSDP = 0xf0800;
const ACPI_RSDT = 0xf0820;
const ACPI_MADT = 0xf0860;

function checksum(b: Buffer, start: number, end: number, at: number): void {
  b[at] = 0;
  let s = 0;
  for (let i = start; i < end; i++) s += b[i]!;
  b[at] = (0x100 - (s & 0xff)) & 0xff;
}

/** Write the tables for `cpus` vCPUs (local APIC IDs 0..cpus-1, I/O APIC ID `cpus`) into `ram`. */
export function writeBiosTables(ram: Buffer, cpus: number): void {
  ram.writeUInt16LE(0x3f8, 0x400);
  ram.writeUInt16LE(EBDA >> 4, 0x40e);
  ram.writeUInt16LE(0x0021, 0x410); // equipment: FPU... 80x25 colour
  ram.writeUInt16LE(EBDA >> 10, 0x413);
  ram.writeUInt16LE(0x3d4, 0x463);
  ram.writeUInt16LE(0x0400, EBDA); // EBDA size: 1 KiB
  for (let i = 0; i < 80 * 25; i++) ram.writeUInt16LE(0x0720, TEXT_BUFFER + i * 2);

  // MP configuration table
  const entries: Buffer[] = [];
  for (let i = 0; i < cpus; i++) {
    const p = Buffer.alloc(20);
    p[0] = 0;
    p[1] = i;
    p[2] = 0x14;
    p[3] = 1 | (i === 0 ? 2 : 0);
    p.writeUInt32LE(0x600, 4); // family 6
    p.writeUInt32LE(0x201, 8); // FPU, APIC
    entries.push(p);
  }
  const bus = Buffer.alloc(8);
  bus[0] = 1;
  bus.write('ISA   ', 2, 'latin1');
  entries.push(bus);
  const io = Buffer.alloc(8);
  io[0] = 2;
  io[1] = cpus;
  io[2] = 0x11;
  io[3] = 1;
  io.writeUInt32LE(IOAPIC_BASE, 4);
  entries.push(io);
  for (let irq = 0; irq < 16; irq++) {
    if (irq === 2) continue;
    const e = Buffer.alloc(8);
    e[0] = 3; // I/O interrupt: INT, conforming polarity and trigger, ISA bus
    e[4] = 0;
    e[5] = irq;
    e[6] = cpus;
    e[7] = irq === 0 ? 2 : irq;
    entries.push(e);
  }
  for (const [type, lint] of [[3, 0], [1, 1]] as const) {
    const e = Buffer.alloc(8);
    e[0] = 4; // local interrupt: ExtINT on LINT0, NMI on LINT1 of every CPU
    e[1] = type;
    e[6] = 0xff;
    e[7] = lint;
    entries.push(e);
  }
  const body = Buffer.concat(entries);
  const cfg = Buffer.alloc(44 + body.length);
  cfg.write('PCMP', 0, 'latin1');
  cfg.writeUInt16LE(cfg.length, 4);
  cfg[6] = 4;
  cfg.write('DBG     ', 8, 'latin1');
  cfg.write('STANDARD PC ', 16, 'latin1');
  cfg.writeUInt16LE(entries.length, 34);
  cfg.writeUInt32LE(LAPIC_BASE, 36);
  body.copy(cfg, 44);
  checksum(cfg, 0, cfg.length, 7);
  if (MP_CONFIG + cfg.length > ACPI_RSDP) throw new Error(`MP table of ${cpus} CPUs overflows its space`);
  cfg.copy(ram, MP_CONFIG);
  const fp = Buffer.alloc(16);
  fp.write('_MP_', 0, 'latin1');
  fp.writeUInt32LE(MP_CONFIG, 4);
  fp[8] = 1;
  fp[9] = 4;
  checksum(fp, 0, 16, 10);
  fp.copy(ram, MP_FLOATING);

  // ACPI: RSDP -> RSDT -> MADT
  const madtEntries: Buffer[] = [];
  for (let i = 0; i < cpus; i++) {
    const e = Buffer.alloc(8);
    e[0] = 0;
    e[1] = 8;
    e[2] = i;
    e[3] = i;
    e.writeUInt32LE(1, 4);
    madtEntries.push(e);
  }
  const ioe = Buffer.alloc(12);
  ioe[0] = 1;
  ioe[1] = 12;
  ioe[2] = cpus;
  ioe.writeUInt32LE(IOAPIC_BASE, 4);
  madtEntries.push(ioe);
  const ovr = Buffer.alloc(10); // ISA IRQ 0 -> GSI 2
  ovr[0] = 2;
  ovr[1] = 10;
  ovr[3] = 0;
  ovr.writeUInt32LE(2, 4);
  madtEntries.push(ovr);
  const madtBody = Buffer.concat(madtEntries);
  const madt = Buffer.alloc(44 + madtBody.length);
  acpiHeader(madt, 'APIC');
  madt.writeUInt32LE(LAPIC_BASE, 36);
  madt.writeUInt32LE(1, 40); // PC-AT compatible 8259s
  madtBody.copy(madt, 44);
  checksum(madt, 0, madt.length, 9);
  const rsdt = Buffer.alloc(40);
  acpiHeader(rsdt, 'RSDT');
  rsdt.writeUInt32LE(ACPI_MADT, 36);
  checksum(rsdt, 0, rsdt.length, 9);
  const rsdp = Buffer.alloc(20);
  rsdp.write('RSD PTR ', 0, 'latin1');
  rsdp.write('DBG   ', 9, 'latin1');
  rsdp.writeUInt32LE(ACPI_RSDT, 16);
  checksum(rsdp, 0, 20, 8);
  rsdp.copy(ram, ACPI_RSDP);
  rsdt.copy(ram, ACPI_RSDT);
  if (ACPI_MADT + madt.length > 0xf1000) throw new Error(`MADT of ${cpus} CPUs overflows its space`);
  madt.copy(ram, ACPI_MADT);
}

function acpiHeader(b: Buffer, sig: string): void {
  b.write(sig, 0, 'latin1');
  b.writeUInt32LE(b.length, 4);
  b[8] = 1;
  b.write('DBG   ', 10, 'latin1');
  b.write('STANDARD', 16, 'latin1');
  b.writeUInt32LE(1, 24);
  b.write('DBG ', 28, 'latin1');
  b.writeUInt32LE(1, 32);
}
