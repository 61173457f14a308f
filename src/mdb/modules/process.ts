/**
 * A live process's own dcmds (the `processControl` capability: dbg run, dbg attach PID).
 *
 *   ::sysbp [-x|-e] NAME|NUMBER...   stop at a system call's entry (default), exit (-x) or both (-e -x)
 *   ::sysbp -d NAME|NUMBER...        stop no longer
 *   ::signal SIG stop|nostop|pass|nopass|ignore   what a signal does (gdb's handle); no args: the policies changed
 *   ::catch fork|exec|thread|library [off]        stop on those events (they are logged either way)
 *   ::evlog                          the events so far: threads, libraries, exec, fork, signals, syscalls, exit
 *   ::detach                         breakpoints out, the process runs on; dbg's session ends with it
 *   ::kill                           end the process
 *
 * ::events lists the syscall catches, signal policies and event catches after the breakpoints.
 */

import { errors } from '../../common/errors.js';
import { hexAddr } from '../../common/format.js';
import { need, type ProcessControl, type StopReason } from '../../targets/target.js';
import { signalName } from '../../targets/elfcore/core-notes.js';
import type { Dcmd, DcmdModule } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';

const SIGNALS = [...Array(65).keys()].slice(1).map((n) => signalName(n));

function signalNumber(word: string): number {
  const w = word.toUpperCase();
  if (/^\d+$/.test(w) && Number(w) >= 1 && Number(w) <= 64) return Number(w);
  const i = SIGNALS.indexOf(w.startsWith('SIG') ? w : `SIG${w}`);
  if (i < 0) throw errors.badInput(`::signal: "${word}" is not a signal (SIGUSR1, USR1, 10...)`);
  return i + 1;
}

function syscallNumber(pc: ProcessControl, word: string): number {
  if (/^\d+$/.test(word)) return Number(word);
  const n = pc.syscallNumber(word);
  if (n === undefined) throw errors.badInput(`::sysbp: "${word}" is not an x86-64 system call name (openat, write, clone3...) or number`);
  return n;
}

/** Arguments of the common calls, decoded: pointers to strings read from the process. */
const SIGNATURES: Record<string, string> = {
  read: 'fd,ptr,n', write: 'fd,ptr,n', openat: 'dirfd,str,oflags,mode', open: 'str,oflags,mode', close: 'fd', mmap: 'ptr,n,prot,flags,fd,n',
  munmap: 'ptr,n', mprotect: 'ptr,n,prot', brk: 'ptr', execve: 'str,ptr,ptr', exit: 'n', exit_group: 'n', kill: 'n,sig', tgkill: 'n,n,sig',
  nanosleep: 'ptr,ptr', clock_nanosleep: 'n,n,ptr,ptr', clone: 'flags,ptr,ptr,ptr,n', clone3: 'ptr,n', getpid: '', gettid: '', fstat: 'fd,ptr',
  newfstatat: 'dirfd,str,ptr,flags', access: 'str,n', unlink: 'str', unlinkat: 'dirfd,str,flags', chdir: 'str', mkdir: 'str,mode', rt_sigaction: 'sig,ptr,ptr,n',
  socket: 'n,n,n', connect: 'fd,ptr,n', pipe2: 'ptr,oflags', dup2: 'fd,fd', lseek: 'fd,n,n', ioctl: 'fd,ptr,ptr', wait4: 'n,ptr,n,ptr',
};

export function decodeSyscall(t: { readVirtual(a: bigint, n: number): Buffer }, r: Extract<StopReason, { kind: 'syscall' }>): string {
  if (!r.entry) {
    const v = r.rval ?? 0n;
    return `${r.name}() = ${v < 0n && v > -4096n ? `-1 (errno ${-v})` : v < 0n ? v.toString() : `0x${v.toString(16)}`}`;
  }
  const args = r.args ?? [];
  const sig = SIGNATURES[r.name];
  const kinds = sig === undefined ? ['n', 'n', 'n', 'n', 'n', 'n'] : sig === '' ? [] : sig.split(',');
  const shown = kinds.map((k, i) => {
    const v = args[i] ?? 0n;
    if (k === 'str') {
      try {
        const b = readString(t, v);
        const end = b.indexOf(0);
        return JSON.stringify(b.toString('utf8', 0, end < 0 ? 256 : end));
      } catch {
        return hexAddr(v);
      }
    }
    if (k === 'fd' || k === 'dirfd') return v === 0xffffff9cn ? 'AT_FDCWD' : BigInt.asIntN(32, v).toString();
    if (k === 'sig') return signalName(Number(v));
    if (k === 'ptr') return v === 0n ? 'NULL' : `0x${v.toString(16)}`;
    return `0x${v.toString(16)}`;
  });
  return `${r.name}(${shown.join(', ')})`;
}

