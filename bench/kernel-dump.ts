/**
 * Kernel-dump speed (issue 3): opening a 4 GiB sparse vmcore costs what its headers cost
 * (<= 100 ms, <= 100 MB peak RSS, in a fresh process), and 10^5 random virtual translations run
 * at >= 500k per second.
 *
 * The dump is generated under bench/.work/ (git-ignored): a QEMU-style ELF with two CPUs and one
 * 4 GiB PT_LOAD at physical 0, written with ftruncate so only its headers and a few pages of page
 * tables occupy disk. The tables map
 *   - the direct map 0xffff888000000000 -> phys 0 over 4 GiB with 2 MiB pages (4 page directories),
 *   - 8 MiB of kernel space at 0xffffffff81000000 with 4 KiB pages (4 page tables).
 * Random addresses fall 3/4 in the direct map and 1/4 in the kernel window, so most translations
 * miss the TLB (a million distinct 4 KiB pages) and do real walks over the file.
 *
 * Run as a script with `--child-open DUMP` (open only) or `--child DUMP` (open, translate, read),
 * this file is the measured side: a fresh process that prints its figures as JSON.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelDumpTarget } from '../src/targets/elfcore/kernel-dump-target.js';
import { PageTableBuilder, writeVmcore } from '../src/targets/elfcore/kernel-vmcore-writer.js';
import { peakRssKiB, type BenchResult } from './bench-result.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');

const GIB = 1n << 30n;
const DIRECT = 0xffff888000000000n;
const KTEXT = 0xffffffff81000000n;
const KWINDOW = 8n << 20n;
const CR3 = 0x100000n;
const N = 100_000;
const FORMAT = 1; // bump when the generated dump changes

function generate(path: string): void {
  const pt = new PageTableBuilder(CR3, CR3 + 0x1000n);
  for (let pa = 0n; pa < 4n * GIB; pa += 2n << 20n) pt.map(DIRECT + pa, pa, 0x200000, 0x8000000000000003n);
  for (let off = 0n; off < KWINDOW; off += 4096n) pt.map(KTEXT + off, 0x1000000n + off, 4096, 0x3n);
  // Gather the entries into whole table pages: one write per page, not per entry.
  const pages = new Map<bigint, Buffer>();
  for (const [a, v] of pt.entries) {
    const page = a & ~0xfffn;
    let b = pages.get(page);
    if (!b) pages.set(page, (b = Buffer.alloc(4096)));
    b.writeBigUInt64LE(v, Number(a - page));
  }
  const regs = { rip: KTEXT + 0x10n, rsp: KTEXT + 0x7ff000n };
  writeVmcore(path, {
    cpus: [
      { regs, qemu: { cr: [0x80050033n, 0n, 0n, CR3, 0x20n] } },
      { regs, qemu: { cr: [0x80050033n, 0n, 0n, CR3, 0x20n] } },
    ],
    segments: [{ paddr: 0n, size: Number(4n * GIB), chunks: [...pages].map(([a, bytes]) => ({ offset: Number(a), bytes })) }],
  });
}

/** The open-only side: a fresh process that opens the dump, looks at its CPUs, and exits. */
function childOpen(path: string): void {
  const t0 = process.hrtime.bigint();
  const t = KernelDumpTarget.open(path);
  t.registers(1);
  t.translate(KTEXT, 1);
  const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
  t.close();
  console.log(JSON.stringify({ openMs, maxRssKiB: peakRssKiB() }));
}

