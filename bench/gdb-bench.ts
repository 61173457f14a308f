/**
 * What the GDB server benchmarks share: a `gdb -batch` run timed whole or by a section it times
 * itself (gdb's Python clock), servers started as processes and stopped, medians.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

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
      if (code !== 0 || /Remote connection closed|Could not|failed|timed out/i.test(err)) rej(new Error(`gdb failed (${code}): ${err}`));
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

/** QEMU (qemu-system-x86_64 -kernel KERNEL) stopped at its first instruction, its stub on a fresh port. */
export async function startQemu(kernel: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('qemu-system-x86_64', ['-kernel', kernel, '-display', 'none', '-nodefaults', '-m', '64', '-S', '-gdb', `tcp:127.0.0.1:${port}`], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const listening = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(true));
      s.listen(port, '127.0.0.1', () => s.close(() => res(false)));
    });
    if (listening) return { child, port };
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('QEMU did not open its gdbstub');
}
