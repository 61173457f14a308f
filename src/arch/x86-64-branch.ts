/**
 * Which x86 instructions enter or leave a function, from their bytes alone: what the call
 * derivation (src/store/call-walker.ts) needs for each distinct pc of a history, without a
 * disassembler (targets and the store cannot depend on the one in src/mdb).
 *
 *   call   E8 rel32                       (prefixes) E8 xx xx xx xx
 *          FF /2, FF /3 (near/far indirect) (prefixes) (REX) FF modrm [sib] [disp8|disp32]
 *          0F 05 syscall (64-bit code): the kernel's entry is the callee, sysret comes back
 *   ret    C3, C2 iw, CB, CA iw           (a `rep ret` is F3 C3); 0F 07 sysret (REX.W too)
 *   iret   CF, 48 CF (iretq)
 *
 * `int n` needs no entry here: the emulator delivers it, and the trace holds it as an interrupt.
 *
 * 40-4F are REX prefixes in 64-bit code and one-byte inc/dec in 32-bit code, and a history can
 * hold both (a 32-bit kernel that enters long mode); the bytes alone cannot tell. A call read
 * through such a byte says `rex`: when the vCPU's next instruction is pc + 1, it was an inc/dec.
 * (A ret read so needs no flag: pc + 1 is never a frame's return address.)
 *
 * `size` is the instruction's length for a call (the return address is pc + size); 0 otherwise.
 */

export type BranchKind = 'call' | 'ret' | 'iret' | 'other';

const LEGACY_PREFIXES = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65]);

export interface Branch {
  readonly kind: BranchKind;
  readonly size: number;
  /** A call read through a 40-4F byte (a REX prefix, or in 32-bit code an inc/dec). */
  readonly rex?: true;
}

const OTHER: Branch = { kind: 'other', size: 0 };
const RET: Branch = { kind: 'ret', size: 0 };

export function x86_64Branch(bytes: Uint8Array): Branch {
  let i = 0;
  while (i < bytes.length && i < 14 && LEGACY_PREFIXES.has(bytes[i]!)) i++;
  const rex = i < bytes.length && (bytes[i]! & 0xf0) === 0x40;
  if (rex) i++;
  if (i >= bytes.length) return OTHER;
  const op = bytes[i]!;
  const call = (size: number): Branch => (rex ? { kind: 'call', size, rex } : { kind: 'call', size });
  if (op === 0xe8) return call(i + 5);
  if (op === 0x0f && bytes[i + 1] === 0x05) return call(i + 2); // syscall
  if (op === 0x0f && bytes[i + 1] === 0x07) return RET; // sysret
  if (op === 0xc3 || op === 0xc2 || op === 0xcb || op === 0xca) return RET;
  if (op === 0xcf) return { kind: 'iret', size: 0 };
  if (op !== 0xff || i + 1 >= bytes.length) return OTHER;
  const modrm = bytes[i + 1]!;
  const reg = (modrm >> 3) & 7;
  if (reg !== 2 && reg !== 3) return OTHER;
  return call(i + 2 + modrmExtra(modrm, bytes[i + 2] ?? 0));
}

/** Bytes after the ModRM byte: SIB and displacement (mod 0 rm 5: rip-relative in 64-bit code, absolute in 32-bit; disp32 in both). */
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
