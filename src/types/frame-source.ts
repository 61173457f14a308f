import { DbgError } from '../common/errors.js';
import { DW_AT, DW_TAG } from '../symbols/dwarf/dwarf-constants.js';
import type { Die, DieRef, DwarfInfo, DwarfUnit } from '../symbols/dwarf/dwarf-info.js';
import { dwarfOf } from '../symbols/dwarf/dwarf-info.js';
import { linesOf, type SourcePlace } from '../symbols/dwarf/dwarf-line.js';
import { evalLocation, type Location } from '../symbols/dwarf/dwarf-location.js';
import { dieRanges, locationAt, unitHasLocationLists } from '../symbols/dwarf/dwarf-ranges.js';
import { dieName, scopeChildren, sourceFramesAt, subprogramAt, type SourceFrame } from '../symbols/dwarf/dwarf-scopes.js';
import { evalDwarfExpr, type ExprContext } from '../symbols/eh-frame.js';
import { symbolTableFor } from '../symbols/compact-symbol-table.js';
import type { SymbolTable } from '../symbols/symbol-table.js';
import type { Module, SymbolSpace } from '../symbols/symbol-space.js';
import { typesOf } from './type-space.js';
import { memberLabel, resolveType, sizeOf, type ArrayType, type Member, type Type } from './type.js';
import type { ValueMemory } from './print-value.js';

/**
 * Source-level views of machine frames: file:line of a pc, the inlined calls at it, and the
 * arguments and locals of each frame with their values as gdb's `bt full` prints them.
 *
 * A machine frame is what the unwinder gives (pc, registers by DWARF number, CFA); nothing here
 * knows a target. Addresses in the DWARF are link-time: the module's bias is added.
 */

export interface MachineFrame {
  readonly level: number;
  readonly pc: bigint;
  readonly cfa?: bigint;
  readonly regs: ReadonlyMap<number, bigint>;
}

export interface FrameSource {
  readonly module: Module;
  readonly dwarf: DwarfInfo;
  /** Link-time pc looked up (pc - 1 for a return address). */
  readonly linkPc: bigint;
  readonly place?: SourcePlace;
  /** Innermost first; empty when no DWARF function covers the pc. */
  readonly frames: readonly SourceFrame[];
  /** Why the frames could not be read (damaged DWARF), when so. */
  readonly error?: string;
}

export interface Variable {
  readonly name: string;
  /** gdb's text for the value: `5`, `0x7ffd... "inner"`, `{x = 3, y = 4}`, `<optimized out>`. */
  readonly text: string;
}

/**
 * The module holding run-time `pc`, and its DWARF: of modules whose ranges nest (a kernel module
 * placed inside another's span), the innermost.
 */
function moduleAt(symbols: SymbolSpace, pc: bigint): { module: Module; dwarf: DwarfInfo } | undefined {
  symbols.loadDeferred(pc); // a module loaded on first use: this may be it
  let best: { module: Module; span: bigint } | undefined;
  for (const m of symbols.modules) {
    if (!m.elf) continue;
    let span: bigint;
    if (m.start !== undefined && m.end !== undefined) {
      if (pc < m.start || pc >= m.end) continue;
      span = m.end - m.start;
    } else {
      // A module without a known range (an emulated kernel): its ELF's loaded segments.
      const link = pc - (m.bias ?? 0n);
      if (!m.elf.loadSegments().some((p) => link >= p.vaddr && link < p.vaddr + p.memsz)) continue;
      span = 1n << 64n;
    }
    if (!best || span < best.span) best = { module: m, span };
  }
  const dwarf = best && dwarfOf(best.module.elf!);
  return best && dwarf ? { module: best.module, dwarf } : undefined;
}

/**
 * Places and frames already found, by link-time pc: a stack asks about its callers' return
 * addresses again for entry values, and threads blocked alike share most of their pcs.
 */
const sourcesSeen = new WeakMap<DwarfInfo, Map<bigint, { place?: SourcePlace; frames: readonly SourceFrame[] }>>();
const SOURCES_KEPT = 4096;

/** The file:line and source frames of run-time `pc` (a return address when `caller`); undefined without DWARF. */
export function sourceAt(symbols: SymbolSpace, pc: bigint, caller: boolean, strict = false): FrameSource | undefined {
  const m = moduleAt(symbols, caller ? pc - 1n : pc);
  if (!m) return undefined;
  const linkPc = pc - (caller ? 1n : 0n) - (m.module.bias ?? 0n);
  let place: SourcePlace | undefined;
  let known = sourcesSeen.get(m.dwarf);
  const hit = known?.get(linkPc);
  if (hit) return { ...m, linkPc, ...hit };
  try {
    place = linesOf(m.dwarf).placeOf(linkPc);
    const frames = sourceFramesAt(m.dwarf, linkPc, place);
    if (!known) sourcesSeen.set(m.dwarf, (known = new Map()));
    if (known.size >= SOURCES_KEPT) known.clear();
    known.set(linkPc, { ...(place ? { place } : {}), frames });
    return { ...m, linkPc, ...(place ? { place } : {}), frames };
  } catch (e) {
    // Damaged DWARF costs the source view of this frame only; the stack goes on, and says why.
    if (e instanceof DbgError && !strict) return { ...m, linkPc, ...(place ? { place } : {}), frames: [], error: e.message };
    throw e;
  }
}

