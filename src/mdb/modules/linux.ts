/**
 * Dcmds and walkers for Linux kernel dumps and live guests under QEMU's stub (dbg attach --gdb
 * with --symbols vmlinux); the knowledge they show lives in src/os/linux/ and reads the kernel
 * through its LinuxPort (KernelDumpTarget.linux, RemoteTarget.linux). Tasks need vmlinux's types
 * (--symbols vmlinux); ::dmesg needs VMCOREINFO or those types.
 *
 *   ::ps [-t]                      processes (-t: every thread): state, pid, ppid, cpu, task, comm
 *   ADDR::task                     select the task at ADDR as the thread (::stack, ::regs then
 *                                  show it; a sleeping task from the context it switched out with)
 *   ::task -a                      every task becomes a thread (::threads, ::stack -a, and gdb's
 *                                  `info threads` through `monitor ::task -a` on the GDB server)
 *   PID::pid2task                  the task_struct of a pid (MDB numbers: 0t102 or 0x66)
 *   ::stacks [-c FUNC]             every task's stack (every thread's on other targets), identical
 *                                  stacks grouped with a count, as MDB's ::stacks; -c: only those
 *                                  through FUNC
 *   ADDR::list_head [-H] TYPE MEMBER   the TYPEs on the list_head (-H: hlist_head) at ADDR
 *   ::percpu SYM [CPU]             each CPU's copy of a per-CPU variable (one CPU's: pipe-able)
 *   ::modules                      loaded modules: struct module, name, base, size, state, symbols' origin
 *   ::dmesg [-n N] [-l LEVELS]     the kernel log; -l: only these levels (emerg..debug or 0..7, a
 *                                  comma list), as dmesg -l
 *   walkers task (processes, init_task first) and thread (every thread)
 *
 * A task list that cycles or leaves the dump stops the walk: what was found is shown, then a
 * one-line warning says where it stopped and after how many tasks.
 */

import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import { needObjects, type LinuxPort } from '../../os/linux/port.js';
import { linuxModules } from '../../os/linux/modules.js';
import { perCpuAddress } from '../../os/linux/percpu.js';
import { formatPrintk, LEVEL_NAMES, readPrintkLog } from '../../os/linux/printk.js';
import { linuxTasks, type LinuxTasks, type TaskInfo } from '../../os/linux/tasks.js';
import { KernelDumpTarget } from '../../targets/elfcore/kernel-dump-target.js';
import { RemoteTarget } from '../../targets/remote/remote-target.js';
import type { Target } from '../../targets/target.js';
import { unwind, type Frame } from '../../targets/unwind.js';
import type { Dcmd, DcmdModule, Output, SessionView, Walker } from '../dcmd.js';
import { symbolName } from '../names.js';
import { parseFlags } from '../parse-flags.js';

/** A target that shows a Linux kernel: a kernel dump, or QEMU's stub with a vmlinux found running. */
interface LinuxTarget extends Target {
  readonly linux: LinuxPort;
  readonly kernelElf?: unknown;
  taskThread(task: bigint, listed: boolean): number;
}

function kernelDump(s: SessionView, what: string): LinuxTarget {
  const t = s.target;
  if (t instanceof KernelDumpTarget) return t;
  if (t instanceof RemoteTarget) {
    const linux = t.linux;
    if (linux) return t as RemoteTarget & LinuxTarget; // its linux is defined: a kernel was found
    const why = t.qemuSystem ? `attach with --symbols vmlinux (the running kernel's, with DWARF)` : `${t.name} has no physical memory: it is no system emulator's stub (QEMU's -s or -gdb is)`;
    throw new DbgError('unsupported', `${what} needs a Linux kernel: ${why}`);
  }
  throw errors.unsupported(t.name, `${what} (it is for Linux kernel dumps and QEMU guests)`);
}

function tasksOf(s: SessionView, what: string): { t: LinuxTarget; tasks: LinuxTasks } {
  const t = kernelDump(s, what);
  return { t, tasks: linuxTasks(t.linux) };
}

function warn(out: Output, text: string): void {
  if (out.warn) out.warn(text);
  else if (!out.jsonMode) out.line(`(${text})`);
}

