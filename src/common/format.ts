/**
 * Printing addresses and values. Addresses are bigint everywhere in dbg's API and print as
 * `0x`-hex zero-padded to the pointer width, as MDB and gdb print pointers.
 */

const MASK64 = (1n << 64n) - 1n;

/**
 * `0x` + hex, zero-padded to `width`: a number of digits (16 for a 64-bit pointer), or an
 * architecture, whose pointer width it takes (8 digits for i386).
 */
export function hexAddr(addr: bigint, width: number | { readonly pointerBytes: number } = 16): string {
  const digits = typeof width === 'number' ? width : width.pointerBytes * 2;
  return '0x' + (addr & MASK64).toString(16).padStart(digits, '0');
}

/** `0x` + hex without padding, as gdb prints values. */
export function hex(value: bigint | number): string {
  const v = typeof value === 'number' ? BigInt(value) : value;
  return v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16);
}

/** A byte count as people read it: 4096 -> "4 KiB". */
export function humanSize(bytes: number | bigint): string {
  let v = Number(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v} ${units[i]}`;
}

/** Two's-complement reinterpretation of the low `bits` of `v` as signed. */
export function toSigned(v: bigint, bits: number): bigint {
  return BigInt.asIntN(bits, v);
}

export function toUnsigned(v: bigint, bits: number): bigint {
  return BigInt.asUintN(bits, v);
}
