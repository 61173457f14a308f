/**
 * What the GDB server benchmarks share: a `gdb -batch` run timed whole or by a section it times
 * itself (gdb's Python clock), a gdb kept connected and driven block by block (SteppingGdb),
 * servers started as processes and stopped, their CPU time, medians.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export function gdbArgs(port: number, file: string | undefined, cmds: string[]): string[] {
  return [
    '-nx', '-batch',
    '-iex', 'set debug-file-directory /nonexistent',
    '-iex', 'set sysroot /',
    '-iex', 'set pagination off',
    ...(file ? [file] : []),
    '-ex', `target remote 127.0.0.1:${port}`,
    ...cmds.flatMap((c) => ['-ex', c]),
  ];
}

/** What gdb prints on standard error when a command of a batch run did not do its part. */
const SETUP_FAILED = /Remote connection closed|Could not|failed|timed out/i;

/**
 * Wall seconds of one `gdb -batch` run. Asynchronous on purpose: the servers' output pipes must
 * keep draining while gdb runs, or a chatty server blocks on a full pipe.
 */
export function timeGdb(port: number, file: string | undefined, cmds: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn('gdb', gdbArgs(port, file, cmds), { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  return new Promise((res, rej) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      // A timed section (see timed()) reports its own seconds; otherwise the whole gdb run counts.
      const m = /^TIMED (\d+\.\d+)$/m.exec(out);
      if (code !== 0 || SETUP_FAILED.test(err)) rej(new Error(`gdb failed (${code}): ${err}`));
      else res(m ? Number(m[1]) : wall);
    });
  });
}

/** gdb commands that time `cmd` alone with gdb's Python (setting up to get there is not counted). */
export function timed(cmd: string): string[] {
  return ['python import time; t0 = time.monotonic()', cmd, 'python print("TIMED %.6f" % (time.monotonic() - t0))'];
}

/** Start a server process and wait for the port it prints (`pattern` captures it). */
export function startServer(cmd: string, args: string[], pattern: RegExp): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  return new Promise((resolvePort, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd} did not start: ${text}`)), 60_000);
    const onData = (d: Buffer): void => {
      text += d.toString();
      const m = pattern.exec(text);
      if (m) {
        clearTimeout(t);
        resolvePort({ child, port: Number(m[1]) });
      }
    };
    // Keep reading after the port is known: a full pipe would block the server.
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${cmd} exited (${code}): ${text}`)));
  });
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}


