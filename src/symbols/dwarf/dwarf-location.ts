import { DbgError } from '../../common/errors.js';
import { evalDwarfExpr, type ExprContext } from '../eh-frame.js';
import { DwarfCursor } from './dwarf-cursor.js';

/**
 * Where a variable is, from its DWARF location expression (DWARF 5 section 2.6):
 *
 *   memory     the expression computes an address (DW_OP_fbreg -24, DW_OP_addr X, ...)
 *   register   DW_OP_reg0..31 / DW_OP_regx N alone: the value is in that register
 *   value      ... DW_OP_stack_value: the expression computes the value itself
 *   bytes      DW_OP_implicit_value LEN BYTES: the value's bytes are in the expression
 *   pieces     DW_OP_piece N after each part: the value is assembled from several places
 *   synthetic  DW_OP_implicit_pointer: a pointer to an object that was optimized away
 *   optimized  an empty expression (or a piece of one): no location at this pc
 */
export type Location =
  | { readonly kind: 'memory'; readonly addr: bigint }
  | { readonly kind: 'register'; readonly reg: number }
  | { readonly kind: 'value'; readonly value: bigint }
  | { readonly kind: 'bytes'; readonly bytes: Buffer }
  | { readonly kind: 'pieces'; readonly pieces: readonly { readonly size: number; readonly loc: Location }[] }
  | { readonly kind: 'synthetic' }
  | { readonly kind: 'optimized' };

const PIECE = 0x93;

/** The length in bytes of the operation at `pos` (opcode included); undefined for one we do not size. */
function opLength(expr: Buffer, pos: number, addressSize: number): number | undefined {
  const op = expr[pos]!;
  const c = new DwarfCursor(expr, pos + 1, true, 'DWARF expression');
  const leb = (n: number) => {
    for (let i = 0; i < n; i++) c.ulebBig();
    return c.pos - pos;
  };
  if ((op >= 0x30 && op <= 0x6f) || (op >= 0x12 && op <= 0x27 && op !== 0x15 && op !== 0x23) || (op >= 0x29 && op <= 0x2e) || op === 0x06 || op === 0x96 || op === 0x9c || op === 0x9f) return 1;
  if (op >= 0x70 && op <= 0x8f) return leb(1);
  switch (op) {
    case 0x03:
      return 1 + addressSize;
    case 0x08:
    case 0x09:
    case 0x15:
    case 0x94:
      return 2;
    case 0x0a:
    case 0x0b:
    case 0x28:
    case 0x2f:
      return 3;
    case 0x0c:
    case 0x0d:
      return 5;
    case 0x0e:
    case 0x0f:
      return 9;
    case 0x10:
    case 0x11:
    case 0x23:
    case 0x90:
    case 0x91:
    case 0x93:
    case 0xa1:
    case 0xfb:
      return leb(1);
    case 0x92:
    case 0x9d:
      return leb(2);
    case 0x9e: {
      const n = c.uleb();
      return c.pos - pos + n;
    }
    case 0xa3:
    case 0xf3: {
      const n = c.uleb();
      return c.pos - pos + n;
    }
    default:
      return undefined;
  }
}

/** Evaluates a location expression against a frame (ctx). Errors are DbgErrors naming `where`. */
export function evalLocation(expr: Buffer, ctx: ExprContext, where: string): Location {
  if (expr.length === 0) return { kind: 'optimized' };
  // Split at top-level DW_OP_piece.
  const parts: { expr: Buffer; size?: number }[] = [];
  let start = 0;
  let pos = 0;
  let sized = true;
  while (pos < expr.length) {
    const n = opLength(expr, pos, ctx.addressSize);
    if (n === undefined) {
      sized = false;
      break;
    }
    if (expr[pos] === PIECE) {
      const c = new DwarfCursor(expr, pos + 1, true, where);
      parts.push({ expr: expr.subarray(start, pos), size: c.uleb() });
      start = pos + n;
    }
    pos += n;
  }
  if (!sized || parts.length === 0) return single(expr, ctx, where);
  if (start < expr.length) parts.push({ expr: expr.subarray(start) });
  return { kind: 'pieces', pieces: parts.map((p) => ({ size: p.size ?? 0, loc: p.expr.length === 0 ? { kind: 'optimized' } : single(p.expr, ctx, where) })) };
}

function single(expr: Buffer, ctx: ExprContext, where: string): Location {
  const op = expr[0]!;
  if (op >= 0x50 && op <= 0x6f && expr.length === 1) return { kind: 'register', reg: op - 0x50 };
  if (op === 0x90) {
    const c = new DwarfCursor(expr, 1, true, where);
    const reg = c.uleb();
    if (c.pos === expr.length) return { kind: 'register', reg };
  }
  if (op === 0x9e) {
    const c = new DwarfCursor(expr, 1, true, where);
    const n = c.uleb();
    return { kind: 'bytes', bytes: c.bytes(n) };
  }
  if (op === 0xa0 || op === 0xf2) return { kind: 'synthetic' };
  if (expr[expr.length - 1] === 0x9f) return { kind: 'value', value: evalDwarfExpr(expr.subarray(0, expr.length - 1), ctx, undefined, where) };
  try {
    return { kind: 'memory', addr: evalDwarfExpr(expr, ctx, undefined, where) };
  } catch (e) {
    if (e instanceof DbgError && e.code === 'unsupported') return { kind: 'optimized' };
    throw e;
  }
}
