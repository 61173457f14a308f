/**
 * `dbg report` (issue 18): the report of a trace takes at most half the time its recording took.
 * The sample kernel (dumps/kernel.elf, `nobug`: it schedules its tasks on the timer forever) is
 * recorded for DBG_BENCH_REPORT_INSNS instructions in all (default 10^8, the scale) on
 * two vCPUs; then its report is written, in the same process. Also: the size of the page, and the
 * time Debian's chromium takes to load it and draw the lanes and the call tree (where chromium
 * is installed).
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
  // vCPU 0 runs n / 2 instructions; the other one about as many in the same time slices
  const n = Math.ceil(Number(process.env['DBG_BENCH_REPORT_INSNS'] ?? 1e8) / 2);
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
    const results: BenchResult[] = [
      { name: `report / recording time (${data.instructions} instructions, 2 vCPUs)`, value: ratio, unit: 'x', goal: '<= 0.5x', ok: ratio <= 0.5, baseline: `recording ${(recordMs / 1000).toFixed(2)} s, report ${(reportMs / 1000).toFixed(2)} s` },
      { name: 'report page size per 10^6 instructions', value: statSync(html).size / 1024 / 1024 / (data.instructions / 1e6), unit: 'MiB', goal: '<= 0.5 MiB (50 MB at 10^8)', ok: statSync(html).size / (data.instructions / 1e8) <= 50e6, baseline: `${(statSync(html).size / 1e6).toFixed(1)} MB` },
    ];
    const render = await renderTime(html);
    if (render !== undefined) {
      results.push({ name: `chromium: load the page and draw the lanes and the call tree (${data.instructions} instructions)`, value: render.median / 1000, unit: 's', goal: '<= 3 s', ok: render.median <= 3000, baseline: `median of ${render.runs.length}: ${render.runs.map((r) => (r / 1000).toFixed(2)).join(', ')} s` });
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CHROMIUM = '/usr/bin/chromium';

/**
 * Wall time from navigation to the lanes (uPlot's overlay) and the call tree in the DOM, in a fresh
 * page each time (the browser's start is not counted); undefined without chromium.
 */
async function renderTime(html: string): Promise<{ median: number; runs: number[] } | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const t0 = performance.now();
      await page.goto(`file://${html}`);
      await page.waitForSelector('.u-over');
      await page.waitForSelector('.flame-node');
      runs.push(performance.now() - t0);
      await page.close();
      if (errors.length) throw new Error(`the report page failed in chromium: ${errors[0]}`);
    }
    runs.sort((a, b) => a - b);
    return { median: runs[1]!, runs };
  } finally {
    await browser.close();
  }
}
