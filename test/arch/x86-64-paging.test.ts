// The x86-64 page walker on its own: physical memory is a map of 8-byte entries. First the
// fixture's real tables (every non-zero entry QEMU's guest wrote, from facts.json), checked
// against QEMU's gva2gpa; then hand-made tables for the TLB, 5-level paging and broken tables.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cr3Root, X86_64Paging, type ReadPhys } from '../../src/arch/x86-64-paging.js';
import { DbgError } from '../../src/common/errors.js';
import { PageTableBuilder } from '../../src/targets/elfcore/kernel-vmcore-writer.js';
import { qemuSample } from '../helpers/repo.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const facts: any = JSON.parse(readFileSync(qemuSample('facts.json'), 'utf8'));

/** Memory of `entries`, zero elsewhere inside [lo, hi), absent outside; counts reads. */
function memory(entries: Map<bigint, bigint>, lo: bigint, hi: bigint): { read: ReadPhys; reads: () => number } {
  let n = 0;
  return {
    read: (a) => {
      n++;
      if (a < lo || a + 8n > hi) throw new DbgError('unmapped', `physical 0x${a.toString(16)} is not in the test memory`);
      return entries.get(a) ?? 0n;
    },
    reads: () => n,
  };
}

describe('flushing the TLB', () => {
  // One page table mapping virtual page i to physical 0x100000 + i pages.
  const entries = new Map<bigint, bigint>([
    [0x1000n, 0x2003n],
    [0x2000n, 0x3003n],
    [0x3000n, 0x4003n],
  ]);
  const map = (page: number, phys: bigint): void => void entries.set(0x4000n + BigInt(page) * 8n, phys | 3n);
  for (let i = 0; i < 512; i++) map(i, 0x100000n + BigInt(i) * 0x1000n);
  const mem = memory(entries, 0n, 0x5000n);

  // A flush after a few translations clears those slots one by one; after many, the whole table:
  // either way every page is walked again and a changed entry is seen.
  for (const pages of [3, 300]) {
    it(`after ${pages} translations, a flush forgets every one of them`, () => {
      const w = new X86_64Paging(mem.read);
      for (let i = 0; i < pages; i++) w.translate(0x1000n, BigInt(i) * 0x1000n);
      const before = mem.reads();
      for (let i = 0; i < pages; i++) w.translate(0x1000n, BigInt(i) * 0x1000n);
      expect(mem.reads()).toBe(before); // all cached
      map(pages - 1, 0x900000n);
      w.flush();
      for (let i = 0; i < pages; i++) w.translate(0x1000n, BigInt(i) * 0x1000n);
      expect(mem.reads() - before).toBe(4 * pages);
      expect(w.translate(0x1000n, BigInt(pages - 1) * 0x1000n + 8n).phys).toBe(0x900008n);
      map(pages - 1, 0x100000n + BigInt(pages - 1) * 0x1000n);
    });
  }
});

describe('the fixture page tables (CR3 0x206000)', () => {
  const entries = new Map<bigint, bigint>(facts.paging.nonzero_entries.map((e: { entry_phys: string; value: string }) => [BigInt(e.entry_phys), BigInt(e.value)]));
  const mem = memory(entries, 0n, 0x2000000n);
  const walker = new X86_64Paging(mem.read);
  const root = cr3Root(BigInt(facts.paging.cr3));

  it('translates every probe as QEMU gva2gpa did, level by level', () => {
    for (const p of facts.paging.translations) {
      const w = walker.walk(root, BigInt(p.virt));
      expect(w.phys, p.what).toBe(BigInt(p.qemu_gva2gpa));
      expect(w.pageSize).toBe(p.page_size);
      expect([w.writable, !w.executable]).toEqual([p.writable, p.nx]);
      expect(w.steps.map((s) => `${s.level}E[${s.index}]@${s.entryAddr.toString(16)}=${s.entry.toString(16)}`)).toEqual(
        p.walk.map((s: { level: string; index: number; entry_phys: string; value: string }) => `${s.level}[${s.index}]@${s.entry_phys.slice(2)}=${s.value.slice(2)}`),
      );
    }
  });

  it('reports every unmapped probe with the level, index and entry', () => {
    for (const p of facts.paging.unmapped) {
      const w = walker.walk(root, BigInt(p.virt));
      expect(w.phys).toBeUndefined();
      expect(w.faultKind).toBe('not-present');
      expect(w.fault).toBe(p.reason);
      expect(w.steps.at(-1)!.entryAddr).toBe(BigInt(p.walk.at(-1).entry_phys));
    }
  });

  it('answers repeated translations from the TLB without reading memory', () => {
    const w = new X86_64Paging(mem.read);
    const before = mem.reads();
    expect(w.translate(root, 0xffffffffc0005060n).phys).toBe(0x205060n);
    expect(mem.reads() - before).toBe(4);
    const again = w.translate(root, 0xffffffffc0005ff8n); // same 4 KiB page, other offset
    expect([again.phys, again.pageSize, again.writable, again.executable]).toEqual([0x205ff8n, 4096, true, false]);
    expect(mem.reads() - before).toBe(4);
    // The TLB keeps numbers only: the steps of a cached translation are walked again when asked for.
    expect(again.steps.map((st) => st.index)).toEqual([511, 511, 0, 5]);
    expect(mem.reads() - before).toBe(8);
    // ... once: the slot keeps them for the next translation of that page.
    expect(w.translate(root, 0xffffffffc0005008n).steps.map((st) => st.entry)).toEqual([0x20a023n, 0x20b023n, 0x20c023n, 0x8000000000205063n]);
    expect(mem.reads() - before).toBe(8);
    w.flush();
    w.translate(root, 0xffffffffc0005060n);
    expect(mem.reads() - before).toBe(12);
    // Faults are not cached: a later read of a repaired table would see the change.
    const f1 = mem.reads();
    w.translate(root, 0xffffffffc000d000n);
    const perFault = mem.reads() - f1;
    w.translate(root, 0xffffffffc000d000n);
    expect(mem.reads() - f1).toBe(2 * perFault);
    expect(perFault).toBeGreaterThan(0);
  });
});

