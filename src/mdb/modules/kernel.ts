/**
 * Dcmds for targets with physical memory (kernel dumps; any target with `caps.physical`):
 *
 *   addr::vtop [-t thread]        each page-table level's entry, then the physical address
 *   addr[,len]::hexdump [-p] [-t N]  hex and ASCII dump (::xd); -p reads physical memory, as
 *                                 illumos ::dump -p does (`::dump` itself is the emulator's snapshot)
 *   ::cpus                        the CPUs of a kernel dump: mode, page-table root, pc
 *   ::vmcoreinfo                  the dump's VMCOREINFO note, line by line
 *   ::panicinfo                   why the kernel stopped, with the panicking CPU's key registers
 *
 * Linux's own dcmds (::ps, ::dmesg, ::stacks, ::task...) are in linux.ts.
 *
 * Physical memory is addressed with ::hexdump -p and ::vtop; physical formats (`addr\X`, kmdb's
 * syntax) belong to the command parser.
 */

import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import { findKernelPanic } from '../../os/kernel-panic.js';
import { KernelDumpTarget } from '../../targets/elfcore/kernel-dump-target.js';
import { need, type Target } from '../../targets/target.js';
import type { Dcmd, DcmdModule, SessionView } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';

function threadFlag(s: SessionView, v: string | true | undefined, dcmd: string): number {
  if (v === undefined) return s.thread || 1;
  const n = typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1) throw errors.badInput(`::${dcmd}: -t needs a thread number (1-based), not "${String(v)}"`);
  return n;
}

/** For dcmds without arguments that only make sense on a kernel dump: the target, checked. */
function kernelDump(d: Dcmd, s: SessionView, args: readonly string[], what: string): KernelDumpTarget {
  noExtra(d, parseFlags(d.name, d.usage, args, {}).rest);
  const t: Target = s.target;
  if (t instanceof KernelDumpTarget) return t;
  throw errors.unsupported(t.name, `${what} (::${d.name} is for kernel dumps)`);
}

function noExtra(d: Dcmd, rest: readonly string[]): void {
  if (rest.length > 0) throw errors.badInput(`::${d.name}: unexpected argument "${rest[0]}" (usage: ${d.usage})`);
}

const ENTRY_NAME: Record<string, string> = { PML5: 'PML5E', PML4: 'PML4E', PDPT: 'PDPTE', PD: 'PDE', PT: 'PTE' };

const vtop: Dcmd = {
  name: 'vtop',
  usage: 'addr::vtop [-t thread]',
  help:
    'translate a virtual address to physical through the page tables, showing each level\n\n' +
    'Walks from the CPU\'s CR3 (or swapper_pg_dir in a kdump). Each line is one level: the entry\n' +
    'name and index, the physical address of the entry, and its value. -t picks the CPU (thread).',
  needs: ['physical'],
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 't' });
    noExtra(this, rest);
    const addr = inv.addr ?? s.dot;
    const thread = threadFlag(s, flags.get('t'), this.name);
    const tr = need(s.target, 'physical').translate(addr, thread);
    if (out.jsonMode) {
      out.json({
        virt: hexAddr(tr.virt, s.target.arch),
        phys: tr.phys !== undefined ? hex(tr.phys) : null,
        pageSize: tr.pageSize ?? null,
        writable: tr.writable ?? null,
        executable: tr.executable ?? null,
        steps: tr.steps.map((st) => ({ level: st.level, index: st.index, entryAddr: hex(st.entryAddr), entry: hexAddr(st.entry, s.target.arch) })),
        fault: tr.fault ?? null,
      });
      if (tr.phys === undefined) throw new DbgError('unmapped', `virtual ${hexAddr(addr, s.target.arch)} is not mapped: ${tr.fault}`);
      return;
    }
    const labels = tr.steps.map((st) => `${ENTRY_NAME[st.level] ?? st.level}[${st.index}]`);
    const w = Math.max(0, ...labels.map((l) => l.length));
    tr.steps.forEach((st, i) => out.line(`${labels[i]!.padEnd(w)} @ phys ${hex(st.entryAddr)} = ${hexAddr(st.entry, s.target.arch)}`));
    if (tr.phys === undefined) throw new DbgError('unmapped', `virtual ${hexAddr(addr, s.target.arch)} is not mapped: ${tr.fault}`);
    const rights = tr.writable === undefined ? '' : `, ${tr.writable ? 'rw' : 'ro'}${tr.executable ? ', exec' : ', nx'}`;
    const size = tr.pageSize ? ` (${tr.pageSize >= 1 << 30 ? tr.pageSize / (1 << 30) + ' GiB' : tr.pageSize >= 1 << 20 ? tr.pageSize / (1 << 20) + ' MiB' : tr.pageSize / 1024 + ' KiB'} page${rights})` : ' (no paging)';
    out.line(`virtual ${hexAddr(addr, s.target.arch)} mapped to physical ${hex(tr.phys)}${size}`);
  },
};

