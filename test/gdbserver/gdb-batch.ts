/** Drive the real gdb in batch mode against a dbg GDB server, with answers fixed across machines. */

import { execFile } from 'node:child_process';

export interface GdbRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

/** `gdb -batch` with each command as an -ex; `file` is loaded first when given. */
export function gdbBatch(
  port: number,
  commands: readonly string[],
  opts: {
    file?: string;
    timeoutMs?: number;
    /**
     * Send gdb SIGINT (Ctrl-C) once this says so (looked at every 20 ms): a condition on the
     * served target (the guest has run), not a time, which a loaded machine would make too early.
     */
    interruptWhen?: () => boolean;
    /** The gdb to run: `gdb` unless told (gdb-multiarch). */
    gdb?: string;
  } = {},
): Promise<GdbRun> {
  const args = [
    '-nx',
    '-batch',
    '-iex', 'set debug-file-directory /nonexistent',
    '-iex', 'set sysroot /',
    '-iex', 'set pagination off',
    '-iex', 'set width 0',
    '-iex', 'set confirm off',
    '-iex', 'set auto-load off',
    ...(opts.file ? [opts.file] : []),
    '-ex', `target remote 127.0.0.1:${port}`,
    ...commands.flatMap((c) => ['-ex', c]),
  ];
  return new Promise((resolve) => {
    const child = execFile(opts.gdb ?? 'gdb', args, { timeout: opts.timeoutMs ?? 60_000, env: { ...process.env, LC_ALL: 'C', TERM: 'dumb' } }, (err, stdout, stderr) => {
      clearInterval(timer);
      resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? null) : 0 });
    });
    const when = opts.interruptWhen;
    const timer =
      when === undefined
        ? undefined
        : setInterval(() => {
            if (!when()) return;
            clearInterval(timer);
            child.kill('SIGINT');
          }, 20);
  });
}
