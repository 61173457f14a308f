/**
 * A trace re-executed from its start with a recorder attached: its history recorded a second
 * time, from nothing but what a recording must keep (the RAM it began with, the register state
 * at each slice start, the inputs), and compared with the recorded one table by table.
 *
 * That is what `dbg traces --verify` runs. A lazy-rows recording (issue 10) keeps only that
 * much, with the memory rows made afterwards by the same re-execution, a chunk at a time
 * (chunk-indexer.ts); this check says whether the rest can be made again from it, byte for byte.
 *
 * Each chunk is driven as the live machine ran it (chunk-drive.ts), with a recorder as the sink;
 * the chunk is cut where the recording cut it. The re-recording runs on the replay's fast
 * engines as the recording ran on the live machine's (or on the exact ones with DBG_EMU_EXACT=1
 * or DBG_RECORD_FAST=0: the same history either way, test/store/fast-recording.test.ts).
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DbgError } from '../../common/errors.js';
import { exitCleanlyOnSignals } from '../../common/exit-signals.js';
import { EmulatorRecorder } from '../../store/emulator-recorder.js';
import { nativeRecorder } from '../../store/native-recorder.js';
import { TraceReader } from '../../store/trace-reader.js';
import type { MachineState, ObservedMachine } from '../emulator/execution-observer.js';
import { UC, UnicornEngine, X86_REG } from '../emulator/unicorn.js';
import { driveChunk } from './chunk-drive.js';
import { ReplayMachine } from './replay-machine.js';

export interface VerifyResult {
  readonly instructions: number;
  readonly chunks: number;
  /**
   * What was not compared: a lazy-rows trace holds page images and no memory rows, which an eager
   * re-recording cannot be compared with.
   */
  readonly unchecked?: string;
  /** The first difference between the recording and its re-execution, or undefined. */
  readonly difference?: string;
}

/**
 * Re-execute the whole history of `reader` with a recorder writing `out`. The event loop turns
 * between chunks, so that a signal's handler (Ctrl-C:
 * exitCleanlyOnSignals) runs within a chunk's time, not at the end.
 */
export async function rerecord(reader: TraceReader, out: string): Promise<void> {
  const m = new ReplayMachine(reader);
  let seq = BigInt(reader.first);
  const machine: ObservedMachine = {
    vcpuCount: reader.vcpus,
    engineAddress: (v) => m.engine(v).address,
    fastEngine: (v) => m.fastEngine(v),
    ram: m.ram,
    ramBase: m.ramBase,
    get seq() {
      return seq;
    },
    saveState(): MachineState {
      throw new DbgError('state', 'a re-recording has no machine state to save');
    },
    loadState(): void {
      throw new DbgError('state', 'a re-recording has no machine state to load');
    },
  };
  let rec: EmulatorRecorder | undefined;
  try {
    // Every vCPU as recording began: its first checkpoint (the recorder's attach took them; a
    // register written before anything ran has a later one at the same seq).
    const started = new Set<number>();
    for (const r of reader.chunkCount ? reader.checkpointRows(0) : []) {
      if (r.seq !== reader.first || started.has(r.vcpu)) continue;
      started.add(r.vcpu);
      m.load(reader.checkpointById(r.id)!);
    }
    const info = reader.info;
    rec = new EmulatorRecorder(out, {
      checkpointEvery: info.checkpointEvery ?? 8192,
      // cut where the recording cut, not by size
      chunkTarget: Number.MAX_SAFE_INTEGER,
      replace: true,
      maxBytes: Number.MAX_SAFE_INTEGER,
      // the replay's RAM is no machine's mmap'd RAM, and the memory rows are what is compared
      rows: 'eager',
    });
    rec.attach(machine);
    const inputs = { rows: reader.inputs(reader.first, reader.end + 1), next: 0 };
    for (let k = 0; k < reader.chunkCount; k++) {
      driveChunk(reader, m, k, inputs, rec, (s) => (seq = s));
      rec.cutChunk();
      await new Promise((resolve) => setImmediate(resolve));
    }
    rec.detach();
    rec = undefined;
  } finally {
    rec?.detach();
    m.close();
  }
}

