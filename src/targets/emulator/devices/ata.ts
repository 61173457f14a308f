/**
 * The primary ATA channel (0x1f0-0x1f7, device control 0x3f6, IRQ 14) with up to two PIO disks
 * (master, slave), each backed by an image file. IDENTIFY DEVICE, READ/WRITE SECTORS (0x20/0x21,
 * 0x30/0x31), READ/WRITE MULTIPLE (0xc4/0xc5, one sector per block), SET MULTIPLE MODE,
 * INITIALIZE DEVICE PARAMETERS, SET FEATURES, FLUSH CACHE, in LBA28 and CHS addressing. The data
 * port takes 16- and 32-bit accesses. Commands complete at once: the data (or the readiness for
 * data) and the interrupt are there before the guest's next instruction. A sector outside the
 * image ends the command with ERR and ABRT in the error register, as QEMU's disk does. Other commands
 * end with ERR and ABRT.
 *
 * Writes go to an in-memory copy-on-write overlay (the image file is never changed) unless the
 * disk was opened writable.
 */

import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { errors } from '../../../common/errors.js';
import { fileError } from '../../../common/file-error.js';
import type { IrqLine } from './clock.js';

const BSY = 0x80;
const DRDY = 0x40;
const DSC = 0x10;
const DRQ = 0x08;
const ERR = 0x01;
const ABRT = 0x04;
const SECTOR = 512;

export interface DiskOptions {
  path: string;
  /** Write through to the file (default: writes stay in memory). */
  writable?: boolean;
}

export class Disk {
  readonly sectors: number;
  readonly name: string;
  private readonly fd: number;
  private readonly overlay = new Map<number, Buffer>();

  constructor(readonly opts: DiskOptions) {
    this.name = basename(opts.path);
    try {
      this.fd = openSync(opts.path, opts.writable ? 'r+' : 'r');
    } catch (e) {
      throw fileError(`cannot open disk image "${opts.path}"`, e);
    }
    const size = fstatSync(this.fd).size;
    if (size < SECTOR) {
      closeSync(this.fd);
      throw errors.badInput(`disk image ${this.name}: ${size} bytes, smaller than one 512-byte sector`);
    }
    this.sectors = Math.floor(size / SECTOR);
  }

  read(lba: number): Buffer {
    const o = this.overlay.get(lba);
    if (o) return Buffer.from(o);
    const b = Buffer.alloc(SECTOR);
    readSync(this.fd, b, 0, SECTOR, lba * SECTOR);
    return b;
  }

  write(lba: number, data: Buffer): void {
    if (this.opts.writable) writeSync(this.fd, data, 0, SECTOR, lba * SECTOR);
    else this.overlay.set(lba, Buffer.from(data));
  }

  close(): void {
    closeSync(this.fd);
  }
}

function identify(d: Disk, slave: boolean): Buffer {
  const w = new Uint16Array(256);
  const str = (at: number, len: number, s: string): void => {
    const p = s.padEnd(len * 2, ' ');
    for (let i = 0; i < len; i++) w[at + i] = (p.charCodeAt(2 * i) << 8) | p.charCodeAt(2 * i + 1);
  };
  const cyl = Math.min(16383, Math.floor(d.sectors / (16 * 63)));
  w[0] = 0x0040;
  w[1] = cyl;
  w[3] = 16;
  w[6] = 63;
  str(10, 10, `DBG0000${slave ? 1 : 0}`);
  str(23, 4, '1.0');
  str(27, 20, 'DBG HARDDISK');
  w[47] = 0x8010; // READ/WRITE MULTIPLE: up to 16 sectors
  w[49] = 0x0200; // LBA
  w[53] = 0x0001;
  w[54] = cyl;
  w[55] = 16;
  w[56] = 63;
  const chs = cyl * 16 * 63;
  w[57] = chs & 0xffff;
  w[58] = chs >>> 16;
  const lba28 = Math.min(d.sectors, 0x0fffffff);
  w[60] = lba28 & 0xffff;
  w[61] = lba28 >>> 16;
  w[80] = 0x00f0; // ATA-4..7
  w[83] = 0x4000;
  w[86] = 0x0000;
  return Buffer.from(w.buffer);
}

export class AtaChannel {
  private error = 1;
  private features = 0;
  private count = 1;
  private lbaLow = 1;
  private lbaMid = 0;
  private lbaHigh = 0;
  private select = 0xa0;
  private status = DRDY | DSC;
  private control = 0;
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private writing = false;
  private left = 0;
  private lba = 0;
  private line = false;

  constructor(
    private readonly disks: (Disk | undefined)[],
    private readonly irq: IrqLine,
  ) {}

  handles(port: number): boolean {
    return (port >= 0x1f0 && port <= 0x1f7) || port === 0x3f6;
  }

  private get drive(): Disk | undefined {
    return this.disks[(this.select >> 4) & 1];
  }

  private setIrq(level: boolean): void {
    const l = level && (this.control & 2) === 0;
    if (l !== this.line) {
      this.line = l;
      this.irq(l);
    }
  }

  /** An absent master beside a present slave reads ready (as QEMU's IDE does); an absent slave reads 0. */
  private statusNow(): number {
    if (this.drive) return this.status;
    return (this.select & 0x10) === 0 && this.disks[1] ? DRDY | DSC : 0;
  }

  in(port: number, size: number): number {
    if (port === 0x3f6) return this.statusNow();
    if (port === 0x1f0) return this.readData(size);
    if (!this.drive && port !== 0x1f6 && port !== 0x1f7) return 0;
    switch (port) {
      case 0x1f1:
        return this.error;
      case 0x1f2:
        return this.count;
      case 0x1f3:
        return this.lbaLow;
      case 0x1f4:
        return this.lbaMid;
      case 0x1f5:
        return this.lbaHigh;
      case 0x1f6:
        return this.select;
      default: {
        const s = this.statusNow();
        this.setIrq(false);
        return s;
      }
    }
  }

