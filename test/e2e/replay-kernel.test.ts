/**
 * The sample kernel (dumps/kernel.elf: paging, timer interrupts, port I/O, a panic) recorded
 * through the emulator's observer contract:
 *   - differential: an unrecorded run and the replay of a recorded run agree on every register
 *     and on the kernel's low 2 MiB of RAM at 1000 sampled seqs, visited in scrambled order;
 *   - `dbg live --record` then `dbg replay`/`dbg query` on the trace;
 *   - `kill -9` of a recording `dbg live`: the trace opens up to its last commit and replays.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { turnEventLoop } from '../helpers/event-loop.js';

const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const dbg = join(repoRoot, 'bin', 'dbg');
const dir = mkdtempSync(join(tmpdir(), 'dbg-replay-kernel-'));
const trace = join(dir, 'kernel.trace');
const TOTAL = 540_000;

/**
 * Hash of the low 2 MiB of RAM, with the accessed/dirty bits of page-table entries cleared: the
 * MMU sets those without a memory-write hook seeing it, so a trace does not hold them (a known
 * limitation, see the report); everything else must match byte for byte.
 */
function low(ram: Buffer, cr3: bigint): string {
  const copy = Buffer.from(ram.subarray(0, 2 << 20));
  const tables = new Set<number>();
  const walk = (table: number, level: number) => {
    if (table + 4096 > copy.length || tables.has(table)) return;
    tables.add(table);
    for (let i = 0; i < 512; i++) {
      const e = copy.readBigUInt64LE(table + 8 * i);
      if (!(e & 1n) || level === 1 || (level < 4 && e & 0x80n)) continue;
      walk(Number(e & 0x000ffffffffff000n), level - 1);
    }
  };
  if (cr3) walk(Number(cr3 & 0x000ffffffffff000n), 4);
  for (const t of tables) for (let i = 0; i < 512; i++) copy[t + 8 * i] &= ~0x60;
  return createHash('sha1').update(copy).digest('hex');
}

interface Sample {
  seq: number;
  regs: Map<string, bigint>;
  mem: string;
}
const samples: Sample[] = [];

