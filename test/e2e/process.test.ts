/**
 * dbg run and dbg attach PID on real programs gcc builds here: breakpoints, stacks, registers,
 * threads, events, the core ::dump writes (read back by dbg open and by gdb), gdb through --gdb
 * compared with Debian's gdbserver, and the promise that a process is never left broken (dbg
 * killed mid-session leaves it running, untraced). Every bad input is one `dbg:` line.
 */

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { runDbg } from '../gdb-client/attach-helpers.js';
import { RspClient } from '../gdbserver/rsp-client.js';
import { parseRequest } from '../../src/gdbserver/commands/parse-request.js';
import { GdbClient } from '../../src/gdbserver/gdb-client.js';
import { serveGdb } from '../../src/gdbserver/gdb-server.js';
import type { StopReplyAhead, Target } from '../../src/targets/target.js';
import { ProcessTarget } from '../../src/targets/process/process-target.js';
import { skipReason } from '../helpers/debuggee.js';
import { debugRegisterTrapsMissing } from '../helpers/debug-registers.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const dir = mkdtempSync(join(tmpdir(), 'dbg-process-'));
const addonBuilt = existsSync(join(repoRoot, 'native', 'ptrace', 'build', 'Release', 'ptrace.node'));
const hasGcc = spawnSync('gcc', ['--version']).status === 0;
const hasGdb = spawnSync('gdb', ['--version']).status === 0 && spawnSync('gdbserver', ['--version']).status === 0;

const threadsSrc = `
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
struct point { int x; long y; };
volatile int counter;
struct point origin = {3, 4};
int add(int a, int b) { counter++; return a + b; }
void *worker(void *p) { for (int i = 0; i < 3; i++) add(i, 1); return p; }
int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  int r = add(2, 3);
  printf("r=%d counter=%d\\n", r, counter);
  return 7;
}
`;

const eventsSrc = `
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
int watched;
int main(void) {
  signal(SIGUSR1, on_usr1);
  close(open("/dev/null", O_RDONLY));
  raise(SIGUSR1);
  watched = 42;
  void *h = dlopen("libm.so.6", RTLD_NOW);
  double (*cosine)(double) = (double (*)(double))dlsym(h, "cos");
  volatile double one = cosine(0.0);
  pid_t c = fork();
  if (c == 0) _exit(3);
  waitpid(c, NULL, 0);
  printf("done %d\\n", h != NULL);
  return 0;
}
`;

const vforkSrc = `
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int hits;
long wide[8];
void mark(void) { hits++; }
int main(void) {
  mark();
  pid_t c = vfork();
  if (c == 0) { execl("/bin/true", "true", (char *)0); _exit(1); }
  waitpid(c, NULL, 0);
  mark();
  close(-1);
  printf("hits=%d\\n", hits);
  return 0;
}
`;

/** One thread that ends while the process goes on a while (its exit is reported on its own). */
const threadEndsSrc = `
#include <pthread.h>
#include <unistd.h>
void *worker(void *p) { return p; }
int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  pthread_join(t, NULL);
  usleep(300000);
  return 7;
}
`;

/** Writes wide[] once each; `other` is never written. */
const softWatchSrc = `
long other[4];
long wide[8];
int main(void) {
  for (int i = 0; i < 8; i++) wide[i] = i + 1;
  return 0;
}
`;

/** Runs forever with `n` threads; prints "ready" when they all exist. */
const sleeperSrc = `
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
volatile long ticks;
void *spin(void *p) { for (;;) { ticks++; usleep(1000); } return p; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 2;
  for (int i = 0; i < n; i++) { pthread_t t; pthread_create(&t, NULL, spin, NULL); }
  printf("ready\\n");
  fflush(stdout);
  for (;;) { ticks++; usleep(1000); }
}
`;

function build(name: string, src: string, extra: string[] = []): string {
  const c = join(dir, `${name}.c`);
  const exe = join(dir, name);
  writeFileSync(c, src);
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread', '-o', exe, c, ...extra]);
  return exe;
}

const dbgRun = runDbg;

const children: ChildProcess[] = [];
/** Starts `exe` and resolves once it printed "ready". */
function startSleeper(exe: string, threads: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(exe, [String(threads)], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(p);
    p.stdout!.on('data', (b: Buffer) => {
      if (b.toString().includes('ready')) resolve(p);
    });
    p.on('error', reject);
  });
}

function procStatus(pid: number): { state: string; tracer: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { state: /^State:\s*(\S)/m.exec(s)![1]!, tracer: Number(/^TracerPid:\s*(\d+)/m.exec(s)![1]) };
}

/**
 * `p` (a sleeper that dbg attached to with a breakpoint in usleep) runs on after dbg went: untraced,
 * not stopped, and alive a moment later (every thread calls usleep each millisecond: an int3 left
 * there would kill it with SIGTRAP).
 */
async function expectRunsOnUntraced(p: ChildProcess): Promise<void> {
  const st = procStatus(p.pid!);
  expect(st.tracer).toBe(0);
  expect(['S', 'R']).toContain(st.state);
  await new Promise((res) => setTimeout(res, 200));
  expect(p.exitCode).toBe(null);
  expect(p.signalCode).toBe(null);
}

function tgidOf(tid: number): number {
  return Number(/^Tgid:\s*(\d+)/m.exec(readFileSync(`/proc/${tid}/status`, 'utf8'))![1]);
}

const tickSrc = `
volatile unsigned long n;
void tick(void) { n++; }
int main(void) { for (;;) tick(); }
`;

