/**
 * `dbg report`: the sample kernel (dumps/kernel.elf, two vCPUs) recorded by `dbg live`, its report
 * written by `dbg report`, then loaded in a REAL browser (Debian's chromium driven by
 * playwright-core): no console errors, lanes, labels and marks in the DOM, a click on the timeline
 * shows the seq under the mouse, a drag zooms. Screenshots are kept in test/.artifacts/report/.
 * Bad input: a missing trace, a file that is not a trace, a 0-instruction trace, a trace cut by
 * a crash, one vCPU and eight, a trace whose symbol file is gone.
 */

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(join(tmpdir(), 'dbg-report-'));
/** Screenshots of the page in chromium, kept after the run (test artifacts; not in git). */
const artifacts = join(repoRoot, 'test', '.artifacts', 'report');
mkdirSync(artifacts, { recursive: true });
const trace = join(dir, 'k.trace');
const html = join(dir, 'k.html');

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(dbg, args, { encoding: 'utf8', timeout: 120_000, cwd: dir });
}

/** The JSON data the page carries. */
function pageData(file: string): {
  instructions: number;
  vcpus: number;
  lacks: string[];
  funcs: string[];
  console: { seq: number; text: string }[];
  calls: { total: number; rows: (number | null)[][] };
  lanes: { runs: { s: number[]; n: number[]; f: number[] } }[];
  tree: { f: number; parent: number; self: number; incl: number }[];
  heat: { pages: { addr: string; label: string; bytes: number }[]; cells: number[][]; hint: string };
} {
  const m = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(readFileSync(file, 'utf8'));
  if (!m) throw new Error(`no report data in ${file}`);
  return JSON.parse(m[1]!);
}

beforeAll(() => {
  const rec = run(['live', '--emulate', kernel, '--cpus', '2', '--record', trace, '-e', ':c']);
  expect(rec.stdout + rec.stderr).toContain('PANIC: scheduler: task list corrupted');
  const r = run(['report', trace, '-o', html]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^dbg: wrote .*k\.html: \d+ instructions on 2 vCPUs, \d+ functions, \d+ calls, 10 console lines/);
});

afterAll(() => {
  if (!process.env['DBG_KEEP_REPORT']) rmSync(dir, { recursive: true, force: true });
});

