/**
 * xv6 (mit-pdos/xv6-public) to its shell prompt, unrecorded, against QEMU TCG on the same machine
 * (issue 19: <= 2x). Opt-in as test/targets/emulator/xv6.test.ts is: DBG_XV6_DIR names a
 * directory holding xv6's `kernel` and `fs.img` (`make kernel fs.img`, gcc -m32, -Werror off).
 * QEMU runs the vCPUs of a 2-CPU guest on two host threads (MTTCG), dbg on one: the 2-CPU row
 * also gives QEMU with -accel tcg,thread=single. Both sides are timed from the start of the machine (dbg: EmulatorTarget.open, the engine dbg
 * live runs; QEMU: the process spawn) to `$ ` on COM1; three runs each, interleaved, medians.
 *
 * Recorded (issue 19: within issue 10's recording goal, <= 1.5x of the unrecorded run): the same
 * boot with a recorder attached as `dbg live` attaches it (the writer's thread started as the
 * machine is made, then EmulatorTarget.record), timed from before both to `$ `
 * plus closing the trace (its last chunk and WAL checkpoint count as recording time), against the
 * unrecorded boot, interleaved, five runs each: with three, the median followed the shared host
 * (the same unrecorded boot took 250 to 470 ms minutes apart). Beside it, the CPU time of the
 * guest's thread (the bench's) for both, which the host moves less, and the process's (every
 * thread: the trace writer's runs on the other core, and under load takes the guest's CPU).
 */

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { prewarmTraceWriter } from '../src/store/trace-writer.js';
import type { BenchResult } from './bench-result.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The CPU time (ms) of the calling thread so far, where Linux says (schedstat); else NaN. */
function threadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** The guest thread's CPU time (ms) of the last dbgToPrompt, and the whole process's (every thread: the trace writer's, V8's). */
let lastCpu = NaN;
let lastProcessCpu = NaN;

/** `trace`: record into this file, as `dbg live` does by default. */
async function dbgToPrompt(dir: string, cpus: number, trace?: string): Promise<number> {
  const c0 = threadCpuMs();
  const p0 = process.cpuUsage();
  const t0 = performance.now();
  // as dbg live does: the trace writer's thread starts while the machine is made (timed too)
  if (trace) prewarmTraceWriter();
  const t = EmulatorTarget.open(join(dir, 'kernel'), { ramBytes: 512 << 20, cpus, disks: [undefined, { path: join(dir, 'fs.img') }] });
  if (trace) t.record(new EmulatorRecorder(trace, { guest: 'xv6', symbols: join(dir, 'kernel') }));
  let open = true;
  try {
    const m = t.machine;
    while (!m.console().includes('$ ')) {
      const stop = m.runSync(1_000_000n);
      if (stop) throw new Error(`xv6 stopped before its prompt: ${JSON.stringify(stop.reason, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
      if (m.seq > 3_000_000_000n) throw new Error('xv6 did not reach its prompt in 3e9 instructions');
    }
    t.close(); // a trace's last chunk and WAL checkpoint count as recording time
    open = false;
    const ms = performance.now() - t0;
    lastCpu = threadCpuMs() - c0;
    const p = process.cpuUsage(p0);
    lastProcessCpu = (p.user + p.system) / 1000;
    return ms;
  } finally {
    if (open) t.close();
  }
}

/** `single`: one host thread for every vCPU (-accel tcg,thread=single), as dbg runs them. */
function qemuToPrompt(dir: string, cpus: number, single = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const args = ['-kernel', join(dir, 'kernel'), '-drive', `file=${join(dir, 'fs.img')},index=1,media=disk,format=raw,snapshot=on`];
    // One CPU per socket: SeaBIOS's MP table has one entry per package, and QEMU 7.2's `-smp 2`
    // (two cores in one socket) would run xv6 on one CPU.
    const q = spawn('qemu-system-i386', [...args, '-m', '512', '-smp', `${cpus},sockets=${cpus}`, '-accel', single ? 'tcg,thread=single' : 'tcg', '-serial', 'stdio', '-display', 'none', '-monitor', 'none']);
    let out = '';
    let ms: number | undefined;
    const timer = setTimeout(() => q.kill(), 120_000);
    q.stdout.on('data', (b: Buffer) => {
      out += b.toString('latin1');
      if (ms === undefined && out.includes('$ ')) {
        ms = performance.now() - t0;
        q.kill();
        if (cpus > 1 && !out.includes(`cpu${cpus - 1}: starting`)) reject(new Error(`QEMU started fewer than ${cpus} CPUs: ${out.slice(0, 200)}`));
      }
    });
    q.on('error', reject);
    q.on('exit', () => {
      clearTimeout(timer);
      if (ms === undefined) reject(new Error(`QEMU did not reach xv6's prompt: ${out.slice(-200)}`));
      else resolve(ms);
    });
  });
}