describe('hand-made tables', () => {
  const ROOT = 0x1000n;

  it('strips PCID and flag bits from CR3', () => {
    expect(cr3Root(0x8000000000206fffn)).toBe(0x206000n);
  });

  it('refuses non-canonical addresses before reading anything', () => {
    const mem = memory(new Map(), 0n, 0x100000n);
    const w = new X86_64Paging(mem.read).walk(ROOT, 0x0000800000000000n);
    expect([w.faultKind, w.fault, mem.reads()]).toEqual([
      'non-canonical',
      '0x800000000000 is not canonical (bits 63..47 must all equal bit 47 with 4-level paging)',
      0,
    ]);
    // The same address is canonical with 5 levels.
    expect(new X86_64Paging(mem.read).walk(ROOT, 0x0000800000000000n, 5).faultKind).toBe('not-present');
  });

  it('walks 5 levels (CR4.LA57)', () => {
    const pml5 = new Map<bigint, bigint>([
      [ROOT + 0x1n * 8n, 0x2003n], // PML5[1] -> PML4 at 0x2000
      [0x2000n, 0x3003n], // PML4[0] -> PDPT at 0x3000
      [0x3000n, 0x40000083n], // PDPT[0]: 1 GiB page at 0x40000000
    ]);
    const w = new X86_64Paging(memory(pml5, 0n, 0x100000n).read).walk(ROOT, (1n << 48n) + 0x1234n, 5);
    expect(w.steps.map((s) => s.level)).toEqual(['PML5', 'PML4', 'PDPT']);
    expect([w.phys, w.pageSize]).toEqual([0x40001234n, 1 << 30]);
  });

  it('rights combine over levels: read-only or NX at any level wins', () => {
    const b = new PageTableBuilder(ROOT, 0x2000n);
    b.map(0x400000n, 0x9000n, 4096, 0x3n);
    const pde = [...b.entries].find(([, v]) => v === 0x4003n)![0]; // PD entry pointing at the PT
    b.set(pde, 0x8000000000004001n); // read-only and NX at the PD level
    const w = new X86_64Paging(memory(b.entries, 0n, 0x100000n).read).walk(ROOT, 0x400010n);
    expect([w.phys, w.writable, w.executable, w.user]).toEqual([0x9010n, false, false, false]);
  });

  it('PS set in a PML4 entry is reserved', () => {
    const m = new Map([[ROOT, 0x2083n]]);
    expect(new X86_64Paging(memory(m, 0n, 0x100000n).read).walk(ROOT, 0n).fault).toBe('PML4E[0] = 0x2083 has PS set, which is reserved at this level');
  });

  it('detects a table that points back into the walk', () => {
    const m = new Map([
      [ROOT, 0x2003n],
      [0x2000n, ROOT | 3n], // PDPT[0] -> the PML4
    ]);
    const w = new X86_64Paging(memory(m, 0n, 0x100000n).read).walk(ROOT, 0n);
    expect([w.faultKind, w.fault]).toEqual(['loop', 'page-table loop: PDPTE[0] = 0x1003 points back to the PML4 at phys 0x1000']);
  });

  it('names the table that is outside memory and the entry that pointed there', () => {
    const m = new Map([[ROOT, 0x7000003n]]);
    const w = new X86_64Paging(memory(m, 0n, 0x100000n).read).walk(ROOT, 0x1000n);
    expect([w.faultKind, w.fault, w.steps.length]).toEqual(['outside', 'the PDPT at phys 0x7000000 (from PML4E[0] = 0x7000003) is not in the dump', 1]);
  });

  it('clears the SME C-bit from entries', () => {
    const c = 1n << 47n;
    const m = new Map<bigint, bigint>([
      [ROOT, 0x2003n | c],
      [0x2000n, 0x40000083n | c],
    ]);
    const w = new X86_64Paging(memory(m, 0n, 0x100000n).read, { clearMask: c }).walk(ROOT | c, 0x5n);
    expect(w.phys).toBe(0x40000005n);
  });

  it('lets a bug in readPhys (not a DbgError) escape', () => {
    const w = new X86_64Paging(() => {
      throw new TypeError('boom');
    });
    expect(() => w.walk(ROOT, 0n)).toThrow(TypeError);
  });
});
