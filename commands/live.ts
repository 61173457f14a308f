import { Args, Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError, runSession } from '../src/mdb/cli-session.js';
import { describeStop } from '../src/mdb/modules/emulator.js';
import { EmulatorTarget, type EmulatorOptions } from '../src/targets/emulator/emulator-target.js';
import { contractFlags, contractPolicyProblem, gdbPolicyFlags, gdbPolicyProblem } from '../src/cli/gdb-flags.js';
import { Session } from '../src/mdb/session.js';
import { builtinModules } from '../src/mdb/modules/index.js';
import { parseListenAddress, serveWhileSession } from '../src/gdbserver/gdb-listen.js';
import { basename, dirname, resolve } from 'node:path';
import { EmulatorRecorder } from '../src/store/emulator-recorder.js';
import { prewarmTraceWriter } from '../src/store/trace-writer.js';
import { defaultTracePath } from '../src/store/trace-path.js';
import { DEFAULT_TRACE_CAP, formatBytes, pruneTraces, traceCap } from '../src/store/trace-folder.js';
import { RecordingStatus } from '../src/store/recording-status.js';
import { exitCleanlyOnSignals } from '../src/common/exit-signals.js';

/** "128M", "1G", "65536K", "33554432": bytes. */
/** Instructions the rehearsal guest runs before its steps, to be past its boot code (see below). */
const REHEARSAL_BOOT = 50_000n;

/**
 * The GDB server's rehearsal guest (src/gdbserver/rehearsal.ts): the same kernel on the same
 * machine, with no disks (nothing it does reaches a file) and its console unheard, run a little way
 * so that its steps are those of the kernel's own code rather than of its first instructions.
 */
function scratchGuest(file: string, machine: EmulatorOptions): EmulatorTarget {
  const scratch = EmulatorTarget.open(file, machine);
  scratch.machine.runSync(REHEARSAL_BOOT);
  return scratch;
}

function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(s.trim());
  if (!m) throw errors.badInput(`-m ${s}: expected a size such as 64M or 1G`);
  const n = Number(m[1]) * ({ '': 1, K: 1024, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(n)) throw errors.badInput(`-m ${s}: too large`);
  return m[2] === '' && n < 1 << 20 ? n << 20 : n; // a bare small number means MiB, as QEMU's -m
}

export default class Live extends Command {
  static override summary = 'Boot a kernel on the emulated PC (i386 or x86-64) and debug it live with MDB commands';

  static override description = `FILE is a multiboot v1 kernel (entered as QEMU's -kernel does: 32-bit protected mode,
EAX=0x2BADB002, EBX=multiboot info) or an ELF64 kernel (entered in long mode at e_entry with
dbg's page tables). The guest's COM1 console is printed as it runs and kept for ::console.

Without --wait the guest runs at once (until it halts, faults or hits a breakpoint), then the REPL
starts; with --wait it stays at its first instruction. With -e it always stays there, as a gdb -ex
or MDB -e script expects: the script runs it (':c'), so 'kmain::bp; :c' stops at kmain. Commands:
:c continue, :s step (that vCPU alone), ::step over|out, addr::bp, addr::wp -w -L 8, ::events,
::delete N, ::disable/::enable N, ::cpuregs [-c CPU], ::switch CPU, ::console, ::dump FILE.
Ctrl-C stops the running command and ends the -e script there; a second Ctrl-C exits (the trace
is finished).

Recording (on by default) adds time travel: ::rstep [over|out] and ::rcont go back (a write
watchpoint stops at the writer with memory as before the write), ::seek SEQ|+N|-N, ::now; the view
is then in the recorded past while the guest stays where it was. :s and :c replay forward from the
trace to the end of history, then run the guest live again. Writing memory or registers in the past
is refused (go back to the present with ::seek). History queries: addr,len::whowrote,
addr,len::history, sym::when, ::calls, ::timeline (a picture of activity per function),
::traceinfo, ::sql.`;

  static override examples = [
    '<%= config.bin %> live --emulate dumps/kernel.elf',
    "<%= config.bin %> live --emulate kernel.elf --wait -e 'panic::bp; :c; ::stack'",
    '<%= config.bin %> live --emulate kernel.elf -m 64M --cpus 2',
  ];

  static override args = {
    file: Args.string({ description: 'the kernel (same as --emulate)', ignoreStdin: true }),
  };