/** `file:line` of run-time `pc`, as gdb's `at` shows it; undefined without line data. */
export function placeText(symbols: SymbolSpace, pc: bigint, caller: boolean): string | undefined {
  const s = sourceAt(symbols, pc, caller);
  return s?.place ? `${s.place.file.name}:${s.place.line}` : undefined;
}

const NOT_SAVED = 'the register is not saved in this frame';

/** What evaluating locations needs beyond the frame. */
export interface FrameEnv {
  readonly mem: ValueMemory;
  readonly addressSize: number;
  /** For entry values: the callers' DWARF. */
  readonly symbols: SymbolSpace;
}

/** The parameters and the locals of a source frame (innermost block first, as gdb lists them). */
export function frameVariables(src: FrameSource, sf: SourceFrame, mf: MachineFrame, env: FrameEnv, callers: readonly MachineFrame[] = []): { args: Variable[]; locals: Variable[] } {
  const types = typesOf(src.module);
  const d = src.dwarf;
  const ctx = frameContext(src, sf.subprogram, mf, env, callers, 0);
  const declaredType = (v: Die): Type | undefined => {
    let typed: Die | undefined = v;
    for (let i = 0; typed && !typed.has(DW_AT.type) && i < 4; i++) typed = typed.refDie(DW_AT.abstract_origin);
    return typed && types ? types.typeOf(typed) : undefined;
  };
  const one = (v: Die): Variable => {
    const name = dieName(v) ?? '?';
    const declared = declaredType(v);
    if (!declared) return { name, text: '<unknown type>' };
    try {
      const cv = v.constant(DW_AT.const_value);
      if (cv !== undefined) return { name, text: valueText(declared, bytesOf(cv, sizeOf(declared) ?? 8, env.mem.littleEndian), env.mem) };
      const expr = locationAt(v, DW_AT.location, src.linkPc);
      if (expr === undefined || expr === 'none') return { name, text: '<optimized out>' };
      const loc = evalLocation(expr, ctx, `${d.name}: location of ${v.describe()}`);
      if (loc.kind === 'optimized') return { name, text: '<optimized out>' };
      // A VLA's bounds are read only for a value that is there (gdb's order: no bound of a
      // variable the optimizer dropped is looked at).
      let type: Type;
      try {
        type = frameType(declared, (dyn) => boundValue(dyn, src, ctx, env), 0);
      } catch (e) {
        // An array in memory whose bound the optimizer dropped: gdb prints where it is.
        if (e instanceof DbgError && e.code === 'unsupported' && loc.kind === 'memory') return { name, text: `0x${loc.addr.toString(16)}` };
        throw e;
      }
      return { name, text: locationText(type, loc, ctx, env) };
    } catch (e) {
      if (e instanceof DbgError) return { name, text: e.message === NOT_SAVED ? '<not saved>' : e.code === 'unsupported' ? '<optimized out>' : `<error: ${e.message}>` };
      throw e;
    }
  };
  // A concrete scope (an inlined call, an out-of-line copy) lists its own variables; those of its
  // abstract origin that it does not mention have no location here, and gdb lists them after.
  const members = (scope: Die): Die[] => {
    const own = scopeChildren(scope);
    const origin = scope.refDie(DW_AT.abstract_origin);
    if (!origin) return own;
    const seen = new Set(own.map((c) => c.ref(DW_AT.abstract_origin)).filter((r) => r !== undefined));
    // An abstract block a concrete one stands for is that block's business (it is in sf.blocks
    // when it covers pc); the others' variables are the scope's, as gdb inherits them.
    return own.concat(origin.children().flatMap((c) => (seen.has(c.id) ? [] : c.tag === DW_TAG.lexical_block ? scopeChildren(c) : [c])));
  };
  // A parameter's value at the function's entry, when the caller's call site records what it
  // passed in the register the parameter arrived in (gdb's `print entry-values default`).
  const entryPc = sf.inlined ? undefined : (sf.die.address(DW_AT.entry_pc) ?? sf.die.address(DW_AT.low_pc));
  const atEntry = (v: Die): string | undefined => {
    const declared = declaredType(v);
    const size = declared && sizeOf(declared);
    if (!declared || !size || size > 8 || entryPc === undefined || !ctx.entryValue) return undefined;
    try {
      // (A damaged location list is the actual value's error to show, not this one's.)
      const expr = locationAt(v, DW_AT.location, entryPc);
      if (!(expr instanceof Buffer) || !singleRegister(expr)) return undefined;
      return valueText(declared, bytesOf(ctx.entryValue(expr), size, env.mem.littleEndian), env.mem);
    } catch (e) {
      if (e instanceof DbgError) return undefined;
      throw e;
    }
  };
  const args: Variable[] = [];
  const locals: Variable[] = [];
  // An unnamed parameter (a C++ tag argument) is left out, as gdb leaves it. One whose entry
  // value is known prints as gdb prints it: `n=n@entry=5` when it still holds it, else both.
  for (const c of members(sf.die)) {
    if (c.tag !== DW_TAG.formal_parameter || dieName(c) === undefined) continue;
    const v = one(c);
    const entry = atEntry(c);
    if (entry === undefined) args.push(v);
    else if (entry === v.text) args.push({ name: v.name, text: `${v.name}@entry=${entry}` });
    else args.push(v, { name: `${v.name}@entry`, text: entry });
  }
  for (const scope of [...sf.blocks].reverse().concat([sf.die])) {
    for (const c of members(scope)) if (c.tag === DW_TAG.variable && dieName(c) !== undefined) locals.push(one(c));
  }
  return { args, locals };
}

