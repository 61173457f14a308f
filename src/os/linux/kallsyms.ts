/**
 * A Linux kernel's own symbol table (kallsyms), read from the dump as drgn does when there is no
 * vmlinux: Linux 6.0+ puts the tables' addresses in VMCOREINFO.
 *
 *   SYMBOL(kallsyms_num_syms)      u32: number of symbols
 *   SYMBOL(kallsyms_names)         per symbol: a length (one byte; two when bit 7 is set, Linux
 *                                  6.1+: (b0 & 0x7f) | b1 << 7), then that many token indices
 *   SYMBOL(kallsyms_token_table)   256 NUL-terminated token strings, back to back
 *   SYMBOL(kallsyms_token_index)   256 u16 offsets into the token table
 *   SYMBOL(kallsyms_offsets)       s32 per symbol; with KALLSYMS_ABSOLUTE_PERCPU (x86-64):
 *                                  >= 0 is the value itself (per-CPU offsets), < 0 is
 *                                  relative_base - 1 - offset
 *   SYMBOL(kallsyms_relative_base) ulong
 *
 * A name's first character is its nm type letter ('T' text, 'd' data...). Sizes are not kept by
 * kallsyms: each symbol is given the distance to the next one.
 */

import { errors } from '../../common/errors.js';
import { STT_FUNC, STT_NOTYPE, STT_OBJECT, type ElfSymbol } from '../../symbols/elf-file.js';
import type { LinuxPort, VmcoreinfoView } from './port.js';

/** True when VMCOREINFO locates kallsyms. */
export function hasKallsyms(vi: VmcoreinfoView | undefined): boolean {
  return !!vi && ['names', 'num_syms', 'token_table', 'token_index', 'offsets', 'relative_base'].every((n) => vi.symbol(`kallsyms_${n}`) !== undefined);
}

export function readKallsyms(port: LinuxPort): ElfSymbol[] {
  const vi = port.vmcoreinfo;
  if (!vi) throw errors.notFound(`${port.name} has no VMCOREINFO note: kallsyms cannot be located`);
  const sym = (n: string) => {
    const v = vi.symbol(`kallsyms_${n}`);
    if (v === undefined) throw errors.notFound(`VMCOREINFO has no SYMBOL(kallsyms_${n})`);
    return v;
  };
  const read = (a: bigint, n: number) => port.read(a, n);
  const count = read(sym('num_syms'), 4).readUInt32LE(0);
  if (count === 0 || count > 10_000_000) throw errors.corrupt(port.name, `kallsyms_num_syms is ${count}: not a kernel symbol count`);
  const tokenIndex = read(sym('token_index'), 512);
  const lastTok = tokenIndex.readUInt16LE(510);
  const tokenTable = read(sym('token_table'), lastTok + 256);
  const tokens: string[] = [];
  for (let i = 0; i < 256; i++) {
    const at = tokenIndex.readUInt16LE(i * 2);
    const end = tokenTable.indexOf(0, at);
    tokens.push(tokenTable.toString('latin1', at, end < 0 ? tokenTable.length : end));
  }
  const offsets = read(sym('offsets'), count * 4);
  const base = read(sym('relative_base'), 8).readBigUInt64LE(0);

  // The names stream, read in chunks as it is consumed.
  const namesAt = sym('names');
  let chunk: Buffer = Buffer.alloc(0);
  let chunkStart = 0;
  let pos = 0;
  const byte = (): number => {
    if (pos - chunkStart >= chunk.length) {
      chunkStart = pos;
      const at = namesAt + BigInt(pos);
      const toPage = 4096 - Number(at & 0xfffn);
      try {
        chunk = read(at, 60 * 1024 + toPage);
      } catch {
        chunk = read(at, toPage); // the stream may end near unmapped memory: go page by page
      }
    }
    return chunk[pos++ - chunkStart]!;
  };

  const out: ElfSymbol[] = [];
  for (let i = 0; i < count; i++) {
    let len = byte();
    if (len & 0x80) len = (len & 0x7f) | (byte() << 7);
    let name = '';
    for (let j = 0; j < len; j++) name += tokens[byte()]!;
    const off = offsets.readInt32LE(i * 4);
    const value = off >= 0 ? BigInt(off) : base - 1n - BigInt(off);
    const type = name[0] ?? '?';
    name = name.slice(1);
    if (off >= 0 || !name) continue; // per-CPU offsets are not addresses
    const lower = type.toLowerCase();
    out.push({
      name,
      value,
      size: 0n,
      type: lower === 't' || lower === 'w' ? STT_FUNC : 'dbrgv'.includes(lower) ? STT_OBJECT : STT_NOTYPE,
      bind: type === lower ? 0 : 1,
      shndx: 1,
    });
  }
  // kallsyms is sorted by address: a symbol ends where the next one starts.
  const sorted = [...out].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  const sized = new Map<ElfSymbol, bigint>();
  let next: bigint | undefined; // the nearest address above the current group
  let group: bigint | undefined; // the address of the current group
  for (let i = sorted.length - 1; i >= 0; i--) {
    const s = sorted[i]!;
    if (s.value !== group) {
      next = group;
      group = s.value;
    }
    if (next !== undefined && next - s.value < 1n << 24n) sized.set(s, next - s.value);
  }
  return out.map((s) => ({ ...s, size: sized.get(s) ?? 0n }));
}
