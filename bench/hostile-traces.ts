/**
 * Hostile traces: seeded mutations of a real trace (the sample kernel recorded to its panic), each
 * opened and used through the reader and replay APIs in-process. Every mutant must end in a
 * DbgError (one line) or open and answer correctly; anything else (another exception, a crash, a
 * hang, an allocation far above the trace's own RAM) is a failure. test/store/hostile-traces.test.ts
 * runs 1,000+; for a larger run:
 *
 *   node dist/bench/hostile-traces.js [--count N] [--seed S]
 *
 * Mutation kinds:
 *   flip    1-8 random bytes of the file flipped
 *   page    one 4 KiB page overwritten (zeros, 0xff or random)
 *   sql     one column of one row (every table, every column) set to a value of every SQL type
 *   blob    a blob inside an otherwise valid row damaged (pc streams, checkpoint images and
 *           deltas, memory rows, RAM pages), so the decoders see it
 */

import Database from 'better-sqlite3';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DbgError } from '../src/common/errors.js';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../src/targets/replay/replay-target.js';

// (what the campaign calls to tell memory held from memory not yet collected)
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

const root = join(dirname(fileURLToPath(import.meta.url)), '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []));
export const sampleKernel = join(root, 'dumps', 'kernel.elf');

/**
 * Record the sample kernel (2 vCPUs, 4 MiB) into `path` up to the 4th timer tick (~0.15 M
 * instructions, both vCPUs running), in chunks of 30k instructions: small enough to open in tens
 * of milliseconds, with every table populated.
 */
export async function recordSampleTrace(path: string, rows: 'lazy' | 'eager' = 'eager'): Promise<void> {
  const t = EmulatorTarget.open(sampleKernel, { ramBytes: 4 << 20, cpus: 2 });
  try {
    t.record(new EmulatorRecorder(path, { chunkTarget: 30_000, checkpointEvery: 2048, guest: 'kernel.elf', symbols: sampleKernel, rows }));
    const tick = t.symbols.find('timer_tick');
    if (!tick) throw new Error('the sample kernel has no timer_tick');
    t.caps.breakpoints!.addBreakpoint(tick.addr);
    for (let i = 0; i < 4; i++) {
      const st = await t.caps.execution!.resume();
      if (st.reason.kind !== 'breakpoint') break;
    }
  } finally {
    t.close();
  }
}

/** xorshift64*: the same seed gives the same mutants on every machine. */
export class Rng {
  private s: bigint;
  constructor(seed: number | bigint) {
    this.s = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n) || 1n;
  }
  next(): number {
    this.s ^= this.s >> 12n;
    this.s ^= BigInt.asUintN(64, this.s << 25n);
    this.s ^= this.s >> 27n;
    return Number(BigInt.asUintN(64, this.s * 0x2545f4914f6cdd1dn) >> 11n) / 2 ** 53;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** Every column of every table, as the schema defines them (meta by key). */
const COLUMNS: Record<string, readonly string[]> = {
  chunk: ['id', 'first', 'count', 'pcs', 'writes', 'lines'],
  mem: ['chunk', 'line', 'part', 'data'],
  mem_mask: ['line', 'chunk', 'part', 'first', 'mask'],
  ckpt: ['seq', 'vcpu', 'chunk', 'flags', 'data'],
  ram_init: ['page', 'data'],
  input: ['seq', 'vcpu', 'kind', 'detail', 'chunk'],
  page: ['chunk', 'page', 'data'],
};
const META_KEYS = ['format', 'arch', 'guest', 'symbols', 'ram_base', 'ram_size', 'vcpus', 'first_seq', 'checkpoint_every', 'chunk_target', 'cpu_model', 'unicorn_version', 'context_size', 'memory_rows'];

/** One value of each SQL type, drawn at random (some near the edges a reader trips on). */
function sqlValue(r: Rng, fifo: string): unknown {
  switch (r.int(6)) {
    case 0:
      return null;
    case 1:
      return BigInt(r.pick([0, -1, 1, 2, 3, 15, 16, 17, 100000, 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 40)])) * (r.int(8) === 0 ? 1024n : 1n);
    case 2:
      return r.pick([0.5, -1.5, 1e300, 2 ** 34, 4096.5, Number.NaN]);
    case 3:
      return r.pick(['', 'x', '0x10', '100000', '17179869184', '{}', '{"a":', 'dbg-trace', 'lazy', fifo, '/', '/dev/zero']);
    default:
      return r.bytes(r.pick([0, 1, 16, 64, 127, 128, 200, 4096]));
  }
}

/** Damage a blob: flips, a cut, growth, or a run of 0xff (endless varints, huge runs). */
function damageBlob(r: Rng, b: Buffer): Buffer {
  const out = Buffer.from(b);
  switch (r.int(5)) {
    case 0:
      for (let k = 1 + r.int(4); k > 0 && out.length; k--) out[r.int(out.length)] ^= 1 << r.int(8);
      return out;
    case 1:
      return out.subarray(0, r.int(out.length + 1));
    case 2:
      return Buffer.concat([out, r.bytes(1 + r.int(32))]);
    case 3: {
      const at = out.length ? r.int(out.length) : 0;
      return Buffer.concat([out.subarray(0, at), Buffer.alloc(1 + r.int(12), 0xff), out.subarray(at)]);
    }
    default:
      if (out.length) out[r.int(out.length)] = r.int(256);
      return out;
  }
}

export type MutationKind = 'flip' | 'page' | 'sql' | 'blob';
export const KINDS: readonly MutationKind[] = ['flip', 'page', 'sql', 'blob'];

/** Write a mutant of `good` (a trace file) to `path`; returns what was done, for messages. */
export function mutate(good: string, goodBytes: Buffer, path: string, kind: MutationKind, r: Rng, fifo: string): string {
  if (kind === 'flip' || kind === 'page') {
    const b = Buffer.from(goodBytes);
    if (kind === 'flip') {
      const where: number[] = [];
      for (let k = 1 + r.int(8); k > 0; k--) {
        const at = r.int(b.length);
        b[at] ^= 1 << r.int(8);
        where.push(at);
      }
      writeFileSync(path, b);
      return `flip bytes at ${where.join(',')}`;
    }
    const page = r.int(b.length / 4096);
    const fill = r.int(3);
    (fill === 2 ? r.bytes(4096) : Buffer.alloc(4096, fill ? 0xff : 0)).copy(b, page * 4096);
    writeFileSync(path, b);
    return `page ${page} overwritten with ${['zeros', '0xff', 'random bytes'][fill]}`;
  }
  copyFileSync(good, path);
  const db = new Database(path);
  try {
    db.pragma('journal_mode = DELETE');
    if (kind === 'sql') {
      const table = r.pick([...Object.keys(COLUMNS), 'meta', 'meta']);
      const v = sqlValue(r, fifo);
      const shown = Buffer.isBuffer(v) ? `a blob of ${v.length} bytes` : typeof v === 'string' ? JSON.stringify(v) : String(v);
      if (table === 'meta') {
        const key = r.pick(META_KEYS);
        db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, v);
        return `meta.${key} = ${shown}`;
      }
      const col = r.pick(COLUMNS[table]!);
      const n = (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
      const off = r.int(Math.max(n, 1));
      try {
        db.prepare(`UPDATE ${table} SET ${col} = ? WHERE rowid IN (SELECT rowid FROM ${table} LIMIT 1 OFFSET ?)`).run(v, off);
      } catch {
        // WITHOUT ROWID tables, NOT NULL and key clashes: edit by the key instead
        const keys = table === 'mem' || table === 'mem_mask' ? ['line', 'chunk', 'part'] : table === 'ram_init' ? ['page'] : table === 'page' ? ['page', 'chunk'] : ['id'];
        const row = db.prepare(`SELECT ${keys.join(', ')} FROM ${table} LIMIT 1 OFFSET ?`).get(off) as Record<string, unknown> | undefined;
        if (!row) return `${table} is empty`;
        try {
          db.prepare(`UPDATE OR REPLACE ${table} SET ${col} = ? WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`).run(v, ...keys.map((k) => row[k]));
        } catch (e) {
          return `${table}.${col} of row ${off} = ${shown} refused by SQLite (${(e as Error).message})`;
        }
      }
      return `${table}.${col} of row ${off} = ${shown}`;
    }
    const [table, col, keys] = r.pick([
      ['chunk', 'pcs', ['id']],
      ['ckpt', 'data', ['id']],
      ['ckpt', 'data', ['id']],
      ['mem', 'data', ['line', 'chunk', 'part']],
      ['mem', 'data', ['line', 'chunk', 'part']],
      ['ram_init', 'data', ['page']],
      ['page', 'data', ['page', 'chunk']],
    ] as const);
    // delta checkpoints (flags & 1 = 0) are what ckptDecode reads: prefer them
    const where = table === 'ckpt' && r.int(4) ? 'WHERE (flags & 1) = 0' : '';
    const n = (db.prepare(`SELECT count(*) AS n FROM ${table} ${where}`).get() as { n: number }).n;
    const row = db.prepare(`SELECT ${keys.join(', ')}, ${col} AS blob FROM ${table} ${where} LIMIT 1 OFFSET ?`).get(r.int(Math.max(n, 1))) as Record<string, unknown> | undefined;
    if (!row) return `${table} is empty`;
    const b = damageBlob(r, row.blob as Buffer);
    db.prepare(`UPDATE ${table} SET ${col} = ? WHERE ${keys.map((k) => `${k} = ?`).join(' AND ')}`).run(b, ...keys.map((k) => row[k]));
    return `${table}.${col} of ${keys.map((k) => `${k} ${row[k]}`).join(', ')} damaged (${(row.blob as Buffer).length} -> ${b.length} bytes)`;
  } finally {
    db.close();
  }
}

/**
 * Open a trace and use it as a user would: replay to the end, seek, step back, the history
 * queries. Returns undefined when it ended well (a DbgError or no error), else what went wrong.
 */
export async function probe(path: string): Promise<{ outcome: 'opened' | 'refused'; message?: string; failure?: string }> {
  let t: ReplayTarget | undefined;
  try {
    t = ReplayTarget.open(path);
    const rev = t.caps.reverse!;
    const b = rev.bounds();
    const span = Number(b.last - b.first);
    for (const f of [0.5, 0.1, 0.9]) await rev.seek(b.first + BigInt(Math.floor(span * f)));
    await rev.stepBack(1);
    t.registers(1);
    t.readVirtual(t.registers(1).get('rsp')!, 64);
    t.caps.history!.whoWrote(0x100000n, 64);
    t.caps.history!.writes(0x100000n, 4096, 1, undefined, undefined, 20);
    t.caps.history!.when(t.registers(1).get('rip')!, 5);
    t.caps.history!.summary();
    await t.caps.execution!.step(1);
    return { outcome: 'opened' };
  } catch (e) {
    if (e instanceof DbgError) {
      const m = e.message;
      if (m.includes('\n')) return { outcome: 'refused', message: m, failure: `a message of several lines: ${m}` };
      return { outcome: 'refused', message: m };
    }
    return { outcome: 'refused', failure: `not a DbgError: ${(e as Error).stack ?? String(e)}` };
  } finally {
    t?.close();
  }
}

export interface CampaignResult {
  readonly runs: number;
  readonly opened: number;
  readonly refused: number;
  readonly failures: string[];
  readonly byKind: Record<string, number>;
  readonly messages: Map<string, number>;
}

/** `count` mutants from `seed`; `fifo` is a path a mutant may name as its symbol file. */
export async function campaign(goods: readonly string[], count: number, seed: number, dir: string, fifo: string, onEach?: (i: number) => void): Promise<CampaignResult> {
  const r = new Rng(seed);
  const goodBytes = goods.map((g) => readFileSync(g));
  const res = { runs: 0, opened: 0, refused: 0, failures: [] as string[], byKind: {} as Record<string, number>, messages: new Map<string, number>() };
  const heapLimit = 512 << 20;
  for (let i = 0; i < count; i++) {
    const kind = KINDS[i % KINDS.length]!;
    const p = join(dir, `m${i}.trace`);
    // each kind of damage to each good trace in turn
    const g = Math.floor(i / KINDS.length) % goods.length;
    const what = mutate(goods[g]!, goodBytes[g]!, p, kind, r, fifo);
    const t0 = Date.now();
    const out = await probe(p);
    const ms = Date.now() - t0;
    const ext = process.memoryUsage().arrayBuffers;
    res.runs++;
    res.byKind[kind] = (res.byKind[kind] ?? 0) + 1;
    if (out.outcome === 'opened') res.opened++;
    else res.refused++;
    if (out.message) {
      const shape = out.message.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N');
      res.messages.set(shape, (res.messages.get(shape) ?? 0) + 1);
    }
    if (out.failure) res.failures.push(`#${i} (seed ${seed}) ${what}: ${out.failure}`);
    if (ms > 10_000) res.failures.push(`#${i} (seed ${seed}) ${what}: took ${ms} ms`);
    if (ext > heapLimit) {
      // what a collection gives back was not held: a replay's RAM (a SharedArrayBuffer of the
      // trace's RAM size, its pages given back at close) waits for one
      collect();
      const held = process.memoryUsage().arrayBuffers;
      if (held > heapLimit) res.failures.push(`#${i} (seed ${seed}) ${what}: ${Math.round(held / 2 ** 20)} MiB of buffers held after the run`);
    }
    for (const s of ['', '-wal', '-shm', '-journal']) rmSync(p + s, { force: true });
    onEach?.(i);
    // A turn of the event loop between mutants: a thousand of them take over a minute on a
    // loaded machine, and the caller's own messages (a test runner's RPC) must get through.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return res;
}

async function main(): Promise<void> {
  const arg = (n: string, d: string) => {
    const i = process.argv.indexOf(n);
    return i > 0 ? process.argv[i + 1]! : d;
  };
  const count = Number(arg('--count', '10000'));
  const seed = Number(arg('--seed', String(Date.now() % 1_000_000)));
  const dir = mkdtempSync(join(tmpdir(), 'dbg-hostile-'));
  try {
    const good = join(dir, 'good.trace');
    const lazy = join(dir, 'lazy.trace');
    await recordSampleTrace(good);
    await recordSampleTrace(lazy, 'lazy');
    const fifo = join(dir, 'fifo');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    const res = await campaign([good, lazy], count, seed, dir, fifo, (i) => {
      if (i % 500 === 499) console.error(`hostile-traces: ${i + 1} of ${count}`);
    });
    console.log(`hostile-traces: ${res.runs} mutants (seed ${seed}) in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${res.opened} opened, ${res.refused} refused with a dbg: error, ${res.failures.length} failures`);
    for (const [m, n] of [...res.messages].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${String(n).padStart(5)}  ${m}`);
    for (const f of res.failures.slice(0, 20)) console.log(`FAIL ${f}`);
    process.exitCode = res.failures.length ? 1 : 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