/** The tables a re-recording must give back as they are, with the columns compared. */
const COMPARED: readonly { table: string; what: string; columns: string; order: string; key: string }[] = [
  { table: 'ram_init', what: 'initial RAM page', columns: 'page, data', order: 'page', key: "printf('page 0x%x', page)" },
  { table: 'chunk', what: '', columns: 'id, first, count, writes, lines', order: 'id', key: "printf('chunk %d (seq %d, %d instructions)', id, first, count)" },
  { table: 'mem', what: 'memory row', columns: 'chunk, line, part, data', order: 'chunk, line, part', key: "printf('chunk %d, line 0x%x (physical 0x%x) part %d', chunk, line, line * 64, part)" },
  { table: 'mem_mask', what: 'memory mask', columns: 'line, chunk, part, first, mask', order: 'chunk, line, part', key: "printf('chunk %d, line 0x%x part %d', chunk, line, part)" },
  { table: 'input', what: 'input', columns: 'seq, vcpu, kind, detail', order: 'seq, kind', key: "printf('%s at seq %d', kind, seq)" },
];

/**
 * Of a lazy-rows recording (schema.ts, `page`), re-recorded eagerly: the chunks' instructions
 * (their writes and lines are the eager recording's alone) and the inputs.
 */
const COMPARED_LAZY: readonly (typeof COMPARED)[number][] = [
  COMPARED[0]!,
  { ...COMPARED[1]!, columns: 'id, first, count' },
  COMPARED.find((t) => t.table === 'input')!,
];

/** The first row where `a` and `b` (attached as schemas) differ, said in words; undefined when none. */
function firstDifference(db: Database.Database, lazy: boolean): string | undefined {
  for (const t of lazy ? COMPARED_LAZY : COMPARED) {
    for (const [x, y, how] of [
      ['a', 'b', 'recorded, not made again by re-execution'],
      ['b', 'a', 'made by re-execution, not in the recording'],
    ] as const) {
      const row = db.prepare(`SELECT ${t.key} AS k FROM (SELECT ${t.columns} FROM ${x}.${t.table} EXCEPT SELECT ${t.columns} FROM ${y}.${t.table}) ORDER BY ${t.order} LIMIT 1`).get() as { k: string } | undefined;
      if (row) return `${t.what ? `${t.what} ` : ''}${row.k}: ${how}`;
    }
  }
  return undefined;
}

/**
 * The first instruction whose pc or vCPU the re-execution did not give back. Compared decoded:
 * a chunk cut short by ::discard -f keeps its whole pc stream, of which `count` instructions count.
 */
function firstPcDifference(a: TraceReader, b: TraceReader): string | undefined {
  for (let k = 0; k < a.chunkCount; k++) {
    const x = a.pcs(k);
    const y = b.pcs(k);
    for (let i = 0; i < x.pc.length; i++) {
      if (x.pc[i] !== y.pc[i] || x.vcpu[i] !== y.vcpu[i]) {
        const seq = a.chunkFirst(k) + i;
        return `instruction at seq ${seq}: pc 0x${x.pc[i]!.toString(16)} on vCPU ${x.vcpu[i]} recorded, ${y.pc[i] === undefined ? 'none' : `0x${y.pc[i]!.toString(16)} on vCPU ${y.vcpu[i]}`} re-executed`;
      }
    }
  }
  return undefined;
}

/**
 * uc_context bytes of CPUX86State's lazy flags (cc_dst, cc_src, cc_src2, cc_op, after the
 * context's 16-byte header): how far the flags are computed depends on where the engine's
 * translated blocks ended, which differs between the fast engines of a recording and the exact
 * ones of a re-execution. Two images that differ only there hold the same registers when
 * Unicorn computes the same EFLAGS from both.
 */
const LAZY_FLAGS = [16 + 144, 16 + 172] as const;

/**
 * uc_context bytes (Unicorn 2.0.1's CPUX86State, after the header) that hold the eip where the
 * engine last stopped: every checkpoint after a stop shows it (xv6's first quantum ended at
 * memset+0x22, and the next checkpoints hold 0x80104722). Where engines stop differs between a
 * recording's fast engines (a device access hands one instruction over) and a re-execution's
 * exact ones, and the next stop writes it again: two images that differ only there and in the
 * lazy flags are the same guest state (xv6's boot, 73 M instructions: `dbg traces --verify`
 * finds every later checkpoint and input alike when it is left out).
 */
