import { describe, expect, it } from 'vitest';
import { DbgError, errors } from '../../src/common/errors.js';
import { evaluate, type ExprContext } from '../../src/mdb/expr.js';

const memory = new Map<bigint, number>();
// A little-endian pointer 0x2000 at 0x1000, and bytes 11 22 33 44 55 66 77 88 at 0x2000.
[0x00, 0x20, 0, 0, 0, 0, 0, 0].forEach((b, i) => memory.set(0x1000n + BigInt(i), b));
[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88].forEach((b, i) => memory.set(0x2000n + BigInt(i), b));

const symbols: Record<string, bigint> = { main: 0x401000n, 'libc.so.6`malloc': 0x7f0000001000n, cafe: 0x5000n, 'a.b': 0x77n };

const ctx: ExprContext = {
  dot: 0x1234n,
  pointerBytes: 8,
  symbol: (n) => symbols[n],
  noSymbol: (n) => errors.noSymbol(n, 'the test table'),
  read(addr, size) {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) {
      const b = memory.get(addr + BigInt(i));
      if (b === undefined) throw new DbgError('unmapped', `read of ${size} bytes at 0x${addr.toString(16)} failed`);
      v = (v << 8n) | BigInt(b);
    }
    return v;
  },
  variable: (n) => (n === 'rip' ? 0x401010n : undefined),
};

const ev = (s: string) => evaluate(s, ctx);
function bad(s: string): DbgError {
  try {
    ev(s);
  } catch (e) {
    if (e instanceof DbgError) return e;
    throw e;
  }
  throw new Error(`${s} evaluated`);
}

describe('MDB expressions', () => {
  it('reads numbers as hex by default, with 0x 0t 0o 0i prefixes', () => {
    expect(ev('10')).toBe(0x10n);
    expect(ev('ff')).toBe(0xffn); // no symbol "ff": a hex number, as in MDB
    expect(ev('0x10')).toBe(16n);
    expect(ev('0t10')).toBe(10n);
    expect(ev('0o17')).toBe(15n);
    expect(ev('0i101')).toBe(5n);
    expect(ev('ffffffffffffffff')).toBe((1n << 64n) - 1n);
  });

  it('prefers a symbol to a hex-looking word, and takes module`symbol', () => {
    expect(ev('cafe')).toBe(0x5000n);
    expect(ev('main+10')).toBe(0x401010n);
    expect(ev('libc.so.6`malloc')).toBe(0x7f0000001000n);
    expect(ev('a.b')).toBe(0x77n);
  });

  it('applies MDB precedence: * % # before + - before << >> before == != before & ^ |', () => {
    expect(ev('2+3*4')).toBe(0xen);
    expect(ev('0t20%0t3')).toBe(6n); // % is integer division in MDB
    expect(ev('0t10#8')).toBe(0x10n); // round up to a multiple
    expect(ev('1<<4+1')).toBe(0x20n);
    expect(ev('1|2&3')).toBe(3n);
    expect(ev('6^3')).toBe(5n);
    expect(ev('1==1')).toBe(1n);
    expect(ev('1!=1')).toBe(0n);
    expect(ev('(0t100/0t7)')).toBe(14n); // `/` divides inside parentheses
    expect(ev('(2+3)*4')).toBe(0x14n);
  });

  it('has unary - ~ # and wraps at 64 bits', () => {
    expect(ev('-1')).toBe((1n << 64n) - 1n);
    expect(ev('~0')).toBe((1n << 64n) - 1n);
    expect(ev('#0')).toBe(1n);
    expect(ev('#5')).toBe(0n);
    expect(ev('ffffffffffffffff+2')).toBe(1n);
  });

  it('dereferences: *addr and %addr pointer-sized, */c/ */s/ */i/ */l/ sized', () => {
    expect(ev('*1000')).toBe(0x2000n);
    expect(ev('%1000')).toBe(0x2000n);
    expect(ev('**1000')).toBe(0x8877665544332211n);
    expect(ev('*/c/2000')).toBe(0x11n);
    expect(ev('*/s/2000')).toBe(0x2211n);
    expect(ev('*/i/2000')).toBe(0x44332211n);
    expect(ev('*/l/2000')).toBe(0x8877665544332211n);
    expect(ev('*(1000)+1')).toBe(0x2001n);
  });

  it('has dot and <variables>', () => {
    expect(ev('.')).toBe(0x1234n);
    expect(ev('.+4')).toBe(0x1238n);
    expect(ev('<rip')).toBe(0x401010n);
  });

  it('names the column of a bad expression', () => {
    expect(bad('1+').message).toBe('bad expression "1+" at column 3: expression ends where a value was expected');
    expect(bad('(1+2').message).toBe('bad expression "(1+2" at column 5: expected ")" but found end of expression');
    expect(bad('1 2').message).toBe('bad expression "1 2" at column 3: unexpected number 0x2');
    expect(bad('0t1f').message).toBe('bad expression "0t1f" at column 1: "0t1f" is not a valid decimal number');
    expect(bad('1 @ 2').message).toMatch(/column 3: unexpected character "@"/);
    expect(bad('4%0').message).toMatch(/column 2: division by zero/);
    expect(bad('*/q/1000').message).toMatch(/bad size in "\*\/q\/"/);
    expect(bad('<nope').message).toMatch(/unknown variable or register "<nope"/);
    expect(bad('').code).toBe('bad-input');
  });

  it('reports the column relative to the command line it came from', () => {
    expect(() => evaluate('1+', ctx, 10)).toThrow(/at column 13:/);
  });

  it('reports unknown symbols and unmapped reads with their own errors', () => {
    const e = bad('nosuchsym+1');
    expect(e.code).toBe('no-symbol');
    expect(e.message).toBe('unknown symbol "nosuchsym": not defined in the test table');
    const u = bad('*9000');
    expect(u.code).toBe('unmapped');
    expect(u.message).toBe('read of 8 bytes at 0x9000 failed');
  });
});