/** The most bytes a variable-length array may take before its bound is taken for garbage. */
const MAX_VLA_BYTES = 1 << 26;

/**
 * `type` with the lengths of its variable-length arrays (C99 VLAs, `char grid[2][n]`) as this
 * frame has them; any other type as it is.
 */
function frameType(type: Type, bound: (d: NonNullable<ArrayType['dynamic']>) => number, depth: number): Type {
  const t = resolveType(type);
  if (t.kind !== 'array' || depth > 8) return type;
  const element = frameType(t.element, bound, depth + 1);
  if (!t.dynamic && element === t.element) return type;
  const length = t.dynamic ? bound(t.dynamic) : t.length;
  if (length !== undefined && length * (sizeOf(element) ?? 1) > MAX_VLA_BYTES) throw new DbgError('corrupt', `a variable-length array of ${length} elements (more than ${MAX_VLA_BYTES} bytes)`);
  return { kind: 'array', element, ...(length !== undefined ? { length } : {}) };
}

/** A VLA bound's value in this frame: its expression evaluated, or the variable holding it read. */
function boundValue(dyn: NonNullable<ArrayType['dynamic']>, src: FrameSource, ctx: ExprContext, env: FrameEnv): number {
  let v: bigint;
  if (dyn.expr) v = evalDwarfExpr(dyn.expr, ctx, undefined, `${src.dwarf.name}: array bound`);
  else {
    const d = dyn.variable;
    const cv = d?.constant(DW_AT.const_value);
    const expr = d ? locationAt(d, DW_AT.location, src.linkPc) : undefined;
    if (cv !== undefined) v = cv;
    else if (!d || expr === undefined || expr === 'none') throw new DbgError('unsupported', 'the array bound is optimized out');
    else {
      const loc = evalLocation(expr, ctx, `${src.dwarf.name}: location of ${d.describe()}`);
      const vt = typesOf(src.module)?.typeOf(d);
      if (loc.kind === 'memory') v = readUint(env.mem, loc.addr, Math.min(8, (vt && sizeOf(vt)) || 8));
      else if (loc.kind === 'register') v = ctx.register(loc.reg);
      else if (loc.kind === 'value') v = loc.value;
      else throw new DbgError('unsupported', 'the array bound is optimized out');
    }
  }
  const n = BigInt.asIntN(64, v) - dyn.lower + (dyn.count ? 0n : 1n);
  if (n < 0n || n > BigInt(MAX_VLA_BYTES)) throw new DbgError('corrupt', `a variable-length array bound of ${n} elements`);
  return Number(n);
}

/** Call sites nest this deep in entry values (a caller's value known only at its own entry...). */
const MAX_ENTRY_DEPTH = 8;

/**
 * How location expressions of `subprogram`'s code see machine frame `mf`: its registers, CFA and
 * frame base; DW_OP_entry_value from the call site in the caller (`callers[0]`), as gdb finds it:
 * the DW_TAG_call_site whose return address is the caller's pc, its parameter whose location is
 * the entry value's register, and that parameter's DW_AT_call_value evaluated in the caller.
 */
function frameContext(src: FrameSource, subprogram: Die, mf: MachineFrame, env: FrameEnv, callers: readonly MachineFrame[], depth: number): ExprContext {
  const bias = src.module.bias ?? 0n;
  const d = src.dwarf;
  let frameBase: bigint | undefined;
  const ctx: ExprContext = {
    register(n) {
      const v = mf.regs.get(n);
      if (v === undefined) throw new DbgError('unsupported', NOT_SAVED);
      return v;
    },
    readMemory(addr, size) {
      return readUint(env.mem, addr, size);
    },
    addressSize: env.addressSize,
    littleEndian: env.mem.littleEndian,
    frameBase() {
      if (frameBase !== undefined) return frameBase;
      const e = locationAt(subprogram, DW_AT.frame_base, src.linkPc);
      if (!(e instanceof Buffer)) throw new DbgError('unsupported', 'the function has no frame base here');
      const l = evalLocation(e, ctx, `${d.name}: frame base of ${subprogram.describe()}`);
      if (l.kind === 'memory') frameBase = l.addr;
      else if (l.kind === 'register') frameBase = ctx.register(l.reg);
      else throw new DbgError('unsupported', 'the frame base is not an address');
      return frameBase;
    },
    cfa() {
      if (mf.cfa === undefined) throw new DbgError('unsupported', 'the frame has no CFA (no CFI)');
      return mf.cfa;
    },
    addressAt: (i) => d.formAddress(subprogram.unit, { at: 0, form: 0x1b, value: i })!,
    relocate: (a) => a + bias,
    entryValue(sub) {
      const caller = callers[0];
      if (!caller || depth >= MAX_ENTRY_DEPTH) throw new DbgError('unsupported', 'no caller frame to find the entry value in');
      const csrc = sourceAt(env.symbols, caller.pc, true);
      const outer = csrc?.frames[csrc.frames.length - 1];
      if (!csrc || !outer) throw new DbgError('unsupported', 'the caller has no DWARF');
      const site = callSiteAt(outer.subprogram, csrc.linkPc + 1n);
      const callerCtx = frameContext(csrc, outer.subprogram, caller, env, callers.slice(1), depth + 1);
      // A call site of another function (the frame was reached by a tail call the stack does not
      // show) says nothing of this one's entry values.
      if (site && !callsFunction(site, subprogram) && callTarget(site, csrc.module, env.symbols, callerCtx) !== entryOf(subprogram, bias)) throw new DbgError('unsupported', 'the call site calls another function');
      const param = site?.children().find((c) => (c.tag === DW_TAG_CALL_SITE_PARAMETER || c.tag === DW_TAG_GNU_CALL_SITE_PARAMETER) && sameBytes(c.attr(DW_AT.location)?.value, sub));
      const value = param?.attr(DW_AT_CALL_VALUE)?.value ?? param?.attr(DW_AT_GNU_CALL_SITE_VALUE)?.value;
      if (!Buffer.isBuffer(value)) throw new DbgError('unsupported', 'the call site does not record the value');
      return evalDwarfExpr(value, callerCtx, undefined, `${csrc.dwarf.name}: call value of ${param!.describe()}`);
    },
  };
  return ctx;
}