let threadsExe = '';
let eventsExe = '';
let sleeperExe = '';
let vforkExe = '';
let threadEndsExe = '';
let softWatchExe = '';
let tickExe = '';

const suite = addonBuilt && hasGcc && process.platform === 'linux' && process.arch === 'x64' ? describe : describe.skip;

suite('dbg run / dbg attach PID', () => {
  beforeAll(() => {
    threadsExe = build('threads', threadsSrc);
    eventsExe = build('events', eventsSrc, ['-ldl']);
    sleeperExe = build('sleeper', sleeperSrc);
    vforkExe = build('vfork', vforkSrc);
    threadEndsExe = build('thread-ends', threadEndsSrc);
    softWatchExe = build('soft-watch', softWatchSrc);
    tickExe = build('tick', tickSrc);
  });
  afterEach(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a program to breakpoints in two threads, with stacks, registers, DWARF and its exit', async () => {
    const r = await dbgRun(['run', threadsExe, '-e', 'main::bp; :c; ::regs; 0xaabbccddeeff0011::setreg xmm1; 0x1fa0::setreg mxcsr; 0x1234::setreg r12; ::fpregs; <r12=K; add::bp; :c; ::stack; ::threads; origin::print; ::delete all; :c']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/stopped: breakpoint 1 at 0x[0-9a-f]+ main on thread 1/);
    expect(r.stdout).toMatch(/%fctrl\s+= 0x0000037f/);
    // Register writes: the XSAVE area (SSE) and the general registers, read back from the kernel.
    expect(r.stdout).toMatch(/%xmm1\s+= 0x0000000000000000aabbccddeeff0011/);
    expect(r.stdout).toMatch(/%mxcsr\s+= 0x00001fa0/);
    expect(r.stdout).toContain("r12 = 0x0000000000001234");
    expect(r.stdout).toMatch(/\n\s*1234\s*\n/);
    expect(r.stdout).toMatch(/stopped: breakpoint 2 at 0x[0-9a-f]+ add on thread 2/);
    expect(r.stdout).toMatch(/0x[0-9a-f]+ add\n0x[0-9a-f]+ worker\+0x[0-9a-f]+/);
    expect(r.stdout).toMatch(/\*\s+2\s+\d+ threads\s+stopped/);
    expect(r.stdout).toMatch(/x = 0x3\n\s+y = 0x4/);
    expect(r.stdout).toContain('r=5 counter=4');
    expect(r.stdout).toContain('stopped: the process exited with status 7');
    expect(r.code).toBe(0);
  });

  it('stops on syscalls with decoded arguments, signals, library loads and forks', async () => {
    const r = await dbgRun(['run', eventsExe, '-e', 'main::bp; :c; ::sysbp openat; ::catch fork; ::catch library; ::events; :c; :c; ::sysbp -d openat; :c; :c; :c; ::evlog']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('syscall openat (257): stops at entry');
    expect(r.stdout).toMatch(/stopped: syscall entry openat\(AT_FDCWD, "\/dev\/null", 0x0, 0x0\)/);
    expect(r.stdout).toMatch(/stopped: signal SIGUSR1 at/);
    expect(r.stdout).toMatch(/stopped: libraries loaded libm\.so\.6 at/);
    expect(r.stdout).toMatch(/stopped: fork: child process \d+ \(detached, runs on\)/);
    expect(r.stdout).toContain('stopped: the process exited with status 0');
    expect(r.stdout).toMatch(/library\s+tid \d+\s+\+libm\.so\.6/);
    expect(r.stdout).toMatch(/exit\s+tid \d+\s+status 0/);
  });

  it.skipIf(skipReason('the debug-register watchpoint test', debugRegisterTrapsMissing()))('a write watchpoint in a debug register stops after the write', async () => {
    const r = await dbgRun(['run', eventsExe, '-e', 'main::bp; :c; ::signal SIGUSR1 nostop; watched::wp -w -L 4; :c']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/stopped: watchpoint 2 \(write of 0x[0-9a-f]+\) at 0x[0-9a-f]+ main\+0x[0-9a-f]+/);
  });

  it('vfork with breakpoints in the shared memory, a syscall exit by number, a read watchpoint beyond the four debug registers', async () => {
    const r = await dbgRun(['run', vforkExe, '-e', 'mark::bp; :c; ::catch fork; :c; :c; ::sysbp -x 3; :c; ::sysbp -d close; wide::wp -w -L 8; wide+8::wp -w -L 8; wide+0t16::wp -r -L 0t24']);
    expect(r.stdout).toMatch(/stopped: vfork: child process \d+ \(detached, runs on\) at 0x[0-9a-f]+ vfork\+0x[0-9a-f]+ on thread 1/);
    expect(r.stdout.match(/stopped: breakpoint 1 at 0x[0-9a-f]+ mark on thread 1/g)?.length).toBe(2);
    expect(r.stdout).toContain('syscall close (3): stops at exit');
    expect(r.stdout).toMatch(/stopped: syscall exit close\(\) = -1 \(errno 9\) at/);
    expect(r.stderr).toMatch(/^dbg: watchpoint on 24 bytes at 0x[0-9a-f]+ needs 3 debug register\(s\), 2 of x86's 4 are free \(a read watchpoint cannot be emulated by single-stepping: a read leaves nothing to compare\): delete a watchpoint \(::events, ::delete\) or watch fewer, aligned bytes\n$/);
    expect(r.code).toBe(1);
  });

  it('a write watchpoint beyond the four debug registers is watched by single-stepping, and says so', async () => {
    const r = await dbgRun(['run', softWatchExe, '-e', 'main::bp; :c; other::wp -w -L 0t32; wide+0t32::wp -w -L 8; :c; wide+0t32/J; :c']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/3: watchpoint write 8 bytes at 0x[0-9a-f]+ wide\+0x20; hits 0\n\s+watched in software: x86's 4 debug registers are taken, so each :c single-steps the thread it continues and compares the 8 byte\(s\) after every instruction/);
    // Stopped just after the instruction that wrote wide[4] = 5, in main.
    expect(r.stdout).toMatch(/stopped: watchpoint 3 \(write of 0x[0-9a-f]+\) at 0x[0-9a-f]+ main\+0x[0-9a-f]+ on thread 1\nwide\+0x20:\s+5\s*\n/);
    expect(r.stdout).toContain('stopped: the process exited with status 0');
  });

  it('a breakpoint on a symbol of a library not loaded yet arms when dlopen loads it', async () => {
    const r = await dbgRun(['run', eventsExe, '-e', '::signal SIGUSR1 nostop; ::bp cos; :c; ::stack; ::events; ::evlog']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('1: breakpoint at cos (pending: no symbol file defines it yet); hits 0');
    // libm's cos is an IFUNC: the breakpoint waits on its resolver (which dlsym calls) and moves to
    // the function the resolver chose, where main's call through the pointer stops.
    const stop = /stopped: breakpoint 1 at (0x[0-9a-f]+) (?:\S+ )?on thread 1\n0x[0-9a-f]+ [^\n]*\n0x[0-9a-f]+ main\+0x[0-9a-f]+\n/.exec(r.stdout);
    expect(stop).not.toBeNull();
    const resolver = /1: breakpoint at (0x[0-9a-f]+) cos\w*; hits 1/.exec(r.stdout);
    expect(resolver).not.toBeNull();
    expect(BigInt(stop![1]!)).not.toBe(BigInt(resolver![1]!));
    expect(r.stdout).toMatch(/signal\s+tid \d+\s+SIGUSR1 passed/);
  });

  it("a user's breakpoint at the dynamic linker's r_brk (_dl_debug_state) stops, and the library events are still followed", async () => {
    const r = await dbgRun(['run', eventsExe, '-e', '::signal SIGUSR1 nostop; _dl_debug_state::bp; ::catch library; :c; :c; :c; :c; ::evlog']);
    expect(r.stderr).toBe('');
    // The user's breakpoint is the stop reported; libc arrives at the second hit, libm at dlopen's.
    expect(r.stdout.match(/stopped: breakpoint 1 at 0x[0-9a-f]+ _dl_debug_state on thread 1/g)?.length).toBe(4);
    expect(r.stdout).toMatch(/library\s+tid \d+\s+\+libc\.so\.6/);
    expect(r.stdout).toMatch(/library\s+tid \d+\s+\+libm\.so\.6/);
  });

  it('attaches to a GDB stub given as HOST:PORT (dbg attach 127.0.0.1:PORT), as before', async () => {
    if (!hasGdb) return;
    const server = spawn('gdbserver', ['--once', '127.0.0.1:0', threadsExe], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(server);
    const port = await new Promise<number>((res) => {
      let e = '';
      server.stderr!.on('data', (b: Buffer) => {
        e += b.toString();
        const m = /Listening on port (\d+)/.exec(e);
        if (m) res(Number(m[1]));
      });
    });
    const r = await dbgRun(['attach', `127.0.0.1:${port}`, '-e', '::threads']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/\*\s+1\s+\d+ /);
  });

  it('attaches to a running program with every thread, steps, and detaches: it runs on, untraced', async () => {
    const p = await startSleeper(sleeperExe, 4);
    const r = await dbgRun(['attach', String(p.pid), '-e', '::threads; :s; ::step over; ::detach']);
    expect(r.stderr).toBe('');
    expect(r.stdout.match(/ sleeper /g)?.length).toBe(5);
    expect(r.stdout).toContain(`detached from process ${p.pid}; it runs on`);
    const st = procStatus(p.pid!);
    expect(st.tracer).toBe(0);
    expect(st.state).not.toBe('t');
    expect(st.state).not.toBe('T');
  });

  it('leaves the process running, untraced and without breakpoints when dbg is killed mid-session (SIGTERM, SIGINT)', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const p = await startSleeper(sleeperExe, 2);
      const d = spawn(process.execPath, [dbg, 'attach', String(p.pid)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DBG_HISTORY: '/dev/null' } });
      children.push(d);
      let out = '';
      d.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      d.stdin!.write('usleep::bp\n');
      await new Promise<void>((res) => {
        const t = setInterval(() => {
          if (out.includes('breakpoint at')) {
            clearInterval(t);
            res();
          }
        }, 20);
      });
      // TracerPid names the tracing thread: the addon's tracer thread inside this dbg.
      expect(tgidOf(procStatus(p.pid!).tracer)).toBe(d.pid);
      const exited = new Promise<number | null>((res) => d.on('close', (c) => res(c)));
      d.kill(sig);
      await exited;
      await expectRunsOnUntraced(p);
    }
  });

  it('leaves the process running, untraced and without breakpoints when dbg dies of an internal error mid-session', async () => {
    // A dmod whose command throws outside any command (a bug the session cannot catch): dbg dies
    // of the uncaught exception, the way a bug in dbg's own asynchronous code would end it.
    const dmod = join(dir, 'crash.mjs');
    writeFileSync(dmod, `export default { name: 'crash', dcmds: [{ name: 'crash', usage: '::crash', help: 'throws later, outside any command', run() { setImmediate(() => { throw new TypeError('a bug outside any command'); }); } }] };\n`);
    const p = await startSleeper(sleeperExe, 2);
    const d = spawn(process.execPath, [dbg, 'attach', String(p.pid)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DBG_HISTORY: '/dev/null' } });
    children.push(d);
    let err = '';
    d.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((res) => d.on('close', (c) => res(c)));
    d.stdin!.write(`usleep::bp\n::load ${dmod}\n::crash\n`);
    const code = await exited;
    expect(err).toContain('TypeError: a bug outside any command');
    expect(code).not.toBe(0);
    await expectRunsOnUntraced(p);
  });

  it('Ctrl-C (SIGINT) while the program runs stops it, ends the script, and the program dbg started is not left behind', async () => {
    const d = spawn(process.execPath, [dbg, 'run', sleeperExe, '3', '-e', ':c; ::threads'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DBG_HISTORY: '/dev/null' } });
    children.push(d);
    let out = '';
    let err = '';
    d.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    d.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await new Promise<void>((res) => {
      const t = setInterval(() => {
        if (out.includes('ready')) {
          clearInterval(t);
          res();
        }
      }, 20);
    });
    // The program is a child of dbg's tracer thread (it forked it), not of dbg's main thread.
    const pid = readdirSync(`/proc/${d.pid}/task`)
      .flatMap((t) => readFileSync(`/proc/${d.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/))
      .map(Number)
      .find((n) => n > 0)!;
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('sleeper');
    const code = await new Promise<number | null>((res) => {
      d.on('close', (c) => res(c));
      d.kill('SIGINT');
    });
    expect(out).toMatch(/stopped: interrupted at 0x[0-9a-f]+ .* on thread \d+/);
    expect(err).toContain('dbg: interrupted: the rest of the line from "::threads" was not run');
    expect(code).toBe(130);
    expect(existsSync(`/proc/${pid}/status`) && procStatus(pid).state !== 'Z').toBe(false);
  });

  it('writes a core with ::dump that dbg open and gdb read with the same answers', async () => {
    const core = join(dir, 'threads.core');
    const r = await dbgRun(['run', threadsExe, '-e', `add::bp; :c; ::dump ${core}; <rip=K; ::stack`]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/wrote .*threads\.core \(a process core of 2 thread\(s\)/);
    const o = await dbgRun(['open', core, '-e', '::status; ::threads; ::stack']);
    expect(o.stderr).toBe('');
    expect(o.stdout).toMatch(/0x[0-9a-f]+ add\n0x[0-9a-f]+ worker\+0x[0-9a-f]+/);
    if (hasGdb) {
      const g = spawnSync('gdb', ['-batch', '-nx', '-ex', 'set debuginfod enabled off', '-ex', 'info threads', '-ex', 'bt 2', '-ex', 'p origin', threadsExe, core], { encoding: 'utf8' });
      expect(g.stdout).toMatch(/#0\s+add \(a=\d+, b=\d+\) at .*threads\.c:8/);
      expect(g.stdout).toMatch(/#1\s+0x[0-9a-f]+ in worker/);
      expect(g.stdout).toContain('$1 = {x = 3, y = 4}');
    }
  });

  describe('bad input: one line, dbg: …', () => {
    it('no such process', async () => {
      const r = await dbgRun(['attach', '999999999']);
      expect(r.stderr).toBe('dbg: attach 999999999: no such process\n');
      expect(r.code).toBe(1);
    });
    it('a program that does not exist, is not executable, is a directory', async () => {
      const plain = join(dir, 'plain.txt');
      writeFileSync(plain, 'not a program');
      chmodSync(plain, 0o644);
      expect((await dbgRun(['run', join(dir, 'nosuch')])).stderr).toBe(`dbg: cannot run "${join(dir, 'nosuch')}": no such file\n`);
      expect((await dbgRun(['run', plain])).stderr).toMatch(/^dbg: cannot run ".*plain\.txt": not executable \(chmod \+x, or give the interpreter: dbg run -- sh .*\)\n$/);
      expect((await dbgRun(['run', dir])).stderr).toBe(`dbg: cannot run "${dir}": it is a directory\n`);
      expect((await dbgRun(['run', 'no-such-program-dbg'])).stderr).toBe('dbg: cannot run "no-such-program-dbg": not found in PATH\n');
    });
    it('a non-executable format (execve refuses it)', async () => {
      const junk = join(dir, 'junk');
      writeFileSync(junk, Buffer.from([0, 1, 2, 3, 4, 5, 6, 7]));
      chmodSync(junk, 0o755);
      const r = await dbgRun(['run', junk]);
      expect(r.stderr).toBe(`dbg: cannot run "${junk}": Exec format error\n`);
    });
    it('bad flags and arguments', async () => {
      expect((await dbgRun(['attach', 'abc'])).stderr).toBe('dbg: dbg attach abc: expected a process id or [HOST:]PORT (e.g. 4242, 127.0.0.1:1234)\n');
      expect((await dbgRun(['attach', '1', '--symbols', 'x'])).stderr).toBe("dbg: --symbols is for a GDB stub: a process's symbols come from its own files (/proc/PID/maps)\n");
      expect((await dbgRun(['attach', '1', '--gdb', 'nope'])).stderr).toBe('dbg: --gdb nope: not a port number; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234\n');
      expect((await dbgRun(['attach'])).stderr).toBe('dbg: dbg attach needs a process id or a stub: dbg attach PID, dbg attach [HOST:]PORT\n');
      expect((await dbgRun(['run'])).stderr).toMatch(/^dbg: .*prog.*\n$/);
      expect((await dbgRun(['run', threadsExe, '-e', '::sysbp nosuchcall'])).stderr).toBe('dbg: ::sysbp: "nosuchcall" is not an x86-64 system call name (openat, write, clone3...) or number\n');
      expect((await dbgRun(['run', threadsExe, '-e', '::signal SIGFOO stop'])).stderr).toBe('dbg: ::signal: "SIGFOO" is not a signal (SIGUSR1, USR1, 10...)\n');
    });
    it('a process already traced: the message names the tracer, ptrace_scope and CAP_SYS_PTRACE', async () => {
      const p = await startSleeper(sleeperExe, 1);
      const first = spawn(process.execPath, [dbg, 'attach', String(p.pid)], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.push(first);
      await new Promise<void>((res) => first.stderr!.on('data', (b: Buffer) => b.toString().includes('attached') && res()));
      const r = await dbgRun(['attach', String(p.pid)]);
      expect(r.stderr).toMatch(new RegExp(`^dbg: attach ${p.pid}: ptrace refused \\(EPERM\\): it is already traced by process \\d+ \\(one tracer at a time: detach that debugger first\\)\\n$`));
      first.stdin!.end();
      await new Promise((res) => first.on('close', res));
      expect(procStatus(p.pid!).tracer).toBe(0);
    });
    it("another user's process without CAP_SYS_PTRACE", async () => {
      if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) return;
      // The checkout may sit where that user cannot read it (a 0700 temporary directory): then
      // there is nothing to run as them.
      const asNobody = (args: string[]) => spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...args], { encoding: 'utf8' });
      if (asNobody([process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(dbg)}, require('fs').constants.R_OK)`]).status !== 0) {
        console.warn(`skipped: user 65534 cannot read ${dbg}`);
        return;
      }
      const p = await startSleeper(sleeperExe, 1);
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, dbg, 'attach', String(p.pid)], { encoding: 'utf8', env: { ...process.env, DBG_HISTORY: '/dev/null', HOME: dir, XDG_DATA_HOME: dir, XDG_CACHE_HOME: dir, XDG_CONFIG_HOME: dir } });
      // Node may warn that it cannot write under this user's HOME: only dbg's line counts.
      const own = r.stderr.split('\n').filter((l) => l.startsWith('dbg:')).join('\n') + '\n';
      expect(own).toMatch(new RegExp(`^dbg: attach ${p.pid}: ptrace refused \\(EPERM\\): it belongs to uid 0;.*ptrace_scope.*CAP_SYS_PTRACE.*\\n$`));
    });
  });

  const gdbSuite = hasGdb ? it : it.skip;

  /** A server started as `cmd args`, and its port once it says `listening`. */
  async function startServer(cmd: string, args: string[], listening: RegExp): Promise<{ server: ChildProcess; port: number }> {
    const server = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(server);
    const port = await new Promise<number>((res, rej) => {
      let e = '';
      const t = setTimeout(() => rej(new Error(`${cmd} did not start: ${e}`)), 30_000);
      server.stderr!.on('data', (b: Buffer) => {
        e += b.toString();
        const m = listening.exec(e);
        if (m) {
          clearTimeout(t);
          res(Number(m[1]));
        }
      });
    });
    return { server, port };
  }

  const GDBSERVER = ['gdbserver', /Listening on port (\d+)/] as const;
  const DBG_SERVER = [process.execPath, /listening on 127\.0\.0\.1:(\d+)/] as const;
  const serverArgs = (which: 'gdbserver' | 'dbg', exe: string): string[] => (which === 'gdbserver' ? ['--once', '127.0.0.1:0', exe] : [dbg, 'run', '--gdb', '127.0.0.1:0', exe]);

  /** gdb's warnings in the sessions gdbAgainst ran (a server that gives the wrong pid makes gdb warn). */
  const gdbWarnings: string[] = [];

  /** What gdb prints for `script` against a server started by `serve` (its port from `listening`). */
  async function gdbAgainst(cmd: string, args: string[], listening: RegExp, exe: string, script: string[]): Promise<string> {
    const { server, port } = await startServer(cmd, args, listening);
    const r = spawnSync('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-iex', 'set sysroot /', '-iex', 'set confirm off', '-ex', `target remote 127.0.0.1:${port}`, ...script.flatMap((c) => ['-ex', c]), exe], { encoding: 'utf8', timeout: 60_000 });
    server.kill('SIGTERM');
    gdbWarnings.push(...r.stderr.split('\n').filter((l) => l.startsWith('warning:')));
    return r.stdout;
  }

  /** The lines both servers must agree on, with what differs between runs (addresses, ids) made equal. */
  function norm(s: string): string[] {
    return s
      .split('\n')
      .filter((l) => /^(#\d|\$1|Thread \d+ ".*" hit|Old value|New value|\[Inferior|\*? +\d+ +Thread|Catchpoint|Breakpoint \d,|Program received)/.test(l.trim()) || /libc\.so\.6|libm\.so\.6/.test(l))
      .filter((l) => !/detached\]|killed\]/.test(l))
      .map((l) => l.replace(/0x[0-9a-f]+/g, 'ADDR').replace(/Thread [\d.]+/g, 'Thread N').replace(/process \d+/g, 'process N').replace(/\s+/g, ' ').trim());
  }

  async function differential(exe: string, script: string[]): Promise<{ mine: string[]; theirs: string[] }> {
    gdbWarnings.length = 0;
    const theirs = norm(await gdbAgainst(GDBSERVER[0], serverArgs('gdbserver', exe), GDBSERVER[1], exe, script));
    const warned = gdbWarnings.splice(0);
    const mine = norm(await gdbAgainst(DBG_SERVER[0], serverArgs('dbg', exe), DBG_SERVER[1], exe, script));
    // gdb reads the process's /proc files through the server (vFile): with gdbserver it warns of nothing more.
    expect(gdbWarnings).toEqual(warned);
    return { mine, theirs };
  }

  gdbSuite("serves gdb (--gdb) with the same answers as Debian's gdbserver: breakpoint, backtrace, threads, watchpoint, libraries, exit", async () => {
    const { mine, theirs } = await differential(threadsExe, ['break add', 'continue', 'bt 2', 'info threads', 'p origin', 'info sharedlibrary', 'watch counter', 'continue', 'delete', 'continue']);
    expect(theirs.length).toBeGreaterThan(6);
    expect(mine).toEqual(theirs);
  });

  gdbSuite("gdb's catch vfork through --gdb matches gdbserver's: the parent's breakpoints work again after the child execs", async () => {
    const { mine, theirs } = await differential(vforkExe, ['break mark', 'catch vfork', 'continue', 'continue', 'continue', 'info threads', 'continue']);
    expect(theirs.some((l) => l.includes('vforked process'))).toBe(true);
    expect(theirs.filter((l) => l.includes('hit Breakpoint 1') || l.startsWith('Breakpoint 1,')).length).toBe(2);
    expect(mine).toEqual(theirs);
  });

  gdbSuite("gdb's catch syscall, catch fork, signals and dlopen through --gdb match gdbserver's", async () => {
    const { mine, theirs } = await differential(eventsExe, ['break main', 'continue', 'catch syscall openat close', 'continue', 'continue', 'continue', 'delete', 'continue', 'break fork', 'continue', 'info sharedlibrary', 'catch fork', 'continue', 'continue']);
    expect(theirs.some((l) => l.includes('forked process'))).toBe(true);
    expect(theirs.some((l) => l.includes('call to syscall openat'))).toBe(true);
    expect(theirs.some((l) => l.includes('returned from syscall openat'))).toBe(true);
    expect(theirs.some((l) => l.includes('SIGUSR1'))).toBe(true);
    expect(mine).toEqual(theirs);
  });

  /**
   * The stop replies a raw RSP client gets for `packets` (each sent after the previous reply; a
   * `D;CHILD` detaches the child the last vfork named), with pids and LWP ids named by order of
   * appearance (P the process, T1, T2... its other threads, C1... children) and registers dropped.
   */
  async function rspAgainst(which: 'gdbserver' | 'dbg', exe: string, packets: string[]): Promise<string[]> {
    const [cmd, listening] = which === 'gdbserver' ? GDBSERVER : DBG_SERVER;
    const { server, port } = await startServer(cmd, serverArgs(which, exe), listening);
    const c = await RspClient.open(port);
    const names = new Map<string, string>();
    let children = 0;
    let threads = 0;
    let child = '';
    const name = (id: string, isChild: boolean): string => {
      let n = names.get(id);
      if (n === undefined) names.set(id, (n = names.size === 0 ? 'P' : isChild ? `C${++children}` : `T${++threads}`));
      return n;
    };
    const out: string[] = [];
    try {
      await c.ask('qSupported:multiprocess+;swbreak+;fork-events+;vfork-events+');
      const first = await c.ask('?');
      name(/thread:p([0-9a-f]+)\./.exec(first)![1]!, false);
      for (const p of packets) {
        const reply = await c.ask(p === 'D;CHILD' ? `D;${child}` : p, []);
        const fork = /(?:^|;|T05)v?fork:p([0-9a-f]+)\./.exec(reply);
        if (fork) child = fork[1]!;
        out.push(
          `${p} -> ${reply
            .replace(/(v?fork:)p([0-9a-f]+)\.([0-9a-f]+)/g, (_, k: string, a: string) => `${k}${name(a, true)}`)
            .replace(/p([0-9a-f]+)\.([0-9a-f]+)/g, (_, a: string, b: string) => `${name(a, false)}.${name(b, false)}`)
            .replace(/process:([0-9a-f]+)/g, (_, a: string) => `process:${name(a, false)}`)
            .replace(/[0-9a-f]{2}:[0-9a-f]+;/g, '')
            .replace(/core:[0-9a-f]+;/g, '')}`,
        );
      }
    } finally {
      c.close();
      server.kill('SIGKILL');
    }
    return out;
  }

  it("a gdb client's fork, vfork and thread events end with it: the session's own catches come back", async () => {
    const t = ProcessTarget.run(threadsExe, []);
    try {
      const pc = t.caps.processControl!;
      pc.catchEvents({ exec: true });
      const before = pc.catches();
      const client = new GdbClient(t, undefined);
      await client.handle(parseRequest(Buffer.from('qSupported:multiprocess+;fork-events+;vfork-events+')));
      await client.handle(parseRequest(Buffer.from('QThreadEvents:1')));
      expect(pc.catches()).toEqual({ ...before, fork: true, vfork: true, vforkDone: true, threads: true });
      client.cleanup();
      expect(pc.catches()).toEqual(before);
    } finally {
      t.close();
    }
  });

  gdbSuite("thread and vfork events over RSP (QThreadEvents create/w, vfork/vforkdone) with the real pid and LWP ids, as Debian's gdbserver sends them", async () => {
    const threadPackets = ['QThreadEvents:1', 'vCont;c', 'vCont;c', 'vCont;c'];
    const theirs = await rspAgainst('gdbserver', threadEndsExe, threadPackets);
    const mine = await rspAgainst('dbg', threadEndsExe, threadPackets);
    // gdbserver 13.1 closes the connection when the thread ends (all-stop with QThreadEvents): the
    // thread's exit (w) and the process's (W) are checked against the protocol's documentation.
    expect(theirs.slice(0, 2)).toEqual(['QThreadEvents:1 -> OK', 'vCont;c -> T05create:;thread:P.T1;']);
    expect(mine).toEqual([...theirs.slice(0, 2), 'vCont;c -> w00;P.T1', 'vCont;c -> W07;process:P']);
    const vforkPackets = ['vCont;c', 'D;CHILD', 'vCont;c'];
    const vforks = await rspAgainst('gdbserver', vforkExe, vforkPackets);
    expect(vforks).toEqual(['vCont;c -> T05vfork:C1;thread:P.P;', 'D;CHILD -> OK', 'vCont;c -> T05vforkdone:;thread:P.P;']);
    expect(await rspAgainst('dbg', vforkExe, vforkPackets)).toEqual(vforks);
    // Libraries: gdbserver leaves them to gdb's own breakpoint in the dynamic linker; dbg's
    // `::catch library` stops are `library:` to gdb, which then reads qXfer:libraries-svr4 again.
    const libs = await rspAgainst('dbg', eventsExe, [`qRcmd,${Buffer.from('::catch library').toString('hex')}`, 'vCont;c']);
    expect(libs).toEqual(['qRcmd,3a3a6361746368206c696272617279 -> OK', 'vCont;c -> T05library:;thread:P.P;']);
  });
  /**
   * The replies a raw RSP client gets for `packets` from --gdb on a fresh run of `exe`, with the
   * tracer sending stop replies itself (StopReplyAhead) or not: the process's pid and LWP ids as
   * P and T, everything else (registers included: no address randomization) as sent. In
   * `packets`, $tid is the thread, $all all of them, $next the pc the first step reported. Also
   * the packets whose replies the tracer sent.
   */
  async function repliesOf(exe: string, ahead: boolean, packets: string[]): Promise<{ replies: string[]; sentAhead: string[] }> {
    const t = ProcessTarget.run(exe, []);
    const sentAhead: string[] = [];
    let packet = '';
    const real = t.caps.stopReplyAhead!;
    const counted: StopReplyAhead = {
      arm: (plan, serve) => real.arm(plan, serve),
      sent: () => {
        const s = real.sent();
        if (s) sentAhead.push(packet);
        return s;
      },
      served: () => real.served(),
    };
    const caps = { ...t.caps, stopReplyAhead: ahead ? counted : undefined };
    const served = new Proxy(t, { get: (o, k) => (k === 'caps' ? caps : Reflect.get(o, k)) }) as Target;
    const server = await serveGdb(served, undefined, { port: 0, log: () => undefined });
    const c = await RspClient.open(server.port);
    const replies: string[] = [];
    try {
      await c.ask('qSupported:multiprocess+;swbreak+');
      const ids = (r: string): string => r.replaceAll(`p${t.pid.toString(16)}.${t.pid.toString(16)}`, 'P.T').replaceAll(`p${t.pid.toString(16)}.`, 'P.');
      let next = '';
      for (const p of packets) {
        packet = p;
        const pid = t.pid.toString(16);
        const reply = await c.ask(p.replace('$next', next).replace('$tid', `p${pid}.${pid}`).replace('$all', `p${pid}.-1`));
        if (!next && p.startsWith('vCont;s')) next = BigInt(`0x${Buffer.from(/;10:([0-9a-f]{16});/.exec(reply)![1]!, 'hex').reverse().toString('hex')}`).toString(16);
        replies.push(`${p} -> ${ids(reply)}`);
      }
    } finally {
      c.close();
      await server.close();
      t.close();
    }
    return { replies, sentAhead };
  }

  it('stop replies the tracer sends itself are the ones the server renders: breakpoint hits, steps, a step onto and over a breakpointed instruction', async () => {
    const tick = (0x555555554000n + BigInt(`0x${/^([0-9a-f]+) T tick$/m.exec(execFileSync('nm', [tickExe], { encoding: 'utf8' }))![1]}`)).toString(16);
    const packets = [
      `Z0,${tick},1`,
      'vCont;c', // a hit
      'g',
      'vCont;s:$tid', // over the breakpoint it stopped at
      'vCont;c', // the next hit
      `Z0,$next,1`,
      'vCont;s:$tid;c:$all', // onto a breakpoint: a step, which does not run the int3
      'vCont;s:$tid', // over it, without having stopped for it
      'g',
      `z0,${tick},1`,
      'vCont;s:$tid',
      `z0,$next,1`,
      'm' + tick + ',8',
    ];
    const general = await repliesOf(tickExe, false, packets);
    const mine = await repliesOf(tickExe, true, packets);
    expect(general.sentAhead).toEqual([]);
    // Each resume stops at once, at a hit or the end of a step, and its reply goes ahead -- unless
    // it outlasts the JavaScript thread's wait (the first, loading libc; any, at a high load),
    // when it goes the general way: either way the replies are the same.
    const resumes = packets.filter((p) => p.startsWith('vCont'));
    expect(mine.sentAhead.length).toBeGreaterThanOrEqual(resumes.length / 2);
    expect(mine.sentAhead.every((p) => resumes.includes(p))).toBe(true);
    expect(mine.replies).toEqual(general.replies);
    expect(mine.replies.filter((r) => r.includes('swbreak')).length).toBe(2);
    expect(mine.replies.every((r) => !r.endsWith('-> ') && !r.includes('-> E'))).toBe(true);
  });

  /**
   * The replies a client in another process gets for `packets` (after QStartNoAckMode) from the
   * server in this one on a fresh run of `exe`, with the target sending stop replies and answering
   * the requests after them itself (ServedRequests), or neither; and how many it answered. The
   * client must be another process: the tracer answers while this one's JavaScript thread waits.
   */
  async function servedReplies(exe: string, serve: boolean, packets: (pid: string) => string[]): Promise<{ replies: string[]; served: number }> {
    const t = ProcessTarget.run(exe, []);
    const real = t.caps.stopReplyAhead!;
    let served = 0;
    const counted: StopReplyAhead = {
      arm: (plan, requests) => real.arm(plan, requests),
      sent: () => real.sent(),
      served: () => {
        const s = real.served();
        served += s?.requests ?? 0;
        return s;
      },
    };
    const caps = { ...t.caps, stopReplyAhead: serve ? counted : undefined };
    const target = new Proxy(t, { get: (o, k) => (k === 'caps' ? caps : Reflect.get(o, k)) }) as Target;
    const server = await serveGdb(target, undefined, { port: 0, log: () => undefined });
    const pid = t.pid.toString(16);
    // A bare RSP client: each packet framed, the next sent once its reply is in.
    const client = `
      const s = require('net').connect(${server.port}, '127.0.0.1', () => { s.setNoDelay(true); next(); });
      const packets = ${JSON.stringify(['qSupported:multiprocess+;swbreak+', 'QStartNoAckMode', ...packets(pid)])};
      const replies = [];
      let buf = '', noAck = false;
      const next = () => {
        if (replies.length === packets.length) { console.log(JSON.stringify(replies)); s.destroy(); return; }
        const p = packets[replies.length];
        let sum = 0;
        for (const c of Buffer.from(p, 'latin1')) sum = (sum + c) & 255;
        s.write('$' + p + '#' + sum.toString(16).padStart(2, '0'));
      };
      s.on('data', (d) => {
        buf += d.toString('latin1');
        for (let m; (m = /^\\+*\\$([^#]*)#[0-9a-f]{2}/.exec(buf)); ) {
          buf = buf.slice(m[0].length);
          if (!noAck) s.write('+');
          if (replies.length === 1) noAck = true;
          replies.push(m[1]);
          next();
        }
      });`;
    try {
      const out = await new Promise<string>((res, rej) => {
        const child = spawn(process.execPath, ['-e', client], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let text = '';
        let err = '';
        child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.on('exit', (code) => (code === 0 ? res(text) : rej(new Error(`the RSP client exited ${code}: ${err}`))));
      });
      const all = JSON.parse(out) as string[];
      const ids = (r: string): string => r.replaceAll(`p${pid}.${pid}`, 'P.T');
      return { replies: all.slice(2).map((r, i) => `${packets(pid)[i]!.replaceAll(`p${pid}.${pid}`, 'P.T').replaceAll(`p${pid}.`, 'P.')} -> ${ids(r)}`), served };
    } finally {
      await server.close();
      t.close();
    }
  }

  it('requests the tracer answers itself after a stop it sent (m, Z0/z0, qXfer:threads, vCont) get the replies the server gives, and leave the same state', async () => {
    const base = 0x555555554000n + BigInt(`0x${/^([0-9a-f]+) T tick$/m.exec(execFileSync('nm', [tickExe], { encoding: 'utf8' }))![1]}`);
    const tick = base.toString(16);
    const body = (base + 4n).toString(16); // after the prologue, where gdb's `break tick` goes
    // gdb's own order at a breakpoint hit and a stepi, then what is left to the server: a packet
    // the tracer does not answer (g), a read it cannot finish, a resume in another form.
    const packets = (pid: string): string[] => {
      const tid = `p${pid}.${pid}`;
      return [
        `Z0,${tick},1`,
        `vCont;c:p${pid}.-1`, // a hit: the tracer answers from here on
        'qXfer:threads:read::0,1000',
        `m${tick},8`,
        `z0,${tick},1`,
        `vCont;s:${tid}`, // over the point parked at the pc
        `Z0,${tick},1`,
        `vCont;c:p${pid}.-1`,
        'qXfer:threads:read::0,10', // a piece: 'm'
        'qXfer:threads:read::10,1000',
        `z0,${tick},1`,
        `Z0,${tick},1`,
        `vCont;s:${tid};c:p${pid}.-1`,
        `m${tick},8`,
        `vCont;s:${tid}`,
        `z0,${tick},1`, // parked by the tracer, then carried out by the server at its next resume
        'g',
        `Z0,${body},1`,
        'vCont;c', // stops in tick's body, not at the point taken out
        `mffffffffffffff00,8`, // unreadable: the server's E0e
        `m${body},4`,
        `z0,${body},1`,
        `vCont;s:${tid}`,
      ];
    };
    const general = await servedReplies(tickExe, false, packets);
    const mine = await servedReplies(tickExe, true, packets);
    expect(general.served).toBe(0);
    // Each run is answered in C only while the client's next request comes within the tracer's
    // wait (ptrace.c's SERVE_WAIT_MS): nearly always from another process, not at any load.
    expect(mine.served).toBeGreaterThan(0);
    expect(mine.replies).toEqual(general.replies);
    expect(mine.replies.filter((r) => r.includes('swbreak')).length).toBe(3);
    expect(mine.replies.filter((r) => r.includes('<thread id="P.T" core="0" name="tick">')).length).toBe(2);
    expect(mine.replies.filter((r) => r.endsWith('-> E0e')).length).toBe(1);
  });
});