  private readData(size: number): number {
    if (!(this.status & DRQ) || this.writing) return size === 4 ? 0xffffffff : 0xffff;
    const n = size === 4 ? 4 : 2;
    let v = 0;
    for (let i = 0; i < n; i++) v |= (this.buf[this.pos + i] ?? 0) << (8 * i);
    this.pos += n;
    if (this.pos >= this.buf.length) this.nextRead();
    return v >>> 0;
  }

  private nextRead(): void {
    if (--this.left > 0) {
      this.lba++;
      this.transferSector();
    } else {
      this.status = DRDY | DSC;
    }
  }

  out(port: number, size: number, v: number): void {
    switch (port) {
      case 0x3f6:
        if (v & 4 && !(this.control & 4)) this.reset();
        this.control = v & 0xff;
        if (this.control & 2) this.setIrq(false);
        return;
      case 0x1f0:
        this.writeData(size, v);
        return;
      case 0x1f1:
        this.features = v & 0xff;
        return;
      case 0x1f2:
        this.count = v & 0xff;
        return;
      case 0x1f3:
        this.lbaLow = v & 0xff;
        return;
      case 0x1f4:
        this.lbaMid = v & 0xff;
        return;
      case 0x1f5:
        this.lbaHigh = v & 0xff;
        return;
      case 0x1f6:
        this.select = v & 0xff;
        return;
      case 0x1f7:
        this.command(v & 0xff);
        return;
    }
  }

  private reset(): void {
    this.status = DRDY | DSC;
    this.error = 1;
    this.count = 1;
    this.lbaLow = 1;
    this.lbaMid = this.lbaHigh = 0;
    this.buf = Buffer.alloc(0);
    this.setIrq(false);
  }

  private address(): number {
    if (this.select & 0x40) return ((this.select & 0x0f) << 24) | (this.lbaHigh << 16) | (this.lbaMid << 8) | this.lbaLow;
    const cyl = (this.lbaHigh << 8) | this.lbaMid;
    return (cyl * 16 + (this.select & 0x0f)) * 63 + this.lbaLow - 1;
  }

  private fail(err: number): void {
    this.error = err;
    this.status = DRDY | ERR;
    this.setIrq(true);
  }

  private command(cmd: number): void {
    const d = this.drive;
    if (!d) return;
    this.setIrq(false); // writing the command register negates INTRQ
    this.error = 0;
    this.writing = false;
    switch (cmd) {
      case 0xec:
        this.buf = identify(d, (this.select & 0x10) !== 0);
        this.pos = 0;
        this.left = 1;
        this.status = DRDY | DSC | DRQ;
        this.setIrq(true);
        return;
      case 0x20:
      case 0x21:
      case 0xc4:
      case 0x30:
      case 0x31:
      case 0xc5:
        this.lba = this.address();
        this.left = this.count === 0 ? 256 : this.count;
        this.writing = cmd === 0x30 || cmd === 0x31 || cmd === 0xc5;
        if (this.lba < 0 || this.lba + this.left > d.sectors) {
          this.fail(ABRT); // QEMU's answer; some disks say IDNF
          return;
        }
        if (this.writing) {
          this.buf = Buffer.alloc(SECTOR);
          this.pos = 0;
          this.status = DRDY | DSC | DRQ;
        } else this.transferSector();
        return;
      case 0xe7:
      case 0xea:
      case 0x91:
      case 0xc6:
      case 0xef:
      case 0x10:
        this.status = DRDY | DSC;
        this.setIrq(true);
        return;
      default:
        this.fail(ABRT);
    }
  }

  private transferSector(): void {
    this.buf = this.drive!.read(this.lba);
    this.pos = 0;
    this.status = DRDY | DSC | DRQ;
    this.setIrq(true);
  }

  private writeData(size: number, v: number): void {
    if (!(this.status & DRQ) || !this.writing) return;
    const n = size === 4 ? 4 : 2;
    for (let i = 0; i < n && this.pos < SECTOR; i++) this.buf[this.pos++] = (v >>> (8 * i)) & 0xff;
    if (this.pos < SECTOR) return;
    this.drive!.write(this.lba, this.buf);
    if (--this.left > 0) {
      this.lba++;
      this.buf = Buffer.alloc(SECTOR);
      this.pos = 0;
      this.status = DRDY | DSC | DRQ;
    } else {
      this.writing = false;
      this.status = DRDY | DSC;
    }
    this.setIrq(true);
  }

  /**
   * Every field but the disks and the IRQ line, copied (a booting xv6 reads its disk a word per
   * port read: the channel is saved at ~1,200 slice starts, and the generic rest-copy of `this`
   * went through megamorphic keyed stores; test/targets/emulator/device-saves.test.ts checks that
   * no field is left out).
   */
  save(): unknown {
    return {
      error: this.error,
      features: this.features,
      count: this.count,
      lbaLow: this.lbaLow,
      lbaMid: this.lbaMid,
      lbaHigh: this.lbaHigh,
      select: this.select,
      status: this.status,
      control: this.control,
      buf: Buffer.from(this.buf),
      pos: this.pos,
      writing: this.writing,
      left: this.left,
      lba: this.lba,
      line: this.line,
    };
  }

  load(s: unknown): void {
    Object.assign(this, structuredClone(s));
    this.buf = Buffer.from(this.buf);
  }
}
