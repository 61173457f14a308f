/**
 * The native decoders (native/recorder/decode.h) on hostile input: a damaged pc stream or
 * checkpoint delta is refused with an error, never read or written outside its buffers (the
 * libFuzzer/ASan harness in native/recorder/fuzz runs them on millions of inputs; these are the
 * cases that once broke them).
 */
import { describe, expect, it } from 'vitest';
import { nativeRecorder } from '../../src/store/native-recorder.js';

const n = nativeRecorder();

describe('ckptDecode on hostile deltas', () => {
  it('a zero run that wraps the offset (2^64 - 1) is refused, not written before the image', () => {
    const key = Buffer.alloc(64, 0x11);
    const delta = Buffer.from('ffffffffffffffffff0102aabb', 'hex');
    // Before the fix: the bounds check passed after `i += z` wrapped, one byte before the image
    // was XORed, and Node aborted with "double free or corruption" later.
    for (let k = 0; k < 200; k++) expect(() => n.ckptDecode(key, delta)).toThrow(/checkpoint delta is malformed/);
  });

  it('varints longer than 64 bits, runs past either buffer, and a cut-short delta are refused', () => {
    const key = Buffer.alloc(16);
    for (const hex of [
      '8080808080808080808001', // zero run: an 11-byte varint (shift 70)
      '00808080808080808080800100', // literal run: an 11-byte varint
      '1000', // zero run of 16 + literal 0 ends exactly at the end: fine, see below
      '0011' + '00'.repeat(17), // literal run of 17 over a 16-byte image
      '0005aabb', // literal run of 5 with 2 bytes left
      '0f02aa', // run past the end of the image
      '80', // a varint cut short
    ]) {
      const delta = Buffer.from(hex, 'hex');
      if (hex === '1000') expect(n.ckptDecode(key, delta)).toEqual(key);
      else expect(() => n.ckptDecode(key, delta), hex).toThrow(/checkpoint delta is malformed/);
    }
  });

  it('a valid delta still decodes', () => {
    const key = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const out = n.ckptDecode(key, Buffer.from('0202ffff0a01ff', 'hex'));
    expect(out.toString('hex')).toBe('0011ddcc445566778899aabbccdd11ff');
  });
});

describe('decodePcs on hostile streams', () => {
  it('a jump whose zigzag varint runs past 64 bits is refused (no shift by 64 or more)', () => {
    // nibbles: 0 0 1 (jump, size 1), then 30 groups of 8|7 (more follows)
    const nibbles = [0, 0, 1, ...Array(30).fill(15), 0];
    const bytes = Buffer.alloc((nibbles.length + 1) >> 1);
    nibbles.forEach((v, i) => (bytes[i >> 1]! |= v << ((i & 1) * 4)));
    expect(() => n.decodePcs(bytes, 1)).toThrow(/pc stream is cut short or malformed/);
  });

  it('a count far above what the stream can hold is refused before anything is allocated', () => {
    expect(() => n.decodePcs(Buffer.from([0x11]), 0xffffffff)).toThrow(/pc stream .* holds at most 2 instructions, not 4294967295/);
    expect(() => n.findPcs(Buffer.from([0x11]), 0xffffffff, new BigUint64Array([0n]), 10)).toThrow(/holds at most 2 instructions/);
    expect(() => n.decodePcs(Buffer.from([0x11]), 2 ** 40)).toThrow(/bad arguments/);
  });

  it('negative, fractional, NaN and huge numbers are not taken as 64-bit addresses', () => {
    for (const bad of [-1, 0.5, NaN, Infinity, 2 ** 64]) {
      expect(() => n.run(bad as unknown as bigint, 0n, 1), String(bad)).toThrow(/bad arguments/);
    }
  });
});
