/**
 * What `dbg run` and `dbg attach PID` do once the process is traced: the MDB session (REPL or -e),
 * optionally served to gdb (--gdb), and the guarantee that dbg never leaves the process broken:
 * on ::quit, end of input, SIGINT at the prompt, SIGTERM, SIGHUP or an internal error the
 * breakpoints come out and the process is detached (attached) or killed (started by dbg).
 */

import { exitCleanlyOnSignals } from '../common/exit-signals.js';
import { describeStop } from '../mdb/modules/emulator.js';
import { runSession } from '../mdb/cli-session.js';
import { serveWhileSession } from '../gdbserver/gdb-listen.js';
import type { ProcessTarget } from '../targets/process/process-target.js';

export interface ProcessSessionOptions {
  readonly execute?: string;
  readonly json?: boolean;
  readonly gdb?: string;
  readonly allowRemote?: boolean;
  readonly allowHostIo?: boolean;
}

export async function runProcessSession(target: ProcessTarget, opts: ProcessSessionOptions): Promise<number> {
  const release = (): void => target.close();
  // 'exit' runs for process.exit() and for an uncaught exception; the signals' own handler for the rest.
  process.on('exit', release);
  const offSignals = exitCleanlyOnSignals(release);
  try {
    if (!opts.json && opts.execute === undefined) process.stderr.write(`dbg: ${target.started ? 'started' : 'attached to'} ${target.name}; ${describeStop(target, target.status()).replace(/^stopped: (none|interrupted) /, 'stopped ')}\n`);
    const session = () => runSession(target, { execute: opts.execute, json: opts.json });
    if (opts.gdb === undefined) return await session();
    // No copy of a live process can be made: the GDB server rehearses on a double of it whose
    // tracer only pretends to run it (dry-tracer.ts).
    return await serveWhileSession(target, opts.gdb, { session, script: opts.execute !== undefined, allowRemote: opts.allowRemote, allowHostIo: opts.allowHostIo, rehearsal: () => target.rehearsalDouble() });
  } finally {
    offSignals();
    release();
    process.off('exit', release);
  }
}