function noExtra(d: Dcmd, rest: readonly string[]): void {
  if (rest.length > 0) throw errors.badInput(`::${d.name}: unexpected argument "${rest[0]}" (usage: ${d.usage})`);
}

const ps: Dcmd = {
  name: 'ps',
  usage: '::ps [-t]',
  help:
    'Linux processes: state, pid, ppid, cpu, task_struct address, command; -t every thread\n\n' +
    "State letters are ps's (R running, S sleeping, D uninterruptible, I idle, Z zombie, T stopped...).\n" +
    'Read with vmlinux\'s types from init_task.tasks (and each signal->thread_head with -t).',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 't' });
    noExtra(this, rest);
    const { tasks } = tasksOf(s, 'listing tasks');
    const stops: string[] = [];
    const onStop = (m: string) => stops.push(m);
    const addrs = flags.has('t') ? tasks.all(onStop) : tasks.processes(onStop);
    const rows: TaskInfo[] = [];
    for (const a of addrs) {
      if (s.signal.aborted) break;
      rows.push(tasks.info(a));
    }
    if (out.piping && out.value) for (const r of rows) out.value(r.addr);
    else if (out.jsonMode) out.json(rows.map((r) => ({ ...r, addr: hexAddr(r.addr) })));
    else {
      out.line(`S ${'PID'.padStart(6)} ${'PPID'.padStart(6)} CPU ${'TASK'.padEnd(18)} COMM`);
      for (const r of rows) out.line(`${r.state} ${String(r.pid).padStart(6)} ${String(r.ppid).padStart(6)} ${String(r.cpu).padStart(3)} ${hexAddr(r.addr)} ${r.kernelThread ? `[${r.comm}]` : r.comm}`);
    }
    for (const m of stops) warn(out, m);
  },
};

const task: Dcmd = {
  name: 'task',
  usage: 'ADDR::task | ::task -a',
  help:
    'select the Linux task whose task_struct is at ADDR as the thread\n\n' +
    'A task running on a CPU selects that CPU; a sleeping one gets a thread of its own whose registers\n' +
    'are the context it switched out with (thread.sp -> inactive_task_frame), so ::stack unwinds it.\n' +
    '-a: every task becomes a thread beside the CPUs (::threads, ::stack -a, a GDB client\'s threads).',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'a' });
    noExtra(this, rest);
    if (flags.has('a')) {
      const { t, tasks } = tasksOf(s, 'tasks as threads');
      const stops: string[] = [];
      let n = 0;
      for (const a of tasks.all((m) => stops.push(m))) {
        try {
          t.taskThread(a, true);
          n++;
        } catch (e) {
          if (!(e instanceof DbgError)) throw e;
          stops.push(`task ${hexAddr(a)} is left out: ${e.message}`); // its saved context is unreadable; the others still become threads
        }
      }
      if (out.jsonMode) out.json({ tasks: n, threads: t.threads().length });
      else out.line(`${n} tasks; ${t.threads().length} threads (the CPUs, then the tasks not running on one)`);
      for (const m of stops) warn(out, m);
      return;
    }
    if (inv.addr === undefined) throw errors.badInput(`::task needs a task_struct address (usage: ${this.usage}; ::ps lists them)`);
    const { t, tasks } = tasksOf(s, 'selecting a task');
    const info = checkedTask(tasks, inv.addr);
    const thread = t.taskThread(inv.addr, true);
    s.thread = thread;
    s.dot = inv.addr;
    const where = thread <= t.threads().filter((x) => x.state !== 'sleeping').length ? `running on CPU ${thread - 1}` : 'from its saved context';
    if (out.jsonMode) out.json({ thread, task: hexAddr(inv.addr), pid: info.pid, comm: info.comm, running: where.startsWith('running') });
    else out.line(`thread ${thread}: task ${hexAddr(inv.addr)} (pid ${info.pid} ${info.comm}), ${where}`);
  },
};

/** The task at addr, or a one-line error when it is unreadable or no task_struct. */
function checkedTask(tasks: LinuxTasks, addr: bigint): TaskInfo {
  let info: TaskInfo;
  try {
    info = tasks.info(addr);
  } catch (e) {
    if (e instanceof DbgError) throw new DbgError(e.code, `${hexAddr(addr)} is not a readable task_struct: ${e.message}`);
    throw e;
  }
  if (info.pid < 0 || !/^[\x20-\x7e]*$/.test(info.comm)) throw errors.badInput(`${hexAddr(addr)} is not a task_struct (pid ${info.pid}, comm ${JSON.stringify(info.comm)})`);
  return info;
}

