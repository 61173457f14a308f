/**
 * A replay's virtual reads go through a TLB and through paging states kept for the position the
 * machine holds (replay-target.ts, syncView): after any move they must be what a replay opened
 * right there reads. A guest that builds its own page tables and maps one virtual page onto three
 * physical pages in turn is recorded; the replay reads that page at each mapping, from the end
 * (where the TLB was filled with the last mapping) back and forth, against fresh replays.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../../src/targets/replay/replay-target.js';
import { asmGuest64 } from '../asm-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-xlat-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The virtual page remapped: identity-mapped (zeros) first, then onto pageA (0xaa), then pageB (0xbb). */
const V = 0x1ff000;

/** Store into `entry` the present, writable entry for the page at `page` (assembly). */
const point = (entry: string, page: string): string => `  lea ${page}(%rip), %rax\n  or $3, %rax\n  mov %rax, ${entry}(%rip)\n`;

const prog = `
.globl _start, mappedA, mappedB
_start:
  mov $0x80000, %rsp
  lea pt(%rip), %rdi
  xor %ecx, %ecx
fill:
  mov %rcx, %rax
  shl $12, %rax
  or $3, %rax
  mov %rax, (%rdi,%rcx,8)
  inc %ecx
  cmp $512, %ecx
  jne fill
${point('pd', 'pt')}${point('pdpt', 'pd')}${point('pml4', 'pdpt')}  lea pml4(%rip), %rax
  mov %rax, %cr3
${point(`pt+${(V >> 12) * 8}`, 'pageA')}  invlpg ${V}
mappedA:
  nop
${point(`pt+${(V >> 12) * 8}`, 'pageB')}  invlpg ${V}
mappedB:
  nop
  cli
  hlt
.data
.balign 4096
pageA: .fill 4096, 1, 0xaa
pageB: .fill 4096, 1, 0xbb
.bss
.balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
pt: .skip 4096
`;

describe('a replay whose guest changes its page tables', () => {
  it('reads a remapped page as it was mapped at each position, after seeks and steps both ways', { timeout: 120_000 }, async () => {
    const elf = asmGuest64(dir, 'remap', prog);
    const path = join(dir, 'remap.trace');
    const live = EmulatorTarget.open(elf, { ramBytes: 4 << 20 });
    live.record(new EmulatorRecorder(path, { guest: 'remap.elf', symbols: elf }));
    const m = live.machine;
    expect(m.runSync(100_000n)?.reason.kind).toBe('halted');
    live.close();

    const t = ReplayTarget.open(path, { symbols: [elf] });
    try {
      const seqOf = (label: string): number => Number(t.caps.history!.when(t.symbols.lookup(label), 1).seqs[0]);
      const a = seqOf('mappedA');
      const b = seqOf('mappedB');
      const end = t.position;
      const r = t.caps.reverse!;
      const first = (): number => t.readVirtual(BigInt(V), 1)[0]!;
      // The end: pageB. Then back to pageA's time, a step on (still pageA), three back (before the
      // store into the page table that mapped pageA: the identity mapping), on to pageB's.
      expect(first()).toBe(0xbb);
      await r.seek(BigInt(a));
      expect(first()).toBe(0xaa);
      await t.caps.execution!.step(1);
      expect(first()).toBe(0xaa);
      for (let i = 0; i < 3; i++) await r.stepBack(1);
      expect(first()).toBe(0);
      await r.seek(BigInt(b));
      expect(first()).toBe(0xbb);
      for (const seq of [a - 8, a, a + 1, b, end, a]) {
        await r.seek(BigInt(seq));
        const want = await fresh(path, elf, seq);
        expect(t.readVirtual(BigInt(V), 64).equals(want.bytes), `seq ${seq}`).toBe(true);
        expect(t.caps.physical!.translate(BigInt(V), 1).phys, `seq ${seq}`).toBe(want.phys);
      }
    } finally {
      t.close();
    }
  });
});

/** What a replay opened at `seq` reads at V: nothing cached from another position. */
async function fresh(path: string, elf: string, seq: number): Promise<{ bytes: Buffer; phys: bigint | undefined }> {
  const u = ReplayTarget.open(path, { symbols: [elf] });
  try {
    await u.caps.reverse!.seek(BigInt(seq));
    return { bytes: u.readVirtual(BigInt(V), 64), phys: u.caps.physical!.translate(BigInt(V), 1).phys };
  } finally {
    u.close();
  }
}
