/**
 * `dbg attach` against gdb, through the same stub (issue 21): QEMU's gdbstub on the sample kernel
 * (dumps/kernel.elf; `qemu-system-x86_64 -kernel … -m 64 -S -gdb`, as the tests start it), one
 * fresh QEMU for each side of each round, both brought to the same state untimed first (a
 * breakpoint at kmain, continue, delete it). Then, timed alone, in this order:
 *
 *   regs     the registers of the stopped CPU, REGS_TIMES times, each after the cache is flushed:
 *            gdb `maint flush register-cache; info registers`, dbg `flush(); ::regs`
 *   x        4000 bytes at kmain as words, X_TIMES times, caches flushed each time:
 *            gdb `x/1000xw kmain`, dbg `kmain,1000/X`
 *   16 MiB   guest-physical 1 MiB..17 MiB through the kernel's identity map, once:
 *            gdb `dump binary memory`, dbg readVirtual + writeFileSync; the files must be equal
 *   stepi    1000 single steps: gdb `stepi 1000`, dbg `,1000::step`; both must end at the same pc
 *
 * gdb times itself with its Python clock (its startup, symbol loading and connection are not
 * counted); its output goes to strings (to_string), not the terminal. dbg runs in this process:
 * a RemoteTarget and an MDB Session, timed around `session.execute`, its output discarded, so
 * neither side pays for a terminal and dbg's worker thread start is outside the timing as gdb's
 * process start is. Each figure is the median of RUNS rounds, gdb and dbg interleaved, after an
 * untimed warm-up round. Goal: dbg <= 1.2x gdb on each.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from '../src/mdb/session.js';
import { builtinModules } from '../src/mdb/modules/index.js';
import type { Output } from '../src/mdb/dcmd.js';
import { RemoteTarget } from '../src/targets/remote/remote-target.js';
import type { BenchResult } from './bench-result.js';
import { median, startQemu } from './gdb-bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');
const work = join(root, 'bench', '.work', 'attach');
const kernel = join(root, 'dumps', 'kernel.elf');
const RUNS = 5;
const REGS_TIMES = 200;
const X_TIMES = 20;
const STEPS = 1000;
const BIG_AT = 0x100000n;
const BIG = 16 << 20;

type Op = 'regs' | 'x' | '16mib' | 'stepi';
const OPS: readonly Op[] = ['regs', 'x', '16mib', 'stepi'];
type Round = Record<Op, number> & { pc: bigint };


function stopQemu(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

/** One round of gdb: the four operations timed by gdb's own clock. */
async function gdbRound(port: number, out: string): Promise<Round> {
  const py = (lines: string[]): string[] => lines.flatMap((l) => ['-ex', `python ${l}`]);
  const args = [
    '-nx', '-batch',
    '-iex', 'set pagination off',
    '-iex', 'set confirm off',
    kernel,
    '-ex', `target remote 127.0.0.1:${port}`,
    '-ex', 'break kmain', '-ex', 'continue', '-ex', 'delete',
    ...py([
      'import time',
      'def T(name, f):\n t0 = time.monotonic(); f(); print("TIMED %s %.6f" % (name, time.monotonic() - t0))',
      `T("regs", lambda: [(gdb.execute("maint flush register-cache"), gdb.execute("info registers", to_string=True)) for _ in range(${REGS_TIMES})])`,
      `T("x", lambda: [(gdb.execute("maint flush dcache"), gdb.execute("x/1000xw kmain", to_string=True)) for _ in range(${X_TIMES})])`,
      `T("16mib", lambda: gdb.execute("dump binary memory ${out} ${BIG_AT} ${BIG_AT + BigInt(BIG)}"))`,
      `T("stepi", lambda: gdb.execute("stepi ${STEPS}", to_string=True))`,
      'print("PC %x" % int(gdb.parse_and_eval("$pc")))',
    ]),
  ];
  const child = spawn('gdb', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  const times = new Map([...stdout.matchAll(/^TIMED (\S+) (\d+\.\d+)$/gm)].map((m) => [m[1]!, Number(m[2]) * 1000]));
  const pc = /^PC ([0-9a-f]+)$/m.exec(stdout);
  if (code !== 0 || !pc || OPS.some((o) => !times.has(o))) throw new Error(`gdb failed (${code}): ${stderr.slice(0, 2000)}\n${stdout.slice(-2000)}`);
  return { regs: times.get('regs')!, x: times.get('x')!, '16mib': times.get('16mib')!, stepi: times.get('stepi')!, pc: BigInt(`0x${pc[1]}`) };
}

/** One round of dbg, in this process. */
async function dbgRound(port: number, out: string): Promise<Round> {
  const target = RemoteTarget.attach('127.0.0.1', port, { symbols: [kernel] });
  try {
    let lines = 0;
    const sink: Output = {
      jsonMode: false,
      line: () => void lines++,
      json: () => void lines++,
      warn: (t) => {
        throw new Error(`dbg warned: ${t}`);
      },
    };
    const session = new Session(target, builtinModules);
    const run = async (cmd: string): Promise<void> => {
      await session.execute(cmd, sink);
    };
    await run('kmain::bp; :c; ::delete all');
    const time = async (f: () => Promise<void> | void): Promise<number> => {
      const t0 = process.hrtime.bigint();
      await f();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const regs = await time(async () => {
      for (let i = 0; i < REGS_TIMES; i++) {
        target.flush();
        await run('::regs');
      }
    });
    const x = await time(async () => {
      for (let i = 0; i < X_TIMES; i++) {
        target.flush();
        await run('kmain,1000/X');
      }
    });
    const big = await time(() => writeFileSync(out, target.readVirtual(BIG_AT, BIG)));
    const stepi = await time(() => run(`,0t${STEPS}::step`));
    const pc = target.status().pc;
    if (lines === 0) throw new Error('dbg printed nothing');
    return { regs, x, '16mib': big, stepi, pc };
  } finally {
    target.close();
  }
}

export async function run(): Promise<BenchResult[]> {
  for (const tool of ['gdb', 'qemu-system-x86_64']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is not installed (the setup script installs it)`);
  }
  mkdirSync(work, { recursive: true });
  const outGdb = join(work, 'gdb.bin');
  const outDbg = join(work, 'dbg.bin');
  const gdbRuns: Round[] = [];
  const dbgRuns: Round[] = [];
  for (let i = -1; i < RUNS; i++) {
    for (const side of i % 2 === 0 ? (['gdb', 'dbg'] as const) : (['dbg', 'gdb'] as const)) {
      const q = await startQemu(kernel);
      try {
        const r = side === 'gdb' ? await gdbRound(q.port, outGdb) : await dbgRound(q.port, outDbg);
        if (i >= 0) (side === 'gdb' ? gdbRuns : dbgRuns).push(r);
      } finally {
        await stopQemu(q.child);
      }
    }
    if (!readFileSync(outGdb).equals(readFileSync(outDbg))) throw new Error('the 16 MiB that gdb and dbg read through the stub differ');
  }
  // QEMU's single steps are not exactly repeatable (one over a port read now and then takes two
  // stops, for gdb and dbg alike), so the sides must agree on the loop they end in, give or take a
  // few instructions, rather than on the pc.
  const pcs = [...gdbRuns, ...dbgRuns].map((r) => r.pc);
  const spread = pcs.reduce((a, b) => (a > b ? a : b)) - pcs.reduce((a, b) => (a < b ? a : b));
  if (spread > 0x40n) throw new Error(`after ${STEPS} steps gdb and dbg stopped far apart: ${pcs.map((p) => `0x${p.toString(16)}`).join(', ')}`);
  rmSync(outGdb, { force: true });
  rmSync(outDbg, { force: true });

  const names: Record<Op, string> = {
    regs: `registers x${REGS_TIMES}, cache flushed each time`,
    x: `x/1000xw (4000 bytes) x${X_TIMES}, cache flushed each time`,
    '16mib': '16 MiB read (dump binary memory)',
    stepi: `stepi ${STEPS}`,
  };
  const list = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join('/');
  const results: BenchResult[] = [];
  for (const op of OPS) {
    const d = dbgRuns.map((r) => r[op]);
    const g = gdbRuns.map((r) => r[op]);
    const ratio = median(d) / median(g);
    results.push({ name: `${names[op]}: dbg`, value: median(d), unit: 'ms', baseline: `gdb ${median(g).toFixed(1)} ms (runs: dbg ${list(d)}, gdb ${list(g)})` });
    results.push({ name: `${names[op]}: dbg / gdb`, value: ratio, unit: 'x', goal: '<= 1.2x gdb', ok: ratio <= 1.2 });
  }
  return results;
}