const pid2task: Dcmd = {
  name: 'pid2task',
  usage: 'PID::pid2task',
  help: 'the task_struct address of a pid (MDB numbers: 0t102 is decimal)',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    noExtra(this, rest);
    if (inv.addr === undefined) throw errors.badInput(`::pid2task needs a pid (usage: ${this.usage})`);
    const { tasks } = tasksOf(s, 'finding a task');
    const stops: string[] = [];
    for (const a of tasks.all((m) => stops.push(m))) {
      if (BigInt(tasks.info(a).pid) !== inv.addr) continue;
      if (out.piping && out.value) out.value(a);
      else if (out.jsonMode) out.json(hexAddr(a));
      else out.line(hexAddr(a));
      return;
    }
    for (const m of stops) warn(out, m);
    throw errors.notFound(`no task has pid ${inv.addr} (0t${inv.addr.toString(10)})`);
  },
};

const stacks: Dcmd = {
  name: 'stacks',
  usage: '::stacks [-c FUNC]',
  help:
    "every task's stack (every thread's, on targets without Linux tasks), identical stacks grouped\n\n" +
    'As MDB\'s ::stacks: one group per distinct stack, the first task (thread), its state and how many\n' +
    'share it, most shared first. -c FUNC keeps the stacks that pass through FUNC.',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'c' });
    noExtra(this, rest);
    const only = flags.get('c');
    const t = s.target;
    const members: { id: bigint; state: string; frames: readonly Frame[] }[] = [];
    const stops: string[] = [];
    const linux = (t instanceof KernelDumpTarget && t.kernelElf) || (t instanceof RemoteTarget && t.linux) ? kernelDump(s, 'stacks') : undefined;
    if (linux) {
      const tasks = linuxTasks(linux.linux);
      for (const a of tasks.all((m) => stops.push(m))) {
        if (s.signal.aborted) break;
        const info = tasks.info(a);
        let frames: Frame[] = [];
        try {
          frames = unwind(linux, linux.taskThread(a, false));
        } catch (e) {
          if (!(e instanceof DbgError)) throw e;
          stops.push(`task ${hex(a)} (pid ${info.pid}): ${e.message}`);
        }
        members.push({ id: a, state: info.state, frames });
      }
    } else {
      for (const th of t.threads()) members.push({ id: BigInt(th.index), state: th.state, frames: unwind(t, th.index) });
    }
    const name = (f: Frame) => symbolName(t, f.pc, f.level > 0 ? f.pc - 1n : f.pc) ?? hexAddr(f.pc);
    const groups = new Map<string, { first: bigint; state: string; count: number; lines: string[] }>();
    for (const m of members) {
      const lines = m.frames.map(name);
      if (typeof only === 'string' && !lines.some((l) => l === only || l.startsWith(`${only}+`))) continue;
      const key = lines.join('\n');
      const g = groups.get(key);
      if (g) g.count++;
      else groups.set(key, { first: m.id, state: m.state, count: 1, lines });
    }
    const sorted = [...groups.values()].sort((a, b) => b.count - a.count);
    const idName = linux ? 'TASK' : 'THREAD';
    if (out.jsonMode) out.json(sorted.map((g) => ({ [idName.toLowerCase()]: linux ? hexAddr(g.first) : Number(g.first), state: g.state, count: g.count, frames: g.lines })));
    else {
      const w = linux ? 18 : 6;
      out.line(`${idName.padEnd(w)} STATE COUNT`);
      for (const g of sorted) {
        out.line(`${(linux ? hexAddr(g.first) : String(g.first)).padEnd(w)} ${g.state.padEnd(5)} ${String(g.count).padStart(5)}`);
        for (const l of g.lines) out.line(`${' '.repeat(w)} ${l}`);
        out.line('');
      }
    }
    for (const m of stops) warn(out, m);
  },
};