const hexdump: Dcmd = {
  name: 'hexdump',
  aliases: ['xd'],
  usage: 'addr[,len]::hexdump [-p] [-t thread]',
  help:
    'hex and ASCII dump of len bytes (default 16), 16 per line; -p: addr is physical\n\n' +
    "Laid out as illumos ::dump (whose -p this -p follows): the header marks the column of the\n" +
    'starting byte. Virtual addresses are read as the selected thread (or -t N) sees them.',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'p', strings: 't' });
    noExtra(this, rest);
    const addr = inv.addr ?? s.dot;
    const len = inv.count ?? 16n;
    if (len <= 0n || len > 1n << 24n) throw errors.badInput(`::hexdump: length ${len} is out of range (1..16 MiB)`);
    const n = Number(len);
    const thread = threadFlag(s, flags.get('t'), this.name);
    const physical = flags.has('p');
    const start = addr & ~0xfn;
    const bytes = physical ? need(s.target, 'physical').readPhysical(addr, n) : s.target.readVirtual(addr, n, thread);
    if (out.jsonMode) {
      out.json({ addr: hexAddr(addr, s.target.arch), physical, bytes: bytes.toString('hex') });
      return;
    }
    const digits = physical ? Math.max(8, (addr + len).toString(16).length) : 16;
    const col = Number(addr & 0xfn);
    const head = Array.from({ length: 16 }, (_, i) => (i === col ? '\\/' : i.toString(16).padStart(2)));
    const groups = [0, 4, 8, 12].map((g) => head.slice(g, g + 4).join(''));
    out.line(`${' '.repeat(digits + 2)} ${groups.join(' ')}  ${Array.from({ length: 16 }, (_, i) => (i === col ? 'v' : i.toString(16))).join('')}`);
    for (let line = start; line < addr + len; line += 16n) {
      let hexPart = '';
      let ascii = '';
      for (let i = 0; i < 16; i++) {
        const a = line + BigInt(i);
        const inside = a >= addr && a < addr + len;
        const b = inside ? bytes[Number(a - addr)]! : undefined;
        hexPart += b === undefined ? '  ' : b.toString(16).padStart(2, '0');
        if (i % 4 === 3 && i < 15) hexPart += ' ';
        ascii += b === undefined ? ' ' : b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      }
      out.line(`${line.toString(16).padStart(digits, '0')}:  ${hexPart}  ${ascii}`);
    }
    s.dot = addr;
  },
};

const cpus: Dcmd = {
  name: 'cpus',
  usage: '::cpus',
  help: 'the CPUs of a kernel dump: thread, paging mode and root, pc',
  run(s, inv, out) {
    const t = kernelDump(this, s, inv.args, 'listing CPUs');
    const rows = t.threads().map((th) => {
      const regs = t.registers(th.index);
      const mode = t.addressMode(th.index);
      const pc = regs.get('rip') ?? 0n;
      return {
        thread: th.index,
        cpu: th.tid,
        name: th.name,
        pc,
        symbol: t.symbols.describe(pc) ?? null,
        cr3: regs.get('cr3'),
        mode: mode.kind === 'paging' ? `${mode.levels}-level paging` : mode.kind === 'identity' ? 'paging off' : mode.kind === 'segments' ? 'PT_LOAD vaddrs' : 'no translation',
      };
    });
    if (out.jsonMode) {
      out.json(rows.map((r) => ({ ...r, pc: hexAddr(r.pc, t.arch), cr3: r.cr3 !== undefined ? hex(r.cr3) : null, selected: r.thread === s.thread })));
      return;
    }
    out.line(' THR CPU MODE             CR3              PC');
    for (const r of rows) {
      const mark = r.thread === s.thread ? '>' : ' ';
      out.line(`${mark}${String(r.thread).padStart(3)} ${String(r.cpu).padStart(3)} ${r.mode.padEnd(16)} ${(r.cr3 !== undefined ? hex(r.cr3) : '-').padEnd(16)} ${hexAddr(r.pc, t.arch)}${r.symbol ? ' ' + r.symbol : ''}`);
    }
  },
};