const sysbp: Dcmd = {
  name: 'sysbp',
  usage: '::sysbp [-x] [-e] [-d] NAME|NUMBER...',
  help: 'stop when the process enters (default, or -e) and/or leaves (-x) a system call, with its arguments decoded; -d: stop no longer',
  needs: ['processControl'],
  run(s, inv, out) {
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'xed' });
    const pc = need(s.target, 'processControl');
    if (rest.length === 0) throw errors.badInput(`::sysbp needs a system call name or number (usage: ${this.usage})`);
    const exit = flags.has('x');
    const entry = flags.has('e') || !exit;
    for (const w of rest) {
      const nr = syscallNumber(pc, w);
      const name = pc.syscallName(nr) ?? `syscall ${nr}`;
      if (flags.has('d')) pc.catchSyscall(nr, false, false);
      else pc.catchSyscall(nr, entry, exit);
      if (out.jsonMode) out.json({ syscall: name, nr, entry: !flags.has('d') && entry, exit: !flags.has('d') && exit });
      else out.line(flags.has('d') ? `syscall ${name} (${nr}): no longer stops` : `syscall ${name} (${nr}): stops at ${entry && exit ? 'entry and exit' : entry ? 'entry' : 'exit'}`);
    }
  },
};

const signal: Dcmd = {
  name: 'signal',
  usage: '::signal [SIG stop|nostop|pass|nopass|ignore...]',
  help: "what a signal does when the process gets it (gdb's handle): stop (and report it) or not, pass it to the program or not; no arguments: the signals whose policy was changed",
  needs: ['processControl'],
  run(s, inv, out) {
    const pc = need(s.target, 'processControl');
    if (inv.args.length === 0) {
      const rows = [...pc.signalPolicies()].map(([n, p]) => ({ signal: signalName(n), ...p }));
      if (out.jsonMode) out.json(rows);
      else if (rows.length === 0) out.line('every signal stops and is passed, except SIGALRM, SIGURG, SIGCHLD, SIGWINCH, SIGPROF, SIGVTALRM, SIGIO (passed without stopping)');
      else for (const r of rows) out.line(`${r.signal}: ${r.stop ? 'stop' : 'nostop'} ${r.pass ? 'pass' : 'nopass'}`);
      return;
    }
    const sig = signalNumber(inv.args[0]!);
    const cur = pc.signalPolicies().get(sig) ?? { stop: ![14, 23, 17, 28, 27, 26, 29].includes(sig), pass: true };
    let { stop, pass } = cur;
    if (inv.args.length === 1) throw errors.badInput(`::signal ${inv.args[0]}: say what it does: stop, nostop, pass, nopass or ignore (usage: ${this.usage})`);
    for (const w of inv.args.slice(1)) {
      if (w === 'stop') stop = true;
      else if (w === 'nostop') stop = false;
      else if (w === 'pass' || w === 'noignore') pass = true;
      else if (w === 'nopass' || w === 'ignore') pass = false;
      else throw errors.badInput(`::signal: "${w}" is not stop, nostop, pass, nopass or ignore (usage: ${this.usage})`);
    }
    pc.signalPolicy(sig, stop, pass);
    if (out.jsonMode) out.json({ signal: signalName(sig), stop, pass });
    else out.line(`${signalName(sig)}: ${stop ? 'stop' : 'nostop'} ${pass ? 'pass' : 'nopass'}`);
  },
};