export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * QEMU (qemu-system-x86_64 -kernel KERNEL) stopped at its first instruction, its stub on a fresh
 * port. Waits up to 30 s for the stub to listen: a QEMU started beside other busy processes took
 * over the 5 s this waited before (as test/helpers/i386-guest.ts's qemuGdbstub found).
 */
export async function startQemu(kernel: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('qemu-system-x86_64', ['-kernel', kernel, '-display', 'none', '-nodefaults', '-m', '64', '-S', '-gdb', `tcp:127.0.0.1:${port}`], { stdio: 'ignore' });
  let exited = false;
  child.once('exit', () => (exited = true));
  for (let i = 0; ; i++) {
    const listening = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(true));
      s.listen(port, '127.0.0.1', () => s.close(() => res(false)));
    });
    if (listening) return { child, port };
    if (exited || i >= 600) {
      child.kill('SIGKILL');
      throw new Error(`QEMU ${exited ? 'exited before its gdbstub listened' : 'did not open its gdbstub in 30 s'} (port ${port})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** CPU time a process has used so far, from the kernel's scheduler statistics (ns resolution). */
export interface ProcessCpu {
  /** Its main thread's (the thread whose id is the pid: Node's event loop, QEMU's I/O thread). */
  readonly mainNs: number;
  /** All its threads' (V8's compiler and GC workers, QEMU's vCPU thread). */
  readonly allNs: number;
}

/**
 * `pid`'s CPU time as /proc/PID/task/TID/schedstat counts it (the first field: ns on the CPU).
 * Threads that ended since the last read no longer count: fine for servers whose threads live
 * as long as they do.
 */
export function processCpu(pid: number): ProcessCpu {
  let mainNs = 0;
  let allNs = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ns: number;
    try {
      ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
    } catch {
      continue; // the thread ended meanwhile
    }
    allNs += ns;
    if (Number(tid) === pid) mainNs = ns;
  }
  return { mainNs, allNs };
}

/**
 * Resolves once none of `pids` has used more than a twentieth of a CPU over 5 ms (or after
 * `capMs`): what a server still does after its last reply (V8 finishing a compile on its worker
 * threads) must not land in another server's timed steps.
 */
export async function quiet(pids: readonly number[], capMs = 300): Promise<void> {
  const total = () => pids.reduce((sum, pid) => sum + processCpu(pid).allNs, 0);
  const t0 = performance.now();
  let before = total();
  while (performance.now() - t0 < capMs) {
    await new Promise((r) => setTimeout(r, 5));
    const now = total();
    if (now - before < 250_000) return;
    before = now;
  }
}

/**
 * The Python a SteppingGdb runs: on fd 3 (a socket to the bench) it reads lines "N COMMAND",
 * runs COMMAND N times one gdb command at a time (gdb.execute, as a user types them: each reads
 * the registers and the frame it stops in, as `stepi` at the prompt does), and writes back the
 * seconds that took on gdb's clock; "quit" or the socket's end returns to gdb, which exits.
 */
const STEPPER_PY = `import os, time
def _dbg_bench_serve(fd=3):
    buf = b''
    while True:
        while b'\\n' not in buf:
            got = os.read(fd, 4096)
            if not got:
                return
            buf += got
        line, buf = buf.split(b'\\n', 1)
        words = line.decode().split(' ', 1)
        if words[0] == 'quit':
            return
        n, cmd = int(words[0]), words[1]
        t0 = time.monotonic()
        for _ in range(n):
            gdb.execute(cmd, to_string=True)
        os.write(fd, ('%.9f\\n' % (time.monotonic() - t0)).encode())
_dbg_bench_serve()
`;

/**
 * A `gdb -batch` connected to a server, stopped where `setup` left it, that runs blocks of the same
 * command when asked (block()) and exits at close(). Several kept side by side let a bench take
 * their blocks in turns, so that whatever else the machine does meanwhile falls on all alike.
 */
export class SteppingGdb {
  private readonly link: Socket;
  private received = '';
  private waiting?: { resolve: (line: string) => void; reject: (e: Error) => void };
  private err = '';
  private gone?: Error;

  private constructor(private readonly child: ChildProcess) {
    this.link = child.stdio[3] as Socket;
    child.stdout!.on('data', () => undefined);
    child.stderr!.on('data', (d: Buffer) => (this.err += d.toString()));
    this.link.on('data', (d: Buffer) => {
      this.received += d.toString('latin1');
      const nl = this.received.indexOf('\n');
      if (nl < 0) return;
      const line = this.received.slice(0, nl);
      this.received = this.received.slice(nl + 1);
      const w = this.waiting;
      this.waiting = undefined;
      w?.resolve(line);
    });
    this.link.on('error', () => undefined);
    child.on('exit', (code) => {
      this.gone = new Error(`gdb exited (${code}): ${this.err.slice(-2000)}`);
      this.waiting?.reject(this.gone);
      this.waiting = undefined;
    });
  }

  /**
   * gdb on `port` with `file`'s symbols, after `setup` (commands run once, untimed), ready for
   * blocks. `work` is a directory for the driver script.
   */
  static async start(port: number, file: string, setup: string[], work: string): Promise<SteppingGdb> {
    const script = join(work, 'stepping-gdb.py');
    writeFileSync(script, STEPPER_PY);
    const child = spawn('gdb', gdbArgs(port, file, [...setup, `source ${script}`]), { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const g = new SteppingGdb(child);
    await g.block(0, 'stepi'); // setup done, the driver answers
    if (SETUP_FAILED.test(g.err)) {
      await g.close();
      throw new Error(`gdb's setup failed: ${g.err.slice(-2000)}`);
    }
    return g;
  }

  /** Seconds (gdb's clock) of `n` commands `cmd`, one gdb command each. */
  block(n: number, cmd: string): Promise<number> {
    if (this.gone) return Promise.reject(this.gone);
    return new Promise<string>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.link.write(`${n} ${cmd}\n`);
    }).then((line) => {
      const secs = Number(line);
      if (!Number.isFinite(secs)) throw new Error(`gdb's driver answered "${line}": ${this.err.slice(-2000)}`);
      return secs;
    });
  }

  async close(): Promise<void> {
    if (this.gone) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.link.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
