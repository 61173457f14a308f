/**
 * Which x86-64 instructions enter or leave a function, from their bytes alone: what the call
 * derivation (src/store/call-walker.ts) needs for each distinct pc of a history, without a
 * disassembler (targets and the store cannot depend on the one in src/mdb).
 *
 *   call   E8 rel32                       (prefixes) E8 xx xx xx xx
 *          FF /2, FF /3 (near/far indirect) (prefixes) (REX) FF modrm [sib] [disp8|disp32]
 *   ret    C3, C2 iw, CB, CA iw           (a `rep ret` is F3 C3)
 *   iret   CF, 48 CF (iretq)
 *
 * `size` is the instruction's length for a call (the return address is pc + size); 0 otherwise.
 */

export type BranchKind = 'call' | 'ret' | 'iret' | 'other';

const LEGACY_PREFIXES = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65]);

export function x86_64Branch(bytes: Uint8Array): { kind: BranchKind; size: number } {
  let i = 0;
  while (i < bytes.length && i < 14 && LEGACY_PREFIXES.has(bytes[i]!)) i++;
  if (i < bytes.length && (bytes[i]! & 0xf0) === 0x40) i++;
  if (i >= bytes.length) return { kind: 'other', size: 0 };
  const op = bytes[i]!;
  if (op === 0xe8) return { kind: 'call', size: i + 5 };
  if (op === 0xc3 || op === 0xc2 || op === 0xcb || op === 0xca) return { kind: 'ret', size: 0 };
  if (op === 0xcf) return { kind: 'iret', size: 0 };
  if (op !== 0xff || i + 1 >= bytes.length) return { kind: 'other', size: 0 };
  const modrm = bytes[i + 1]!;
  const reg = (modrm >> 3) & 7;
  if (reg !== 2 && reg !== 3) return { kind: 'other', size: 0 };
  return { kind: 'call', size: i + 2 + modrmExtra(modrm, bytes[i + 2] ?? 0) };
}

/** Bytes after the ModRM byte: SIB and displacement (64-bit mode; mod 0 rm 5 is rip-relative). */
function modrmExtra(modrm: number, sib: number): number {
  const mod = modrm >> 6;
  const rm = modrm & 7;
  if (mod === 3) return 0;
  let n = 0;
  if (rm === 4) {
    n++;
    if (mod === 0 && (sib & 7) === 5) n += 4;
  } else if (mod === 0 && rm === 5) n += 4;
  if (mod === 1) n += 1;
  if (mod === 2) n += 4;
  return n;
}
