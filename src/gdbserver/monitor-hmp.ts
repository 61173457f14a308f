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
import { need, type Target } from '../targets/target.js';
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

function infoRegisters(target: Target, thread: number): string[] {
  const r = target.registers(thread);
  const v = (n: string, w = 16): string => (r.get(n) ?? 0n).toString(16).padStart(w, '0');
  const fl = r.get('eflags') ?? 0n;
  const flags = ['O', 'D', 'I', 'T', 'S', 'Z', 'A', 'P', 'C'];
  const bits = [11, 10, 9, 8, 7, 6, 4, 2, 0];
  const flagText = bits.map((b, i) => ((fl >> BigInt(b)) & 1n ? flags[i] : '-')).join('');
  const cpl = (r.get('cs') ?? 0n) & 3n;
  return [
    `RAX=${v('rax')} RBX=${v('rbx')} RCX=${v('rcx')} RDX=${v('rdx')}`,
    `RSI=${v('rsi')} RDI=${v('rdi')} RBP=${v('rbp')} RSP=${v('rsp')}`,
    `R8 =${v('r8')} R9 =${v('r9')} R10=${v('r10')} R11=${v('r11')}`,
    `R12=${v('r12')} R13=${v('r13')} R14=${v('r14')} R15=${v('r15')}`,
    `RIP=${v('rip')} RFL=${v('eflags', 8)} [${flagText}] CPL=${cpl}`,
    ...['es', 'cs', 'ss', 'ds', 'fs', 'gs'].map((s) => `${s.toUpperCase()} =${v(s, 4)}`),
    `FS_BASE=${v('fs_base')} GS_BASE=${v('gs_base')} KERNEL_GS_BASE=${v('k_gs_base')}`,
    `CR0=${v('cr0', 8)} CR2=${v('cr2')} CR3=${v('cr3')} CR4=${v('cr4', 8)}`,
    `EFER=${v('efer')}`,
  ];
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
