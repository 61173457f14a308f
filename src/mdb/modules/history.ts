/**
 * Time travel and history queries (targets with a recorded history: `dbg replay`, and a live
 * guest that records).
 *
 *   ::rstep [over|out]       step back one instruction / over a call / out to the caller
 *   ::rcont                  run back to the last breakpoint hit or watchpoint trigger
 *   ::seek SEQ | +N | -N     go to a position (absolute, or relative to now)
 *   ::now                    the position and the bounds of the history
 *   ::discard -f             (live guest) make the position the present: delete the recorded future
 *   addr[,len]::whowrote     the last write to the range before now: seq, vCPU, pc, old -> new
 *   addr,len::history        every value the range held: seq, pc, bytes
 *   sym::when [-n N]         every seq at which the instruction at sym ran, with the count
 *   ::sql QUERY...           read-only SQL over the trace's views (see dbg query --help)
 *
 * Breakpoints, watchpoints, :c and :s (forward, replaying the trace) are the emulator module's,
 * which work on any target with the `breakpoints` and `execution` capabilities.
 *
 * A position `seq` means "before instruction seq runs": after ::seek 100 the pc is that of
 * instruction 100, and memory holds what instructions 0..99 wrote.
 */

import { errors } from '../../common/errors.js';
import { hex } from '../../common/format.js';
import { need, type HistoryWrite, type StopStatus, type Target } from '../../targets/target.js';
import type { Dcmd, DcmdModule, Invocation, Output, SessionView } from '../dcmd.js';
import { jsonCount, sqlJson, stopJson } from '../json.js';
import { symbolName, threadName } from '../names.js';
import { parseFlags } from '../parse-flags.js';
import { sessionStop } from './emulator.js';

function where(target: Target, pc: bigint): string {
  const s = symbolName(target, pc);
  return s ? `${s} (${hex(pc)})` : hex(pc);
}

