/** The memory-row encoding (synthetic rows; the recorder's real rows are covered by the replay tests). */
import { describe, expect, it } from 'vitest';
import { decodeLineRow, encodeLineRow, rowLastWrite, rowStateAt, stateBound, writeOrder } from '../../src/store/line-rows.js';
import { DbgError } from '../../src/common/errors.js';

const init = Buffer.alloc(64, 0xaa);
const writes = [
  { seq: 1000, host: false, off: 0, data: Buffer.from('0102030405060708', 'hex') },
  { seq: 1000, host: false, off: 8, data: Buffer.from('11', 'hex') },
  { seq: 1500, host: true, off: 4, data: Buffer.from('2222', 'hex') },
  { seq: 70000, host: false, off: 60, data: Buffer.from('33333333', 'hex') },
];
const row = encodeLineRow(init, writes, 990);

describe('memory rows', () => {
  it('round-trip: seqs, host flags, addresses, old and new bytes, final state', () => {
    const d = decodeLineRow(row, 0x400, 990);
    expect(d.writes.map((w) => [w.seq, w.host, w.phys, w.len])).toEqual([
      [1000, false, 0x400 * 64, 8],
      [1000, false, 0x400 * 64 + 8, 1],
      [1500, true, 0x400 * 64 + 4, 2],
      [70000, false, 0x400 * 64 + 60, 4],
    ]);
    expect(d.writes[0]!.old.toString('hex')).toBe('aa'.repeat(8));
    expect(d.writes[2]!.old.toString('hex')).toBe('0506'); // what the first write left there
    expect(d.final.subarray(0, 9).toString('hex')).toBe('010203042222070811');
  });

  it('state at a position: guest writes of earlier instructions, host writes at or before it', () => {
    expect(rowStateAt(row, 990, 1000).equals(init)).toBe(true); // instruction 1000 has not run
    expect(rowStateAt(row, 990, 1001).subarray(0, 2).toString('hex')).toBe('0102');
    expect(rowStateAt(row, 990, 1500).subarray(4, 6).toString('hex')).toBe('2222'); // host write before 1500
    expect(rowStateAt(row, 990, 1 << 30).equals(decodeLineRow(row, 0x400, 990).final)).toBe(true);
    expect(writeOrder({ seq: 5, host: true })).toBeLessThan(writeOrder({ seq: 5, host: false }));
    expect(stateBound(6)).toBeGreaterThanOrEqual(writeOrder({ seq: 5, host: false }));
  });

  it('last write to a byte range before a position', () => {
    expect(rowLastWrite(row, 0x400, 990, 4, 6, 1 << 30)?.seq).toBe(1500);
    expect(rowLastWrite(row, 0x400, 990, 4, 6, 1400)?.seq).toBe(1000);
    expect(rowLastWrite(row, 0x400, 990, 9, 60, 1 << 30)).toBeUndefined();
    expect(rowLastWrite(row, 0x400, 990, 63, 64, 1 << 30)?.old.toString('hex')).toBe('aaaaaaaa');
  });

  it('cut short or inconsistent rows are corrupt', () => {
    const fail = (b: Buffer, msg: RegExp) => {
      try {
        decodeLineRow(b, 0x400, 990, 't.trace');
        throw new Error('no error');
      } catch (e) {
        expect(e).toBeInstanceOf(DbgError);
        expect((e as DbgError).code).toBe('corrupt');
        expect((e as DbgError).message).toMatch(msg);
      }
    };
    fail(row.subarray(0, 100), /t\.trace: memory row of line 0x10000 has 100 bytes, expected at least 128/);
    fail(row.subarray(0, row.length - 2), /does not fit|cut short/);
    const bad = Buffer.from(row);
    bad[70] ^= 0xff; // the recorded final state no longer matches the writes
    fail(bad, /do not end in its recorded final state/);
  });
});
