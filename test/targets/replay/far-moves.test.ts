/**
 * Far moves of a replay's RAM (replay-machine.ts, syncMemory): over many lines, the chunks between
 * are read in one pass of their rows (TraceReader.rowImages) instead of line by line. A guest that
 * fills 8 MiB again and again (rep stosl, as a kernel clears its pages) is recorded; the replay
 * opened at the end, moved back to the middle and forward again holds the live machine's RAM
 * as it was at those positions.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { repoRoot } from '../../helpers/repo.js';
import { EmulatorTarget } from '../../../src/targets/emulator/emulator-target.js';
import { EmulatorRecorder } from '../../../src/store/emulator-recorder.js';
import { ReplayTarget } from '../../../src/targets/replay/replay-target.js';
import { TraceReader } from '../../../src/store/trace-reader.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-far-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BUF = 0x200000;
const SIZE = 8 << 20;

function build(): string {
  const src = join(dir, 'fill.S');
  writeFileSync(
    src,
    `#include "${join(repoRoot, 'test', 'fixtures-src', 'i386', 'multiboot.h')}"
.text
.code32
.globl _start
_start:
  mov $0x9000, %esp
  mov $0x01010101, %eax
pass:
  mov $${BUF}, %edi
  mov $${SIZE / 4}, %ecx
  cld
  rep stosl
  add $0x01010101, %eax
  jmp pass
`,
  );
  const obj = join(dir, 'fill.o');
  const elf = join(dir, 'fill.elf');
  execFileSync('gcc', ['-m32', '-c', src, '-o', obj]);
  execFileSync('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-z', 'noexecstack', '-T', join(repoRoot, 'test', 'fixtures-src', 'i386', 'link.ld'), '-o', elf, obj]);
  return elf;
}

describe('a replay moved far over many lines', () => {
  it('holds the recorded RAM at the end, in the middle and at the start, read in one pass of the rows between', { timeout: 300_000 }, async () => {
    const elf = build();
    const path = join(dir, 'fill.trace');
    const live = EmulatorTarget.open(elf, { ramBytes: 32 << 20 });
    live.record(new EmulatorRecorder(path, { guest: 'fill.elf', symbols: elf, chunkTarget: 500_000, rows: 'eager' }));
    const m = live.machine;
    // a pass is 2 M iterations of rep stosl: the middle of the second pass, then the end of the third
    while (m.seq < 3_000_000n) expect(m.runSync(100_000n)).toBeUndefined();
    const midSeq = m.seq;
    const mid = Buffer.from(m.readPhysical(BUF_N, SIZE));
    while (m.seq < 5_500_000n) expect(m.runSync(100_000n)).toBeUndefined();
    const endSeq = m.seq;
    const end = Buffer.from(m.readPhysical(BUF_N, SIZE));
    live.close();
    expect(mid.readUInt32LE(0)).toBe(0x02020202);
    expect(mid.readUInt32LE(SIZE - 4)).toBe(0x01010101);
    expect(end.readUInt32LE(0)).toBe(0x03030303);

    const far = vi.spyOn(TraceReader.prototype, 'rowImages');
    const t = ReplayTarget.open(path, { symbols: [elf] });
    try {
      const r = t.caps.reverse!;
      expect(r.bounds().now).toBe(endSeq);
      expect(t.caps.physical!.readPhysical(BUF_N, SIZE).equals(end)).toBe(true);
      await r.seek(midSeq);
      expect(t.caps.physical!.readPhysical(BUF_N, SIZE).equals(mid)).toBe(true);
      await r.seek(endSeq);
      expect(t.caps.physical!.readPhysical(BUF_N, SIZE).equals(end)).toBe(true);
      await r.seek(0n);
      expect(t.caps.physical!.readPhysical(BUF_N, SIZE).equals(Buffer.alloc(SIZE))).toBe(true);
      expect(far).toHaveBeenCalled();
    } finally {
      t.close();
      far.mockRestore();
    }
  });
});

const BUF_N = BigInt(BUF);
