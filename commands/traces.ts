import { Command, Flags } from '@oclif/core';
import { statSync } from 'node:fs';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError, stdoutOutput } from '../src/mdb/cli-session.js';
import { printTable } from '../src/mdb/modules/history.js';
import { traceCorrupt } from '../src/store/trace-check.js';
import { TraceReader } from '../src/store/trace-reader.js';
import { verifyTrace } from '../src/targets/replay/rerecord.js';
import { DEFAULT_TRACE_CAP, formatBytes, listTraces, pruneTraces, removeTrace, traceCap, traceFolder, type TraceEntry } from '../src/store/trace-folder.js';

export default class Traces extends Command {
  static override summary = 'List, remove and prune the recorded traces of the trace folder';

  static override description = [
    'The trace folder ($XDG_CACHE_HOME/dbg, else ~/.cache/dbg) is where dbg live records when no --record FILE is given. Each trace is listed oldest first with its size (file and WAL), the instructions it holds, the guest, when it was recorded, and how its run ended: ok, failed (dbg exited with an error), unfinished (the process died while recording), or "recording (pid N)" for one being recorded now.',
    'With --verify TRACE, dbg re-executes the trace from its start, from nothing but its initial RAM, the register state at each slice start and its inputs, records it again, and compares: every chunk\'s pc stream, every memory row, every input and every checkpoint\'s registers must come out as recorded (a lazy-rows trace has page images instead of memory rows: its memory is not compared). Exit status 1 names the first difference.',
    `The folder has a size cap (default ${formatBytes(DEFAULT_TRACE_CAP)}; --cap SIZE, or $DBG_TRACE_CAP): dbg live removes the oldest traces not in use before it records there, and --prune does it now. A trace being recorded is never removed.`,
  ].join('\n\n');

  static override examples = ['<%= config.bin %> traces', '<%= config.bin %> traces --rm kernel.elf-20261205-121500-4242.trace', '<%= config.bin %> traces --prune --cap 1G', '<%= config.bin %> traces --verify t.trace'];

  static override flags = {
    dir: Flags.string({ description: 'the trace folder (default: $XDG_CACHE_HOME/dbg or ~/.cache/dbg)', helpValue: 'DIR' }),
    rm: Flags.string({ description: 'remove this trace (a name in the folder or a path); repeat for more', multiple: true, helpValue: 'TRACE' }),
    prune: Flags.boolean({ description: 'remove the oldest traces not in use until the folder fits its cap' }),
    cap: Flags.string({ description: `the cap for --prune (default $DBG_TRACE_CAP or ${formatBytes(DEFAULT_TRACE_CAP)})`, helpValue: 'SIZE' }),
    json: Flags.boolean({ description: 'one JSON object per trace' }),
    verify: Flags.string({ description: 're-execute this trace (a name in the folder or a path) and compare it with what was recorded', helpValue: 'TRACE' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Traces.flags);
    const { flags } = await this.parse(Traces);
    const out = stdoutOutput(flags.json);
    try {
      if (flags.cap !== undefined && !flags.prune) throw errors.badInput('--cap goes with --prune (dbg live takes --trace-cap)');
      const dir = flags.dir ?? traceFolder();
      if (flags.verify !== undefined) return await verify(flags.verify, dir, out, flags.json);
      if (flags.rm?.length) {
        const known = new Map(listTraces(dir).map((t) => [t.name, t.path]));
        for (const name of flags.rm) {
          // A name in the folder, or a path to a trace anywhere.
          const path = known.get(name) ?? (name.includes('/') && isTrace(name) ? name : undefined);
          if (!path) throw errors.notFound(`no trace "${name}" in ${dir} (dbg traces lists them)`);
          removeTrace(path);
          if (!flags.json) out.line(`removed ${path}`);
        }
        return;
      }
      if (flags.prune) {
        const cap = flags.cap !== undefined ? traceCap(flags.cap) : traceCap();
        const gone = pruneTraces(dir, cap);
        if (flags.json) for (const t of gone) out.json({ removed: t.path, bytes: t.bytes });
        else out.line(`removed ${gone.length} trace(s), ${formatBytes(gone.reduce((n, t) => n + t.bytes, 0))}; ${dir} holds ${formatBytes(listTraces(dir).reduce((n, t) => n + t.bytes, 0))} of ${formatBytes(cap)}`);
        return;
      }
      const all = listTraces(dir);
      if (flags.json) {
        for (const t of all) out.json(entryJson(t));
        return;
      }
      if (!all.length) return out.line(`no traces in ${dir}`);
      printTable(
        {
          columns: ['trace', 'size', 'instructions', 'guest', 'recorded', 'outcome'],
          rows: all.map((t) => [t.name, formatBytes(t.bytes), t.instructions ?? '?', t.guest || '?', (t.created ?? t.modified.toISOString()).replace(/\.\d+Z$/, 'Z'), t.recordingBy !== undefined ? `recording (pid ${t.recordingBy})` : t.outcome]),
        },
        out,
      );
      out.line(`${all.length} trace(s), ${formatBytes(all.reduce((n, t) => n + t.bytes, 0))} in ${dir}`);
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = 1;
    }
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}

/**
 * --verify: the trace re-executed and compared (rerecord.ts). A difference is exit status 1 with
 * one `dbg: trace "…": …` line, as a damaged trace is.
 */
async function verify(name: string, dir: string, out: ReturnType<typeof stdoutOutput>, json: boolean): Promise<void> {
  const path = listTraces(dir).find((t) => t.name === name)?.path ?? name;
  const t0 = performance.now();
  const reader = TraceReader.open(path);
  try {
    const r = await verifyTrace(reader);
    const seconds = (performance.now() - t0) / 1e3;
    if (r.difference) throw traceCorrupt(path, `re-executed, it differs from the recording: ${r.difference}`);
    if (json) out.json({ path, verified: true, instructions: r.instructions, chunks: r.chunks, seconds, ...(r.unchecked ? { unchecked: r.unchecked } : {}) });
    else out.line(`${path}: ${r.instructions} instructions in ${r.chunks} chunk(s) re-execute to the recorded history${r.unchecked ? `, ${r.unchecked} not compared` : ''} (${seconds.toFixed(2)} s)`);
  } finally {
    reader.close();
  }
}

/** A *.trace regular file. */
function isTrace(path: string): boolean {
  return path.endsWith('.trace') && statSync(path, { throwIfNoEntry: false })?.isFile() === true;
}

function entryJson(t: TraceEntry): unknown {
  return {
    path: t.path,
    bytes: t.bytes,
    instructions: t.instructions ?? null,
    guest: t.guest ?? null,
    recorded: t.created ?? t.modified.toISOString(),
    outcome: t.recordingBy !== undefined ? 'recording' : t.outcome,
    ...(t.recordingBy !== undefined ? { pid: t.recordingBy } : {}),
  };
}
