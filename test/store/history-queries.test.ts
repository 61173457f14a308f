/**
 * History queries cost what they return: the first N writes of a range, the first N runs of a pc,
 * SQL results bounded. Each answer is checked against a brute-force reading of the same trace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine, guestImage } from '../../bench/recording-guest.js';
import { hex } from '../../src/common/format.js';
import { decodeLineRow, writeOrder, type LineWrite } from '../../src/store/line-rows.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { interruptibleSql } from '../../src/store/interruptible-sql.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import { run, runJson, sessionOn } from '../mdb/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-history-queries-'));
const trace = join(dir, 'guest.trace');
const TOTAL = 300_000;

beforeAll(() => {
  const rec = new GuestMachine();
  rec.setObserver(new EmulatorRecorder(trace, { chunkTarget: 40_000, symbols: guestImage().elf }));
  rec.run(TOTAL);
  rec.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every write to [phys, phys + len) in [from, to), read row by row from SQL: the oracle. */
function bruteWrites(r: TraceReader, phys: number, len: number, from: number, to: number): LineWrite[] {
  const out: LineWrite[] = [];
  for (let line = Math.floor(phys / 64); line * 64 < phys + len; line++) {
    for (const row of r.db.prepare('SELECT chunk, data FROM mem WHERE line = ? ORDER BY chunk, part').all(line) as { chunk: number; data: Buffer }[]) {
      for (const w of decodeLineRow(row.data, line, r.chunkFirst(row.chunk)).writes) {
        if (w.seq >= from && w.seq < to && w.phys < phys + len && w.phys + w.len > phys) out.push(w);
      }
    }
  }
  return out.sort((a, b) => writeOrder(a) - writeOrder(b));
}

const key = (w: LineWrite) => `${w.seq}:${w.host}:${w.phys}:${w.data.toString('hex')}`;

