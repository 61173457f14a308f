/**
 * Recording and time travel (issue 5), on a real guest under Unicorn: bench/recording-guest.ts
 * (a freestanding C loop over a linked list, a hash table, a byte ring and SSE copies, 0.22
 * memory writes per instruction), driven in slices of 10,000 instructions like the emulator's
 * quantum. DBG_BENCH_RECORD_INSNS sets the length (default 10^8).
 *
 * Figures (issue 5's goals):
 *   - recording slowdown: the same guest unrecorded and recorded, alternating 10^7-instruction
 *     stretches in one run so machine load hits both alike;
 *   - trace bytes per instruction, everything included (SQLite file after close);
 *   - reverse single step p50, seek to random seqs (p50 / max), reverse continue to a
 *     watchpoint whose last trigger lies ~10^8 instructions back, who-last-wrote p50.
 */

import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { TraceReader } from '../src/store/trace-reader.js';
import { ReplayMachine } from '../src/targets/replay/replay-machine.js';
import type { BenchResult } from './bench-result.js';
import { GUEST_STACK_TOP, GuestMachine } from './recording-guest.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}

export async function run(): Promise<BenchResult[]> {
  const total = Number(process.env.DBG_BENCH_RECORD_INSNS ?? 1e8);
  const stretch = Math.min(1e7, total);
  const dir = mkdtempSync(join(tmpdir(), 'dbg-bench-rec-'));
  const path = join(dir, 'guest.trace');
  const out: BenchResult[] = [];
  try {
    const plain = new GuestMachine();
    const rec = new GuestMachine();
    const recorder = new EmulatorRecorder(path, { guest: 'bench/recording-guest' });
    rec.setObserver(recorder);
    let tPlain = 0;
    let tRec = 0;
    for (let done = 0; done < total; done += stretch) {
      let t = performance.now();
      plain.run(stretch);
      tPlain += performance.now() - t;
      t = performance.now();
      rec.run(stretch);
      tRec += performance.now() - t;
    }
    const t = performance.now();
    rec.close();
    tRec += performance.now() - t;
    plain.close();
    const plainRate = total / tPlain / 1e3;
    const recRate = total / tRec / 1e3;
    out.push({ name: 'unrecorded guest', value: plainRate, unit: 'M insn/s', baseline: 'Unicorn, 10k-instruction slices' });
    out.push({ name: 'recorded guest (hooks + SQLite)', value: recRate, unit: 'M insn/s' });
    const slowdown = tRec / tPlain;
    out.push({ name: 'recording slowdown', value: slowdown, unit: 'x', goal: '<= 2x', ok: slowdown <= 2, baseline: `unrecorded ${plainRate.toFixed(1)} M insn/s` });
    const bytes = ['', '-wal'].reduce((n, s) => n + (statSync(path + s, { throwIfNoEntry: false })?.size ?? 0), 0);
    out.push({ name: 'trace size', value: bytes / total, unit: 'B/insn', goal: '<= 4', ok: bytes / total <= 4, baseline: `${(bytes / 2 ** 20).toFixed(0)} MiB for ${total} insns` });

    const reader = TraceReader.open(path);
    const replay = new ReplayMachine(reader);
    // Reverse single steps from deep in the history.
    const start = Math.floor(reader.end * 0.6) + 12345;
    replay.seek(start);
    const steps: number[] = [];
    for (let s = start - 1; s > start - 2001; s--) {
      const t0 = performance.now();
      replay.seek(s);
      replay.registers(0);
      steps.push(performance.now() - t0);
    }
    const stepP50 = pct(steps, 50);
    out.push({ name: 'reverse single step p50', value: stepP50, unit: 'ms', goal: '<= 1 ms', ok: stepP50 <= 1, baseline: `p90 ${pct(steps, 90).toFixed(3)} ms, 2000 steps` });

    // Seeks to random seqs all over the history.
    const seeks: number[] = [];
    let x = 987654321;
    for (let i = 0; i < 40; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const s = reader.first + (x % (reader.end - reader.first));
      const t0 = performance.now();
      replay.seek(s);
      seeks.push(performance.now() - t0);
    }
    const seekMax = Math.max(...seeks);
    out.push({ name: 'seek to a random seq (max of 40)', value: seekMax, unit: 'ms', goal: '<= 50 ms', ok: seekMax <= 50, baseline: `p50 ${pct(seeks, 50).toFixed(2)} ms` });

    // Reverse continue to a write watchpoint last triggered near the start of the run: a word
    // written early (by _start's prologue or the first iterations) and never again.
    replay.seek(reader.end);
    const early = reader.writesTo(Number(GUEST_STACK_TOP) - 4096, 4096, reader.first, reader.first + 2000);
    const once = early.find((w) => reader.lastWriteInRange(w.phys, w.len, reader.end)?.seq === w.seq);
    if (once) {
      const t0 = performance.now();
      const hit = reader.lastWriteInRange(once.phys, once.len, reader.end)!;
      replay.seek(hit.seq);
      const rc = performance.now() - t0;
      out.push({
        name: 'reverse continue to a watchpoint',
        value: rc,
        unit: 'ms',
        goal: '<= 50 ms',
        ok: rc <= 50,
        baseline: `last trigger ${reader.end - hit.seq} insns back (lookup + seek there)`,
      });
    } else {
      out.push({ name: 'reverse continue to a watchpoint', value: NaN, unit: 'ms', goal: '<= 50 ms', ok: false, baseline: 'no word of the stack written only at the start' });
    }

    // Who last wrote A at or before S: random written addresses, random S.
    const addrs = reader.writesTo(0x100000, 0x20000, reader.first, Math.min(reader.end, reader.first + 200_000)).map((w) => w.phys);
    const who: number[] = [];
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const a = addrs[x % addrs.length]!;
      const s = reader.first + (x % (reader.end - reader.first));
      const t1 = performance.now();
      reader.lastWrite(a, s + 1);
      who.push(performance.now() - t1);
    }
    const whoP50 = pct(who, 50);
    out.push({ name: 'who last wrote A at or before S p50', value: whoP50, unit: 'ms', goal: '<= 0.1 ms', ok: whoP50 <= 0.1, baseline: `p99 ${pct(who, 99).toFixed(3)} ms` });
    replay.close();
    reader.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
