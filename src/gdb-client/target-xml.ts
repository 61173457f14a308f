/**
 * The register layout a stub describes in its target description (qXfer:features:read), as
 * gdb reads it (gdb/doc "Target Descriptions"):
 *
 *   <target><architecture>i386:x86-64</architecture>
 *     <xi:include href="64bit-core.xml"/>              another annex, read the same way
 *     <feature name="org.gnu.gdb.i386.core">
 *       <reg name="rax" bitsize="64" regnum="0" .../>   regnum: default the previous one + 1
 *
 * `g` replies hold the registers in regnum order, back to back, little-endian on x86. dbg reads
 * x86-64 and i386 descriptions; anything else is refused with what was found.
 */

import { X86_64 } from '../arch/x86-64.js';
import { I386 } from '../arch/i386.js';
import type { Arch } from '../arch/arch.js';

export interface RemoteRegister {
  readonly name: string;
  readonly bits: number;
  readonly regnum: number;
}

export interface RemoteDescription {
  readonly arch: Arch;
  /** Sorted by regnum. */
  readonly registers: readonly RemoteRegister[];
}

/** Why a description cannot be used (the caller adds the stub and the packet). */
export class DescriptionError extends Error {}

/** The description whose root annex is target.xml; `fetch(annex)` returns an annex's text. */
export function parseDescription(fetch: (annex: string) => string): RemoteDescription {
  const regs: RemoteRegister[] = [];
  let archText: string | undefined;
  let next = 0;
  let annexes = 0;
  const visit = (annex: string, depth: number): void => {
    if (depth > 4 || ++annexes > 32) throw new DescriptionError(`too many nested xi:include annexes (at ${annex})`);
    const xml = fetch(annex).replace(/<!--[\s\S]*?-->/g, '');
    const tag = /<(xi:include|reg|architecture)\b([^>]*?)\/?>(?:([^<]*)<\/architecture>)?/g;
    for (let m; (m = tag.exec(xml)); ) {
      if (m[1] === 'architecture') {
        archText = (m[3] ?? '').trim();
        continue;
      }
      const attrs = attributes(m[2]!);
      if (m[1] === 'xi:include') {
        if (!attrs.href || !/^[\w.-]+$/.test(attrs.href)) throw new DescriptionError(`an xi:include without a plain href in ${annex}`);
        visit(attrs.href, depth + 1);
        continue;
      }
      const name = attrs.name;
      const bits = Number(attrs.bitsize);
      if (!name) throw new DescriptionError(`a <reg> without a name in ${annex}`);
      if (!Number.isInteger(bits) || bits <= 0 || bits % 8 !== 0 || bits > 1024) throw new DescriptionError(`register ${name}: bitsize "${attrs.bitsize ?? ''}" (expected a multiple of 8 up to 1024)`);
      const regnum = attrs.regnum !== undefined ? Number(attrs.regnum) : next;
      if (!Number.isInteger(regnum) || regnum < 0 || regnum > 4096) throw new DescriptionError(`register ${name}: regnum "${attrs.regnum}"`);
      if (regs.some((r) => r.regnum === regnum || r.name === name)) throw new DescriptionError(`register ${name} (regnum ${regnum}) described twice`);
      regs.push({ name, bits, regnum });
      next = regnum + 1;
    }
  };
  visit('target.xml', 0);
  regs.sort((a, b) => a.regnum - b.regnum);
  const arch = archOf(archText, regs);
  for (const need of [arch.pc, arch.sp]) {
    const r = regs.find((x) => x.name === need);
    if (!r) throw new DescriptionError(`no ${need} register in a ${arch.gdbArch} description (${regs.length} registers)`);
    if (r.bits !== arch.pointerBytes * 8) throw new DescriptionError(`${need} is ${r.bits} bits wide; ${arch.gdbArch} has ${arch.pointerBytes * 8}`);
  }
  return { arch, registers: regs };
}

function archOf(text: string | undefined, regs: readonly RemoteRegister[]): Arch {
  if (text === undefined) {
    if (regs.some((r) => r.name === 'rip')) return X86_64;
    if (regs.some((r) => r.name === 'eip')) return I386;
    throw new DescriptionError(`no <architecture> and neither rip nor eip among ${regs.length} registers (dbg reads x86-64 and i386)`);
  }
  if (text === 'i386:x86-64' || text === 'x86-64') return X86_64;
  if (text === 'i386' || text === 'i386:intel') return I386;
  throw new DescriptionError(`architecture "${text.slice(0, 40)}" (dbg reads i386:x86-64 and i386)`);
}

function attributes(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([\w:-]+)\s*=\s*"([^"]*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

/**
 * gdb's own amd64 layout, for a stub that offers no target description (gdb assumes it too):
 * rax..r15 rip eflags cs ss ds es fs gs, st0-st7, fctrl..fop, xmm0-xmm15, mxcsr.
 */
export function defaultX86_64(): RemoteDescription {
  const spec: [string, number][] = [
    ...['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'].map((n): [string, number] => [n, 64]),
    ...['eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs'].map((n): [string, number] => [n, 32]),
    ...Array.from({ length: 8 }, (_, i): [string, number] => [`st${i}`, 80]),
    ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((n): [string, number] => [n, 32]),
    ...Array.from({ length: 16 }, (_, i): [string, number] => [`xmm${i}`, 128]),
    ['mxcsr', 32],
  ];
  return { arch: X86_64, registers: spec.map(([name, bits], regnum) => ({ name, bits, regnum })) };
}

/** Registers from a `g` reply: `xx` bytes (unavailable) leave a register out; a short reply leaves the rest out. */
export function decodeRegisters(desc: RemoteDescription, hex: string, into = new Map<string, bigint>()): Map<string, bigint> {
  let off = 0;
  for (const r of desc.registers) {
    const n = r.bits / 4;
    if (off + n > hex.length) break;
    const part = hex.slice(off, off + n);
    off += n;
    const v = decodeLittle(part);
    if (v !== undefined) into.set(r.name, v);
  }
  return into;
}

/** A little-endian hex value, or undefined for `xx` (unavailable) or anything not hex. */
export function decodeLittle(hex: string): bigint | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return undefined;
  let be = '';
  for (let i = hex.length - 2; i >= 0; i -= 2) be += hex.slice(i, i + 2);
  return BigInt(`0x${be}`);
}

export function encodeLittle(value: bigint, bits: number): string {
  let x = BigInt.asUintN(bits, value);
  let out = '';
  for (let i = 0; i < bits / 8; i++) {
    out += Number(x & 0xffn).toString(16).padStart(2, '0');
    x >>= 8n;
  }
  return out;
}
