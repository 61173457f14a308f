/**
 * Pictures and lists of a whole recorded history (`dbg replay`, and a live guest that records).
 *
 *   ::calls [-f FUNC] [-n N] [-v CPU]   the calls (WinDbg TTD's Calls query): seq range, vCPU,
 *   addr::calls [-n N] [-v CPU]         callee indented by depth, caller, instructions
 *   ::timeline [-w WIDTH] [-n N]        activity over seq per function: the N busiest functions
 *                                       as rows of block characters, fitted to the terminal
 *   ::traceinfo                         the recording's bounds and counts (key/value)
 *
 * ::calls reads History.calls() (derived once per history by src/store/call-walker.ts, the same
 * rows as the `calls` table of ::sql); ::timeline reads History.activity(), the `activity(n)`
 * table-valued function over the trace's pc streams, and names pcs with the target's symbols.
 */

import { DbgError, errors } from '../../common/errors.js';
import { hex } from '../../common/format.js';
import { need, type HistoryCall, type Target } from '../../targets/target.js';
import type { Dcmd, DcmdModule, Invocation } from '../dcmd.js';
import { jsonCount } from '../json.js';
import { parseFlags } from '../parse-flags.js';
import { noMoreArgs } from './history.js';
import { symbolText } from '../../symbols/symbol-text.js';

/** A positive integer flag value, or the one-line error naming the flag, the value and the usage. */
function positive(d: Dcmd, flag: string, v: string | true | undefined, dflt: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'string' && /^(0x[0-9a-f]+|0t\d+|\d+)$/i.test(v) ? Number(BigInt(v.replace(/^0t/i, ''))) : NaN;
  if (!Number.isSafeInteger(n) || n <= 0 || n > max) throw errors.badInput(`::${d.name}: -${flag} ${String(v)} is not a ${max === Number.MAX_SAFE_INTEGER ? 'positive count' : `count in [1, ${max}]`} (usage: ${d.usage})`);
  return n;
}

/** The function whose calls -f FUNC or addr::calls asks for: its start address. */
function functionAddr(t: Target, d: Dcmd, name: string | undefined, addr: bigint | undefined): bigint | undefined {
  if (name !== undefined && addr !== undefined) throw errors.badInput(`::${d.name}: give a function either as an address or with -f, not both (usage: ${d.usage})`);
  if (addr !== undefined) return addr;
  if (name === undefined) return undefined;
  const s = t.symbols.find(name);
  if (!s) {
    const where = t.symbols.modules.length === 0 ? 'the trace has no symbols (pass --symbols FILE, or give the address: ADDR::calls)' : `no symbol table defines it (${t.symbols.modules.map((m) => m.name).join(', ')})`;
    throw new DbgError('no-symbol', `::${d.name}: unknown function "${name}": ${where}`);
  }
  return s.addr;
}

function vcpuFlag(t: Target, d: Dcmd, v: string | true | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  const count = t.threads().length;
  if (!Number.isSafeInteger(n) || n >= count) throw errors.badInput(`::${d.name}: -v ${String(v)}: no such vCPU (the history has ${count}: 0-${count - 1})`);
  return n;
}

function callName(pc: bigint, name: string | undefined): string {
  return name ?? hex(pc);
}

function callLine(c: HistoryCall): string {
  const range = `${c.callSeq}-${c.returnSeq ?? '...'}`;
  const callee = c.vector !== undefined ? `interrupt 0x${c.vector.toString(16)} ${callName(c.calleePc, c.callee)}` : callName(c.calleePc, c.callee);
  return `${range.padEnd(17)} vCPU ${c.vcpu}  ${'  '.repeat(Math.min(c.depth, 40))}${callee}  <- ${callName(c.callerPc, c.caller)}  ${c.instructions} insns${c.returnSeq === undefined ? ' (never returned)' : ''}`;
}

const calls: Dcmd = {
  name: 'calls',
  usage: '[addr]::calls [-f FUNC] [-n N] [-v CPU]',
  help:
    'the calls of the recorded history, oldest first: seq range (entry-return; "..." when it never returned), vCPU, the callee indented by call depth, its caller, and the instructions the vCPU ran inside it\n\n' +
    'addr::calls or -f FUNC: only the calls of the function at addr / named FUNC. -v CPU: only vCPU CPU (0-based). -n N: at most N lines (default 50). ' +
    'Interrupts open frames too (shown as "interrupt 0xVECTOR handler"); the same rows are the `calls` table of ::sql. Without symbols, functions are addresses.',
  needs: ['history'],
  run(session, inv: Invocation, out) {
    const d = this;
    const f = parseFlags(d.name, d.usage, inv.args, { strings: 'fnv' });
    noMoreArgs(d, f.rest);
    const t = session.target;
    const max = positive(d, 'n', f.flags.get('n'), 50);
    const vcpu = vcpuFlag(t, d, f.flags.get('v'));
    const fn = functionAddr(t, d, f.flags.get('f') as string | undefined, inv.addr);
    const all = need(t, 'history').calls();
    const picked: HistoryCall[] = [];
    let matched = 0;
    for (const c of all) {
      if (vcpu !== undefined && c.vcpu !== vcpu) continue;
      if (fn !== undefined && c.calleePc !== fn) continue;
      matched++;
      if (picked.length < max) picked.push(c);
    }
    if (out.jsonMode) {
      return out.json(
        picked.map((c) => ({
          callSeq: jsonCount(c.callSeq),
          returnSeq: c.returnSeq === undefined ? null : jsonCount(c.returnSeq),
          vcpu: c.vcpu,
          depth: c.depth,
          callerPc: hex(c.callerPc),
          caller: c.caller ?? null,
          calleePc: hex(c.calleePc),
          callee: c.callee ?? null,
          instructions: c.instructions,
          vector: c.vector ?? null,
        })),
      );
    }
    if (matched === 0) return out.line(fn !== undefined ? `${hex(fn)}: never called in the recorded history${vcpu !== undefined ? ` on vCPU ${vcpu}` : ''}` : 'no calls in the recorded history');
    for (const c of picked) out.line(callLine(c));
    if (matched > picked.length) out.line(`... ${matched - picked.length} more of ${matched} calls (-n ${matched} shows all)`);
  },
};

