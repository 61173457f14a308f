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
import { checkDirectory } from '../targets/elfcore/process-core-solibs.js';
import { hex, hexAddr } from '../common/format.js';
import { DW_AT } from '../symbols/dwarf/dwarf-constants.js';
import type { Die } from '../symbols/dwarf/dwarf-info.js';
import { dieRanges } from '../symbols/dwarf/dwarf-ranges.js';
import { frameVariables, sourceAt, tailCallFrames, type Variable } from '../types/frame-source.js';
import type { Arch } from '../arch/arch.js';
import type { Target } from '../targets/target.js';
import type { Frame } from '../targets/unwind.js';
import { symbolName } from './names.js';
import { isMangled } from '../symbols/demangle.js';

export interface SourceRow {
  readonly pc: bigint;
  readonly sp: bigint;
  /** The machine frame's symbol (`main+0x45`), or for an inlined call the function's name. */
  readonly name: string;
  readonly inlined: boolean;
  /** A function that ended in a tail call (see Frame.tailCall). */
  readonly tailCall?: true;
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
  // Made only where it is printed: a C++ frame with DWARF is named by its DWARF name below, and
  // demangling a name nobody sees costs the demangler's start-up.
  const sym = (): string => symbolName(target, f.pc, caller ? f.pc - 1n : f.pc) ?? '?';
  const src = sourceAt(target.symbols, f.pc, caller);
  if (!src || src.frames.length === 0) {
    const p = src?.place;
    return [{ pc: f.pc, sp: f.sp, name: sym(), inlined: false, ...(p ? { file: p.file.name, line: p.line } : {}), ...(src?.error ? { error: src.error } : {}) }];
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
  // A C++ function's symbol is mangled (_Z9wait_hereRN3geo5ShapeE): with its arguments beside
  // it, its DWARF name, qualified as gdb's bt shows it (geo::Shape::area), reads better than the
  // demangled one with its parameter types; the offset stays the symbol's.
  const outer = src.frames[src.frames.length - 1]!;
  const held = target.symbols.resolve(caller ? f.pc - 1n : f.pc);
  const machine = held && held.inside && isMangled(held.sym.name)
    ? `${held.module === target.symbols.modules[0] ? '' : `${held.module.name}\``}${qualifiedName(outer.die, outer.name)}${f.pc === held.sym.addr ? '' : `+${hex(f.pc - held.sym.addr)}`}`
    : symbolMissing(target, src, outer.die, caller ? f.pc - 1n : f.pc)
      ? dwarfFunctionName(src.module === target.symbols.modules[0] ? '' : `${src.module.name}\``, outer.die, outer.name, src.linkPc + (caller ? 1n : 0n))
      : sym();
  // A tail call's frame is one row, named by the innermost function at its pc, as gdb shows it.
  return (f.tailCall ? src.frames.slice(0, 1) : src.frames).map((sf) => {
    const v = vars ? frameVariables(src, sf, mf, env, callers) : undefined;
    const inlined = sf.inlined && !f.tailCall;
    return {
      pc: f.pc,
      sp: f.sp,
      name: sf.inlined ? qualifiedName(sf.die, sf.name) : machine,
      inlined,
      ...(f.tailCall ? { tailCall: true as const } : {}),
      ...(inlined ? { into: machine } : {}),
      ...(sf.file ? { file: sf.file.name } : {}),
      ...(sf.line !== undefined ? { line: sf.line } : {}),
      ...(v ? { args: v.args, locals: v.locals } : {}),
    };
  });
}

/**
 * The machine frames with, between a frame and its caller, the frames of the functions that
 * reached it by tail calls (Frame.tailCall), renumbered; as gdb's bt shows them.
 */
export function withTailCalls(target: Target, frames: readonly Frame[]): Frame[] {
  const out: Frame[] = [];
  frames.forEach((f, i) => {
    out.push(f.level === out.length ? f : { ...f, level: out.length });
    const caller = frames[i + 1];
    if (!caller) return;
    for (const pc of tailCallFrames(target.symbols, f.pc, f.level > 0, caller.pc)) out.push({ ...caller, level: out.length, pc, tailCall: true });
  });
  return out;
}

/**
 * Whether the symbol table lacks the function whose DWARF covers `pc`: no symbol holds pc, or the
 * one that does starts before the function (a neighbour whose size is unknown, standing in for
 * a symbol that was stripped or is only in a separate debug file).
 */
