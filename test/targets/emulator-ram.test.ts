/**
 * Guest RAM (native/emu, allocRam): zero-filled, on 2 MiB boundaries and asked to be backed by
 * transparent huge pages, as QEMU asks for its guest RAM; one host page fault per 4 KiB cost half
 * of an xv6 boot on a virtualised host.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emuHooks } from '../../src/targets/emulator/emu-hooks.js';
import { Machine } from '../../src/targets/emulator/machine.js';

/** The smaps block of this process's mapping of exactly `bytes` bytes, when there is one mapping that size. */
function mappingOfSize(bytes: number): string | undefined {
  const blocks = readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  const found = blocks.filter((b) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(b);
    return m && parseInt(m[2]!, 16) - parseInt(m[1]!, 16) === bytes;
  });
  return found.length === 1 ? found[0] : undefined;
}

describe('guest RAM', () => {
  it('is zero-filled, 2 MiB aligned, and may be backed by huge pages', () => {
    const bytes = (38 << 20) + 0x5000; // a size no other mapping of the test process has
    const m = new Machine({ ramBytes: bytes, cpus: 1 });
    try {
      expect(m.ram.length).toBe(bytes);
      expect(m.ram.every((b) => b === 0)).toBe(true);
      const smaps = mappingOfSize(bytes);
      expect(smaps, 'one mapping of the RAM size').toBeDefined();
      expect(parseInt(/^([0-9a-f]+)-/.exec(smaps!)![1]!, 16) % (2 << 20)).toBe(0);
      // THPeligible: 1 when the kernel may back it with huge pages (madvise or always), as asked
      const thp = readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
      if (!thp.includes('[never]')) expect(smaps).toMatch(/^THPeligible:\s+1$/m);
    } finally {
      m.close();
    }
  });

  it('refuses a size that is not a whole number of pages', () => {
    expect(() => emuHooks().allocRam(0x1001)).toThrow('allocRam: a size in bytes, a multiple of 4 KiB');
    expect(() => emuHooks().allocRam(0)).toThrow('allocRam: a size in bytes, a multiple of 4 KiB');
    expect(() => new Machine({ ramBytes: 0x201001, cpus: 1 })).toThrow('guest RAM of 2101249 bytes: expected a multiple of 4 KiB, at least 2 MiB');
  });
});
