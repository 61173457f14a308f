/**
 * Time travel on a recorded guest: 10,000 reverse single steps each landing where forward
 * stepping had been (all registers), reverse and forward continue to breakpoints and to write
 * and exec watchpoints (a write stop shows memory before the write and pc at the writer).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine, guestImage } from '../../bench/recording-guest.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-time-travel-'));
const trace = join(dir, 'guest.trace');
const TOTAL = 400_000;
const BACK = 10_000;
const forward: Map<string, bigint>[] = []; // registers at TOTAL - BACK + i

beforeAll(() => {
  const rec = new GuestMachine();
  rec.setObserver(new EmulatorRecorder(trace, { chunkTarget: 100_000, symbols: guestImage().elf }));
  rec.run(TOTAL);
  rec.close();
  const live = new GuestMachine();
  live.run(TOTAL - BACK);
  forward.push(live.registers());
  for (let i = 0; i < BACK; i++) {
    live.run(1, 1);
    forward.push(live.registers());
  }
  live.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('reverse execution on a trace', () => {
  it('10,000 reverse single steps land exactly where forward stepping had been', async () => {
    const t = ReplayTarget.open(trace);
    const rev = t.caps.reverse!;
    expect(rev.bounds()).toEqual({ first: 0n, last: BigInt(TOTAL), now: BigInt(TOTAL) });
    for (let i = BACK; i >= 0; i--) {
      const seq = TOTAL - BACK + i;
      if (i < BACK) {
        const st = await rev.stepBack(1);
        expect(st.seq).toBe(BigInt(seq));
      }
      const got = t.registers(1);
      for (const [name, value] of forward[i]!) {
        if (got.get(name) !== value) throw new Error(`seq ${seq}: ${name} = 0x${got.get(name)?.toString(16)}, forward stepping had 0x${value.toString(16)}`);
      }
    }
    t.close();
  });

  it('reverse continue stops at the last breakpoint hit, then the one before; forward continue at the next', async () => {
    const t = ReplayTarget.open(trace);
    const visit = t.symbols.lookup('visit');
    const id = t.caps.breakpoints!.addBreakpoint(visit);
    const hits = t.reader.findPcs([visit]);
    expect(hits.length).toBeGreaterThan(100);
    let st = await t.caps.reverse!.resumeBack();
    expect(st.reason).toEqual({ kind: 'breakpoint', id, addr: visit });
    expect(st.seq).toBe(BigInt(hits.at(-1)!));
    expect(st.pc).toBe(visit);
    st = await t.caps.reverse!.resumeBack();
    expect(st.seq).toBe(BigInt(hits.at(-2)!));
    st = await t.caps.execution!.resume();
    expect(st.seq).toBe(BigInt(hits.at(-1)!));
    t.caps.breakpoints!.removeBreakpoint(id);
    st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('history-end');
    st = await t.caps.reverse!.resumeBack();
    expect(st.reason.kind).toBe('history-begin');
    expect(st.seq).toBe(0n);
    t.close();
  });

  it('the last hit of a pc before a position is the same from a decoded chunk as from its stored stream', () => {
    const t = ReplayTarget.open(trace);
    const stream = TraceReader.open(trace);
    try {
      const decoded = t.reader;
      for (let id = 0; id < decoded.chunkCount; id++) decoded.pcs(id); // every chunk decoded (cached)
      const visit = t.symbols.lookup('visit');
      const all = decoded.findPcs([visit]);
      const other = decoded.step(all.at(-1)! + 1).pc; // the instruction after a visit
      const absent = 0x1234_5678n;
      const at = [1, 99_999, 100_000, 100_001, 250_000, all[3]!, all[3]! + 1, all.at(-1)!, all.at(-1)! + 1, TOTAL];
      for (const pcs of [[visit], [visit, other], [absent], [other, absent]]) {
        for (const to of at) {
          for (const from of [0, Math.max(0, to - 50), all[2]!]) {
            const want = stream.lastPc(pcs, from, to);
            expect(decoded.lastPc(pcs, from, to), `pcs ${pcs.map((p) => p.toString(16))} in [${from}, ${to})`).toBe(want);
            const brute = decoded.findPcs(pcs, from, to).at(-1);
            expect(want).toBe(brute);
          }
        }
      }
    } finally {
      stream.close();
      t.close();
    }
  });

  it('a write watchpoint stops in reverse at the writing instruction with memory as before the write', async () => {
    const t = ReplayTarget.open(trace);
    const counter = t.symbols.lookup('counter');
    const after = t.readVirtual(counter, 8).readBigUInt64LE(0);
    const id = t.caps.breakpoints!.addWatchpoint(counter, 8, 'write');
    const st = await t.caps.reverse!.resumeBack();
    expect(st.reason).toEqual({ kind: 'watchpoint', id, addr: counter, access: 'write', length: 8 });
    expect(t.readVirtual(counter, 8).readBigUInt64LE(0)).toBe(after - 1n); // counter++ not yet done
    expect(t.symbols.resolve(st.pc)?.sym.name).toBe('_start');
    const w = t.caps.history!.whoWrote(counter, 8);
    expect(w?.data.readBigUInt64LE(0)).toBe(after - 1n); // the write before that one
    // Forward again: the stop comes after the write completes.
    const fwd = await t.caps.execution!.resume();
    expect(fwd.seq).toBe(st.seq! + 1n);
    expect(t.readVirtual(counter, 8).readBigUInt64LE(0)).toBe(after);
    t.close();
  });

  it('raw SQL: the steps() and writes() functions agree with the reader', () => {
    const t = ReplayTarget.open(trace);
    const h = t.caps.history!;
    const big = (rows: unknown[][]) => rows.map((r) => r.map((v) => (typeof v === 'number' ? BigInt(v) : v)));
    const steps = h.sql('SELECT seq, vcpu, pc FROM steps(123456, 3)');
    expect(steps.columns).toEqual(['seq', 'vcpu', 'pc']);
    expect(big(steps.rows)).toEqual([0, 1, 2].map((i) => [BigInt(123456 + i), 0n, t.reader.step(123456 + i).pc]));
    const counter = Number(t.symbols.lookup('counter'));
    const ws = h.sql(`SELECT seq, host, phys_addr, length, old, new FROM writes(${counter}, 8) LIMIT 2`);
    const direct = t.reader.writesTo(counter, 8).slice(0, 2);
    expect(big(ws.rows)).toEqual(direct.map((w) => [BigInt(w.seq), 0n, BigInt(w.phys), BigInt(w.len), w.old, w.data]));
    t.close();
  });

  it('an exec watchpoint on a function stops at its last instruction run', async () => {
    const t = ReplayTarget.open(trace);
    const mix = t.symbols.find('mix')!;
    const id = t.caps.breakpoints!.addWatchpoint(mix.addr, Number(mix.size), 'exec');
    const st = await t.caps.reverse!.resumeBack();
    expect(st.reason.kind).toBe('watchpoint');
    expect(st.pc >= mix.addr && st.pc < mix.addr + BigInt(mix.size)).toBe(true);
    expect(t.reader.findPcs([st.pc], Number(st.seq) + 1).length).toBe(0);
    t.caps.breakpoints!.removeWatchpoint(id);
    t.close();
  });

  it('read and access watchpoints, found by re-execution, in reverse and forward', async () => {
    const t = ReplayTarget.open(trace);
    const counter = t.symbols.lookup('counter');
    const lastWrite = t.reader.lastWriteInRange(Number(counter), 8, TOTAL)!;
    // counter++ on a volatile: load, add, store. The last read comes just before the last store.
    const r = t.caps.breakpoints!.addWatchpoint(counter, 8, 'read');
    const st = await t.caps.reverse!.resumeBack();
    expect(st.reason).toEqual({ kind: 'watchpoint', id: r, addr: counter, access: 'read', length: 8 });
    const readSeq = Number(st.seq);
    expect(readSeq).toBeLessThan(lastWrite.seq);
    expect(lastWrite.seq - readSeq).toBeLessThanOrEqual(3);
    const prevRead = Number((await t.caps.reverse!.resumeBack()).seq);
    expect(readSeq - prevRead).toBeGreaterThan(10); // one loop iteration earlier
    // Forward from a read stop: the read at the position runs and stops again right after it
    // (as gdb reports a watchpoint again), then the next read.
    expect((await t.caps.execution!.resume()).seq).toBe(BigInt(prevRead + 1));
    expect((await t.caps.execution!.resume()).seq).toBe(BigInt(readSeq + 1));
    t.caps.breakpoints!.removeWatchpoint(r);
    // An access watchpoint's last trigger is the last store.
    await t.caps.reverse!.seek(BigInt(TOTAL));
    const a = t.caps.breakpoints!.addWatchpoint(counter, 8, 'access');
    const st2 = await t.caps.reverse!.resumeBack();
    expect(st2.reason).toEqual({ kind: 'watchpoint', id: a, addr: counter, access: 'access', length: 8 });
    expect(Number(st2.seq)).toBe(lastWrite.seq);
    t.close();
  });
});
