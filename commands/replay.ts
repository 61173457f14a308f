import { Args, Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError, runSession } from '../src/mdb/cli-session.js';
import { ReplayTarget } from '../src/targets/replay/replay-target.js';
import { contractFlags, contractPolicyProblem, gdbPolicyFlags, gdbPolicyProblem } from '../src/cli/gdb-flags.js';
import { Session } from '../src/mdb/session.js';
import { builtinModules } from '../src/mdb/modules/index.js';
import { serveWhileSession } from '../src/gdbserver/gdb-listen.js';

export default class Replay extends Command {
  static override summary = 'Open a recorded trace and travel through its history with MDB commands';

  static override description = [
    'FILE is a trace written by `dbg live` (recording is on by default). The trace is opened read-only: nothing dbg does here writes to it. The session starts at the end of the history.',
    'Time travel: ::rstep [over|out] steps back, ::rcont runs back to the last breakpoint or watchpoint trigger, ::seek SEQ|+N|-N jumps, ::now shows the position; :s and :c (::step, ::cont) go forward up to the end of the history. History queries: addr::whowrote, addr,len::history, sym::when, ::calls [-f FUNC] (calls and interrupts with their returns), ::timeline (activity per function over seq, drawn in the terminal), ::traceinfo (the counts), ::sql.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> replay kernel.trace -e "::traceinfo; ::timeline"',
    '<%= config.bin %> replay kernel.trace -e "::calls -f timer_tick -n 5"',
    '<%= config.bin %> replay kernel.trace -e "panic::bp; ::rcont; ::regs"',
    '<%= config.bin %> replay kernel.trace -e "counter::whowrote; counter,8::history -n 5"',
  ];

  static override args = {
    file: Args.string({ required: true, description: 'the trace file', ignoreStdin: true }),
  };

  static override flags = {
    symbols: Flags.string({ description: 'symbol file of the guest (default: the one the trace names); repeat for more', multiple: true, helpValue: 'FILE' }),
    seek: Flags.string({ description: 'start at this seq instead of the end of the history', helpValue: 'SEQ' }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
    gdb: Flags.string({ description: 'also serve the recording to gdb (target remote HOST:PORT), with reverse execution (reverse-stepi, reverse-continue...)', helpValue: '[HOST:]PORT' }),
    ...gdbPolicyFlags(Flags.boolean),
    ...contractFlags(Flags),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Replay.flags);
    const { args, flags } = await this.parse(Replay);
    let target: ReplayTarget;
    try {
      const problem = gdbPolicyProblem(flags) ?? contractPolicyProblem(flags);
      if (problem) throw errors.badInput(problem);
      target = ReplayTarget.open(args.file, flags.symbols ? { symbols: flags.symbols } : {});
      if (flags.seek !== undefined) {
        if (!/^\d+$/.test(flags.seek)) throw errors.badInput(`--seek ${flags.seek}: expected a decimal seq`);
        await target.seekTo(BigInt(flags.seek));
      }
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = 1;
      return;
    }
    try {
      // With --contract, one MDB session for the REPL and the contract: ::events lists BP='s breakpoints.
      const mdb = flags.contract !== undefined ? new Session(target, builtinModules) : undefined;
      const session = () => runSession(target, { execute: scriptOf(flags.execute), json: flags.json, session: mdb });
      // The GDB server rehearses on a second reader of the same trace (read-only, as this one is).
      const rehearsal = () => ReplayTarget.open(args.file, flags.symbols ? { symbols: flags.symbols } : {});
      const serve = { session, script: flags.execute !== undefined, allowRemote: flags['gdb-allow-remote'], allowHostIo: flags['gdb-allow-host-io'], contract: flags.contract, contractAllowRemote: flags['contract-allow-remote'], mdb, rehearsal };
      process.exitCode = flags.gdb !== undefined || mdb ? await serveWhileSession(target, flags.gdb, serve) : await session();
    } finally {
      target.close();
    }
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