function symbolMissing(target: Target, src: { module: { bias?: bigint } }, fn: Die, pc: bigint): boolean {
  const r = target.symbols.resolve(pc);
  if (!r || !r.inside) return true;
  const entry = fn.address(DW_AT.low_pc) ?? dieEntry(fn);
  return entry !== undefined && r.sym.addr < entry + (src.module.bias ?? 0n);
}

/** The lowest address of a function whose code is in several ranges. */
function dieEntry(fn: Die): bigint | undefined {
  const rs = dieRanges(fn);
  return rs.length ? rs.reduce((m, r) => (r.start < m ? r.start : m), rs[0]!.start) : undefined;
}

/**
 * A function the symbol table does not name (a static function of a library whose symbols are in
 * a separate debug file) as its DWARF names it, as gdb does, with the offset from its entry.
 */
function dwarfFunctionName(prefix: string, die: Die, name: string, linkPc: bigint): string {
  const entry = die.address(DW_AT.entry_pc) ?? die.address(DW_AT.low_pc);
  const off = entry !== undefined && linkPc >= entry ? `+0x${(linkPc - entry).toString(16)}` : '';
  return `${prefix}${qualifiedName(die, name)}${off}`;
}

/** `name` of a function DIE with its C++ scope (`geo::Shape::area`): from its declaration when it is defined out of line. */
function qualifiedName(die: Die, name: string): string {
  let d = die;
  for (let i = 0; i < 4; i++) {
    const next = d.refDie(DW_AT.abstract_origin) ?? d.refDie(DW_AT.specification);
    if (!next) break;
    d = next;
  }
  return d.dwarf.scopePrefix(d) + name;
}

/** The text lines of one row. */
export function sourceRowLines(r: SourceRow, verbose: boolean, arch: Arch): string[] {
  const args = r.args ? `(${r.args.map((a) => `${a.name}=${a.text}`).join(', ')})` : '';
  const at = r.file !== undefined ? ` at ${r.file}:${r.line}` : '';
  const inl = r.inlined ? ` (inlined into ${r.into})` : r.tailCall ? ' (tail call)' : '';
  const head = `${verbose ? hexAddr(r.sp, arch) + ' ' : ''}${hexAddr(r.pc, arch)} ${r.name}${args}${at}${inl}`;
  return [head, ...(r.locals ?? []).map((l) => `        ${l.name} = ${l.text}`)];
}

export function sourceRowJson(r: SourceRow, arch: Arch): unknown {
  return {
    pc: hexAddr(r.pc, arch),
    sp: hexAddr(r.sp, arch),
    function: r.name,
    inlined: r.inlined,
    tail_call: r.tailCall === true,
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

/** Directories searched for source files the debug info names but that are not where it says (gdb's `directory`). */
let sourceDirs: readonly string[] = [];

/** The source search path, first searched first. */
export function sourcePath(): readonly string[] {
  return sourceDirs;
}

/**
 * Sets the source search path (`--source-path`, `::dir`). Each directory must exist: a typo is
 * an error naming it, not a path that silently finds nothing.
 */
export function setSourcePath(dirs: readonly string[], what = '--source-path'): void {
  for (const d of dirs) checkDirectory(what, d);
  sourceDirs = [...dirs];
  sourceCache.clear();
}

/**
 * The file to read for source file `path`, as gdb looks for it: the path itself, then in each
 * directory of the source path the whole path under it (DIR/usr/src/x/foo.c), then its base name
 * (DIR/foo.c). Undefined when none is a regular file.
 */
export function findSource(path: string): string | undefined {
  const candidates = [path];
  for (const dir of sourceDirs) {
    const d = dir.replace(/\/+$/, '');
    candidates.push(`${d}/${path.replace(/^\/+/, '')}`, `${d}/${path.slice(path.lastIndexOf('/') + 1)}`);
  }
  for (const c of candidates) {
    try {
      if (statSync(c).isFile()) return c;
    } catch {
      // not there: the next
    }
  }
  return undefined;
}

/** Line `n` (1-based) of the source file at `path` (found through the source path), when it can be read. */
export function sourceLine(path: string, n: number): string | undefined {
  let lines = sourceCache.get(path);
  if (lines === undefined) {
    const file = findSource(path);
    try {
      lines = file !== undefined && statSync(file).size < 64 << 20 ? readFileSync(file, 'utf8').split('\n') : null;
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