const DW_TAG_CALL_SITE = 0x48;
const DW_TAG_CALL_SITE_PARAMETER = 0x49;
const DW_TAG_GNU_CALL_SITE = 0x4109;
const DW_TAG_GNU_CALL_SITE_PARAMETER = 0x410a;
const DW_AT_CALL_RETURN_PC = 0x7d;
const DW_AT_CALL_VALUE = 0x7e;
const DW_AT_CALL_ORIGIN = 0x7f;
const DW_AT_CALL_TAIL_CALL = 0x82;
const DW_AT_CALL_TARGET = 0x83;
const DW_AT_GNU_CALL_SITE_VALUE = 0x2111;
const DW_AT_GNU_CALL_SITE_TARGET = 0x2113;
const DW_AT_GNU_TAIL_CALL = 0x2115;

/** Whether a location expression is one register (DW_OP_reg0-31 or DW_OP_regx), the kind an entry value is found for. */
function singleRegister(expr: Buffer): boolean {
  if (expr.length === 1) return expr[0]! >= 0x50 && expr[0]! <= 0x6f;
  if (expr[0] !== 0x90) return false;
  let i = 1;
  while (i < expr.length && expr[i]! & 0x80) i++;
  return i === expr.length - 1;
}

function sameBytes(a: unknown, b: Buffer): boolean {
  return Buffer.isBuffer(a) && a.equals(b);
}

/** Call sites found, by function DIE: entry values and tail calls ask about the same callers again. */
const sitesSeen = new WeakMap<DwarfInfo, Map<DieRef, Die[]>>();

/** The call sites in `fn`, nested blocks and inlined calls included. */
function callSites(fn: Die): Die[] {
  let known = sitesSeen.get(fn.dwarf);
  const hit = known?.get(fn.id);
  if (hit) return hit;
  if (!known) sitesSeen.set(fn.dwarf, (known = new Map()));
  if (known.size >= SOURCES_KEPT) known.clear();
  const sites: Die[] = [];
  known.set(fn.id, sites);
  const walk = (d: Die, depth: number): void => {
    if (depth > 32) return;
    for (const c of d.children()) {
      if (c.tag === DW_TAG_CALL_SITE || c.tag === DW_TAG_GNU_CALL_SITE) sites.push(c);
      else if (c.tag === DW_TAG.lexical_block || c.tag === DW_TAG.inlined_subroutine) walk(c, depth + 1);
    }
  };
  walk(fn, 0);
  return sites;
}

/** A call site's return address (link-time): where a call returns, or where a tail call's jump ends. */
function siteReturn(site: Die): bigint | undefined {
  return site.address(DW_AT_CALL_RETURN_PC) ?? site.address(DW_AT.low_pc);
}

/** The call site in `fn` that returns to link-time `ret`. */
function callSiteAt(fn: Die, ret: bigint): Die | undefined {
  return callSites(fn).find((c) => siteReturn(c) === ret);
}

/** The run-time entry of a function DIE (its low_pc, entry_pc or lowest range), undefined for a declaration. */
function entryOf(fn: Die, bias: bigint): bigint | undefined {
  const e = fn.address(DW_AT.low_pc) ?? fn.address(DW_AT.entry_pc) ?? dieRanges(fn).reduce<bigint | undefined>((m, r) => (m === undefined || r.start < m ? r.start : m), undefined);
  return e === undefined ? undefined : e + bias;
}

/** The linkage name of a function DIE, else its name, through its specification or abstract origin. */
function functionName(d: Die): string | undefined {
  let x: Die | undefined = d;
  for (let i = 0; x && i < 4; i++) {
    const n = x.string(DW_AT.linkage_name) ?? x.string(DW_AT.MIPS_linkage_name) ?? x.name;
    if (n !== undefined) return n;
    x = x.refDie(DW_AT.specification) ?? x.refDie(DW_AT.abstract_origin);
  }
  return undefined;
}

