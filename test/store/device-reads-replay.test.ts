/**
 * Device register reads are inputs of the recording (issues #19, #10): a 32-bit guest (gcc -m32,
 * multiboot) reads its local APIC's ID and timer count and its I/O APIC's version in a loop, with
 * thousands of instructions between reads, so checkpoints fall between them and the replay must
 * re-execute across them. The recording holds every such read at its instruction; ::seek and
 * ::rstep across them land where an unrecorded run of the same guest went (all registers and the
 * log of timer counts in memory). The local APIC's ID, which kernels read at every lock, is no
 * read input: the trace tells its value ('lapic-id') when recording starts and whenever the guest
 * writes it, and replay answers its reads from that. A trace without the reads (as older dbgs
 * wrote) is refused at the read with one message.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayMachine } from '../../src/targets/replay/replay-machine.js';
import { session } from '../targets/emulator-session.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-device-reads-'));
const open: EmulatorTarget[] = [];
afterAll(() => {
  for (const t of open) t.close();
  rmSync(dir, { recursive: true, force: true });
});

// The timer counts down from 0xffffffff (divide by 1, masked): every read of it differs, and each
// is logged at 0x200000 + 4 * (i mod 1024) and folded into %ebx with the ID and the version.
// Every 16 iterations the guest gives its local APIC another ID.
const GUEST = `.text
.align 4
.long 0x1badb002, 0, -0x1badb002
.globl _start
_start:
  movl $0x3f0000, %esp
  movl $0x1ff, 0xfee000f0
  movl $0xb, 0xfee003e0
  movl $0x10000, 0xfee00320
  movl $0xffffffff, 0xfee00380
  movl $1, 0xfec00000
  xorl %ebx, %ebx
  movl $0x200000, %edi
  xorl %esi, %esi
1:
  movl 0xfee00020, %eax
  addl %eax, %ebx
  movl 0xfee00390, %eax
  movl %eax, (%edi,%esi,4)
  xorl %eax, %ebx
  movl 0xfec00010, %eax
  addl %eax, %ebx
  movl $1700, %ecx
2:
  imull $1103515245, %ebx, %ebx
  addl %ecx, %ebx
  loop 2b
  incl %esi
  andl $0x3ff, %esi
  testl $0xf, %esi
  jnz 1b
  movl %esi, %eax
  shll $20, %eax
  movl %eax, 0xfee00020
  jmp 1b
`;

function guest(): string {
  const s = join(dir, 'apic.S');
  writeFileSync(s, GUEST);
  execFileSync('gcc', ['-m32', '-c', s, '-o', join(dir, 'apic.o')]);
  const elf = join(dir, 'apic.elf');
  execFileSync('ld', ['-m', 'elf_i386', '-nostdlib', '-z', 'noexecstack', '-Ttext=0x100000', '-e', '_start', '-o', elf, join(dir, 'apic.o')]);
  return elf;
}

const regsOf = (t: EmulatorTarget): Record<string, bigint> => Object.fromEntries(t.registers(1));
const LOG = 0x200000n;

describe('device register reads in a recording', () => {
  it('are recorded at their instruction; ::seek and ::rstep across them agree with an unrecorded run', { timeout: 300_000 }, async () => {
    const kernel = guest();
    const path = join(dir, 'apic.trace');
    const rec = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(rec);
    const recorder = new EmulatorRecorder(path, { chunkTarget: 100_000, checkpointEvery: 4096 });
    rec.record(recorder);
    const total = 120_000;
    for (let done = 0; done < total; done += 7_000) expect(rec.machine.runSync(7_000n)).toBeUndefined();
    recorder.flush();

    const reader = TraceReader.open(path);
    const reads = reader.inputs(0, reader.end).filter((i) => i.kind === 'mmio-read');
    const ids = reader.inputs(0, reader.end).filter((i) => i.kind === 'lapic-id');
    // two reads an iteration of ~5,100 instructions, each at its instruction; the ID's told
    expect(reads.length).toBeGreaterThan(40);
    expect(new Set(reads.map((r) => r.detail.phys))).toEqual(new Set(['0xfee00390', '0xfec00010']));
    // at the start (ID 0), then after the guest's write in its 16th iteration (ID 1)
    expect(ids.map((i) => i.detail.value)).toEqual([0, 1 << 24]);
    expect(ids[0]!.seq).toBe(0);
    expect(reader.lapicIdAt(0, ids[1]!.seq - 1)).toBe(0);
    expect(reader.lapicIdAt(0, ids[1]!.seq)).toBe(1 << 24);
    reader.close();
    const counts = reads.filter((r) => r.detail.phys === '0xfee00390').map((r) => r.detail.value as number);
    expect(new Set(counts).size).toBe(counts.length);

    // Positions: around some reads (before, at, after), and some anywhere.
    const around = [...reads.filter((_, k) => k % 9 === 4).map((r) => r.seq), ids[1]!.seq - 1];
    const seqs = new Set<number>();
    for (const r of around) for (let d = -1; d <= 2; d++) seqs.add(r + d);
    for (let k = 1; k <= 20; k++) seqs.add((k * 5_881) % total);
    const order = [...seqs].sort((a, b) => a - b);

    // The unrecorded run (the fast engine answers the ID itself there): its state at each position.
    const live = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(live);
    const want = new Map<number, { regs: Record<string, bigint>; log: Buffer }>();
    let at = 0;
    for (const s of order) {
      if (s > at) expect(live.machine.runSync(BigInt(s - at))).toBeUndefined();
      at = s;
      want.set(s, { regs: regsOf(live), log: live.readVirtual(LOG, 4096) });
    }

    const sh = session(rec);
    const shuffled = order.map((s, k) => ({ s, k: (k * 7919) % order.length })).sort((a, b) => a.k - b.k).map((x) => x.s);
    for (const s of shuffled) {
      await sh.run(`::seek ${s}`);
      expect(rec.caps.reverse!.bounds().now).toBe(BigInt(s));
      expect(regsOf(rec)).toEqual(want.get(s)!.regs);
      expect(rec.readVirtual(LOG, 4096).equals(want.get(s)!.log)).toBe(true);
    }
    // reverse steps back across a read: after it, at it, before it
    for (const r of around.slice(0, 4)) {
      await sh.run(`::seek ${r + 2}`);
      for (let d = 1; d >= -1; d--) {
        expect((await sh.run('::rstep'))[0]).toMatch(new RegExp(`^seq ${r + d}: `));
        expect(regsOf(rec)).toEqual(want.get(r + d)!.regs);
        expect(rec.readVirtual(LOG, 4096).equals(want.get(r + d)!.log)).toBe(true);
      }
    }

    // A trace without its device reads (as dbg wrote them before) does not replay across one.
    rec.close();
    open.splice(open.indexOf(rec), 1);
    const old = join(dir, 'old.trace');
    copyFileSync(path, old);
    const db = new Database(old);
    db.prepare("DELETE FROM input WHERE kind = 'mmio-read'").run();
    db.close();
    const oldReader = TraceReader.open(old);
    const replay = new ReplayMachine(oldReader);
    try {
      // a read with a checkpoint before it: reaching the instruction after it re-executes it
      const r = reads.find((x) => oldReader.checkpoint(0, x.seq + 1)!.seq <= x.seq)!;
      let err: unknown;
      try {
        replay.seek(r.seq + 1);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DbgError);
      expect((err as DbgError).code).toBe('corrupt');
      expect((err as DbgError).message).toBe(
        `trace "${old}": re-executing seq ${r.seq} read the device register at ${r.detail.phys} (4 bytes), which the trace does not hold: the trace does not replay (traces recorded before dbg recorded device reads have none: record the guest again)`,
      );
    } finally {
      replay.close();
      oldReader.close();
    }
  });
});