const catchEv: Dcmd = {
  name: 'catch',
  usage: '::catch fork|exec|thread|library [off]',
  help: 'stop when the process forks (the child is detached and runs on), execs, creates or ends a thread, or loads or unloads a library; off: no longer (::evlog lists them either way)',
  needs: ['processControl'],
  run(s, inv, out) {
    const pc = need(s.target, 'processControl');
    const what = inv.args[0];
    const off = inv.args[1] === 'off';
    if (inv.args[1] !== undefined && !off) throw errors.badInput(`::catch: "${inv.args[1]}" is not "off" (usage: ${this.usage})`);
    const key = { fork: 'fork', vfork: 'fork', exec: 'exec', thread: 'threads', threads: 'threads', library: 'libraries', load: 'libraries' }[what ?? ''] as 'fork' | 'exec' | 'threads' | 'libraries' | undefined;
    if (!key) throw errors.badInput(`::catch ${what ?? ''}: expected fork, exec, thread or library (usage: ${this.usage})`.replace('  ', ' '));
    pc.catchEvents(key === 'fork' ? { fork: !off, vfork: !off } : { [key]: !off });
    if (out.jsonMode) out.json(pc.catches());
    else out.line(`${key === 'threads' ? 'thread' : key === 'libraries' ? 'library' : key} events: ${off ? 'logged only' : 'stop'}`);
  },
};

const evlog: Dcmd = {
  name: 'evlog',
  usage: '::evlog',
  help: 'the events of the live process so far, oldest first (the last 1000): threads created and exited, libraries, exec, fork, signals passed, syscalls caught, exit',
  needs: ['processControl'],
  run(s, _inv, out) {
    const list = need(s.target, 'processControl').events();
    if (out.jsonMode) out.json(list);
    else if (list.length === 0) out.line('no events yet');
    else for (const e of list) out.line(`${String(e.seq).padStart(4)} ${e.kind.padEnd(15)} tid ${String(e.tid).padEnd(7)} ${e.detail}`);
  },
};

const detach: Dcmd = {
  name: 'detach',
  usage: '::detach',
  help: 'take every breakpoint and watchpoint out and let the process run on; the session then has no process',
  needs: ['processControl'],
  run(s, _inv, out) {
    const pc = need(s.target, 'processControl');
    pc.detach();
    if (out.jsonMode) out.json({ detached: pc.pid });
    else out.line(`detached from process ${pc.pid}; it runs on`);
  },
};

const kill: Dcmd = {
  name: 'kill',
  usage: '::kill',
  help: 'end the process (SIGKILL)',
  needs: ['processControl'],
  run(s, _inv, out) {
    const pc = need(s.target, 'processControl');
    pc.kill();
    if (out.jsonMode) out.json({ killed: pc.pid });
    else out.line(`killed process ${pc.pid}`);
  },
};

/** The lines ::events adds for a live process. */
export function processEventLines(pc: ProcessControl): string[] {
  const lines: string[] = [];
  for (const [nr, c] of pc.syscallCatches()) lines.push(`syscall ${pc.syscallName(nr) ?? nr} (${nr}): stops at ${c.entry && c.exit ? 'entry and exit' : c.entry ? 'entry' : 'exit'}`);
  const c = pc.catches();
  for (const [k, on] of Object.entries(c)) if (on && !(k === 'vfork' && c.fork)) lines.push(`catch ${k}`);
  for (const [n, p] of pc.signalPolicies()) lines.push(`signal ${signalName(n)}: ${p.stop ? 'stop' : 'nostop'} ${p.pass ? 'pass' : 'nopass'}`);
  return lines;
}

export const processModule: DcmdModule = { name: 'process', dcmds: [sysbp, signal, catchEv, evlog, detach, kill] };

/** Up to 256 bytes at `v`, fewer where the mapping ends (a short string near a page end). */
function readString(t: { readVirtual(a: bigint, n: number): Buffer }, v: bigint): Buffer {
  const toPage = Number(0x1000n - (v & 0xfffn));
  try {
    return t.readVirtual(v, 256);
  } catch {
    return t.readVirtual(v, Math.min(256, toPage));
  }
}
