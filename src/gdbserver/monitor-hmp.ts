/**
 * The part of QEMU's human monitor (HMP) that gdb users type after `monitor`, answered the way
 * QEMU answers it, beside `monitor ::dcmd` (dbg's own command language):
 *
 *   help                    this list
 *   info registers          the selected vCPU's registers in QEMU's layout
 *   info mem, info tlb      the selected vCPU's page tables (monitor-paging.ts)
 *   x /FMT ADDR             virtual memory (FMT = [count][x|d|u|c][b|h|w|g], default 1xw)
 *   xp /FMT ADDR            the same, physical
 *   gva2gpa ADDR            a virtual address as the selected vCPU's page tables map it
 *
 * Anything else goes to the MDB session. Output lines are returned; errors are DbgErrors.
 */

import { errors } from '../common/errors.js';
import { need, type DescriptorCache, type Target } from '../targets/target.js';
import { infoMem, infoTlb } from './monitor-paging.js';

export const HMP_HELP = [
  'help                       -- this list (QEMU monitor commands dbg answers)',
  'info registers             -- the registers of the selected CPU, as QEMU shows them',
  'info mem                   -- the active virtual memory mappings, as QEMU shows them',
  'info tlb                   -- the virtual to physical mappings (every present page table leaf)',
  'x /fmt addr                -- virtual memory dump starting at addr (fmt: [count][x|d|u|c][b|h|w|g])',
  'xp /fmt addr               -- physical memory dump starting at addr',
  'gva2gpa addr               -- print the guest physical address of a guest virtual address',
  '::DCMD, ADDR/FMT, ...      -- any dbg (MDB) command, e.g. monitor ::status, monitor ::help',
];

/** The answer to `line` if it is one of the HMP commands above, else undefined. */
export function hmpCommand(target: Target, thread: number, line: string): string[] | undefined {
  const words = line.trim().split(/\s+/);
  const cmd = words[0];
  if (cmd === 'help' || cmd === '?') return HMP_HELP;
  if (cmd === 'info' && words[1] === 'registers' && words.length === 2) return infoRegisters(target, thread);
  if (cmd === 'info' && words[1] === 'mem' && words.length === 2) return infoMem(target, thread);
  if (cmd === 'info' && words[1] === 'tlb' && words.length === 2) return infoTlb(target, thread);
  if ((cmd === 'x' || cmd === 'xp') && words.length >= 2) return dump(target, thread, cmd === 'xp', words.slice(1));
  if (cmd === 'gva2gpa' && words.length === 2) {
    const t = need(target, 'physical').translate(number(words[1]!), thread);
    if (t.phys === undefined) throw errors.badInput(`gva2gpa ${words[1]}: unmapped (${t.fault ?? 'not present'})`);
    return [`gpa: 0x${t.phys.toString(16)}`];
  }
  return undefined;
}

function number(text: string): bigint {
  const t = text.replace(/^\$/, '');
  if (/^(0x)?[0-9a-f]+$/i.test(t)) return BigInt(t.startsWith('0x') || t.startsWith('0X') ? t : /^[0-9]+$/.test(t) ? t : '0x' + t);
  throw errors.badInput(`"${text}" is not an address (QEMU monitor syntax: 0x... or decimal)`);
}

/**
 * QEMU 7.2's `info registers` (x86_cpu_dump_state) for a 64-bit CPU, line for line: the general
 * registers, RFL with QEMU's seven flag letters, each descriptor cache with its decoded type,
 * control, debug, x87 (physical register order), SSE or AVX registers. A target that does not
 * hold the descriptor caches (a process core) prints the selectors and the bases it has.
 */