beforeAll(async () => {
  const live = EmulatorTarget.open(kernel, {});
  let seq = 0;
  let x = 4242;
  while (samples.length < 1000) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const n = 1 + (x % 1000);
    if (seq + n > TOTAL) break;
    await live.machine.run({ vcpu: 0, count: n });
    seq += n;
    expect(live.machine.seq).toBe(BigInt(seq));
    const regs = live.registers(1);
    samples.push({ seq, regs, mem: low(live.machine.ram, regs.get('cr0')! & 0x80000000n ? regs.get('cr3')! : 0n) });
  }
  live.close();
  const rec = EmulatorTarget.open(kernel, {});
  rec.machine.setObserver(new EmulatorRecorder(trace, { symbols: kernel }));
  await rec.machine.run({ vcpu: 0, count: TOTAL });
  rec.close();
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(dbg, args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
}

describe('sample kernel: live vs replay', () => {
  it('agree on all registers and low RAM at 1000 sampled seqs', async () => {
    expect(samples.length).toBe(1000);
    const t = ReplayTarget.open(trace);
    expect(t.caps.reverse!.bounds().last).toBe(BigInt(TOTAL));
    const order = samples.map((s, i) => ({ s, k: (i * 7919) % samples.length })).sort((a, b) => a.k - b.k);
    let compared = 0;
    for (const { s } of order) {
      // Where an interrupt was injected at exactly this seq, the live machine stopped before the
      // injection and the trace's position is after it (pc = the handler, the instruction that
      // runs as seq): the two name different states, so such samples are not compared.
      if (t.reader.inputs(s.seq, s.seq + 1).some((i) => i.kind === 'interrupt')) continue;
      if (compared++ % 50 === 0) await turnEventLoop(); // (test/helpers/event-loop.ts)
      await t.caps.reverse!.seek(BigInt(s.seq));
      const got = t.registers(1);
      for (const [name, value] of s.regs) {
        if (got.get(name) !== value) throw new Error(`seq ${s.seq}: ${name} = 0x${got.get(name)?.toString(16)}, live had 0x${value.toString(16)}`);
      }
      expect(low(t.machine.ram, got.get('cr0')! & 0x80000000n ? got.get('cr3')! : 0n), `RAM at seq ${s.seq}`).toBe(s.mem);
    }
    expect(compared).toBeGreaterThanOrEqual(990);
    t.close();
  });
});

describe('sample kernel on two vCPUs', () => {
  it('live and replay agree on both vCPUs\' registers at 200 sampled seqs', async () => {
    const t2 = join(dir, 'smp.trace');
    const live = EmulatorTarget.open(kernel, { cpus: 2 });
    const got: { seq: number; regs: Map<string, bigint>[] }[] = [];
    let x = 7;
    while (got.length < 200) {
      x = (x * 1103515245 + 12345) % 2147483648;
      await live.machine.run({ vcpu: 0, count: 1 + (x % 2000) });
      got.push({ seq: Number(live.machine.seq), regs: [live.registers(1), live.registers(2)] });
    }
    live.close();
    const last = got.at(-1)!.seq;
    const rec = EmulatorTarget.open(kernel, { cpus: 2 });
    rec.machine.setObserver(new EmulatorRecorder(t2, {}));
    while (Number(rec.machine.seq) < last) await rec.machine.run({ vcpu: 0, count: last - Number(rec.machine.seq) });
    rec.close();
    const t = ReplayTarget.open(t2);
    expect(t.threads().length).toBe(2);
    let compared = 0;
    for (const s of got) {
      // Inputs at exactly this seq (an interrupt, a CPU start-up) are after the live stop: skip.
      if (t.reader.inputs(s.seq, s.seq + 1).length) continue;
      compared++;
      await t.caps.reverse!.seek(BigInt(s.seq));
      for (const th of [1, 2]) {
        const mine = t.registers(th);
        for (const [name, value] of s.regs[th - 1]!) {
          if (name !== 'cr2' && mine.get(name) !== value) throw new Error(`seq ${s.seq} vCPU ${th - 1}: ${name} = 0x${mine.get(name)?.toString(16)}, live had 0x${value.toString(16)}`);
        }
      }
    }
    expect(compared).toBeGreaterThan(150);
    t.close();
  }, 60_000);
});

describe('dbg live records, dbg replay and dbg query read', () => {
  it('records by default into the cache directory and prints the path; replay shows the panic history', () => {
    const cache = join(dir, 'cache');
    const r = run(['live', '--emulate', kernel, '-q', '-e', ':c; ::status'], { XDG_CACHE_HOME: cache });
    expect(r.status).toBe(0);
    const m = /dbg: recording to (\S+\.trace) \(dbg replay/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(m![1]!.startsWith(join(cache, 'dbg'))).toBe(true);
    expect(readdirSync(join(cache, 'dbg')).length).toBe(1);
    const rp = run(['replay', m![1]!, '-e', '::now; panic::bp; ::rcont; ::rstep; ::rstep out; ::stack']);
    expect(rp.stderr).toBe('');
    expect(rp.stdout).toMatch(/^seq 556069 of \[0, 556069\] \(556069 instructions recorded; 0 after now\)$/m);
    expect(rp.stdout).toMatch(/^seq \d+: panic \(0xffffffff801013cd\) on vCPU 0: breakpoint 1$/m);
    expect(rp.stdout).toMatch(/timer_tick/);
    const q = run(['query', m![1]!, 'SELECT instructions, inputs > 0 AS has_inputs FROM summary']);
    expect(q.stdout).toBe('instructions  has_inputs\n556069        1\n');
    // recorded lazily (the default): steps() makes pcs on the query's worker by re-executing a
    // chunk, and dbg exits cleanly after the answer (it died of SIGSEGV when the worker exited)
    const st = run(['query', m![1]!, "SELECT (SELECT value FROM meta WHERE key = 'memory_rows') AS rows, seq, vcpu FROM steps(1000, 2)"]);
    expect([st.status, st.signal, st.stderr]).toEqual([0, null, '']);
    expect(st.stdout).toMatch(/^rows +seq +vcpu\nlazy +1000 +0\nlazy +1001 +0\n$/);
    const none = run(['live', '--emulate', kernel, '-q', '--no-record', '-e', '::status'], { XDG_CACHE_HOME: join(dir, 'cache2') });
    expect(none.stderr).not.toMatch(/recording to/);
    expect(existsSync(join(dir, 'cache2', 'dbg'))).toBe(false);
  });

  it('bad input on the command line: a missing trace, bad SQL, a seq out of range', () => {
    const a = run(['replay', join(dir, 'nope.trace'), '-e', '::now']);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/^dbg: trace ".*nope\.trace" does not exist$/m);
    const b = run(['query', trace, 'SELECT x FROM nowhere']);
    expect(b.status).toBe(1);
    expect(b.stderr).toBe('dbg: bad SQL: no such table: nowhere\n');
    const c = run(['replay', trace, '-e', '::seek 999999999']);
    expect(c.status).toBe(1);
    expect(c.stderr).toBe(`dbg: seq 999999999 is outside the recorded history [0, ${TOTAL}]\n`);
  });

  it('kill -9 of a recording dbg live: the trace opens up to its last commit and replays', async () => {
    const t = join(dir, 'killed.trace');
    const child = spawn(dbg, ['live', '--emulate', kernel, '--cmdline', 'nobug', '-q', '--record', t], { stdio: ['pipe', 'ignore', 'pipe'] });
    // Wait until at least two chunks (2 x 2^20 instructions) are committed.
    const deadline = Date.now() + 60_000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 300));
      const q = existsSync(t) ? run(['query', t, 'SELECT count(*) FROM chunks']) : undefined;
      if (q && q.status === 0 && Number(q.stdout.split('\n')[1]) >= 2) break;
      if (Date.now() > deadline) throw new Error(`no chunks committed: ${q?.stderr}`);
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const r = run(['replay', t, '-e', '::now; ::rstep; ::rstep; ::seek 1000000; ::regs']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const m = /^seq (\d+) of \[0, (\d+)\]/m.exec(r.stdout)!;
    expect(Number(m[2])).toBeGreaterThanOrEqual(2 << 20);
    expect(r.stdout).toMatch(/^seq 1000000: /m);
    const q = run(['query', t, 'PRAGMA integrity_check']);
    expect(q.stdout).toBe('integrity_check\nok\n');
  }, 120_000);
});