/** Eighths of a cell, from empty to full. */
const BLOCKS = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** The width ::timeline fits: the terminal's, 80 when stdout is not one. */
function terminalWidth(): number {
  return process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : 80;
}

const timeline: Dcmd = {
  name: 'timeline',
  usage: '::timeline [-w WIDTH] [-n N]',
  help:
    'activity over the recorded history, one row per function (the N busiest, default 12): each cell is a slice of the seqs, ' +
    'its block as high as the share of the slice that the function ran (all vCPUs), with the seq axis below\n\n' +
    '-w WIDTH: the width of the picture (default: the terminal\'s, 80 when not a terminal). Functions are symbols (code pages without symbols). ' +
    'Computed from the activity(buckets) table of the trace (see ::sql). ::traceinfo gives the counts.',
  needs: ['history'],
  run(session, inv, out) {
    const d = this;
    const f = parseFlags(d.name, d.usage, inv.args, { strings: 'wn' });
    noMoreArgs(d, f.rest);
    const width = positive(d, 'w', f.flags.get('w'), terminalWidth(), 10_000);
    const top = positive(d, 'n', f.flags.get('n'), 12, 1000);
    if (width < 40) throw errors.badInput(`::timeline: -w ${width} is too narrow: the picture needs at least 40 columns (usage: ${d.usage})`);
    const t = session.target;
    // Label column, then the bars, then the row's total.
    const labelW = Math.min(28, Math.floor(width / 3));
    const totalW = 9;
    const buckets = width - labelW - totalW - 2;
    const act = need(t, 'history').activity(buckets);
    const first = Number(act.first);
    const end = Number(act.end);
    const nameOf = new Map<bigint, string>();
    const fnName = (pc: bigint): string => {
      let n = nameOf.get(pc);
      if (n === undefined) {
        const r = t.symbols.resolve(pc);
        n = r && r.inside ? symbolText(r.sym.name) : `page ${hex(pc & ~0xfffn)}`;
        nameOf.set(pc, n);
      }
      return n;
    };
    const per = new Map<string, Float64Array>();
    const sums = new Map<string, number>();
    for (const [b, pc, n] of act.rows) {
      const name = fnName(pc);
      let row = per.get(name);
      if (!row) per.set(name, (row = new Float64Array(buckets)));
      row[b]! += n;
      sums.set(name, (sums.get(name) ?? 0) + n);
    }
    const ranked = [...sums.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    if (out.jsonMode) {
      return out.json({ first, end, width: act.width, buckets, functions: ranked.map(([name, n]) => ({ name, instructions: n, buckets: Array.from(per.get(name)!) })) });
    }
    if (end <= first) return out.line('timeline: the recorded history holds no instruction');
    const cap = (b: number): number => Math.max(1, Math.min(end, first + (b + 1) * act.width) - (first + b * act.width));
    for (const [name, n] of ranked) {
      const row = per.get(name)!;
      let bar = '';
      for (let b = 0; b < buckets; b++) {
        const share = row[b]! / cap(b);
        bar += row[b]! === 0 ? ' ' : BLOCKS[Math.max(1, Math.round(share * 8))];
      }
      const label = name.length > labelW ? name.slice(0, labelW - 1) + '…' : name.padEnd(labelW);
      out.line(`${label} ${bar} ${String(n).padStart(totalW)}`);
    }
    const others = sums.size - ranked.length;
    // The seq axis: ticks at the start, the middle and the end of the bars, their seqs under them.
    const axis = Array.from({ length: buckets }, (_, i) => (i === 0 || i === buckets - 1 || i === Math.floor(buckets / 2) ? '┴' : '─')).join('');
    out.line(`${' '.repeat(labelW)} ${axis}`);
    const lo = `${first}`;
    const mid = `${first + Math.floor(buckets / 2) * act.width}`;
    const hi = `${end - 1}`;
    const labels = (lo + ' '.repeat(Math.max(1, Math.floor(buckets / 2) - lo.length - Math.floor(mid.length / 2))) + mid).padEnd(buckets - hi.length) + hi;
    out.line(`${'seq'.padEnd(labelW)} ${labels}`);
    const foot = [`${end - first} instructions, ${act.width} per column`, ...(others > 0 ? [`${others} more function${others === 1 ? '' : 's'} not shown (-n)`] : [])];
    for (const l of foot) out.line(`${labelW + 1 + l.length <= width ? ' '.repeat(labelW + 1) : ''}${l}`);
  },
};

const traceinfo: Dcmd = {
  name: 'traceinfo',
  usage: '::traceinfo',
  help: 'a summary of the recording: bounds, instructions, writes, chunks, checkpoints, inputs, the position',
  needs: ['history'],
  run(session, inv, out) {
    noMoreArgs(this, inv.args);
    const s = need(session.target, 'history').summary();
    if (out.jsonMode) return out.json(s);
    const w = Math.max(...Object.keys(s).map((k) => k.length));
    for (const [k, v] of Object.entries(s)) out.line(`${k.padEnd(w)}  ${v}`);
  },
};

export const recordingModule: DcmdModule = {
  name: 'recording',
  dcmds: [calls, timeline, traceinfo],
};