/**
 * Whether a call site names `fn` as the function it calls: the common case, told without
 * resolving addresses (which for a declaration means the symbol tables by name).
 */
function callsFunction(site: Die, fn: Die): boolean {
  const origin = site.refDie(DW_AT_CALL_ORIGIN) ?? site.refDie(DW_AT.abstract_origin);
  if (!origin) return false;
  const name = functionName(origin);
  return name !== undefined && name === functionName(fn);
}

/**
 * The run-time entry of the function a call site calls (gdb's call_site_to_target_addr): the
 * function its DWARF names, found by address or, for a declaration, by its linkage name in the
 * symbol tables; an indirect call's DW_AT_call_target evaluated in the calling frame when `caller`
 * is given. Undefined when it cannot be known.
 */
function callTarget(site: Die, module: Module, symbols: SymbolSpace, caller?: ExprContext): bigint | undefined {
  const origin = site.refDie(DW_AT_CALL_ORIGIN) ?? site.refDie(DW_AT.abstract_origin);
  if (origin) {
    const at = entryOf(origin, module.bias ?? 0n);
    if (at !== undefined) return at;
    let d: Die | undefined = origin;
    for (let i = 0; d && i < 4 && d.name === undefined; i++) d = d.refDie(DW_AT.specification) ?? d.refDie(DW_AT.abstract_origin);
    return d ? definitionEntry(d, module, symbols) : undefined;
  }
  const expr = site.attr(DW_AT_CALL_TARGET)?.value ?? site.attr(DW_AT_GNU_CALL_SITE_TARGET)?.value;
  if (!caller || !Buffer.isBuffer(expr)) return undefined;
  try {
    const loc = evalLocation(expr, caller, `${site.dwarf.name}: call target of ${site.describe()}`);
    return loc.kind === 'memory' ? loc.addr : loc.kind === 'register' ? caller.register(loc.reg) : loc.kind === 'value' ? loc.value : undefined;
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
}

/** The symbol tables of separate debug files, at their module's bias. */
const debugFileTables = new WeakMap<DwarfInfo, SymbolTable>();

/**
 * The run-time entry of the function a declaration stands for, as gdb finds it (its minimal
 * symbols): by its linkage name in the module's symbol table or another module's, else in the
 * symbol table of the file the DWARF came from (a separate debug file holds the static aliases a
 * library's calls name, `__pthread_kill` for pthread_kill).
 */
function definitionEntry(decl: Die, module: Module, symbols: SymbolSpace): bigint | undefined {
  const name = decl.string(DW_AT.linkage_name) ?? decl.string(DW_AT.MIPS_linkage_name) ?? decl.name!;
  const sym = module.table.lookup(name) ?? symbols.find(name);
  if (sym) return sym.addr;
  if (decl.dwarf.elf === module.elf) return undefined;
  let table = debugFileTables.get(decl.dwarf);
  if (!table) debugFileTables.set(decl.dwarf, (table = symbolTableFor(module.name, decl.dwarf.elf, module.bias ?? 0n)));
  const s = table.lookup(name);
  return s?.kind === 'func' ? s.addr : undefined;
}

/** A function reached by address: its module and (concrete, not inlined) subprogram DIE. */
function functionAt(symbols: SymbolSpace, entry: bigint): { module: Module; fn: Die } | undefined {
  const m = moduleAt(symbols, entry);
  const fn = m && subprogramAt(m.dwarf, entry - (m.module.bias ?? 0n));
  return m && fn ? { module: m.module, fn } : undefined;
}

/** How many functions a chain of tail calls may pass through, and how many sites a search may visit. */
const MAX_TAIL_CHAIN = 16;
const MAX_TAIL_SITES = 2048;

/**
 * Every chain of tail calls from the function entered at `from` to the one entered at `to`, each
 * as the run-time return addresses of its tail-call sites in call order; undefined when a site on
 * the way has a target the DWARF does not name (gdb then shows no such frames either).
 */
function tailCallChains(symbols: SymbolSpace, from: bigint, to: bigint): bigint[][] | undefined {
  const chains: bigint[][] = [];
  let visited = 0;
  const seen = new Set<bigint>([from]);
  const walk = (entry: bigint, path: bigint[]): boolean => {
    const f = functionAt(symbols, entry);
    if (!f || path.length >= MAX_TAIL_CHAIN) return true;
    const bias = f.module.bias ?? 0n;
    for (const site of callSites(f.fn)) {
      if (!site.flag(DW_AT_CALL_TAIL_CALL) && !site.flag(DW_AT_GNU_TAIL_CALL)) continue;
      if (++visited > MAX_TAIL_SITES) return false;
      const target = callTarget(site, f.module, symbols);
      const ret = siteReturn(site);
      if (target === undefined || ret === undefined) return false;
      const next = [...path, ret + bias];
      if (target === to) chains.push(next);
      else if (!seen.has(target)) {
        seen.add(target);
        const ok = walk(target, next);
        seen.delete(target);
        if (!ok) return false;
      }
    }
    return true;
  };
  return walk(from, []) ? chains : undefined;
}

/**
 * The frames a stack does not hold because their functions ended in a tail call (a jump to the
 * next function): between a frame at `calleePc` and its caller returning to `callerPc`, the
 * run-time pcs (each tail call's return address) of the functions the caller's call reached
 * before the callee, innermost first, as gdb's bt shows them. When several chains are possible,
 * only the calls they all begin or end with (gdb's rule); none when the DWARF does not say.
 */
export function tailCallFrames(symbols: SymbolSpace, calleePc: bigint, calleeIsCaller: boolean, callerPc: bigint): bigint[] {
  try {
    const csrc = sourceAt(symbols, callerPc, true);
    const outer = csrc?.frames[csrc.frames.length - 1];
    const callee = sourceAt(symbols, calleePc, calleeIsCaller);
    const calleeFn = callee?.frames[callee.frames.length - 1]?.subprogram;
    if (!csrc || !outer || !callee || !calleeFn) return [];
    const site = callSiteAt(outer.subprogram, csrc.linkPc + 1n);
    if (!site || callsFunction(site, calleeFn)) return [];
    const from = callTarget(site, csrc.module, symbols);
    const to = entryOf(calleeFn, callee.module.bias ?? 0n);
    if (from === undefined || to === undefined || from === to) return [];
    const chains = tailCallChains(symbols, from, to);
    if (!chains || chains.length === 0) return [];
    let [chain] = chains as [bigint[]];
    if (chains.length > 1) {
      let head = chain.length;
      let tail = chain.length;
      for (const c of chains.slice(1)) {
        let i = 0;
        while (i < Math.min(head, c.length) && c[i] === chain[i]) i++;
        head = i;
        let j = 0;
        while (j < Math.min(tail, c.length) && c[c.length - 1 - j] === chain[chain.length - 1 - j]) j++;
        tail = j;
      }
      if (head === 0 && tail === 0) return [];
      chain = head + tail >= chain.length ? chain : [...chain.slice(0, head), ...chain.slice(chain.length - tail)];
    }
    return [...chain].reverse();
  } catch (e) {
    // Damaged DWARF costs the tail-call frames only.
    if (e instanceof DbgError) return [];
    throw e;
  }
}

function bytesOf(v: bigint, size: number, le: boolean): Buffer {
  const b = Buffer.alloc(size);
  let x = BigInt.asUintN(size * 8, v);
  for (let i = 0; i < size; i++) {
    b[le ? i : size - 1 - i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return b;
}

function readUint(mem: ValueMemory, addr: bigint, size: number): bigint {
  const b = mem.read(addr, size);
  let v = 0n;
  for (let i = 0; i < size; i++) v |= BigInt(b[mem.littleEndian ? i : size - 1 - i]!) << BigInt(8 * i);
  return v;
}

function locationText(type: Type, loc: Location, ctx: ExprContext, env: FrameEnv): string {
  const size = sizeOf(type) ?? 0;
  const le = env.mem.littleEndian;
  switch (loc.kind) {
    case 'optimized':
      return '<optimized out>';
    case 'synthetic':
      return '<synthetic pointer>';
    case 'memory': {
      let bytes: Buffer;
      try {
        bytes = env.mem.read(loc.addr, size);
      } catch (e) {
        if (e instanceof DbgError) return `<error: Cannot access memory at address 0x${loc.addr.toString(16)}>`;
        throw e;
      }
      return valueText(type, bytes, env.mem);
    }
    case 'register':
      return valueText(type, bytesOf(ctx.register(loc.reg), Math.min(size, 8) || 8, le), env.mem);
    case 'value':
      return valueText(type, bytesOf(loc.value, size || env.addressSize, le), env.mem);
    case 'bytes':
      return valueText(type, loc.bytes, env.mem);
    case 'pieces': {
      // A value the optimizer split (scalar replacement of a struct): some pieces may have no
      // location; their bytes print as <optimized out>, member by member, as gdb prints them.
      const out = Buffer.alloc(size);
      const known = new Uint8Array(size);
      let at = 0;
      for (const p of loc.pieces) {
        const n = Math.max(0, Math.min(p.size, size - at));
        if (p.loc.kind !== 'optimized' && p.loc.kind !== 'synthetic' && p.loc.kind !== 'pieces') {
          const part =
            p.loc.kind === 'memory' ? env.mem.read(p.loc.addr, p.size) : p.loc.kind === 'register' ? bytesOf(ctx.register(p.loc.reg), p.size, le) : p.loc.kind === 'value' ? bytesOf(p.loc.value, p.size, le) : p.loc.bytes.subarray(0, p.size);
          part.copy(out, at, 0, n);
          known.fill(1, at, at + n);
        }
        at += p.size;
      }
      return partialValueText(type, out, known, env.mem);
    }
  }
}

/**
 * valueText for a value of which only the bytes marked in `known` are there: a member or element
 * wholly there prints as usual, anything else as `<optimized out>` (gdb's output for a struct the
 * optimizer kept in part: `{a = 15, b = <optimized out>}`).
 */
export function partialValueText(type: Type, bytes: Buffer, known: Uint8Array, mem: ValueMemory, depth = 0): string {
  if (known.every((k) => k === 1)) return valueText(type, bytes, mem, depth);
  if (known.every((k) => k === 0) || depth > 16) return '<optimized out>';
  const t = resolveType(type);
  const part = (at: number, n: number, ty: Type) => partialValueText(ty, bytes.subarray(at, at + n), known.subarray(at, at + n), mem, depth + 1);
  if (t.kind === 'struct' || t.kind === 'union' || t.kind === 'class') {
    const parts = t.members.map((m) => {
      const off = Math.floor(m.bitOffset / 8);
      const n = m.bitSize !== undefined ? Math.ceil(((m.bitOffset % 8) + m.bitSize) / 8) : (sizeOf(m.type) ?? 0);
      let text: string;
      if (m.bitSize === undefined) text = part(off, n, m.type);
      else text = known.subarray(off, off + n).every((k) => k === 1) ? bitFieldText(m, bytes, mem.littleEndian) : '<optimized out>';
      const label = memberLabel(m);
      return label !== undefined ? `${label} = ${text}` : text;
    });
    return `{${parts.join(', ')}}`;
  }
  if (t.kind === 'array') {
    const es = sizeOf(t.element) ?? 0;
    const items: string[] = [];
    for (let i = 0; i < Math.min(t.length ?? 0, 200); i++) items.push(part(i * es, es, t.element));
    return `{${items.join(', ')}${(t.length ?? 0) > 200 ? '...' : ''}}`;
  }
  return '<optimized out>';
}

/** The text gdb prints for a value of `type` held in `bytes` (strings behind char pointers read through `mem`). */
export function valueText(type: Type, bytes: Buffer, mem: ValueMemory, depth = 0): string {
  const t = resolveType(type);
  const le = mem.littleEndian;
  const uint = (b: Buffer): bigint => {
    let v = 0n;
    for (let i = 0; i < b.length; i++) v |= BigInt(b[le ? i : b.length - 1 - i]!) << BigInt(8 * i);
    return v;
  };
  if (depth > 16) return '...';
  switch (t.kind) {
    case 'int': {
      const raw = uint(bytes.subarray(0, t.size));
      const v = t.signed ? BigInt.asIntN(t.size * 8, raw) : raw;
      if (t.isChar) return `${v} ${charLiteral(Number(raw))}`;
      return v.toString();
    }
    case 'bool':
      return uint(bytes.subarray(0, t.size)) === 0n ? 'false' : 'true';
    case 'float': {
      if (t.size === 4) return floatText(le ? bytes.readFloatLE(0) : bytes.readFloatBE(0));
      if (t.size === 8) return floatText(le ? bytes.readDoubleLE(0) : bytes.readDoubleBE(0));
      return `0x${uint(bytes.subarray(0, t.size)).toString(16)}`;
    }
    case 'enum': {
      const size = t.size ?? 4;
      const v = BigInt.asIntN(size * 8, uint(bytes.subarray(0, size)));
      const e = t.enumerators.find((x) => x.value === v || BigInt.asUintN(size * 8, x.value) === BigInt.asUintN(size * 8, v));
      return e ? e.name : v.toString();
    }
    case 'pointer': {
      const v = uint(bytes.subarray(0, t.size));
      const hex = `0x${v.toString(16)}`;
      if (t.reference) return `@${hex}`;
      const target = resolveType(t.target);
      if (target.kind === 'int' && target.isChar && target.size === 1 && v !== 0n) {
        const s = readString(mem, v);
        return s === undefined ? `${hex} <error: Cannot access memory at address ${hex}>` : `${hex} ${s}`;
      }
      if (target.kind === 'function') {
        const sym = mem.symbolize?.(v);
        return sym ? `${hex} <${sym}>` : hex;
      }
      return hex;
    }
    case 'struct':
    case 'union':
    case 'class': {
      const parts = t.members.map((m) => {
        const off = Math.floor(m.bitOffset / 8);
        let text: string;
        if (m.bitSize !== undefined) text = bitFieldText(m, bytes, le);
        else text = valueText(m.type, bytes.subarray(off, off + (sizeOf(m.type) ?? 0)), mem, depth + 1);
        const label = memberLabel(m);
      return label !== undefined ? `${label} = ${text}` : text;
      });
      return `{${parts.join(', ')}}`;
    }
    case 'array': {
      const es = sizeOf(t.element) ?? 0;
      const n = t.length ?? 0;
      const el = resolveType(t.element);
      if (el.kind === 'int' && el.isChar && es === 1) return quoteBytes(bytes.subarray(0, n), true);
      const items: string[] = [];
      for (let i = 0; i < Math.min(n, 200); i++) items.push(valueText(t.element, bytes.subarray(i * es, (i + 1) * es), mem, depth + 1));
      return `{${items.join(', ')}${n > 200 ? '...' : ''}}`;
    }
    default:
      return `0x${uint(bytes).toString(16)}`;
  }
}

/** A bit field's value, from the bytes of the struct that holds it. */
function bitFieldText(m: Member, bytes: Buffer, le: boolean): string {
  const off = Math.floor(m.bitOffset / 8);
  const b = bytes.subarray(off, Math.min(bytes.length, off + 8));
  let word = 0n;
  for (let i = 0; i < b.length; i++) word |= BigInt(b[le ? i : b.length - 1 - i]!) << BigInt(8 * i);
  let v = (word >> BigInt(m.bitOffset % 8)) & ((1n << BigInt(m.bitSize!)) - 1n);
  const mt = resolveType(m.type);
  if (mt.kind === 'int' && mt.signed) v = BigInt.asIntN(m.bitSize!, v);
  return v.toString();
}

function floatText(v: number): string {
  if (Number.isNaN(v)) return 'nan(0x8000000000000)';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return String(v);
}

function charLiteral(c: number): string {
  const esc: Record<number, string> = { 0: '\\000', 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (esc[c] !== undefined) return `'${esc[c]}'`;
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `'\\${c.toString(8).padStart(3, '0')}'`;
}

function quoteBytes(b: Buffer, stopAtNul: boolean): string {
  let end = b.length;
  if (stopAtNul) {
    const z = b.indexOf(0);
    if (z >= 0) end = z;
  }
  let s = '"';
  for (const c of b.subarray(0, end)) {
    if (c === 0x22) s += '\\"';
    else if (c === 0x5c) s += '\\\\';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += `\\${c.toString(8).padStart(3, '0')}`;
  }
  return s + '"';
}

function readString(mem: ValueMemory, addr: bigint): string | undefined {
  const out: number[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const b = mem.read(addr + BigInt(i), 1)[0]!;
      if (b === 0) return quoteBytes(Buffer.from(out), false);
      out.push(b);
    }
  } catch (e) {
    if (e instanceof DbgError) return out.length ? quoteBytes(Buffer.from(out), false) + '...' : undefined;
    throw e;
  }
  return quoteBytes(Buffer.from(out), false) + '...';
}

/** A `file:line` place, as `::bp` and `::line` take it. */
export const FILE_LINE = /^([^\s:]*[A-Za-z_][^\s:]*):(\d+)$/;

export interface LineAddresses {
  /** The file as the line table names it. */
  readonly file: string;
  /** The line the addresses are of: the asked-for one, or the next line that has code. */
  readonly line: number;
  /** Run-time addresses, one per function the line has code in (lowest first), and the line each is on. */
  readonly addrs: readonly { readonly addr: bigint; readonly line: number }[];
}

/** Whether a line-table file name is what the user wrote: the same, or ending in it at a `/`. */
function fileMatches(name: string, spec: string): boolean {
  return name === spec || name.endsWith('/' + spec);
}

/**
 * Where a breakpoint on `file:line` goes, as gdb places it: the is_stmt rows of that line (or,
 * when the line has no code, of the next line that has), the lowest address in each function;
 * an address at a function's entry moves past its prologue to where the function's second line
 * starts. DbgError('no-symbol') when no line table names the file.
 */
export function lineAddresses(symbols: SymbolSpace, spec: string): LineAddresses {
  const m = FILE_LINE.exec(spec);
  if (!m) throw new DbgError('bad-input', `"${spec}" is not FILE:LINE`);
  const want = m[1]!;
  const line = Number(m[2]);
  type Hit = { row: { addr: bigint; line: number }; module: Module; dwarf: DwarfInfo; unit: DwarfUnit; seq: readonly { addr: bigint; line: number; isStmt: boolean; end: boolean }[]; name: string };
  const hits: Hit[] = [];
  let fileName: string | undefined;
  for (const mod of symbols.modules) {
    const d = mod.elf ? dwarfOf(mod.elf) : undefined;
    if (!d) continue;
    for (const t of linesOf(d).allTables()) {
      const ids = new Set<number>();
      for (const [id, f] of t.files) if (fileMatches(f.name, want) || fileMatches(f.path, want)) {
        ids.add(id);
        fileName ??= f.name;
      }
      if (ids.size === 0) continue;
      for (const seq of t.sequences) for (const row of seq) if (!row.end && row.isStmt && ids.has(row.file) && row.line >= line) hits.push({ row, module: mod, dwarf: d, unit: t.unit, seq, name: t.files.get(row.file)!.name });
    }
  }
  if (fileName === undefined) throw new DbgError('no-symbol', `no source file named ${want} in the line tables of ${symbols.modules.filter((x) => x.elf && dwarfOf(x.elf)).map((x) => x.name).join(', ') || 'any module (none has DWARF: build with -g)'}`);
  if (hits.length === 0) throw new DbgError('no-symbol', `line ${line} is past the last line with code in ${fileName}`);
  const best = Math.min(...hits.map((h) => h.row.line));
  const byFunction = new Map<string, { addr: bigint; line: number }>();
  for (const h of hits) {
    if (h.row.line !== best) continue;
    let addr = h.row.addr + (h.module.bias ?? 0n);
    const r = symbols.resolve(addr);
    const key = r && r.inside ? `${r.module.name}\`${r.sym.name}` : `0x${addr.toString(16)}`;
    let at = h.row.line;
    // At the entry of a function of an unoptimized unit: past the prologue, to the next row of
    // another address. gdb trusts an optimized unit's (one with location lists) first instruction.
    if (r && r.inside && r.sym.addr === addr && !unitHasLocationLists(h.dwarf, h.unit)) {
      const link = h.row.addr;
      const next = h.seq.find((x) => x.addr > link && !x.end && x.line !== 0);
      if (next) {
        addr = next.addr + (h.module.bias ?? 0n);
        at = linesOf(h.dwarf).placeOf(next.addr)?.line ?? next.line;
      }
    }
    const old = byFunction.get(key);
    if (old === undefined || addr < old.addr) byFunction.set(key, { addr, line: at });
  }
  const addrs = [...byFunction.values()].sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  return { file: hits.find((h) => h.row.line === best)!.name, line: best, addrs };
}