const LAST_STOP = [16 + 5360, 16 + 5368] as const;

/** Whether byte `i` of a uc_context image is one the comparison leaves out (the two ranges above). */
const engineOnly = (i: number): boolean => (i >= LAZY_FLAGS[0] && i < LAZY_FLAGS[1]) || (i >= LAST_STOP[0] && i < LAST_STOP[1]);

/**
 * The first register checkpoint of the recording that its re-execution did not take with the
 * same registers (the same image, or one that differs only in how far the flags are computed
 * and where the engine last stopped),
 * each row against the re-execution's row of the same seq, vCPU and flags, in order. The
 * re-execution may take more (the exact engines checkpoint inside slices too).
 */
function firstCheckpointDifference(a: TraceReader, b: TraceReader, cpuModel: number): string | undefined {
  let scratch: UnicornEngine | undefined;
  const eflags = (image: Buffer): bigint => {
    scratch ??= new UnicornEngine('x86-64', cpuModel);
    nativeRecorder().contextRestore(scratch.address, image);
    return scratch.readReg(X86_REG.EFLAGS);
  };
  try {
    for (let k = 0; k < a.chunkCount; k++) {
      const made = new Map<string, number[]>();
      for (const r of b.checkpointRows(k)) {
        const key = `${r.seq}:${r.vcpu}:${r.flags}`;
        made.set(key, [...(made.get(key) ?? []), r.id]);
      }
      for (const r of a.checkpointRows(k)) {
        const where = `register checkpoint at seq ${r.seq} of vCPU ${r.vcpu}`;
        const again = made.get(`${r.seq}:${r.vcpu}:${r.flags}`)?.shift();
        if (again === undefined) return `${where}: recorded, not taken again by re-execution`;
        const x = a.checkpointById(r.id)!.image;
        const y = b.checkpointById(again)!.image;
        if (x.equals(y)) continue;
        let at = -1;
        for (let i = 0; i < x.length && at < 0; i++) if (x[i] !== y[i] && !engineOnly(i)) at = i;
        if (at >= 0) return `${where}: byte ${at} of its image is 0x${x[at]!.toString(16)} recorded, 0x${y[at]!.toString(16)} re-executed`;
        const [fx, fy] = [eflags(x), eflags(y)];
        if (fx !== fy) return `${where}: EFLAGS 0x${fx.toString(16)} recorded, 0x${fy.toString(16)} re-executed`;
      }
    }
    return undefined;
  } finally {
    scratch?.close();
  }
}

/**
 * Re-record the trace of `reader` into a scratch file and compare the two; the scratch file is
 * removed, also when SIGINT, SIGTERM or SIGHUP ends the process meanwhile.
 */
export async function verifyTrace(reader: TraceReader): Promise<VerifyResult> {
  // the handler first: a signal between the folder's making and the handler's would leave it
  let dir: string | undefined;
  const remove = () => dir !== undefined && rmSync(dir, { recursive: true, force: true });
  const unhook = exitCleanlyOnSignals(remove);
  try {
    dir = mkdtempSync(join(tmpdir(), 'dbg-verify-'));
    const out = join(dir, 'again.trace');
    await rerecord(reader, out);
    const db = new Database(':memory:');
    const again = TraceReader.open(out);
    try {
      db.prepare('ATTACH DATABASE ? AS a').run(reader.path);
      db.prepare('ATTACH DATABASE ? AS b').run(out);
      const lazy = reader.meta.get('memory_rows') === 'lazy';
      // (a lazy trace's pcs are made by the same re-execution: nothing to compare)
      const difference = firstDifference(db, lazy) ?? (reader.lazyPcs ? undefined : firstPcDifference(reader, again)) ?? firstCheckpointDifference(reader, again, reader.info.cpuModel ?? UC.CPU_X86_SKYLAKE_SERVER);
      return {
        instructions: reader.end - reader.first,
        chunks: reader.chunkCount,
        ...(difference ? { difference } : {}),
        ...(lazy ? { unchecked: reader.lazyPcs ? 'memory and pcs (a lazy trace: page images, no memory rows or pc stream)' : 'memory (a lazy-rows trace: page images, no memory rows)' } : {}),
      };
    } finally {
      again.close();
      db.close();
    }
  } finally {
    unhook();
    remove();
  }
}