describe('dbg report: the data', () => {
  it('is one self-contained file: no external script, stylesheet or image', () => {
    const text = readFileSync(html, 'utf8');
    expect(text).not.toMatch(/<script[^>]+src=|<link[^>]+href=|<img[^>]+src="http/);
    expect(text).toContain('uPlot');
  });

  it('console output comes from the COM1 writes, placed at seqs', () => {
    const d = pageData(html);
    expect(d.console.map((c) => c.text)).toContainEqual(expect.stringMatching(/^PANIC: scheduler: task list corrupted \(jiffies \d+\)$/));
    expect(d.console[0]!.text).toMatch(/^dbg sample kernel: multiboot magic 0x2badb002/);
    // Each line's seq is an `out` run by putc_raw (what the kernel's console writes go through).
    const runsOf = (seq: number) => d.lanes.map((l) => l.runs).map((r) => r.s.findIndex((s, k) => s <= seq && seq < s + r.n[k]!));
    const where = runsOf(d.console[0]!.seq);
    const lane = where.findIndex((k) => k >= 0);
    expect(d.funcs[d.lanes[lane]!.runs.f[where[lane]!]!]).toBe('putc_raw');
  });

  it('calls: kmain calls kprintf, kprintf calls putc_raw one level deeper, returns after the call', () => {
    const d = pageData(html);
    const rows = d.calls.rows.map(([call, ret, vcpu, caller, callee, depth]) => ({ call: call!, ret, vcpu, caller: d.funcs[caller!], callee: d.funcs[callee!], depth }));
    const kp = rows.find((r) => r.caller === 'kmain' && r.callee === 'kprintf')!;
    expect(kp).toBeDefined();
    const put = rows.find((r) => r.caller === 'kprintf' && r.callee === 'putc_raw' && r.call > kp.call)!;
    expect(put.depth).toBe(kp.depth! + 1);
    expect(put.ret).toBeGreaterThan(put.call);
    expect(kp.ret).toBeGreaterThan(put.ret!);
    expect(rows.some((r) => r.callee === 'interrupt 0x20')).toBe(true);
    // Inclusive = exclusive + children's inclusive, at every node.
    const kids = new Map<number, number>();
    d.tree.forEach((n, i) => i > 0 && kids.set(n.parent, (kids.get(n.parent) ?? 0) + n.incl));
    d.tree.forEach((n, i) => expect(n.incl).toBe(n.self + (kids.get(i) ?? 0)));
    expect(d.tree[0]!.incl).toBe(d.instructions);
  });

  it('memory writes of a lazy-rows trace (the default) come from the pages each chunk wrote, with no memory rows', () => {
    const d = pageData(html);
    expect(d.heat.hint).toMatch(/^Bytes changed per physical page .*lazy-rows trace/);
    expect(d.lacks.join('\n')).not.toContain('memory writes');
    // the task list the kernel keeps writing, named by its symbol
    const tasks = d.heat.pages.find((p) => /^tasks\b/.test(p.label));
    expect(tasks?.bytes).toBeGreaterThan(0);
    d.heat.cells.forEach((row, i) => expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(d.heat.pages[i]!.bytes, 6));
  });
});

describe('dbg report: bad input', () => {
  it('a missing trace, a file that is not a trace, an output it cannot write: one line each', () => {
    let r = run(['report', join(dir, 'nope.trace')]);
    expect([r.status, r.stderr]).toEqual([1, `dbg: trace "${join(dir, 'nope.trace')}" does not exist\n`]);
    writeFileSync(join(dir, 'junk.trace'), 'not a trace\n');
    r = run(['report', join(dir, 'junk.trace')]);
    expect([r.status, r.stderr]).toEqual([1, `dbg: ${join(dir, 'junk.trace')}: not a dbg trace: only 12 bytes (truncated or another kind of file)\n`]);
    r = run(['report', trace, '-o', join(dir, 'no', 'such', 'dir.html')]);
    expect([r.status, r.stderr]).toEqual([1, `dbg: cannot write the report "${join(dir, 'no', 'such', 'dir.html')}": ENOENT\n`]);
    r = run(['report', trace, '--symbols', join(dir, 'nope.elf')]);
    expect([r.status, r.stderr]).toEqual([1, `dbg: symbol file "${join(dir, 'nope.elf')}" does not exist\n`]);
  });

  it('a 0-instruction trace: a report that says so', () => {
    const t = join(dir, 'empty.trace');
    run(['live', '--emulate', kernel, '--record', t, '-e', '::now']);
    const r = run(['report', t, '-o', join(dir, 'empty.html')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('dbg: report: no instructions: the trace holds no recorded instruction (the guest never ran while recording)\n');
    const d = pageData(join(dir, 'empty.html'));
    expect(d.instructions).toBe(0);
    expect(d.lacks).toContain('console: the guest wrote nothing to COM1 (port 0x3f8) in this history');
  });

  it('a trace cut by a crash (the recorder killed inside its last commit): the history up to the commit before, and the page says the end is missing', () => {
    const t = join(dir, 'cut.trace');
    const rec = spawnSync(dbg, ['live', '--emulate', kernel, '--cpus', '2', '-q', '--record', t, '-e', ':c'], { encoding: 'utf8', timeout: 120_000, cwd: dir, env: { ...process.env, DBG_TEST_KILL_AT: 'commit:1' } });
    expect(rec.signal).toBe('SIGKILL');
    const r = run(['report', t, '-o', join(dir, 'cut.html')]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const d = pageData(join(dir, 'cut.html'));
    const whole = pageData(html);
    expect(d.instructions).toBeGreaterThan(0);
    expect(d.instructions).toBeLessThan(whole.instructions);
    expect(d.lacks).toContain('how the recording ended: the trace records no outcome (its process died while recording, or an older dbg made it); the history ends at the last chunk that was committed');
    expect(r.stdout).toContain('dbg: report: how the recording ended: the trace records no outcome');
    // A recording that ended cleanly says nothing of the kind.
    expect(whole.lacks.join('\n')).not.toContain('how the recording ended');
  });

  it('one vCPU: one lane beside the console, calls and console as with two', () => {
    const t = join(dir, 'one.trace');
    expect(run(['live', '--emulate', kernel, '--cpus', '1', '-q', '--record', t, '-e', ':c']).status).toBe(0);
    const r = run(['report', t, '-o', join(dir, 'one.html')]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^dbg: wrote .*one\.html: \d+ instructions on 1 vCPU, \d+ functions, \d+ calls, \d+ console lines/);
    const d = pageData(join(dir, 'one.html'));
    expect(d.vcpus).toBe(1);
    expect(d.lanes).toHaveLength(1);
    expect(d.calls.total).toBeGreaterThan(100);
    expect(d.console.length).toBeGreaterThan(0);
    expect(d.lacks).toEqual([]);
  });

  it('eight vCPUs of which two run: eight lanes, and the page says which ran nothing', () => {
    const t = join(dir, 'eight.trace');
    run(['live', '--emulate', kernel, '--cpus', '8', '--record', t, '-e', ':c']);
    const r = run(['report', t, '-o', join(dir, 'eight.html')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('dbg: report: instructions on vCPUs 2, 3, 4, 5, 6, 7: they ran none in this history (their lanes are empty)\n');
    const d = pageData(join(dir, 'eight.html'));
    expect(d.vcpus).toBe(8);
    expect(d.lanes.length).toBe(8);
  });

  it('a trace whose symbol file is gone: functions as code pages, and the page says why', () => {
    const elf = join(dir, 'gone.elf');
    copyFileSync(kernel, elf);
    const t = join(dir, 'nosyms.trace');
    run(['live', '--emulate', elf, '--record', t, '-e', ':c']);
    rmSync(elf);
    const r = run(['report', t, '-o', join(dir, 'nosyms.html')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('dbg: report: no symbols: the trace names no symbol file that exists and none was given (--symbols FILE); functions are shown as 4 KiB code pages\n');
    const d = pageData(join(dir, 'nosyms.html'));
    expect(d.funcs.some((f) => /^code page 0xffffffff801/.test(f))).toBe(true);
    expect(d.console.length).toBe(9);
    // --symbols brings the names back.
    const again = run(['report', t, '-o', join(dir, 'syms.html'), '--symbols', kernel]);
    expect(again.stdout).not.toContain('no symbols');
    expect(pageData(join(dir, 'syms.html')).funcs).toContain('panic');
  });
});

describe.skipIf(!existsSync(CHROMIUM))('dbg report in a real browser (Debian chromium)', () => {
  it("marks the recording session's breakpoint and watchpoint hits on the lanes and lists them", async () => {
    const t = join(dir, 'stops.trace');
    const out = join(dir, 'stops.html');
    const rec = run(['live', '--emulate', kernel, '--cpus', '2', '--wait', '-q', '--record', t, '-e', 'timer_tick::bp; tasks::wp -w -L 8; :c; :c; :c; :c; ::traceinfo']);
    expect(rec.status).toBe(0);
    expect(rec.stdout).toMatch(/^stops +4$/m);
    const r = run(['report', t, '-o', out]);
    expect(r.status).toBe(0);
    const stops = (pageData(out) as unknown as { marks: { kind: string; label: string }[] }).marks.filter((m) => m.kind === 'breakpoint' || m.kind === 'watchpoint');
    expect(stops.length).toBe(4);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const problems: string[] = [];
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      await page.goto(`file://${out}`);
      await page.waitForSelector('.u-over');
      expect(problems).toEqual([]);
      const bps = await page.locator('.mark-breakpoint').allTextContents();
      const wps = await page.locator('.mark-watchpoint').allTextContents();
      expect(bps.length).toBeGreaterThan(0);
      expect(wps.length).toBeGreaterThan(0);
      expect(bps.length + wps.length).toBe(4);
      for (const b of bps) expect(b).toMatch(/vCPU \d breakpoint 1 at 0x[0-9a-f]+ \(timer_tick\)$/);
      for (const w of wps) expect(w).toMatch(/vCPU \d watchpoint 2 at 0x[0-9a-f]+ \(tasks\)$/);
      await page.screenshot({ path: join(artifacts, 'report-stops.png') });
    } finally {
      await browser.close();
    }
  });

  it('loads with no errors; lanes, labels, marks in the DOM; a click shows the seq; a drag zooms', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => {
        if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) problems.push(`network request: ${r.url()}`);
      });
      await page.goto(`file://${html}`);
      await page.waitForSelector('.u-over');
      expect(problems).toEqual([]);
      expect(await page.locator('.lane-label').allTextContents()).toEqual(['vCPU 0', 'vCPU 1', 'console']);
      expect(await page.locator('.console-line').count()).toBe(10);
      expect(await page.locator('.mark-interrupt').count()).toBeGreaterThan(10);
      expect(await page.locator('.mark-end').count()).toBe(1);
      expect(await page.locator('.legend-item').count()).toBeGreaterThan(5);
      expect(await page.locator('.flame-node').count()).toBeGreaterThan(5);
      expect(await page.locator('.heat-label').first().textContent()).toMatch(/^0x[0-9a-f]+000/);
      await page.screenshot({ path: join(artifacts, 'report-full.png'), fullPage: true });
      await page.screenshot({ path: join(artifacts, 'report-top.png') });

      // Click on the lane where panic's run starts: the info shows that seq and panic.
      const d = pageData(html);
      const panic = d.funcs.indexOf('panic');
      const lane = d.lanes.findIndex((l) => l.runs.f.includes(panic));
      expect(lane).toBeGreaterThanOrEqual(0);
      const runs = d.lanes[lane]!.runs;
      const k = runs.f.lastIndexOf(panic);
      expect(k).toBeGreaterThanOrEqual(0);
      const startSeq = runs.s[k]!;
      // Zoom in on [start - w, start + 3w] three times, w = 16000, 1000, 50: each drag narrows the range.
      const box = (await page.locator('.u-over').boundingBox())!;
      const xOf = (seq: number) => page.evaluate((s) => (globalThis as unknown as { dbgReport: { plot: { valToPos(v: number, k: string): number } } }).dbgReport.plot.valToPos(s, 'x'), seq);
      const laneY = box.y + ((lane + 0.5) * box.height) / 3; // of three lanes
      let width = d.instructions;
      for (const w of [16000, 1000, 50]) {
        await page.mouse.move(box.x + (await xOf(startSeq - w)), laneY);
        await page.mouse.down();
        await page.mouse.move(box.x + (await xOf(startSeq + 3 * w)), laneY, { steps: 5 });
        await page.mouse.up();
        const [lo, hi] = /Showing seq (\d+) to (\d+)/.exec((await page.locator('#range').textContent())!)!.slice(1).map(Number);
        expect(hi! - lo!).toBeLessThan(width / 4);
        expect(lo).toBeLessThanOrEqual(startSeq);
        expect(hi).toBeGreaterThan(startSeq);
        width = hi! - lo!;
      }
      expect(width).toBeLessThan(400);
      // Zoomed to ~1 px per instruction: click the middle of panic's first instruction.
      const x = ((await xOf(startSeq)) + (await xOf(startSeq + 1))) / 2;
      await page.mouse.click(box.x + x, laneY);
      expect(await page.locator('#info .info-seq').textContent()).toBe(`seq ${startSeq}`);
      expect(await page.locator('#info .info-vcpu').textContent()).toBe(`vCPU ${lane}`);
      expect(await page.locator('#info .info-sym').textContent()).toBe('symbol panic');
      expect(await page.locator('#info .info-pc').textContent()).toMatch(/^pc 0xffffffff801/);
      expect(await page.locator('#info .info-cmd').textContent()).toBe(`dbg replay ${html.replace(/\.html$/, '.trace')} -e '::seek 0t${startSeq}'`);
      await page.screenshot({ path: join(artifacts, 'report-zoomed.png'), fullPage: false });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