describe('history queries', () => {
  it('the lazy write iterator agrees with every row of the range, for whole and partial windows and limits', () => {
    const t = ReplayTarget.open(trace);
    const r = t.reader;
    const counter = Number(t.symbols.lookup('counter'));
    const blocks = Number(t.symbols.lookup('blocks'));
    expect(blocks % 64).toBe(16);
    for (const [phys, len] of [
      [counter, 8],
      [blocks + 44, 8], // crosses a line
      [blocks, 512],
      [Number(t.symbols.lookup('last_value')), 16], // last_value and counter
    ] as const) {
      const all = bruteWrites(r, phys, len, r.first, r.end);
      expect(all.length).toBeGreaterThan(20);
      expect(r.writesTo(phys, len).map(key)).toEqual(all.map(key));
      expect(r.writesTo(phys, len, r.first, r.end, 3).map(key)).toEqual(all.slice(0, 3).map(key));
      for (const [from, to] of [
        [45_000, 46_000],
        [39_990, 120_010],
        [r.end - 10, r.end],
      ] as const) {
        expect(r.writesTo(phys, len, from, to).map(key)).toEqual(bruteWrites(r, phys, len, from, to).map(key));
      }
    }
    t.close();
  });

  it('the first writes of a hot range cost the rows holding them, not the whole history of the range', () => {
    const r = TraceReader.open(trace);
    const t = ReplayTarget.open(trace);
    const counter = Number(t.symbols.lookup('counter'));
    t.close();
    const rows = (r.db.prepare('SELECT count(*) AS n FROM mem_mask WHERE line = ?').get(Math.floor(counter / 64)) as { n: number }).n;
    expect(rows).toBeGreaterThan(20);
    expect(r.writesTo(counter, 8, r.first, r.end, 3)).toHaveLength(3);
    expect(r.rowsDecoded).toBe(1);
    // From the middle of the history: one index seek to the row holding that seq, then that row.
    const mid = Math.floor((r.first + r.end) / 2);
    const ws = r.writesTo(counter, 8, mid, r.end, 3);
    expect(ws[0]!.seq).toBeGreaterThanOrEqual(mid);
    expect(r.rowsDecoded).toBeLessThanOrEqual(3);
    r.close();
  });

  it('::history -n and ::when -n list the first ones and say that more follow; ::when -c counts all', async () => {
    const t = ReplayTarget.open(trace);
    const s = sessionOn(t);
    const lines = await run(s, 'counter,8::history -n 3');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('... more writes follow (-n 30 shows more)');
    const first = bruteWrites(t.reader, Number(t.symbols.lookup('counter')), 8, t.reader.first, t.reader.end).slice(0, 3);
    lines.slice(0, 3).forEach((l, i) => expect(l).toMatch(new RegExp(`^seq ${first[i]!.seq} `)));

    const visit = t.symbols.lookup('visit');
    const every = t.reader.findPcs([visit]);
    expect(every.length).toBeGreaterThan(3);
    expect(await run(s, 'visit::when -n 2')).toEqual([`visit (0x${visit.toString(16)}) ran more than 2 times: seq ${every[0]}, ${every[1]}, ...`]);
    expect(await run(s, 'visit::when -c -n 2')).toEqual([`visit (0x${visit.toString(16)}) ran ${every.length} times: seq ${every[0]}, ${every[1]}, ...`]);
    expect(await runJson(s, 'visit::when -n 2')).toEqual([{ pc: hex(visit), seqs: [Number(every[0]), Number(every[1])], more: true }]);
    const h = t.caps.history!.when(visit, every.length);
    expect(h).toEqual({ seqs: every.map(BigInt), more: false });
    t.close();
  });

  it("a reader keeps a bounded number of decoded writes, and answers alike when it has let rows go", () => {
    const r = TraceReader.open(trace);
    try {
      // every write of the history, line by line: more than the reader keeps decoded
      const lines = r.linesWritten(0, r.chunkCount - 1);
      const first = lines.map((l) => [...r.iterWrites(l * 64, 64)]);
      const kept = (r as unknown as { rowCacheWrites: number; rowCache: Map<string, { writes: unknown[] }> });
      expect(first.reduce((n, ws) => n + ws.length, 0)).toBeGreaterThan(65_536);
      expect(kept.rowCacheWrites).toBeLessThanOrEqual(65_536);
      expect(kept.rowCacheWrites).toBe([...kept.rowCache.values()].reduce((n, row) => n + row.writes.length, 0));
      // read again (rows decoded again where they were let go): the same writes
      lines.forEach((l, i) => expect([...r.iterWrites(l * 64, 64)].map(key), `line 0x${(l * 64).toString(16)}`).toEqual(first[i]!.map(key)));
    } finally {
      r.close();
    }
  });

  it('SQL results are bounded and say so; steps() is not cut short', () => {
    const r = TraceReader.open(trace);
    const capped = r.sql('SELECT seq FROM steps(0, 100)', 10);
    expect(capped.rows).toHaveLength(10);
    expect(capped.truncated).toBe(true);
    expect(r.sql('SELECT seq FROM steps(0, 10)', 10).truncated).toBe(false);
    // More than the 10,000,000 rows steps() used to stop at silently: it ends at the history's end.
    expect(r.sql('SELECT count(*) FROM steps(0, 20000000)').rows[0]![0]).toBe(BigInt(r.end - r.first));
    r.close();
  });

  it('a query on a worker thread answers as the reader does, and an abort stops it at once', async () => {
    const r = TraceReader.open(trace);
    const q = 'SELECT seq, vcpu, pc FROM steps(1000, 5)';
    expect(await interruptibleSql(trace, q)).toEqual({ ...r.sql(q), truncated: false });
    r.close();
    await expect(interruptibleSql(trace, 'SELEC 1')).rejects.toThrow(/bad SQL: near "SELEC"/);
    const abort = new AbortController();
    const t0 = performance.now();
    setTimeout(() => abort.abort(), 300);
    await expect(interruptibleSql(trace, 'SELECT count(*) FROM steps(0, 300000) a, steps(0, 300000) b', abort.signal)).rejects.toThrow('the query was interrupted (Ctrl-C)');
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('dbg query stops on SIGINT with a one-line message and exit status 130', async () => {
    const child = spawn('bin/dbg', ['query', trace, 'SELECT count(*) FROM steps(0, 300000) a, steps(0, 300000) b'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Only once dbg listens for SIGINT (one before that ends node at once, silently). It listens
    // before it opens the trace, so the trace among the process's open files says it does. A
    // fixed delay was too short for a start-up on a loaded machine.
    const exited = new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    const hasTraceOpen = (): boolean => {
      try {
        return readdirSync(`/proc/${child.pid}/fd`).some((fd) => {
          try {
            return readlinkSync(`/proc/${child.pid}/fd/${fd}`) === trace;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 1200 && child.exitCode === null && !hasTraceOpen(); i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGINT');
    const code = await exited;
    expect(err).toBe('dbg: the query was interrupted (Ctrl-C)\n');
    expect(code).toBe(130);
  });
});