const listHead: Dcmd = {
  name: 'list_head',
  usage: 'ADDR::list_head [-H] TYPE MEMBER',
  help:
    'the TYPE objects on the Linux list whose head (a list_head, or with -H an hlist_head) is at ADDR\n\n' +
    'MEMBER is the list_head (hlist_node) inside TYPE; the head itself is not listed. E.g.\n' +
    '`init_task+0x890::list_head task_struct tasks` or `modules::list_head module list`.',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'H' });
    if (inv.addr === undefined) throw errors.badInput(`::list_head needs the address of the head (usage: ${this.usage})`);
    if (rest.length < 2) throw errors.badInput(`::list_head needs a TYPE and a MEMBER (usage: ${this.usage})`);
    const t = kernelDump(s, 'Linux lists');
    const tasks = linuxTasks(t.linux);
    const member = rest[rest.length - 1]!;
    const words = rest.slice(0, -1).join(' ');
    const types = needObjects(t.linux, '::list_head').types;
    const type = types.find(words) ? words : types.find(`struct ${words}`) ? `struct ${words}` : undefined;
    if (!type) throw errors.notFound(`::list_head: unknown type "${words}"`);
    const stops: string[] = [];
    const found: bigint[] = [];
    for (const a of tasks.listHead(inv.addr, type, member, (m) => stops.push(m), flags.has('H'))) {
      if (out.piping && out.value) out.value(a);
      else if (out.jsonMode) found.push(a);
      else out.line(hex(a));
    }
    if (out.jsonMode) out.json(found.map((a) => hexAddr(a)));
    for (const m of stops) warn(out, m);
  },
};

const percpu: Dcmd = {
  name: 'percpu',
  usage: '::percpu SYM [CPU]',
  help:
    "each CPU's copy of the per-CPU variable SYM (__per_cpu_offset[cpu] + SYM's offset); with CPU,\n" +
    'that one only, as a value for pipes: `::percpu current_task 1 | ::print -a struct task_struct *`',
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    if (rest.length < 1 || rest.length > 2) throw errors.badInput(`::percpu needs a symbol and at most a CPU (usage: ${this.usage})`);
    const port = kernelDump(s, 'per-CPU variables').linux;
    const cpus = rest.length === 2 ? [Number(s.evaluate(rest[1]!))] : Array.from({ length: port.cpus }, (_, i) => i);
    const rows = cpus.map((cpu) => ({ cpu, addr: perCpuAddress(port, rest[0]!, cpu) }));
    if (out.piping && out.value) for (const r of rows) out.value(r.addr);
    else if (out.jsonMode) out.json(rows.map((r) => ({ cpu: r.cpu, addr: hexAddr(r.addr) })));
    else if (rest.length === 2) out.line(hexAddr(rows[0]!.addr));
    else for (const r of rows) out.line(`cpu ${r.cpu}: ${hexAddr(r.addr)}`);
    if (rows.length === 1) s.dot = rows[0]!.addr;
  },
};

const modules: Dcmd = {
  name: 'modules',
  usage: '::modules',
  help:
    'loaded Linux modules from the `modules` list: struct module address, name, core base and size, state,\n' +
    'and where their symbols come from (the .ko placed by --modules DIR or /lib/modules/RELEASE, the\n' +
    "module's own kallsyms, or none)",
  run(s, inv, out) {
    const { rest } = parseFlags(this.name, this.usage, inv.args, {});
    noExtra(this, rest);
    const t = kernelDump(s, 'listing modules');
    if (t.linux.symbol('modules') === undefined) throw errors.notFound(`${t.name}: the kernel has no modules list (built without CONFIG_MODULES?)`);
    const stops: string[] = [];
    t.symbols.loadDeferred(); // the modules' names, loaded on first use
    const from = (name: string) => {
      const m = t.symbols.modules.find((x) => x.name === name);
      return m?.path.endsWith('.ko') ? m.path : m && m.table.size > 0 ? 'kallsyms' : 'none';
    };
    const rows = [...linuxModules(t.linux, (m) => stops.push(m))].map((m) => {
      const core = m.ranges.find((r) => r.kind === 'core');
      return { addr: m.addr, name: m.name, base: core?.base ?? 0n, size: core?.size ?? 0n, state: m.state, symbols: from(m.name) };
    });
    if (out.piping && out.value) for (const r of rows) out.value(r.addr);
    else if (out.jsonMode) out.json(rows.map((r) => ({ addr: hexAddr(r.addr), name: r.name, base: hexAddr(r.base), size: Number(r.size), state: r.state, symbols: r.symbols })));
    else {
      out.line(`${'MODULE'.padEnd(18)} ${'NAME'.padEnd(20)} ${'BASE'.padEnd(18)} ${'SIZE'.padEnd(8)} ${'STATE'.padEnd(6)} SYMBOLS`);
      for (const r of rows) out.line(`${hexAddr(r.addr)} ${r.name.padEnd(20)} ${hexAddr(r.base)} ${hex(r.size).padEnd(8)} ${r.state.padEnd(6)} ${r.symbols}`);
    }
    for (const m of stops) warn(out, m);
  },
};