function bytesHex(b: Buffer): string {
  return b.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

/** The stop line every time-travel dcmd prints. */
function report(session: SessionView, stop: StopStatus, out: Output): void {
  const st = sessionStop(session, stop);
  session.thread = st.thread;
  const r = st.reason;
  const why =
    r.kind === 'breakpoint'
      ? `breakpoint ${r.id}`
      : r.kind === 'watchpoint'
        ? `${r.access} watchpoint ${r.id} on ${hex(r.addr)} (${r.length} bytes)${r.access === 'write' ? ': memory as before the write' : ''}`
        : r.kind === 'history-begin'
          ? 'start of the recorded history'
          : r.kind === 'history-end'
            ? 'end of the recorded history'
            : r.kind;
  if (out.jsonMode) {
    out.json(stopJson(session.target, st));
    return;
  }
  // A stub's history (dbg attach) has no seq to show.
  out.line(`${st.seq === undefined ? 'back' : `seq ${st.seq}`}: ${where(session.target, st.pc)} on ${threadName(session.target, st.thread)}: ${why}`);
}

/** Refuses words after a dcmd that takes none (or none beyond its flags). */
export function noMoreArgs(d: Dcmd, args: readonly string[]): void {
  if (args.length) throw errors.badInput(`::${d.name}: unexpected argument "${args[0]}" (usage: ${d.usage})`);
}

/** sp of the current thread. */
function sp(session: SessionView): bigint {
  return session.target.registers(session.thread).get(session.target.arch.sp) ?? 0n;
}

const rstep: Dcmd = {
  name: 'rstep',
  usage: '::rstep [over|out]',
  help: 'step back one instruction (over: back over a call; out: back to the call that entered this function)\n\n' +
    'over: when the instruction before is a return from a callee, goes back to the call instruction that made it (found by the write of its return address, not by stepping through the callee).\n' +
    'out: goes back to the call instruction whose return address the current frame returns to (frame pointer rbp+8, or the top of the stack at a function entry).',
  needs: ['reverse'],
  async run(session, inv, out) {
    const t = session.target;
    const rev = need(t, 'reverse');
    const mode = inv.args[0] ?? 'into';
    if (!['into', 'over', 'out'].includes(mode) || inv.args.length > 1) throw errors.badInput(`::rstep: expected "over" or "out", not "${inv.args.join(' ')}" (usage: ${this.usage})`);
    if (mode === 'into') return report(session, await rev.stepBack(session.thread), out);
    const hist = need(t, 'history');
    if (mode === 'over') {
      const sp0 = sp(session);
      const pc0 = t.registers(session.thread).get(t.arch.pc) ?? 0n;
      const st = await rev.stepBack(session.thread);
      session.thread = st.thread;
      if (st.reason.kind === 'history-begin' || sp(session) !== sp0 - 8n) return report(session, st, out);
      // Was the instruction before a return from a callee (it popped the address we came back to)?
      let retAddr: bigint;
      try {
        retAddr = t.readVirtual(sp0 - 8n, 8, session.thread).readBigUInt64LE(0);
      } catch {
        return report(session, st, out);
      }
      if (retAddr !== pc0) return report(session, st, out);
      // Back to the call that pushed that return address.
      const call = hist.whoWrote(sp0 - 8n, 8, session.thread);
      if (!call || call.host) return report(session, st, out);
      return report(session, await rev.seek(call.seq), out);
    }
    // out: the return-address slot of this frame.
    const regs = t.registers(session.thread);
    const pc = regs.get(t.arch.pc) ?? 0n;
    const sym = t.symbols.resolve(pc);
    const slot = sym && sym.offset === 0n ? sp(session) : (regs.get(t.arch.fp) ?? 0n) + 8n;
    const call = hist.whoWrote(slot, 8, session.thread);
    if (!call || call.host) throw errors.state(`::rstep out: no call wrote the return address at ${hex(slot)} in the recorded history`);
    return report(session, await rev.seek(call.seq), out);
  },
};

const rcont: Dcmd = {
  name: 'rcont',
  aliases: ['rc'],
  usage: '::rcont',
  help: 'run backwards to the last breakpoint hit or watchpoint trigger before now (or the start of history)\n\n' +
    'Found by index lookups in the trace, not by re-executing. A write watchpoint stops at the writing instruction with memory as it was before the write, as rr does.',
  needs: ['reverse'],
  async run(session, inv, out) {
    noMoreArgs(this, inv.args);
    report(session, await need(session.target, 'reverse').resumeBack(), out);
  },
};

const seek: Dcmd = {
  name: 'seek',
  usage: '::seek SEQ | +N | -N',
  help: 'go to a position in the recorded history: an absolute seq, or +N / -N instructions from now\n\nSEQ is decimal (0t-prefixed or 0x-prefixed also accepted).',
  needs: ['reverse'],
  async run(session, inv, out) {
    const rev = need(session.target, 'reverse');
    if (inv.args.length !== 1) throw errors.badInput(`::seek: expected one position (usage: ${this.usage})`);
    const a = inv.args[0]!;
    const m = /^([+-]?)(0x[0-9a-f]+|0t\d+|\d+)$/i.exec(a);
    if (!m) throw errors.badInput(`::seek: "${a}" is not a seq (usage: ${this.usage})`);
    const n = BigInt(m[2]!.replace(/^0t/i, ''));
    const now = rev.bounds().now;
    const target = m[1] === '+' ? now + n : m[1] === '-' ? now - n : n;
    report(session, await rev.seek(target), out);
  },
};

const discard: Dcmd = {
  name: 'discard',
  usage: '::discard -f',
  help:
    'make the current position in the recorded past the present of a live guest, deleting the recorded future\n\n' +
    'The guest is put back in its exact state at this seq (RAM, every vCPU, the scheduler, timers and serial port) and the trace is cut here; ' +
    'recording goes on from here, and writing memory or registers is allowed again. -f is required: the instructions recorded after now are lost. ' +
    'Only a live recording guest (dbg live) has a present to move; at the end of history it does nothing.',
  needs: ['reverse'],
  run(session, inv, out) {
    const f = parseFlags(this.name, this.usage, inv.args, { booleans: 'f' });
    noMoreArgs(this, f.rest);
    const rev = need(session.target, 'reverse');
    if (!rev.discard) throw errors.unsupported(session.target.name, '::discard (making a past position the present: only a live recording guest has one; a replayed trace never changes)');
    const b = rev.bounds();
    if (!f.flags.get('f')) {
      throw errors.badInput(`::discard deletes the ${b.last - b.now} instructions recorded after seq ${b.now}: repeat with -f to do it (usage: ${this.usage})`);
    }
    const st = rev.discard();
    if (out.jsonMode) return out.json({ seq: jsonCount(b.now), discarded: jsonCount(b.last - b.now) });
    out.line(`seq ${b.now} is now the present: ${b.last - b.now} recorded instructions discarded`);
    report(session, st, out);
  },
};

const now: Dcmd = {
  name: 'now',
  usage: '::now',
  help: 'the current position in the recorded history and its bounds',
  needs: ['reverse'],
  run(session, inv, out) {
    noMoreArgs(this, inv.args);
    const b = need(session.target, 'reverse').bounds();
    if (out.jsonMode) {
      return out.json({ now: jsonCount(b.now), first: jsonCount(b.first), last: jsonCount(b.last), after: jsonCount(b.last - b.now), ...(b.beyond !== undefined ? { beyond: jsonCount(b.beyond) } : {}) });
    }
    // Recording stopped (size limit, a failed write) and the guest ran on: say so.
    const beyond = b.beyond !== undefined ? `; recording stopped at ${b.last}: the guest runs beyond it, at seq ${b.beyond} unrecorded` : '';
    out.line(`seq ${b.now} of [${b.first}, ${b.last}] (${b.last - b.first} instructions recorded; ${b.last - b.now} after now${beyond})`);
  },
};

/** `-n MAX` (and the boolean flags `booleans`) of a dcmd that needs an address: the count (default `dflt`). */
function countFlag(d: Dcmd, inv: Invocation, dflt: number, booleans = ''): { max: number; flags: ReadonlyMap<string, string | true> } {
  const f = parseFlags(d.name, d.usage, inv.args, { strings: 'n', booleans });
  noMoreArgs(d, f.rest);
  if (inv.addr === undefined) throw errors.badInput(`::${d.name} needs an address (usage: ${d.usage})`);
  const n = f.flags.get('n') as string | undefined;
  const max = n !== undefined ? Number(n) : dflt;
  if (!Number.isSafeInteger(max) || max <= 0) throw errors.badInput(`::${d.name}: -n ${n} is not a positive count`);
  return { max, flags: f.flags };
}

function writeLine(t: Target, w: HistoryWrite): string {
  const who = w.host ? 'host (interrupt delivery or debugger write)' : `${where(t, w.pc ?? 0n)}, vCPU ${w.vcpu ?? 0}`;
  return `seq ${w.seq}  ${who}  phys ${hex(w.phys)}: ${bytesHex(w.old)} -> ${bytesHex(w.data)}`;
}

function writeJson(w: HistoryWrite): unknown {
  return { seq: jsonCount(w.seq), host: w.host, vcpu: w.vcpu ?? null, pc: w.pc === undefined ? null : hex(w.pc), phys: hex(w.phys), old: w.old.toString('hex'), new: w.data.toString('hex') };
}

const whowrote: Dcmd = {
  name: 'whowrote',
  usage: 'addr[,len]::whowrote',
  help: 'the last write to [addr, addr+len) before now (len defaults to 1): seq, vCPU, pc and symbol, old -> new bytes',
  needs: ['history'],
  run(session, inv, out) {
    noMoreArgs(this, inv.args);
    if (inv.addr === undefined) throw errors.badInput(`::whowrote needs an address (usage: ${this.usage})`);
    const len = Number(inv.count ?? 1n);
    const w = need(session.target, 'history').whoWrote(inv.addr, len, session.thread);
    if (!w) {
      if (out.jsonMode) return out.json(null);
      return out.line(`${hex(inv.addr)}: not written in the recorded history before now`);
    }
    if (out.jsonMode) return out.json(writeJson(w));
    out.line(writeLine(session.target, w));
  },
};

const history: Dcmd = {
  name: 'history',
  usage: 'addr,len::history [-n MAX]',
  help: 'every value [addr, addr+len) held: one line per write with seq, pc and the bytes after it (-n: at most MAX lines, default 100)',
  needs: ['history'],
  run(session, inv, out) {
    const { max } = countFlag(this, inv, 100);
    const addr = inv.addr!;
    const len = Number(inv.count ?? 8n);
    const t = session.target;
    // One more than shown tells whether there are more, at the cost of the writes shown.
    const ws = need(t, 'history').writes(addr, len, session.thread, undefined, undefined, max + 1);
    if (out.jsonMode) return out.json(ws.slice(0, max).map(writeJson));
    if (ws.length === 0) return out.line(`${hex(addr)},${len}: never written in the recorded history`);
    for (const w of ws.slice(0, max)) out.line(writeLine(t, w));
    if (ws.length > max) out.line(`... more writes follow (-n ${max * 10} shows more)`);
  },
};

const when: Dcmd = {
  name: 'when',
  usage: 'addr::when [-c] [-n MAX]',
  help:
    'the seqs at which the instruction at addr (a symbol: its first instruction) ran, oldest first (-n: list at most MAX, default 20)\n\n' +
    '-c: also count every run in the whole history (a scan of all of it; without -c the cost is that of the seqs listed).',
  needs: ['history'],
  run(session, inv, out) {
    const { max, flags } = countFlag(this, inv, 20, 'c');
    const addr = inv.addr!;
    const r = need(session.target, 'history').when(addr, max, { count: flags.has('c') });
    if (out.jsonMode) return out.json({ pc: hex(addr), seqs: r.seqs.map(Number), more: r.more, ...(r.count !== undefined ? { count: r.count } : {}) });
    const n = r.count ?? r.seqs.length;
    const times = r.count === undefined && r.more ? `more than ${n} times` : `${n} time${n === 1 ? '' : 's'}`;
    const list = r.seqs.length ? ': seq ' + r.seqs.join(', ') + (r.more ? ', ...' : '') : '';
    out.line(`${where(session.target, addr)} ran ${times}${list}`);
  },
};

function cell(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) return v.length > 32 ? `x'${v.subarray(0, 32).toString('hex')}'... (${v.length} bytes)` : `x'${v.toString('hex')}'`;
  return String(v);
}

