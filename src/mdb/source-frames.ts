/**
 * The source side of `::stack -s` and `::stack -v` ($C): each machine frame with its file:line,
 * the inlined calls at its pc as frames of their own (as gdb's `bt` shows them), and with -v the
 * arguments and locals of each.
 *
 *   ::stack -s   0x000055840c6121c6 wait_here+0x25 at frames.c:21
 *                0x000055840c612267 inner at frames.c:27 (inlined into compute+0x57)
 *                0x000055840c612267 compute+0x57 at frames.c:36
 *   ::stack -v   SP, then the same with (name=value, ...) after the function and the locals
 *                indented below, `<optimized out>` where the DWARF has no location for the pc.
 */

import { readFileSync, statSync } from 'node:fs';
import { hexAddr } from '../common/format.js';
import { frameVariables, sourceAt, type Variable } from '../types/frame-source.js';
import type { Target } from '../targets/target.js';
import type { Frame } from '../targets/unwind.js';
import { symbolName } from './names.js';

export interface SourceRow {
  readonly pc: bigint;
  readonly sp: bigint;
  /** The machine frame's symbol (`main+0x45`), or for an inlined call the function's name. */
  readonly name: string;
  readonly inlined: boolean;
  /** For an inlined call: the symbol of the machine frame it sits in. */
  readonly into?: string;
  readonly file?: string;
  readonly line?: number;
  readonly args?: readonly Variable[];
  readonly locals?: readonly Variable[];
  /** The DWARF of this frame is damaged: what is wrong (the row has only what could be read). */
  readonly error?: string;
}

/** One machine frame as source rows, innermost (inlined) first; `vars` evaluates arguments and locals. */
export function sourceRows(target: Target, f: Frame, thread: number, vars: boolean, all: readonly Frame[] = []): SourceRow[] {
  const caller = f.level > 0;
  const sym = symbolName(target, f.pc, caller ? f.pc - 1n : f.pc) ?? '?';
  const src = sourceAt(target.symbols, f.pc, caller);
  if (!src || src.frames.length === 0) {
    const p = src?.place;
    return [{ pc: f.pc, sp: f.sp, name: sym, inlined: false, ...(p ? { file: p.file.name, line: p.line } : {}), ...(src?.error ? { error: src.error } : {}) }];
  }
  const env = {
    mem: {
      read: (a: bigint, n: number) => target.readVirtual(a, n, thread),
      littleEndian: target.arch.littleEndian,
      symbolize: (a: bigint) => symbolName(target, a),
    },
    addressSize: target.arch.pointerBytes,
    symbols: target.symbols,
  };
  // A caller found by the frame-pointer chain has only its pc, sp and fp right: the other
  // registers are its callee's, not its own.
  const known = new Set([target.arch.sp, target.arch.fp, target.arch.pc].map((n) => target.arch.dwarfRegisters.indexOf(n)));
  const own = (x: Frame): Frame => (x.how === 'frame-pointer' || x.how === 'return-address' ? { ...x, regs: new Map([...x.regs].filter(([n]) => known.has(n))) } : x);
  const mf = own(f);
  const callers = all.filter((x) => x.level > f.level).map(own);
  return src.frames.map((sf) => {
    const v = vars ? frameVariables(src, sf, mf, env, callers) : undefined;
    return {
      pc: f.pc,
      sp: f.sp,
      name: sf.inlined ? sf.name : sym,
      inlined: sf.inlined,
      ...(sf.inlined ? { into: sym } : {}),
      ...(sf.file ? { file: sf.file.name } : {}),
      ...(sf.line !== undefined ? { line: sf.line } : {}),
      ...(v ? { args: v.args, locals: v.locals } : {}),
    };
  });
}

/** The text lines of one row. */
export function sourceRowLines(r: SourceRow, verbose: boolean): string[] {
  const args = r.args ? `(${r.args.map((a) => `${a.name}=${a.text}`).join(', ')})` : '';
  const at = r.file !== undefined ? ` at ${r.file}:${r.line}` : '';
  const inl = r.inlined ? ` (inlined into ${r.into})` : '';
  const head = `${verbose ? hexAddr(r.sp) + ' ' : ''}${hexAddr(r.pc)} ${r.name}${args}${at}${inl}`;
  return [head, ...(r.locals ?? []).map((l) => `        ${l.name} = ${l.text}`)];
}

export function sourceRowJson(r: SourceRow): unknown {
  return {
    pc: hexAddr(r.pc),
    sp: hexAddr(r.sp),
    function: r.name,
    inlined: r.inlined,
    into: r.into ?? null,
    file: r.file ?? null,
    line: r.line ?? null,
    ...(r.args ? { args: r.args, locals: r.locals } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}

/** How many source files ::dis -s keeps read. */
const SOURCE_CACHE = 32;
const sourceCache = new Map<string, string[] | null>();

/** Line `n` (1-based) of the source file at `path`, when it can be read. */
export function sourceLine(path: string, n: number): string | undefined {
  let lines = sourceCache.get(path);
  if (lines === undefined) {
    try {
      const st = statSync(path);
      lines = st.isFile() && st.size < 64 << 20 ? readFileSync(path, 'utf8').split('\n') : null;
    } catch {
      lines = null;
    }
    if (sourceCache.size >= SOURCE_CACHE) sourceCache.delete(sourceCache.keys().next().value!);
    sourceCache.set(path, lines);
  }
  return lines?.[n - 1];
}

/**
 * For `::dis -s`: the lines to print before the instruction at `addr` — `file:line` and the
 * source text (when the file is found) each time the instruction starts another line's code.
 */
export function sourceAnnotator(target: Target): (addr: bigint) => string[] {
  let last: string | undefined;
  return (addr) => {
    const src = sourceAt(target.symbols, addr, false);
    const p = src?.place;
    if (!p) return [];
    const key = `${p.file.name}:${p.line}`;
    if (key === last) return [];
    last = key;
    const text = sourceLine(p.file.path, p.line);
    return [text !== undefined ? `${key}  ${text.replace(/\s+$/, '')}` : key];
  };
}