function infoRegisters(target: Target, thread: number): string[] {
  const r = target.registers(thread);
  const d = target.descriptors?.(thread);
  const hex = (x: bigint | number, w: number): string => BigInt(x).toString(16).padStart(w, '0');
  const v = (n: string, w = 16): string => hex(r.get(n) ?? 0n, w);
  const fl = r.get('eflags') ?? 0n;
  const flagText = ([['D', 10], ['O', 11], ['S', 7], ['Z', 6], ['A', 4], ['P', 2], ['C', 0]] as const).map(([c, b]) => ((fl >> BigInt(b)) & 1n ? c : '-')).join('');
  const hflags = d?.hflags;
  const cpl = hflags !== undefined ? hflags & 3 : Number((r.get('cs') ?? 0n) & 3n);
  const lines = [
    `RAX=${v('rax')} RBX=${v('rbx')} RCX=${v('rcx')} RDX=${v('rdx')}`,
    `RSI=${v('rsi')} RDI=${v('rdi')} RBP=${v('rbp')} RSP=${v('rsp')}`,
    `R8 =${v('r8')} R9 =${v('r9')} R10=${v('r10')} R11=${v('r11')}`,
    `R12=${v('r12')} R13=${v('r13')} R14=${v('r14')} R15=${v('r15')}`,
    // dbg's machine has no A20 gate and no SMM: A20 is always on.
    `RIP=${v('rip')} RFL=${v('eflags', 8)} [${flagText}] CPL=${cpl}` +
      (d ? ` II=${hflags !== undefined ? (hflags >> 3) & 1 : 0} A20=1 SMM=${hflags !== undefined ? (hflags >> 19) & 1 : 0} HLT=${d.halted ? 1 : 0}` : ''),
  ];
  const efer = r.get('efer') ?? 0n;
  if (d) {
    const lma = (efer & 0x400n) !== 0n;
    const pe = ((r.get('cr0') ?? 0n) & 1n) !== 0n;
    for (const n of ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'ldt', 'tr']) lines.push(segmentLine(n, d.segments[n], pe, lma));
    for (const n of ['gdt', 'idt']) {
      const c = d.segments[n];
      lines.push(`${n.toUpperCase()}=     ${hex(c?.base ?? 0n, 16)} ${hex(c?.limit ?? 0, 8)}`);
    }
  } else {
    lines.push(...['es', 'cs', 'ss', 'ds', 'fs', 'gs'].map((n) => `${n.toUpperCase()} =${v(n, 4)}`));
    lines.push(`FS_BASE=${v('fs_base')} GS_BASE=${v('gs_base')} KERNEL_GS_BASE=${v('k_gs_base')}`);
  }
  lines.push(`CR0=${v('cr0', 8)} CR2=${v('cr2')} CR3=${v('cr3')} CR4=${v('cr4', 8)}`);
  if (d?.debug) {
    const dr = d.debug;
    lines.push(`DR0=${hex(dr[0]!, 16)} DR1=${hex(dr[1]!, 16)} DR2=${hex(dr[2]!, 16)} DR3=${hex(dr[3]!, 16)} `, `DR6=${hex(dr[4]!, 16)} DR7=${hex(dr[5]!, 16)}`);
  }
  lines.push(`EFER=${hex(efer, 16)}`);
  if (!r.has('fctrl')) return lines;
  // x87: FTW as QEMU abridges it (a bit per valid register); FPRn are physical registers, ST(i) is R((TOP + i) & 7)
  const fsw = r.get('fstat') ?? 0n;
  const top = Number((fsw >> 11n) & 7n);
  const ftag = r.get('ftag') ?? 0xffffn;
  let ftw = 0;
  for (let i = 0; i < 8; i++) if (((ftag >> BigInt(2 * i)) & 3n) !== 3n) ftw |= 1 << i;
  lines.push(`FCW=${v('fctrl', 4)} FSW=${hex(fsw, 4)} [ST=${top}] FTW=${hex(ftw, 2)} MXCSR=${v('mxcsr', 8)}`);
  const fpr = (j: number): string => {
    const x = r.get(`st${(j - top + 8) & 7}`) ?? 0n;
    return `FPR${j}=${hex(x & 0xffff_ffff_ffff_ffffn, 16)} ${hex(x >> 64n, 4)}`;
  };
  for (let j = 0; j < 8; j += 2) lines.push(`${fpr(j)} ${fpr(j + 1)}`);
  // AVX state is shown (as YMM) once the OS has enabled XSAVE, as QEMU shows it when XCR0 has AVX
  const avx = ((r.get('cr4') ?? 0n) & (1n << 18n)) !== 0n && r.has('ymm0h');
  const vec = (i: number): string => {
    const x = r.get(`xmm${i}`) ?? 0n;
    const lo = `${hex(x >> 64n, 16)} ${hex(x & 0xffff_ffff_ffff_ffffn, 16)}`;
    if (!avx) return `XMM${String(i).padStart(2, '0')}=${lo}`;
    const h = r.get(`ymm${i}h`) ?? 0n;
    return `YMM${String(i).padStart(2, '0')}=${hex(h >> 64n, 16)} ${hex(h & 0xffff_ffff_ffff_ffffn, 16)} ${lo}`;
  };
  for (let i = 0; i < 16; i += 2) lines.push(`${vec(i)} ${vec(i + 1)}`);
  return lines;
}

