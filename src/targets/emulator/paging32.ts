/**
 * Virtual -> physical for a 32-bit protected-mode guest (CR0.PG set, EFER.LMA clear): two levels
 * of 4-byte entries (4 MiB pages with CR4.PSE), or PAE's three levels of 8-byte entries. The live
 * machine and the replay of its trace walk the same tables with it (long mode: x86-64-paging.ts).
 */
import type { Translation } from '../target.js';

/**
 * `read(a, n)` returns the n-byte little-endian entry at physical `a` and throws when `a` is not
 * RAM (the translation then names the table outside RAM as its fault). `virt` is 32 bits.
 */
export function translate32(read: (a: bigint, n: 4 | 8) => Buffer, virt: bigint, cr3: bigint, cr4: bigint): Translation {
  const pae = (cr4 & 0x20n) !== 0n;
  const pse = (cr4 & 0x10n) !== 0n;
  const steps: { level: string; index: number; entryAddr: bigint; entry: bigint }[] = [];
  const levels: { level: string; entry: string; shift: bigint; bits: bigint; size: 4 | 8; large?: number }[] = pae
    ? [
        { level: 'PDPT', entry: 'PDPTE', shift: 30n, bits: 3n, size: 8 },
        { level: 'PD', entry: 'PDE', shift: 21n, bits: 511n, size: 8, large: 0x200000 },
        { level: 'PT', entry: 'PTE', shift: 12n, bits: 511n, size: 8 },
      ]
    : [
        { level: 'PD', entry: 'PDE', shift: 22n, bits: 1023n, size: 4, ...(pse ? { large: 0x400000 } : {}) },
        { level: 'PT', entry: 'PTE', shift: 12n, bits: 1023n, size: 4 },
      ];
  let table = pae ? cr3 & 0xffff_ffe0n : cr3 & 0xffff_f000n;
  for (const lv of levels) {
    const index = Number((virt >> lv.shift) & lv.bits);
    const entryAddr = table + BigInt(index * lv.size);
    let entry: bigint;
    try {
      const b = read(entryAddr, lv.size);
      entry = lv.size === 4 ? BigInt(b.readUInt32LE(0)) : b.readBigUInt64LE(0);
    } catch (err) {
      return { virt, steps, fault: `${lv.level} table at phys 0x${table.toString(16)} is outside RAM: ${(err as Error).message}` };
    }
    steps.push({ level: lv.level, index, entryAddr, entry });
    if ((entry & 1n) === 0n) return { virt, steps, fault: `${lv.entry}[${index}] = 0x${entry.toString(16)} (not present)` };
    const frameMask = pae ? 0x000f_ffff_ffff_f000n : 0xffff_f000n;
    if (lv.large && (entry & 0x80n) !== 0n) {
      const off = BigInt(lv.large - 1);
      return { virt, phys: (entry & frameMask & ~off) | (virt & off), pageSize: lv.large, steps };
    }
    if (lv.level === 'PT') return { virt, phys: (entry & frameMask) | (virt & 0xfffn), pageSize: 4096, steps };
    table = entry & frameMask;
  }
  return { virt, steps, fault: 'no leaf entry' };
}
