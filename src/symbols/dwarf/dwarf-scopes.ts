import { DW_AT, DW_TAG } from './dwarf-constants.js';
import type { Die, DieRef, DwarfInfo, DwarfUnit } from './dwarf-info.js';
import { linesOf, type LineFile } from './dwarf-line.js';
import { dieCovers, dieRanges, lastStartAtOrBelow } from './dwarf-ranges.js';

/**
 * The source-level frames at one pc: the function whose code holds it and the inlined calls
 * nested inside it (DW_TAG_inlined_subroutine), innermost first, as gdb shows them in `bt`.
 *
 * Each frame knows its function name, the place it is at (the line table's place for the
 * innermost; the call site, DW_AT_call_file/call_line, for each frame an inline call sits in),
 * the DIE whose children are its parameters, and the lexical blocks covering pc inside it.
 * Addresses are link-time.
 */

export interface SourceFrame {
  readonly name: string;
  /** The subprogram or inlined_subroutine DIE. */
  readonly die: Die;
  /** True for a frame that is an inlined call (no machine frame of its own). */
  readonly inlined: boolean;
  readonly file?: LineFile;
  readonly line?: number;
  /** Lexical blocks covering pc, outermost first (their variables are this frame's locals too). */
  readonly blocks: readonly Die[];
  /** The subprogram DIE of the machine frame (for DW_AT_frame_base). */
  readonly subprogram: Die;
}

/** How deep scopes may nest before the DIEs are taken for garbage. */
const MAX_NEST = 64;

/** The name of a subprogram or inlined call: its own, or its abstract origin's / specification's. */
export function dieName(d: Die): string | undefined {
  let x: Die | undefined = d;
  for (let i = 0; x && i < 8; i++) {
    const n = x.name;
    if (n !== undefined) return n;
    x = x.refDie(DW_AT.abstract_origin) ?? x.refDie(DW_AT.specification);
  }
  return undefined;
}

/**
 * The children of a scope, with those of lexical blocks that have no code range of their own in
 * their place: gcc emits such blocks (a macro's braces in an inlined function) and gdb reads
 * their variables and nested scopes as the enclosing scope's.
 */
export function scopeChildren(scope: Die, depth = 0): Die[] {
  const out: Die[] = [];
  for (const c of scope.children()) {
    if (c.tag === DW_TAG.lexical_block && !c.has(DW_AT.low_pc) && !c.has(DW_AT.ranges) && depth < MAX_NEST) out.push(...scopeChildren(c, depth + 1));
    else out.push(c);
  }
  return out;
}

/** The subprogram whose code covers link-time `pc` in one of the units that hold it. */
export function subprogramAt(d: DwarfInfo, pc: bigint): Die | undefined {
  for (const u of linesOf(d).unitsAt(pc)) {
    const ix = subprogramIndex(d, u);
    // The last range starting at or below pc, then back over earlier ones (ranges may overlap:
    // a function split in parts, or garbage): the first in DIE order that covers pc wins.
    const hi = lastStartAtOrBelow(ix, pc);
    let best: SubprogramRange | undefined;
    for (let i = hi; i >= 0 && i > hi - OVERLAP_SCAN; i--) {
      const r = ix[i]!;
      if (pc < r.end && (!best || r.order < best.order)) best = r;
    }
    if (best) return d.die(best.ref);
  }
  return undefined;
}

interface SubprogramRange {
  readonly start: bigint;
  readonly end: bigint;
  readonly ref: DieRef;
  /** Position of the DIE in the unit: among overlapping ranges, the first DIE is the answer. */
  readonly order: number;
}

/** How many ranges below pc are looked at for one that still covers it. */
const OVERLAP_SCAN = 64;

const subprogramIndexes = new WeakMap<DwarfUnit, readonly SubprogramRange[]>();

/**
 * The code ranges of a unit's functions (C++ ones inside namespaces too), sorted by
 * start: built by one walk over the unit's top-level DIEs the first time a pc in it is asked
 * about, so a stack of 200 frames in one large C++ unit decodes its DIEs once, not once a frame.
 */
function subprogramIndex(d: DwarfInfo, u: DwarfUnit): readonly SubprogramRange[] {
  const hit = subprogramIndexes.get(u);
  if (hit) return hit;
  const out: SubprogramRange[] = [];
  const walk = (parent: Die, depth: number): void => {
    if (depth > 8 || !parent.hasChildren) return;
    d.eachChild(parent.unit, parent.next, (c) => {
      if (c.tag === DW_TAG.subprogram) {
        for (const r of dieRanges(c)) out.push({ start: r.start, end: r.end, ref: c.id, order: out.length });
        // A class holds its methods' declarations; their code is a DW_AT_specification DIE at
        // the unit's (or a namespace's) level, so a C++ unit's classes are stepped over, not read.
      } else if (c.tag === DW_TAG.namespace && c.hasChildren) walk(c, depth + 1);
    });
  };
  walk(d.root(u), 0);
  out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.order - b.order));
  subprogramIndexes.set(u, out);
  return out;
}

/**
 * The source frames at link-time `pc`, innermost first; empty when no DWARF function covers it.
 * `place` is the line table's file and line for pc (the caller looks up pc - 1 for return
 * addresses, as gdb does).
 */
export function sourceFramesAt(d: DwarfInfo, pc: bigint, place?: { file: LineFile; line: number }): SourceFrame[] {
  const sub = subprogramAt(d, pc);
  if (!sub) return [];
  const table = linesOf(d).table(sub.unit);
  // Scopes from the function inwards: each is a subprogram or inlined call with its blocks.
  const scopes: { die: Die; blocks: Die[] }[] = [{ die: sub, blocks: [] }];
  let cur: Die = sub;
  for (let depth = 0; depth < MAX_NEST; depth++) {
    let next: Die | undefined;
    for (const c of scopeChildren(cur)) {
      if ((c.tag === DW_TAG.lexical_block || c.tag === DW_TAG.inlined_subroutine) && dieCovers(c, pc)) {
        next = c;
        break;
      }
    }
    if (!next) break;
    if (next.tag === DW_TAG.inlined_subroutine) scopes.push({ die: next, blocks: [] });
    else scopes[scopes.length - 1]!.blocks.push(next);
    cur = next;
  }
  const out: SourceFrame[] = [];
  let file = place?.file;
  let line = place?.line;
  for (let i = scopes.length - 1; i >= 0; i--) {
    const s = scopes[i]!;
    out.push({ name: dieName(s.die) ?? '??', die: s.die, inlined: i > 0, ...(file ? { file } : {}), ...(line !== undefined ? { line } : {}), blocks: s.blocks, subprogram: sub });
    // The frame around an inlined call is at the call's site.
    const cf = s.die.uint(DW_AT.call_file);
    const cl = s.die.uint(DW_AT.call_line);
    file = cf !== undefined ? table?.files.get(cf) : undefined;
    line = cl;
  }
  return out;
}
