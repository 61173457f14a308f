import { errors } from '../common/errors.js';
import { reportError, runSession } from '../mdb/cli-session.js';
import { contractPolicyProblem, gdbPolicyProblem } from './gdb-flags.js';
import { setDebugFileDirectories } from '../symbols/dwarf/debug-files.js';
import { setSourcePath } from '../mdb/source-frames.js';
import { openTarget } from '../targets/open-target.js';
import type { Target } from '../targets/target.js';

export interface OpenFlags {
  raw?: boolean;
  exe?: string;
  sysroot?: string;
  'solib-search-path'?: string;
  'source-path'?: string;
  symbols?: string[];
  modules?: string;
  'debug-file-directory'?: string;
  execute?: string;
  json?: boolean;
  gdb?: string;
  'gdb-allow-remote'?: boolean;
  'gdb-allow-host-io'?: boolean;
  contract?: string;
  'contract-allow-remote'?: boolean;
}

/** The body of `dbg open`, shared by the oclif command and the fast path. Returns the exit code. */
export async function runOpen(file: string, flags: OpenFlags): Promise<number> {
  let target: Target;
  try {
    const problem = gdbPolicyProblem(flags) ?? contractPolicyProblem(flags);
    if (problem) throw errors.badInput(problem);
    // gdb's `set debug-file-directory`: colon-separated; empty for none.
    const dirs = flags['debug-file-directory'];
    if (dirs !== undefined) setDebugFileDirectories(dirs.split(':').filter((d) => d !== ''));
    // gdb's `directory`: colon-separated, searched in order.
    const sources = flags['source-path'];
    if (sources !== undefined) setSourcePath(sources.split(':').filter((d) => d !== ''));
    // gdb's `set solib-search-path`: colon-separated.
    const solibSearchPath = flags['solib-search-path']?.split(':').filter((d) => d !== '');
    target = openTarget(file, { raw: flags.raw, exe: flags.exe, sysroot: flags.sysroot, solibSearchPath, symbols: flags.symbols, modules: flags.modules });
  } catch (e) {
    reportError(e, flags.json);
    return 1;
  }
  try {
    const session = () => runSession(target, { execute: flags.execute, json: flags.json });
    if (!flags.gdb && flags.contract === undefined) return await session();
    // Loaded only when asked for: the GDB server is 20 modules that a plain `dbg open` never uses.
    const { serveWhileSession } = await import('../gdbserver/gdb-listen.js');
    return await serveWhileSession(target, flags.gdb, {
      session,
      script: flags.execute !== undefined,
      allowRemote: flags['gdb-allow-remote'],
      allowHostIo: flags['gdb-allow-host-io'],
      contract: flags.contract,
      contractAllowRemote: flags['contract-allow-remote'],
    });
  } finally {
    target.close();
  }
}
