/**
 * `npm run bench`: runs every bench/<area>.ts (compiled to dist/bench/<area>.js) that exports
 * `run(): Promise<BenchResult[]>`, and prints one table. `npm run bench -- area...` runs only those.
 * Exits non-zero when a figure misses its goal, so a regression is visible.
 */
import { readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchFn, BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'run.js' && f !== 'bench-result.js')
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.js$/, '')))
  .sort();

/** The machine and its load, printed with the table: figures are quoted with both. */
const loadNow = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const started = { at: new Date().toISOString().slice(0, 16).replace('T', ' '), load: loadNow() };

const rows: (BenchResult & { area: string })[] = [];
let failed = false;
for (const f of files) {
  const area = f.replace(/\.js$/, '');
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run?: BenchFn };
  if (typeof mod.run !== 'function') continue;
  process.stderr.write(`bench: ${area}...\n`);
  try {
    for (const r of await mod.run()) rows.push({ ...r, area });
  } catch (e) {
    failed = true;
    process.stderr.write(`bench: ${area} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3));
const table = rows.map((r) => [r.area, r.name, `${fmt(r.value)} ${r.unit}`, r.goal ?? '', r.ok === undefined ? '' : r.ok ? 'ok' : 'MISSED', r.baseline ?? '']);
const head = ['area', 'figure', 'value', 'goal', '', 'baseline'];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
const cpu = cpus();
console.log(`${started.at} UTC, ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown cpu'}; load average (1, 5, 15 min) ${started.load} at the start, ${loadNow()} at the end`);
console.log(line(head));
for (const row of table) console.log(line(row));
if (rows.some((r) => r.ok === false)) failed = true;
process.exit(failed ? 1 : 0);
