/**
 * The recorder's start-up RAM image: nonZeroPages (native/recorder/pages.c) finds the non-zero
 * 4 KiB pages from the kernel's page map without reading untouched pages; it must agree with a
 * plain scan, including pages written back to zero and buffers that do not start on a page.
 */
import { describe, expect, it } from 'vitest';
import { nativeRecorder } from '../../src/store/native-recorder.js';

function scan(ram: Buffer): number[] {
  const zero = Buffer.alloc(4096);
  const out: number[] = [];
  for (let off = 0; off < ram.length; off += 4096) if (!ram.subarray(off, off + 4096).equals(zero.subarray(0, Math.min(4096, ram.length - off)))) out.push(off / 4096);
  return out;
}

describe('nonZeroPages', () => {
  it('agrees with a scan of the whole buffer, untouched pages not made resident', () => {
    const ram = Buffer.alloc(64 << 20);
    for (const at of [0, 4095, 4096 * 7 + 13, (32 << 20) + 1, (64 << 20) - 1]) ram[at] = 0x5a;
    ram.fill(0, 4096 * 9, 4096 * 10); // written, but back to zero: present and zero
    ram[4096 * 11] = 1;
    ram[4096 * 11] = 0;
    const rss0 = process.memoryUsage().rss;
    const got = Array.from(nativeRecorder().nonZeroPages(ram));
    expect(process.memoryUsage().rss - rss0).toBeLessThan(16 << 20);
    expect(got).toEqual([0, 7, 8192, 16383]);
    expect(got).toEqual(scan(ram));
  });

  it('handles a buffer that is not page-aligned and ends inside a page', () => {
    const backing = Buffer.alloc((1 << 20) + 8192);
    const ram = backing.subarray(100, 100 + (1 << 20) + 5000);
    ram[ram.length - 1] = 7;
    ram[4096 * 3 + 4095] = 9;
    expect(Array.from(nativeRecorder().nonZeroPages(ram))).toEqual(scan(ram));
    expect(Array.from(nativeRecorder().nonZeroPages(Buffer.alloc(0)))).toEqual([]);
  });

  it('refuses what is not a Buffer', () => {
    expect(() => (nativeRecorder().nonZeroPages as (x: unknown) => unknown)(42)).toThrow('nonZeroPages(ram: Buffer)');
  });
});
