import { DbgError } from '../../common/errors.js';

/**
 * A read position in one DWARF section: fixed-size integers in the file's byte order, LEB128,
 * C strings. Every read past the end is DbgError('corrupt') naming the section and the offset,
 * so a truncated section is one clear message, never a RangeError.
 */
export class DwarfCursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly littleEndian: boolean,
    /** For messages: "file: .debug_info". */
    readonly where: string,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length || this.pos < 0) {
      throw new DbgError('corrupt', `${this.where}: read of ${n} bytes at offset 0x${this.pos.toString(16)} runs past the end of the section (0x${this.buf.length.toString(16)} bytes)`);
    }
  }

  get atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.littleEndian ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u24(): number {
    this.need(3);
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return this.littleEndian ? b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) : (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  }
  u32(): number {
    this.need(4);
    const v = this.littleEndian ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.littleEndian ? this.buf.readBigUInt64LE(this.pos) : this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  /**
   * A DWARF initial length (units, line programs, aranges, name indexes): u32, or 0xffffffff then
   * u64 in 64-bit DWARF, where offsets in the set become 8 bytes. `end` is where the set ends
   * (unchecked: callers say which set claims too much).
   */
  initialLength(what: string): { length: number; offsetSize: 4 | 8; end: number } {
    const length32 = this.u32();
    const length = length32 === 0xffffffff ? this.u64num(what) : length32;
    return { length, offsetSize: length32 === 0xffffffff ? 8 : 4, end: this.pos + length };
  }

  /** A 64-bit field that must be a file offset or a size: a number, refused past 2^53. */
  u64num(what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DbgError('corrupt', `${this.where}: ${what} 0x${v.toString(16)} at offset 0x${(this.pos - 8).toString(16)} is impossibly large`);
    return Number(v);
  }
  /** An offset field of the unit's format: 4 bytes in 32-bit DWARF, 8 in 64-bit. */
  offset(size: 4 | 8): number {
    return size === 4 ? this.u32() : this.u64num('offset');
  }
  /** An address of `size` bytes. */
  address(size: number): bigint {
    switch (size) {
      case 8:
        return this.u64();
      case 4:
        return BigInt(this.u32());
      case 2:
        return BigInt(this.u16());
      case 1:
        return BigInt(this.u8());
      default:
        throw new DbgError('corrupt', `${this.where}: address size ${size} at offset 0x${this.pos.toString(16)} is not 1, 2, 4 or 8`);
    }
  }

  /** Unsigned LEB128 as a number; values past 2^53 are corrupt here (use ulebBig for constants). */
  uleb(): number {
    const b = this.buf;
    let p = this.pos;
    if (p < b.length && b[p]! < 0x80) {
      this.pos = p + 1;
      return b[p]!;
    }
    let result = 0;
    let mul = 1;
    for (;;) {
      if (p >= b.length) {
        this.pos = p;
        this.need(1);
      }
      const byte = b[p++]!;
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) break;
      mul *= 128;
      if (mul > 2 ** 63) throw new DbgError('corrupt', `${this.where}: LEB128 at offset 0x${this.pos.toString(16)} is longer than 10 bytes`);
    }
    if (result > Number.MAX_SAFE_INTEGER) throw new DbgError('corrupt', `${this.where}: LEB128 value at offset 0x${this.pos.toString(16)} is too large for an offset or count`);
    this.pos = p;
    return result;
  }

  ulebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
      if (shift > 70n) throw new DbgError('corrupt', `${this.where}: LEB128 at offset 0x${this.pos.toString(16)} is longer than 10 bytes`);
    }
  }

  slebBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = this.u8();
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) {
        if (byte & 0x40) result -= 1n << shift;
        return BigInt.asIntN(64, result);
      }
      if (shift > 70n) throw new DbgError('corrupt', `${this.where}: LEB128 at offset 0x${this.pos.toString(16)} is longer than 10 bytes`);
    }
  }

  sleb(): number {
    return Number(this.slebBig());
  }

  /** A NUL-terminated string (UTF-8). */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new DbgError('corrupt', `${this.where}: string at offset 0x${this.pos.toString(16)} has no terminating NUL before the end of the section`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}
