/**
 * The recorder's page walk (native/recorder, the C walk that turns a guest write's virtual address
 * into the physical line it records) agrees with dbg's page walker (src/arch/x86-64-paging.ts) on
 * random 4-level tables with 4 KiB, 2 MiB and 1 GiB pages; a walk that fails says so (null), never
 * the virtual address posing as physical; two-level paging takes a 4 MiB page only with CR4.PSE.
 */
import { describe, expect, it } from 'vitest';
import { X86_64Paging } from '../../src/arch/x86-64-paging.js';
import { nativeRecorder } from '../../src/store/native-recorder.js';

const n = nativeRecorder();
const CR0_PG = 0x8000_0001n;
const EFER_LMA = 0x500n;
const CR4_PAE = 0x20n;
const CR4_PSE = 0x10n;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

describe("the recorder's page walk", () => {
  it('agrees with the x86-64 walker on random long-mode tables, and fails where it fails', () => {
    const rand = rng(7);
    const RAM = 4 << 20; // 1024 pages: tables in the first 64, targets anywhere
    let agreeMapped = 0;
    let agreeFault = 0;
    for (let round = 0; round < 20; round++) {
      const ram = Buffer.alloc(RAM);
      const tables = Array.from({ length: 64 }, (_, i) => i * 4096);
      for (const t of tables) {
        for (let k = 0; k < 512; k++) {
          const r = rand();
          if (r < 0.3) continue; // not present
          if (rand() < 0.15) {
            // PS: a large page at PDPT/PD level (reserved in a PML4E), its frame 1 GiB-aligned
            ram.writeBigUInt64LE((BigInt(Math.floor(rand() * 8)) << 30n) | 0x83n, t + k * 8);
            continue;
          }
          const target = r < 0.85 ? BigInt(tables[Math.floor(rand() * 64)]!) : BigInt(Math.floor(rand() * (RAM / 4096))) * 4096n;
          ram.writeBigUInt64LE(target | 0x3n, t + k * 8);
        }
      }
      const paging = new X86_64Paging((a) => (a + 8n <= BigInt(RAM) ? ram.readBigUInt64LE(Number(a)) : 0n));
      for (let i = 0; i < 500; i++) {
        let va = BigInt(Math.floor(rand() * 2 ** 32)) | (BigInt(Math.floor(rand() * 2 ** 15)) << 32n);
        if (rand() < 0.5) va |= 0xffff_8000_0000_0000n; // canonical upper half
        const ts = paging.translate(0n, va);
        const c = n.pageWalk(ram, 0n, CR0_PG, 0n, CR4_PAE, EFER_LMA, va);
        // The TS walker also refuses reserved bits and large pages whose frame is misaligned
        // the way the CPU does; the tables here have neither, so the two must agree exactly.
        // dbg's walker also stops at a table that points back to one it walked (a loop, for
        // dumps); the CPU follows it, and so does the recorder: not compared.
        if (ts.faultKind === 'loop') continue;
        if (ts.fault !== undefined) {
          expect(c, `0x${va.toString(16)}: ${ts.fault}`).toBeNull();
          agreeFault++;
        } else {
          expect(c, `0x${va.toString(16)}`).toBe(ts.phys);
          agreeMapped++;
        }
      }
    }
    expect(agreeMapped).toBeGreaterThan(500);
    expect(agreeFault).toBeGreaterThan(500);
  });

  it('a large page whose frame is not aligned to its size faults (reserved bits), as the CPU and Unicorn fault', () => {
    const ram = Buffer.alloc(1 << 20);
    ram.writeBigUInt64LE(0x1000n | 3n, 0); // PML4E 0 -> PDPT at 0x1000
    ram.writeBigUInt64LE(0x2000n | 3n, 0x1000); // PDPTE 0 -> PD at 0x2000
    ram.writeBigUInt64LE(0x4000_0000n | 0x2000n | 0x83n, 0x1008); // PDPTE 1: 1 GiB page, bit 13 set
    ram.writeBigUInt64LE(0x20_0000n | 0x83n, 0x2000); // PDE 0: 2 MiB page at 2 MiB
    ram.writeBigUInt64LE(0x20_0000n | 0x4000n | 0x83n, 0x2008); // PDE 1: 2 MiB page, bit 14 set
    const walk = (va: bigint) => n.pageWalk(ram, 0n, CR0_PG, 0n, CR4_PAE, EFER_LMA, va);
    expect(walk(0x1234n)).toBe(0x20_1234n);
    expect(walk(0x20_1234n)).toBeNull();
    expect(walk(0x4000_1234n)).toBeNull();
  });

  it('two-level paging: a PDE with PS is a 4 MiB page only under CR4.PSE; a missing entry fails', () => {
    const ram = Buffer.alloc(1 << 20);
    ram.writeUInt32LE(0x0040_0000 | 0x83, 0); // PDE 0: PS, frame 4 MiB
    ram.writeUInt32LE(0x2000 | 0x3, 4); // PDE 1: a page table at 0x2000
    ram.writeUInt32LE(0x0040_0000 | 0x83 | 0x1000, 0x1000); // (read as a page table when PSE is off)
    ram.writeUInt32LE(0x7000 | 0x3, 0x2000 + 5 * 4); // PTE 5 of table 0x2000
    const walk = (cr4: bigint, va: number) => n.pageWalk(ram, 0n, CR0_PG, 0n, cr4, 0n, BigInt(va));
    expect(walk(CR4_PSE, 0x1234)).toBe(0x40_1234n);
    // Without PSE the PS bit is ignored: the PDE names a page table at 0x400000, outside RAM
    // (reads as zeros), so the walk fails instead of inventing a 4 MiB page.
    expect(walk(0n, 0x1234)).toBeNull();
    expect(walk(0n, 0x40_5abc)).toBe(0x7abcn);
    expect(walk(0n, 0x80_0000)).toBeNull(); // PDE 2 not present
  });
});