const dmesg: Dcmd = {
  name: 'dmesg',
  usage: '::dmesg [-n count] [-l levels]',
  help:
    "a Linux kernel's log, read from its printk ring buffer\n\n" +
    "Laid out by the dump's VMCOREINFO (kdump always has it; QEMU with -device vmcoreinfo and the\n" +
    "guest's qemu_fw_cfg driver) or, without it, by vmlinux's types (--symbols vmlinux). -l keeps the\n" +
    'records of these levels (emerg, alert, crit, err, warn, notice, info, debug or 0..7, comma\n' +
    'separated; needs vmlinux, which says where a record keeps its level); -n the last N records.',
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { strings: 'nl' });
    noExtra(this, rest);
    const t = kernelDump(s, 'the kernel log');
    const problems: string[] = [];
    const l = flags.get('l');
    let records = readPrintkLog(t.linux, (p) => problems.push(p), { levels: l !== undefined || out.jsonMode });
    if (l !== undefined) {
      const levels = new Set(
        String(l)
          .split(',')
          .map((w) => {
            const n = /^[0-7]$/.test(w) ? Number(w) : (LEVEL_NAMES as readonly string[]).indexOf(w);
            if (n < 0) throw errors.badInput(`::dmesg: -l takes levels ${LEVEL_NAMES.join(', ')} or 0..7, not "${w}"`);
            return n;
          }),
      );
      if (records.length > 0 && records[0]!.level === undefined) {
        throw errors.notFound(`::dmesg -l: the records' levels are not described by VMCOREINFO; open the dump with --symbols vmlinux`);
      }
      records = records.filter((r) => levels.has(r.level!));
    }
    const n = flags.get('n');
    if (n !== undefined) {
      const k = Number(n);
      if (!Number.isInteger(k) || k < 0) throw errors.badInput(`::dmesg: -n needs a record count, not "${String(n)}"`);
      records = records.slice(Math.max(0, records.length - k));
    }
    if (out.jsonMode) out.json(records.map((r) => ({ seq: Number(r.seq), tsNsec: r.tsNsec.toString(), level: r.level ?? null, text: r.text })));
    else for (const r of records) out.line(formatPrintk(r));
    for (const p of problems) warn(out, p);
  },
};

/** A walker over tasks: yields what it finds, then fails with where the list broke, if it did. */
function taskWalker(name: string, help: string, which: (tasks: LinuxTasks, onStop: (m: string) => void) => Iterable<bigint>): Walker {
  return {
    name,
    help,
    *walk(s) {
      const { tasks } = tasksOf(s, `the ${name} walker`);
      let stop: string | undefined;
      let n = 0;
      for (const a of which(tasks, (m) => (stop ??= m))) {
        n++;
        yield a;
      }
      if (stop) throw new DbgError('corrupt', `${stop} (${n} yielded)`);
    },
  };
}

export function linuxPort(s: SessionView): LinuxPort {
  return kernelDump(s, 'Linux').linux;
}

export const linuxModule: DcmdModule = {
  name: 'linux',
  dcmds: [ps, task, pid2task, stacks, listHead, percpu, modules, dmesg],
  walkers: [
    taskWalker('task', 'Linux processes: init_task, then init_task.tasks (task_struct addresses)', (t, stop) => t.processes(stop)),
    taskWalker('thread', 'every Linux thread: each process and its signal->thread_head', (t, stop) => t.all(stop)),
  ],
};
