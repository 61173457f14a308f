/**
 * Recording and time travel (issue 5), on the sample kernel (dumps/kernel.elf booted with the
 * `nobug` command line, so it schedules its tasks on the timer forever) on the dbg machine, the
 * recorder attached through the emulator's observer contract. Without the kernel (not built) it
 * falls back to bench/recording-guest.ts (a freestanding C loop, 0.22 writes per instruction).
 * DBG_BENCH_RECORD_INSNS sets the length (default 10^8). For iterating on the query figures,
 * DBG_BENCH_TRACE=FILE keeps the recorded trace in FILE, and when FILE exists already reuses it
 * (no recording, no slowdown or size figures).
 *
 * Figures (issue 5's goals):
 *   - recording slowdown: the same guest unrecorded and recorded, alternating 10^7-instruction
 *     stretches in one run so machine load hits both alike;
 *   - trace bytes per instruction, everything included (SQLite file after close);
 *   - reverse single step p50, seek to random seqs (p50 / max), reverse continue to a
 *     watchpoint whose last trigger lies ~10^8 instructions back, who-last-wrote p50;
 *   - the same reverse continue through gdb (issue 15): `dbg replay TRACE --gdb` in its own process,
 *     gdb's `watch` on a kernel-image line written at boot only and `reverse-continue` from the end,
 *     timed inside gdb, against the same search in process (ReplayTarget: watchpoint, resumeBack);
 *   - on a LIVE recording guest (EmulatorTarget.record, DBG_BENCH_LIVE_INSNS, default 10^7 and 10^8): the
 *     first reverse step after the guest ran (commits the open chunk, opens the trace), reverse
 *     single step p50, and from the past back to the present plus one live step.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { removeRowsFiles } from '../src/store/rows-file.js';
import { TraceReader } from '../src/store/trace-reader.js';
import { ReplayMachine } from '../src/targets/replay/replay-machine.js';
import type { BenchResult } from './bench-result.js';
import { GuestMachine } from './recording-guest.js';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../src/targets/replay/replay-target.js';
import { median, startServer, stop, timeGdb } from './gdb-bench.js';

interface Runner {
  run(n: number): Promise<void>;
  close(): void;
}

const here = dirname(fileURLToPath(import.meta.url));
const kernel = [join(here, '..', 'dumps', 'kernel.elf'), join(here, '..', '..', 'dumps', 'kernel.elf')].find((p) => existsSync(p));

/** A guest on the dbg machine, recorded when `record` is given; `what` names it in errors. */
function emulatorRunner(elf: string, cmdline: string | undefined, what: string, record?: EmulatorRecorder): Runner {
  const t = EmulatorTarget.open(elf, cmdline === undefined ? {} : { cmdline });
  // as `dbg live` records: the recorder and the device marks ::discard puts the devices back from
  if (record) t.record(record);
  return {
    async run(n) {
      const st = await t.machine.run({ vcpu: 0, count: n });
      if (st.reason.kind !== 'step') throw new Error(`${what} stopped: ${st.reason.kind}`);
    },
    close: () => t.close(),
  };
}

const kernelRunner = (record?: EmulatorRecorder): Runner => emulatorRunner(kernel!, 'nobug', 'the sample kernel', record);

function guestRunner(record?: EmulatorRecorder): Runner {
  const m = new GuestMachine();
  if (record) m.setObserver(record);
  return { run: async (n) => m.run(n), close: () => m.close() };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}