const vmcoreinfo: Dcmd = {
  name: 'vmcoreinfo',
  usage: '::vmcoreinfo',
  help: "the dump's VMCOREINFO note (OSRELEASE, PAGESIZE, SYMBOL(), NUMBER(), KERNELOFFSET...)",
  run(s, inv, out) {
    const t = kernelDump(this, s, inv.args, 'VMCOREINFO');
    const vi = t.vmcoreinfo;
    if (!vi) throw errors.notFound(`${t.name} has no VMCOREINFO note (QEMU writes one only when the guest has the vmcoreinfo device)`);
    if (out.jsonMode) {
      out.json(Object.fromEntries(vi.entries));
      return;
    }
    for (const [k, v] of vi.entries) out.line(`${k}=${v}`);
  },
};

const panicinfo: Dcmd = {
  name: 'panicinfo',
  usage: '::panicinfo',
  help: 'why the kernel stopped: the panic message, the CPU, its pc and control registers',
  run(s, inv, out) {
    if (!(s.target instanceof KernelDumpTarget) && s.target.symbols.find('panic_msg') !== undefined) return livePanicinfo(this, s, inv.args, out);
    const t = kernelDump(this, s, inv.args, 'panic information');
    const st = t.status();
    const th = t.threads().find((x) => x.index === st.thread);
    const regs = t.registers(st.thread);
    const message = st.reason.kind === 'panic' ? st.reason.message : null;
    const keys = ['rip', 'rsp', 'rbp', 'cr0', 'cr2', 'cr3', 'cr4'].filter((k) => regs.has(k));
    if (out.jsonMode) {
      out.json({ message, thread: st.thread, cpu: th?.tid ?? null, foundBy: t.panicSource() ?? null, pc: hexAddr(st.pc, t.arch), symbol: t.symbols.describe(st.pc) ?? null, registers: Object.fromEntries(keys.map((k) => [k, hexAddr(regs.get(k)!, t.arch)])) });
      return;
    }
    out.line(`${'cpu'.padStart(10)} ${th?.tid ?? '?'} (thread ${st.thread})`);
    out.line(`${'message'.padStart(10)} ${message ?? '(no panic found: no CPU stopped in panic())'}`);
    const osr = t.vmcoreinfo?.osrelease;
    if (osr) out.line(`${'release'.padStart(10)} ${osr}`);
    const how = t.panicSource();
    if (how) out.line(`${'found by'.padStart(10)} ${how}`);
    for (const k of keys) {
      const v = regs.get(k)!;
      const sym = k === 'rip' ? t.symbols.describe(v) : undefined;
      out.line(`${k.padStart(10)} ${hexAddr(v, t.arch)}${sym ? ' ' + sym : ''}`);
    }
  },
};

/** ::panicinfo on a guest that runs (live or replayed): the vCPU in panic() now, as a dump would show it. */
function livePanicinfo(d: Dcmd, s: SessionView, args: readonly string[], out: Parameters<Dcmd['run']>[2]): void {
  noExtra(d, parseFlags(d.name, d.usage, args, {}).rest);
  const t = s.target;
  const p = findKernelPanic(t);
  const thread = p?.thread ?? t.status().thread;
  const th = t.threads().find((x) => x.index === thread);
  const regs = t.registers(thread);
  const keys = ['rip', 'rsp', 'rbp', 'cr0', 'cr2', 'cr3', 'cr4'].filter((k) => regs.has(k));
  const how = p ? `frame ${p.level} of CPU ${th?.tid ?? thread - 1}` : undefined;
  if (out.jsonMode) {
    out.json({ message: p?.message ?? null, thread, cpu: th?.tid ?? null, foundBy: how ?? null, pc: hexAddr(regs.get('rip') ?? 0n, t.arch), symbol: t.symbols.describe(regs.get('rip') ?? 0n) ?? null, registers: Object.fromEntries(keys.map((k) => [k, hexAddr(regs.get(k)!, t.arch)])) });
    return;
  }
  out.line(`${'cpu'.padStart(10)} ${th?.tid ?? '?'} (thread ${thread})`);
  out.line(`${'message'.padStart(10)} ${p?.message ?? '(no panic: no vCPU is in panic() now)'}`);
  if (how) out.line(`${'found by'.padStart(10)} ${how}`);
  for (const k of keys) {
    const v = regs.get(k)!;
    const sym = k === 'rip' ? t.symbols.describe(v) : undefined;
    out.line(`${k.padStart(10)} ${hexAddr(v, t.arch)}${sym ? ' ' + sym : ''}`);
  }
}

export const kernelModule: DcmdModule = {
  name: 'kernel',
  dcmds: [vtop, hexdump, cpus, vmcoreinfo, panicinfo],
};