  static override flags = {
    emulate: Flags.string({ description: 'the kernel to boot', helpValue: 'FILE' }),
    memory: Flags.string({ char: 'm', description: 'guest RAM (default 128M)', helpValue: 'SIZE' }),
    cpus: Flags.integer({ description: 'number of vCPUs (default 1)', min: 1, max: 64 }),
    disk: Flags.string({ description: 'an ATA disk image on the primary channel (the first is the master, a second the slave); writes stay in memory unless --disk-writable', multiple: true, helpValue: 'FILE' }),
    'disk-writable': Flags.boolean({ description: 'write the guest\'s disk writes through to the --disk files' }),
    wait: Flags.boolean({ description: 'stop at the first instruction and wait for commands (always so with -e)' }),
    symbols: Flags.string({ description: 'extra symbol file; repeat for more', multiple: true, helpValue: 'FILE' }),
    cmdline: Flags.string({ description: 'multiboot command line after the file name', helpValue: 'TEXT' }),
    quantum: Flags.integer({ description: 'instructions per vCPU scheduling quantum (default 10000)', min: 1 }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
    quiet: Flags.boolean({ char: 'q', description: 'do not echo the guest console while it runs' }),
    record: Flags.string({ description: 'record the run into this new trace file (default: a new file under $XDG_CACHE_HOME/dbg or ~/.cache/dbg; the path is printed); open it later with dbg replay', helpValue: 'FILE', exclusive: ['no-record'] }),
    'no-record': Flags.boolean({ description: 'do not record (no time travel or history queries; runs faster)' }),
    'trace-cap': Flags.string({ description: `size cap of the trace folder (default ${formatBytes(DEFAULT_TRACE_CAP)}, or $DBG_TRACE_CAP): before recording there, its oldest traces not in use are removed until it fits; see dbg traces`, helpValue: 'SIZE' }),
    gdb: Flags.string({ description: 'also serve the guest to gdb (target remote HOST:PORT); with --wait it stays at its first instruction until gdb continues', helpValue: '[HOST:]PORT' }),
    ...gdbPolicyFlags(Flags.boolean),
    ...contractFlags(Flags),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Live.flags);
    const { args, flags } = await this.parse(Live);
    const file = flags.emulate ?? args.file;
    let target: EmulatorTarget;
    let machine: EmulatorOptions = {};
    let recorder: EmulatorRecorder | undefined;
    let status: RecordingStatus | undefined;
    try {
      if (!file) throw errors.badInput('dbg live needs a kernel: --emulate FILE');
      // Checked before the guest runs, not after.
      if (flags.gdb !== undefined) parseListenAddress(flags.gdb);
      if (flags.contract !== undefined) parseListenAddress(flags.contract, '--contract');
      const problem = gdbPolicyProblem(flags) ?? contractPolicyProblem(flags);
      if (problem) throw errors.badInput(problem);
      machine = {
        ramBytes: flags.memory ? parseSize(flags.memory) : undefined,
        cpus: flags.cpus,
        symbols: flags.symbols,
        cmdline: flags.cmdline,
        quantum: flags.quantum,
      };
      // the trace writer's thread starts while the machine is made (it does not need the trace yet)
      if (!flags['no-record']) prewarmTraceWriter();
      target = EmulatorTarget.open(file, { ...machine, disks: flags.disk?.map((path) => ({ path, writable: flags['disk-writable'] })) });
      if (!flags['no-record']) {
        const cap = traceCap(flags['trace-cap']);
        const path = flags.record ?? defaultTracePath(file);
        // The trace folder keeps to its cap: the oldest traces not in use go first.
        if (flags.record === undefined) {
          const gone = pruneTraces(dirname(path), cap, path);
          if (gone.length) process.stderr.write(`dbg: removed ${gone.length} old trace(s) (${formatBytes(gone.reduce((n, t) => n + t.bytes, 0))}) to keep ${dirname(path)} under ${formatBytes(cap)} (--trace-cap, DBG_TRACE_CAP)\n`);
        }
        status = flags.quiet || flags.json || !process.stderr.isTTY ? undefined : new RecordingStatus(process.stderr);
        try {
          recorder = new EmulatorRecorder(path, { guest: basename(file), symbols: resolve(file), onLimit: (m) => process.stderr.write(`${status?.clear() ?? ''}dbg: ${m}\n`), onProgress: (p) => status?.update(p) });
          target.record(recorder);
        } catch (e) {
          target.close();
          throw e;
        }
        process.stderr.write(`dbg: recording to ${path} (dbg replay ${path}; --no-record to turn off)\n`);
      }
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = 1;
      return;
    }
    // The console goes to stderr so that stdout keeps only command answers (and --json stays parseable).
    // SIGTERM and SIGHUP (SIGINT when nothing else takes it) end dbg with the trace finished.
    const offSignals = exitCleanlyOnSignals(() => target.close());
    if (!flags.quiet) target.machine.onConsole((text) => process.stderr.write((status?.clear() ?? '') + text));
    // Answers (stdout, the same terminal) erase the status line first; the next chunk redraws it.
    const stdoutWrite = process.stdout.write.bind(process.stdout);
    if (status) {
      process.stdout.write = ((...args: Parameters<typeof stdoutWrite>) => {
        const c = status?.clear();
        if (c) process.stderr.write(c);
        return stdoutWrite(...args);
      }) as typeof process.stdout.write;
    }
    let code = 1;
    try {
      // A script sets its breakpoints before anything runs (gdb -ex, MDB -e): it runs the guest itself.
      if (!flags.wait && flags.execute === undefined) {
        const onSigint = (): void => target.caps.execution!.interrupt();
        process.on('SIGINT', onSigint);
        try {
          const st = await target.caps.execution!.resume();
          process.stderr.write(`${status?.clear() ?? ''}dbg: ${describeStop(target, st)}\n`);
        } finally {
          process.off('SIGINT', onSigint);
        }
      }
      // With --contract, one MDB session for the REPL and the contract: ::events lists BP='s breakpoints.
      const mdb = flags.contract !== undefined ? new Session(target, builtinModules) : undefined;
      const session = () => runSession(target, { execute: scriptOf(flags.execute), json: flags.json, session: mdb });
      const serve = { session, script: flags.execute !== undefined, allowRemote: flags['gdb-allow-remote'], allowHostIo: flags['gdb-allow-host-io'], contract: flags.contract, contractAllowRemote: flags['contract-allow-remote'], mdb, rehearsal: () => scratchGuest(file, machine) };
      code = flags.gdb !== undefined || mdb ? await serveWhileSession(target, flags.gdb, serve) : await session();
    } finally {
      process.stderr.write(status?.clear() ?? '');
      status = undefined;
      process.stdout.write = stdoutWrite;
      offSignals();
      // A failed run's trace says so (dbg traces lists it as failed).
      recorder?.setOutcome(code === 0 ? 'ok' : `failed (exit status ${code})`);
      target.close();
    }
    process.exitCode = code;
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
