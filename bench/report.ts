/**
 * `dbg report` (issue 18): the report of a trace takes at most half the time its recording took.
 * The sample kernel (dumps/kernel.elf, `nobug`: it schedules its tasks on the timer forever) is
 * recorded for DBG_BENCH_REPORT_INSNS instructions (default 10^7) on two vCPUs; then its report
 * is written, in the same process. Also: the size of the page.
 */

import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport } from '../src/report/write-report.js';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';
import type { BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const kernel = [join(here, '..', 'dumps', 'kernel.elf'), join(here, '..', '..', 'dumps', 'kernel.elf')].find((p) => existsSync(p));

export async function run(): Promise<BenchResult[]> {
  if (!kernel) return [];
  const n = Number(process.env['DBG_BENCH_REPORT_INSNS'] ?? 1e7);
  const dir = mkdtempSync(join(tmpdir(), 'dbg-bench-report-'));
  try {
    const trace = join(dir, 'k.trace');
    const t = EmulatorTarget.open(kernel, { cmdline: 'nobug', cpus: 2 });
    let t0 = performance.now();
    try {
      t.record(new EmulatorRecorder(trace, { guest: 'sample kernel', symbols: kernel }));
      const st = await t.machine.run({ vcpu: 0, count: n });
      if (st.reason.kind !== 'step') throw new Error(`the sample kernel stopped: ${st.reason.kind}`);
    } finally {
      t.close();
    }
    const recordMs = performance.now() - t0;
    const html = join(dir, 'k.html');
    t0 = performance.now();
    const data = await writeReport(trace, { out: html });
    const reportMs = performance.now() - t0;
    const ratio = reportMs / recordMs;
    return [
      { name: `report / recording time (${data.instructions} instructions, 2 vCPUs)`, value: ratio, unit: 'x', goal: '<= 0.5x', ok: ratio <= 0.5, baseline: `recording ${(recordMs / 1000).toFixed(2)} s, report ${(reportMs / 1000).toFixed(2)} s` },
      { name: 'report page size per 10^6 instructions', value: statSync(html).size / 1024 / 1024 / (data.instructions / 1e6), unit: 'MiB', goal: '<= 0.5 MiB (50 MB at 10^8)', ok: statSync(html).size / (data.instructions / 1e8) <= 50e6 },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