const sql: Dcmd = {
  name: 'sql',
  usage: '::sql QUERY',
  help: 'read-only SQL over the trace (views chunks, memory_lines, checkpoints, inputs, summary; calls, derived on first use; functions steps(seq, n), writes(addr, len), activity(buckets), hex64(x) for addresses)',
  needs: ['history'],
  async run(session, inv, out) {
    const q = inv.args.join(' ').trim();
    if (!q) throw errors.badInput(`::sql needs a query (usage: ${this.usage})`);
    const r = await need(session.target, 'history').sqlInterruptible(q, session.signal);
    printTable(r, out);
  },
};

/** Rows as a text table (or JSON objects). Shared with `dbg query`. */
export function printTable(r: { columns: string[]; rows: unknown[][]; truncated?: boolean }, out: Output): void {
  if (r.truncated) {
    const note = `dbg: the query returned more than ${r.rows.length} rows; these are the first (page with LIMIT and OFFSET)`;
    if (out.warn) out.warn(note);
    else process.stderr.write(note + '\n');
  }
  if (out.jsonMode) {
    for (const row of r.rows) out.json(Object.fromEntries(r.columns.map((c, i) => [c, sqlJson(row[i])])));
    return;
  }
  const cells = r.rows.map((row) => row.map(cell));
  const widths = r.columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  out.line(r.columns.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  for (const row of cells) out.line(row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

export const historyModule: DcmdModule = {
  name: 'history',
  dcmds: [rstep, rcont, seek, now, discard, whowrote, history, when, sql],
};