export async function run(): Promise<BenchResult[]> {
  const dir = process.env.DBG_XV6_DIR;
  if (!dir || !existsSync(join(dir, 'kernel')) || !existsSync(join(dir, 'fs.img'))) {
    process.stderr.write('bench: xv6: DBG_XV6_DIR does not name a directory with xv6\'s kernel and fs.img (build mit-pdos/xv6-public: make kernel fs.img): skipped\n');
    return [];
  }
  const rows: BenchResult[] = [];
  for (const cpus of [1, 2]) {
    const ours: number[] = [];
    const qemu: number[] = [];
    const single: number[] = [];
    for (let i = 0; i < 3; i++) {
      ours.push(await dbgToPrompt(dir, cpus));
      qemu.push(await qemuToPrompt(dir, cpus));
      if (cpus > 1) single.push(await qemuToPrompt(dir, cpus, true));
    }
    const ratio = median(ours) / median(qemu);
    rows.push({
      name: `xv6 to its shell prompt, ${cpus} CPU${cpus > 1 ? 's' : ''}, unrecorded (fast engine), vs QEMU TCG`,
      value: ratio,
      unit: 'x',
      goal: '<= 2x',
      ok: ratio <= 2,
      baseline:
        `dbg ${(median(ours) / 1000).toFixed(2)} s, qemu-system-i386 -accel tcg ${(median(qemu) / 1000).toFixed(2)} s` +
        (single.length ? ` (its vCPUs on ${cpus} host threads; on one, as dbg runs them, tcg,thread=single: ${(median(single) / 1000).toFixed(2)} s)` : '') +
        '; medians of 3',
    });
  }
  const scratch = mkdtempSync(join(tmpdir(), 'dbg-xv6-'));
  try {
    for (const cpus of [1, 2]) {
      const plain: number[] = [];
      const recorded: number[] = [];
      const plainCpu: number[] = [];
      const recordedCpu: number[] = [];
      const plainAll: number[] = [];
      const recordedAll: number[] = [];
      let bytes = 0;
      for (let i = 0; i < 5; i++) {
        plain.push(await dbgToPrompt(dir, cpus));
        plainCpu.push(lastCpu);
        plainAll.push(lastProcessCpu);
        const trace = join(scratch, `xv6-${cpus}-${i}.trace`);
        recorded.push(await dbgToPrompt(dir, cpus, trace));
        recordedCpu.push(lastCpu);
        recordedAll.push(lastProcessCpu);
        bytes = statSync(trace).size;
        rmSync(trace, { force: true });
      }
      const ratio = median(recorded) / median(plain);
      const cpu = median(recordedCpu) / median(plainCpu);
      rows.push({
        name: `xv6 to its shell prompt, ${cpus} CPU${cpus > 1 ? 's' : ''}, recorded vs unrecorded (dbg live's default)`,
        value: ratio,
        unit: 'x',
        goal: '<= 1.5x (issue 10)',
        ok: ratio <= 1.5,
        baseline:
          `recorded ${(median(recorded) / 1000).toFixed(2)} s (trace ${(bytes / 2 ** 20).toFixed(1)} MiB), unrecorded ${(median(plain) / 1000).toFixed(2)} s; medians of 5` +
          (Number.isNaN(cpu) ? '' : `; the guest thread's CPU ${cpu.toFixed(2)}x (${median(recordedCpu).toFixed(0)} vs ${median(plainCpu).toFixed(0)} ms)`) +
          `; the process's CPU ${(median(recordedAll) / median(plainAll)).toFixed(2)}x (${median(recordedAll).toFixed(0)} vs ${median(plainAll).toFixed(0)} ms, every thread)`,
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return rows;
}
