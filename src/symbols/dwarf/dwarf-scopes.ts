import { DW_AT, DW_TAG } from './dwarf-constants.js';
import type { Die, DwarfInfo } from './dwarf-info.js';
import { linesOf, type LineFile } from './dwarf-line.js';
import { dieCovers } from './dwarf-ranges.js';

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

/** The subprogram whose code covers link-time `pc` in one of the units that hold it. */
export function subprogramAt(d: DwarfInfo, pc: bigint): Die | undefined {
  for (const u of linesOf(d).unitsAt(pc)) {
    const root = d.root(u);
    if (!root.hasChildren) continue;
    const found = findIn(d, root, pc, 0);
    if (found) return found;
  }
  return undefined;
}

function findIn(d: DwarfInfo, parent: Die, pc: bigint, depth: number): Die | undefined {
  if (depth > 8) return undefined;
  let hit: Die | undefined;
  d.eachChild(parent.unit, parent.next, (c) => {
    if (c.tag === DW_TAG.subprogram && dieCovers(c, pc)) {
      hit = c;
      return false;
    }
    // C++: functions defined inside namespaces and classes.
    if ((c.tag === DW_TAG.namespace || c.tag === DW_TAG.structure_type || c.tag === DW_TAG.class_type) && c.hasChildren) {
      hit = findIn(d, c, pc, depth + 1);
      if (hit) return false;
    }
    return true;
  });
  return hit;
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
    for (const c of cur.children()) {
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