/** The measured side: open, then translate N random addresses; figures as one JSON line. */
function child(path: string): void {
  const t0 = process.hrtime.bigint();
  const t = KernelDumpTarget.open(path);
  const openMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const rssAfterOpen = process.memoryUsage().rss;

  // A fixed-seed generator so every run translates the same addresses.
  let seed = 0x9e3779b9;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const addrs: bigint[] = new Array(N);
  for (let i = 0; i < N; i++) {
    const r = BigInt(rnd()) * 4096n + BigInt(rnd() & 0xff8);
    addrs[i] = (rnd() & 3) === 0 ? KTEXT + (r % KWINDOW) : DIRECT + (r % (4n * GIB));
  }
  const phys = t.caps.physical!;
  const t1 = process.hrtime.bigint();
  let check = 0n;
  for (const a of addrs) {
    const tr = phys.translate(a, 1);
    if (tr.phys === undefined) throw new Error(`bench: 0x${a.toString(16)} did not translate: ${tr.fault}`);
    check ^= tr.phys;
  }
  const translateS = Number(process.hrtime.bigint() - t1) / 1e9;
  const t2 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) t.readVirtual(addrs[i]!, 8, 1);
  const readS = Number(process.hrtime.bigint() - t2) / 1e9;
  t.close();
  const maxRssKiB = peakRssKiB();
  console.log(JSON.stringify({ openMs, rssAfterOpenMiB: rssAfterOpen / 2 ** 20, translatePerS: N / translateS, readPerS: N / readS, maxRssKiB, check: check.toString(16) }));
}

export async function run(): Promise<BenchResult[]> {
  const work = join(root, 'bench', '.work');
  mkdirSync(work, { recursive: true });
  const dump = join(work, `vmcore-4g-v${FORMAT}.elf`);
  if (!existsSync(dump) || statSync(dump).size < Number(4n * GIB)) generate(dump);
  const self = fileURLToPath(import.meta.url);
  const o0 = process.hrtime.bigint();
  const o = spawnSync(process.execPath, [self, '--child-open', dump], { encoding: 'utf8' });
  const openWallMs = Number(process.hrtime.bigint() - o0) / 1e6;
  if (o.status !== 0) throw new Error(`kernel-dump bench child failed (${o.status}): ${o.stderr}`);
  const open = JSON.parse(o.stdout.trim().split('\n').at(-1)!) as { openMs: number; maxRssKiB: number };
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [self, '--child', dump], { encoding: 'utf8' });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`kernel-dump bench child failed (${r.status}): ${r.stderr}`);
  const f = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
    openMs: number;
    rssAfterOpenMiB: number;
    translatePerS: number;
    readPerS: number;
    maxRssKiB: number;
  };
  const openRssMB = (f.rssAfterOpenMiB * 2 ** 20) / 1e6;
  const openPeakMB = (open.maxRssKiB * 1024) / 1e6;
  return [
    { name: 'open 4 GiB sparse vmcore (in the child)', value: open.openMs, unit: 'ms', goal: '<= 100 ms', ok: open.openMs <= 100, baseline: 'open + registers + one translation' },
    { name: 'fresh process that only opens: wall', value: openWallMs, unit: 'ms', baseline: 'incl. Node start-up and module loading; `node -e ""` alone ~54 ms' },
    { name: 'fresh process that only opens: peak RSS', value: openPeakMB, unit: 'MB', goal: '<= 100 MB', ok: openPeakMB <= 100, baseline: '`node -e ""` alone: ~39 MiB' },
    { name: 'RSS after open (translation child)', value: openRssMB, unit: 'MB', baseline: `open took ${f.openMs.toFixed(1)} ms there` },
    { name: `random virtual translations (${N})`, value: f.translatePerS / 1e3, unit: 'k/s', goal: '>= 500 k/s', ok: f.translatePerS >= 500e3 },
    { name: `random 8-byte virtual reads (${N})`, value: f.readPerS / 1e3, unit: 'k/s', baseline: 'same addresses, TLB warm from the translations' },
    { name: 'peak RSS of the translation child', value: (f.maxRssKiB * 1024) / 1e6, unit: 'MB', baseline: `after open, translations and reads; wall ${wallMs.toFixed(0)} ms` },
  ];
}

if (process.argv[2] === '--child') child(process.argv[3]!);
if (process.argv[2] === '--child-open') childOpen(process.argv[3]!);