/** System-segment type names, QEMU's, for legacy and long mode. */
const SYSTEM_TYPES = [
  ['Reserved', 'TSS16-avl', 'LDT', 'TSS16-busy', 'CallGate16', 'TaskGate', 'IntGate16', 'TrapGate16', 'Reserved', 'TSS32-avl', 'Reserved', 'TSS32-busy', 'CallGate32', 'Reserved', 'IntGate32', 'TrapGate32'],
  ['<hiword>', 'Reserved', 'LDT', 'Reserved', 'Reserved', 'Reserved', 'Reserved', 'Reserved', 'Reserved', 'TSS64-avl', 'Reserved', 'TSS64-busy', 'CallGate64', 'Reserved', 'IntGate64', 'TrapGate64'],
];

/** One descriptor cache as QEMU prints it: `CS =0008 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]`. */
function segmentLine(name: string, c: DescriptorCache | undefined, protectedMode: boolean, longMode: boolean): string {
  const s = c ?? { selector: 0, base: 0n, limit: 0, flags: 0 };
  const f = s.flags;
  let line = `${name.toUpperCase().padEnd(3)}=${s.selector.toString(16).padStart(4, '0')} ${s.base.toString(16).padStart(16, '0')} ${s.limit.toString(16).padStart(8, '0')} ${((f & 0x00ffff00) >>> 0).toString(16).padStart(8, '0')}`;
  if (!protectedMode || !(f & (1 << 15))) return line;
  line += ` DPL=${(f >> 13) & 3} `;
  if (f & (1 << 12)) {
    if (f & (1 << 11)) line += `${f & (1 << 21) ? 'CS64' : f & (1 << 22) ? 'CS32' : 'CS16'} [${f & (1 << 10) ? 'C' : '-'}${f & (1 << 9) ? 'R' : '-'}`;
    else line += `${f & (1 << 22) || longMode ? 'DS  ' : 'DS16'} [${f & (1 << 10) ? 'E' : '-'}${f & (1 << 9) ? 'W' : '-'}`;
    line += `${f & (1 << 8) ? 'A' : '-'}]`;
  } else line += SYSTEM_TYPES[longMode ? 1 : 0]![(f >> 8) & 15];
  return line;
}

/** QEMU's memory_dump: 16 bytes a line (8 for decimal), the address, then the values. */
function dump(target: Target, thread: number, physical: boolean, args: string[]): string[] {
  let fmt = 'x';
  let size = 4;
  let count = 1;
  let rest = args;
  if (args[0]!.startsWith('/')) {
    const m = /^\/(\d*)([xduoc]?)([bhwg]?)$/.exec(args[0]!);
    if (!m) throw errors.badInput(`${physical ? 'xp' : 'x'} ${args[0]}: expected /[count][x|d|u|o|c][b|h|w|g]`);
    count = m[1] ? Number(m[1]) : 1;
    fmt = m[2] || 'x';
    size = m[3] ? { b: 1, h: 2, w: 4, g: 8 }[m[3] as 'b' | 'h' | 'w' | 'g'] : fmt === 'c' ? 1 : 4;
    rest = args.slice(1);
  }
  if (rest.length !== 1) throw errors.badInput(`${physical ? 'xp' : 'x'} needs one address (help lists the monitor commands)`);
  if (count > 4096) throw errors.badInput(`${physical ? 'xp' : 'x'}: at most 4096 items at a time`);
  const addr = number(rest[0]!);
  const bytes = physical ? need(target, 'physical').readPhysical(addr, count * size) : target.readVirtual(addr, count * size, thread);
  const perLine = fmt === 'c' ? 16 : Math.max(1, 16 / size);
  const lines: string[] = [];
  for (let i = 0; i < count; i += perLine) {
    const at = addr + BigInt(i * size);
    let line = `${at.toString(16).padStart(16, '0')}:`;
    for (let k = i; k < Math.min(count, i + perLine); k++) {
      let val = 0n;
      for (let b = size - 1; b >= 0; b--) val = (val << 8n) | BigInt(bytes[k * size + b]!);
      if (fmt === 'x') line += ` 0x${val.toString(16).padStart(size * 2, '0')}`;
      else if (fmt === 'o') line += ` 0${val.toString(8)}`;
      else if (fmt === 'u') line += ` ${val.toString(10)}`;
      else if (fmt === 'd') line += ` ${BigInt.asIntN(size * 8, val).toString(10)}`;
      else line += ` '${val >= 0x20n && val < 0x7fn ? String.fromCharCode(Number(val)) : `\\x${val.toString(16).padStart(2, '0')}`}'`;
    }
    lines.push(line);
  }
  return lines;
}