export async function run(): Promise<BenchResult[]> {
  const total = Number(process.env.DBG_BENCH_RECORD_INSNS ?? 1e8);
  const dir = mkdtempSync(join(tmpdir(), 'dbg-bench-rec-'));
  const keep = process.env.DBG_BENCH_TRACE;
  const path = keep ?? join(dir, 'guest.trace');
  const out: BenchResult[] = [];
  try {
    if (!keep || !existsSync(keep)) out.push(...(await record(path, total)));
    out.push(...(await queryFigures(path)));
    if (kernel) out.push(...(await gdbReverseContinue(path)));
    if (kernel) out.push(...(await liveFigures(join(dir, 'live.trace'))));
    out.push(...(await storeLoop(dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** Record `total` instructions into `path`, alternating with an unrecorded twin: slowdown and size. */
async function record(path: string, total: number): Promise<BenchResult[]> {
  const guest = kernel ? 'the sample kernel (dumps/kernel.elf, nobug)' : 'bench/recording-guest';
  const out = await slowdown(kernel ? kernelRunner : guestRunner, path, total, { guest, ...(kernel ? { symbols: kernel } : {}) }, '', 1.5);
  const bytes = ['', '-wal'].reduce((n, s) => n + (statSync(path + s, { throwIfNoEntry: false })?.size ?? 0), 0);
  out.push({ name: 'trace size', value: bytes / total, unit: 'B/insn', goal: '<= 1 (issue 10)', ok: bytes / total <= 1, baseline: `${(bytes / 2 ** 20).toFixed(0)} MiB for ${total} insns` });
  return out;
}

/**
 * Run `make()` and `make(recorder)` for `total` instructions each, in alternating 10^7-instruction
 * stretches so machine load hits both alike; their rates and the slowdown (`goal`: at most this).
 */
async function slowdown(make: (record?: EmulatorRecorder) => Runner, path: string, total: number, meta: { guest: string; symbols?: string }, label: string, goal: number): Promise<BenchResult[]> {
  const stretch = Math.min(1e7, total);
  const plain = make();
  const rec = make(new EmulatorRecorder(path, meta));
  let tPlain = 0;
  let tRec = 0;
  for (let done = 0; done < total; done += stretch) {
    let t = performance.now();
    await plain.run(stretch);
    tPlain += performance.now() - t;
    t = performance.now();
    await rec.run(stretch);
    tRec += performance.now() - t;
  }
  const t = performance.now();
  rec.close(); // the last chunk and the WAL checkpoint count as recording time
  tRec += performance.now() - t;
  plain.close();
  const plainRate = total / tPlain / 1e3;
  const recRate = total / tRec / 1e3;
  const ratio = tRec / tPlain;
  return [
    { name: `unrecorded guest${label}`, value: plainRate, unit: 'M insn/s', baseline: `${meta.guest}, ${total} insns, 10k-instruction quantum` },
    { name: `recorded guest (hooks + SQLite)${label}`, value: recRate, unit: 'M insn/s' },
    { name: `recording slowdown${label}`, value: ratio, unit: 'x', goal: `<= ${goal}x (issue 10)`, ok: ratio <= goal, baseline: `unrecorded ${plainRate.toFixed(1)} M insn/s` },
  ];
}

/**
 * The recorder's worst case (bench/guests/store-loop.S: a store every 13 instructions), built by
 * gcc -m32 into bench/.work, on the dbg machine: the slowdown against issue 10's <= 2x.
 */
async function storeLoop(dir: string): Promise<BenchResult[]> {
  const total = Number(process.env.DBG_BENCH_STORE_LOOP_INSNS ?? 1e8);
  if (total === 0) return [];
  const src = join(here, '..', 'bench', 'guests', 'store-loop.S');
  const alt = join(here, '..', '..', 'bench', 'guests', 'store-loop.S');
  const source = existsSync(src) ? src : alt;
  if (!existsSync(source)) return [];
  const repo = dirname(dirname(dirname(source)));
  const work = join(repo, 'bench', '.work');
  mkdirSync(work, { recursive: true });
  const elf = join(work, 'store-loop.elf');
  const obj = join(dir, 'store-loop.o');
  execFileSync('gcc', ['-m32', '-c', source, '-o', obj]);
  execFileSync('ld', ['-m', 'elf_i386', '--no-warn-rwx-segments', '-z', 'noexecstack', '-T', join(repo, 'test', 'fixtures-src', 'i386', 'link.ld'), '-o', elf, obj]);
  const runner = (record?: EmulatorRecorder): Runner => emulatorRunner(elf, undefined, 'the store loop', record);
  return slowdown(runner, join(dir, 'store-loop.trace'), total, { guest: 'bench/guests/store-loop.S', symbols: elf }, ', tight store loop', 2);
}

/** Reverse steps, seeks, watchpoints and history queries on the recorded trace at `path`. */
async function queryFigures(path: string): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  {
    let x = 987654321;
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
    for (let i = 0; i < 40; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const s = reader.first + (x % (reader.end - reader.first));
      const t0 = performance.now();
      replay.seek(s);
      seeks.push(performance.now() - t0);
    }
    const seekMax = Math.max(...seeks);
    out.push({ name: 'seek to a random seq (max of 40)', value: seekMax, unit: 'ms', goal: '<= 50 ms', ok: seekMax <= 50, baseline: `p50 ${pct(seeks, 50).toFixed(2)} ms` });

    // Reverse continue to a write watchpoint last triggered near the start of the run: a line
    // written in the first chunk only (boot-time data), watched from the end of the history.
    replay.seek(reader.end);
    const once = linesWrittenAtStartOnly(reader)[0];
    if (once !== undefined) {
      const t0 = performance.now();
      const hit = reader.lastWriteInRange(Number(once) * 64, 64, reader.end)!;
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
      out.push({ name: 'reverse continue to a watchpoint', value: NaN, unit: 'ms', goal: '<= 50 ms', ok: false, baseline: 'no line written only at the start' });
    }

    // Who last wrote A at or before S: random written addresses, random S.
    // (a lazy-rows trace: the lines of the chunks whose rows the queries above made)
    const addrs = reader.sql('SELECT DISTINCT line FROM mem').rows.map((r) => Number(r[0]) * 64);
    const who: number[] = [];
    for (let i = 0; i < 2000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const a = addrs[x % addrs.length]! + (x % 8) * 8;
      const s = reader.first + (x % (reader.end - reader.first));
      const t1 = performance.now();
      reader.lastWrite(a, s + 1);
      who.push(performance.now() - t1);
    }
    const whoP50 = pct(who, 50);
    out.push({ name: 'who last wrote A at or before S p50', value: whoP50, unit: 'ms', goal: '<= 0.1 ms', ok: whoP50 <= 0.1, baseline: `p99 ${pct(who, 99).toFixed(3)} ms` });

    // `::history -n 3` on the most written line: the first writes, costing what they return. The
    // baseline is the whole history of that line (what the query cost before it was lazy).
    // (a lazy-rows trace: the most written in the last chunk)
    if (reader.lazyRows) reader.ensureRows(reader.chunkCount - 1);
    const hot = Number(reader.sql(`SELECT line FROM mem_mask ${reader.lazyRows ? `WHERE chunk = ${reader.chunkCount - 1} ` : ''}GROUP BY line ORDER BY count(*) DESC LIMIT 1`).rows[0]![0]) * 64;
    let t2 = performance.now();
    let all = 0;
    for (const _ of reader.iterWrites(hot, 8)) all++;
    const allMs = performance.now() - t2;
    // A new reader of a history no reader made rows of (its rows file removed: the query makes
    // the chunk's), then one after it (the rows kept beside the trace: rows-file.ts).
    // Five readers each (medians: one query of ~10 ms is a single sample of the machine's noise).
    for (const kept of [false, true]) {
      const ms: number[] = [];
      let heapMiB = 0;
      for (let run = 0; run < 5; run++) {
        if (!kept) removeRowsFiles(path);
        const fresh = TraceReader.open(path); // cold caches, as a new session has
        globalThis.gc?.();
        // The collection forced to measure the heap goes on sweeping on V8's threads for tens of
        // milliseconds, on the two cores the query runs on (medians at load 2.3-2.7: 12.7 ms
        // timed right after it, 10.1 ms after this wait, 9.5 ms with no forced collection). It is
        // the bench's, not the query's: a session's first query follows no forced collection.
        await new Promise((r) => setTimeout(r, 60));
        const heap0 = process.memoryUsage().heapUsed + process.memoryUsage().external;
        t2 = performance.now();
        const three = fresh.writesTo(hot, 8, fresh.first, fresh.end, 4);
        ms.push(performance.now() - t2);
        heapMiB = Math.max(heapMiB, (process.memoryUsage().heapUsed + process.memoryUsage().external - heap0) / 2 ** 20);
        fresh.close(); // (the last cold reader's close keeps the rows the kept runs read)
        if (three.length < 4) throw new Error(`the hottest line has ${three.length} writes`);
      }
      const firstMs = pct(ms, 50);
      out.push({
        name: `::history -n 3 on the most written 8 bytes, ${kept ? 'a new reader, the rows kept by the one before' : 'a new reader, no rows made before (cold)'}`,
        value: firstMs,
        unit: 'ms',
        goal: '<= 10 ms, <= +10 MiB',
        ok: firstMs <= 10 && heapMiB <= 10,
        baseline: `median of 5 readers (${ms.map((m) => m.toFixed(1)).join('/')}); +${heapMiB.toFixed(1)} MiB at most; all ${all} writes of the range: ${allMs.toFixed(0)} ms`,
      });
    }
    replay.close();
    reader.close();
  }
  return out;
}

/**
 * Lines written in the first chunk and never after (boot-time data), whose last write a watchpoint
 * search finds ~the whole history back. A lazy-rows trace knows which pages each chunk wrote, and
 * makes the first chunk's rows to see its lines.
 */
function linesWrittenAtStartOnly(reader: TraceReader): number[] {
  if (!reader.lazyRows) return reader.sql('SELECT line FROM mem GROUP BY line HAVING max(chunk) = 0').rows.map((r) => Number(r[0]));
  const pages = new Set(reader.sql('SELECT page FROM page GROUP BY page HAVING max(chunk) = 0').rows.map((r) => Number(r[0])));
  reader.ensureRows(0);
  return reader.sql('SELECT DISTINCT line FROM mem WHERE chunk = 0 ORDER BY line').rows.map((r) => Number(r[0])).filter((l) => pages.has(Math.floor(l / 64)));
}

/** The sample kernel's image: virtual = physical + this (its link address above its load address). */
const KERNEL_VIRT = 0xffffffff80000000n;

/**
 * gdb's reverse-continue to a write watchpoint ~10^8 instructions back, through `dbg replay --gdb`
 * (a process of its own, as a user runs it), against the same search in process. The watched
 * 64 bytes are a line of the kernel image written in the first chunk only.
 */
async function gdbReverseContinue(path: string): Promise<BenchResult[]> {
  const reader = TraceReader.open(path);
  let line: number | undefined;
  try {
    line = linesWrittenAtStartOnly(reader).find((l) => l >= 0x4000 && l < 0x5000);
  } finally {
    reader.close();
  }
  if (line === undefined) return [{ name: 'gdb reverse-continue to a watchpoint', value: NaN, unit: 'ms', goal: '<= 50 ms', ok: false, baseline: 'no kernel-image line written only at the start' }];
  const virt = KERNEL_VIRT + BigInt(line * 64);
  const runs = 5;
  // In process: the replay target at the end of its history, a write watchpoint, continue back.
  const inProcess: number[] = [];
  let back = 0n;
  for (let i = 0; i < runs; i++) {
    const t = ReplayTarget.open(path, { symbols: [kernel!] });
    try {
      const end = t.status().seq!;
      t.caps.breakpoints!.addWatchpoint(virt, 64, 'write');
      const t0 = performance.now();
      const st = await t.caps.reverse!.resumeBack();
      inProcess.push(performance.now() - t0);
      if (st.reason.kind !== 'watchpoint') throw new Error(`reverse continue in process stopped for ${st.reason.kind}`);
      back = end - st.seq!;
    } finally {
      t.close();
    }
  }
  // Through gdb: a fresh server each run (its own process, cold code); first with the rows the
  // runs before made kept beside the trace (rows-file.ts), as in process after its first run,
  // then with none (each server makes the first chunk's rows again).
  const dbg = join(dirname(dirname(kernel!)), 'bin', 'dbg');
  const viaGdb: number[] = [];
  const viaGdbCold: number[] = [];
  for (const cold of [false, true]) {
    for (let i = 0; i < runs; i++) {
      if (cold) removeRowsFiles(path);
      const server = await startServer(process.execPath, [dbg, 'replay', path, '--symbols', kernel!, '--gdb', '127.0.0.1:0'], /listening on 127\.0\.0\.1:(\d+)/);
      try {
        const cmds = [
          `watch -l *(unsigned char (*)[64])0x${virt.toString(16)}`,
          'python import time; t0 = time.monotonic()',
          'reverse-continue',
          'python print("TIMED %.6f" % (time.monotonic() - t0))',
        ];
        (cold ? viaGdbCold : viaGdb).push((await timeGdb(server.port, kernel!, cmds)) * 1000);
      } finally {
        await stop(server.child);
      }
    }
  }
  const ip = median(inProcess);
  const g = median(viaGdb);
  const list = (xs: number[]) => xs.map((x) => x.toFixed(1)).join('/');
  return [
    { name: 'reverse continue to a watchpoint, in process', value: ip, unit: 'ms', baseline: `${back} insns back, 64 bytes at 0x${virt.toString(16)}; runs ${list(inProcess)}` },
    {
      name: 'gdb reverse-continue to that watchpoint',
      value: g,
      unit: 'ms',
      goal: '<= in process + 5 ms, <= 50 ms',
      ok: g <= ip + 5 && g <= 50,
      baseline: `dbg replay --gdb, timed inside gdb, the first chunk's rows kept beside the trace; runs ${list(viaGdb)}`,
    },
    {
      name: 'gdb reverse-continue to that watchpoint, no rows made before (cold)',
      value: median(viaGdbCold),
      unit: 'ms',
      goal: '<= 50 ms',
      ok: median(viaGdbCold) <= 50,
      baseline: `each server makes the first chunk's rows; runs ${list(viaGdbCold)}`,
    },
  ];
}

/**
 * Time travel on a live guest that records: the view goes back while the machine stays live. After
 * each length of DBG_BENCH_LIVE_INSNS (a comma-separated list; default 10^7 and 10^8, issue 10's
 * two lengths for the first reverse step; the other figures after the first length only).
 */
async function liveFigures(path: string): Promise<BenchResult[]> {
  const lengths = (process.env.DBG_BENCH_LIVE_INSNS ?? '1e7,1e8').split(',').map(Number).filter((n) => n > 0);
  const out: BenchResult[] = [];
  for (const [i, n] of lengths.entries()) {
    rmSync(path, { force: true });
    out.push(...(await liveFiguresAfter(path, n, i === 0)));
  }
  return out;
}

async function liveFiguresAfter(path: string, n: number, all: boolean): Promise<BenchResult[]> {
  const t = EmulatorTarget.open(kernel!, { cmdline: 'nobug' });
  try {
    t.record(new EmulatorRecorder(path, { guest: 'sample kernel', symbols: kernel! }));
    const st = await t.machine.run({ vcpu: 0, count: n });
    if (st.reason.kind !== 'step') throw new Error(`the sample kernel stopped: ${st.reason.kind}`);
    await t.caps.execution!.step(1); // a stop as the REPL makes them
    const rev = t.caps.reverse!;
    let t0 = performance.now();
    await rev.stepBack(1);
    const first = performance.now() - t0;
    const firstRow: BenchResult = { name: `live: first reverse step after running ${n.toExponential().replace('e+', 'e')} insns`, value: first, unit: 'ms', goal: '<= 50 ms', ok: first <= 50, baseline: `${n} insns recorded live; commits the open chunk and opens the trace` };
    if (!all) return [firstRow];
    const steps: number[] = [];
    for (let i = 0; i < 2000; i++) {
      t0 = performance.now();
      await rev.stepBack(1);
      steps.push(performance.now() - t0);
    }
    t0 = performance.now();
    await rev.seek(rev.bounds().last); // back to the present
    const live = await t.caps.execution!.step(1); // and a live step from there
    const back = performance.now() - t0;
    if (live.seq !== BigInt(n) + 2n) throw new Error(`live step after going back landed at seq ${live.seq}, expected ${BigInt(n) + 2n}`);
    const p50 = pct(steps, 50);
    return [
      firstRow,
      { name: 'live: reverse single step p50', value: p50, unit: 'ms', goal: '<= 1 ms', ok: p50 <= 1, baseline: `p90 ${pct(steps, 90).toFixed(3)} ms, 2000 steps` },
      { name: 'live: back to the present from 2001 steps back, then a live step', value: back, unit: 'ms' },
    ];
  } finally {
    t.close();
  }
}
