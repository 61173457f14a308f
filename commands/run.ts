import { Args, Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { gdbPolicyFlags, gdbPolicyProblem } from '../src/cli/gdb-flags.js';
import { errors } from '../src/common/errors.js';
import { reportError } from '../src/mdb/cli-session.js';
import { parseListenAddress } from '../src/gdbserver/gdb-listen.js';
import { runProcessSession } from '../src/cli/process-session.js';

export default class Run extends Command {
  static override summary = 'Start a program under ptrace, stopped at its first instruction, and debug it with MDB commands';

  static override description = `Linux on x86-64. The program starts stopped at the dynamic linker's first instruction: set
breakpoints (main::bp, ::bp FILE:LINE), then :c. Every thread is traced (all-stop); :s / ::step
[over|out] step, Ctrl-C interrupts, ::sysbp NAME stops at system calls, ::signal SIG nostop|pass
chooses what signals do, ::catch fork|exec|thread|library stops on those events, ::evlog lists
what happened, ::dump FILE writes a core, ::detach lets it run on, ::kill ends it.
Leaving dbg (::quit, end of input, SIGINT at the prompt, SIGTERM) kills a program dbg started.
With --gdb PORT dbg is the program's gdbserver too (target remote :PORT).`;

  static override examples = [
    "<%= config.bin %> run ./a.out -e 'main::bp; :c; ::stack; ::regs'",
    '<%= config.bin %> run --gdb 2345 -- ./a.out --its-flag',
  ];

  static override strict = false;

  static override args = {
    prog: Args.string({ required: true, description: 'the program (a path, or a name looked up in PATH); its arguments follow, after -- if they look like flags' }),
  };

  static override flags = {
    randomize: Flags.boolean({ description: 'keep address-space layout randomization (by default it is off, as under gdb and gdbserver, so addresses repeat from run to run)' }),
    cwd: Flags.string({ description: 'working directory of the program (default: this one)', helpValue: 'DIR' }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
    gdb: Flags.string({ description: 'also serve the process to gdb (target remote HOST:PORT); host defaults to 127.0.0.1', helpValue: '[HOST:]PORT' }),
    ...gdbPolicyFlags(Flags.boolean),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Run.flags);
    const { argv, flags } = await this.parse(Run);
    const [prog, ...rest] = argv as string[];
    let target;
    try {
      if (!prog) throw errors.badInput('dbg run needs a program: dbg run [--] PROG ARGS...');
      if (flags.gdb !== undefined) parseListenAddress(flags.gdb);
      const problem = gdbPolicyProblem(flags);
      if (problem) throw errors.badInput(problem);
      const { ProcessTarget } = await import('../src/targets/process/process-target.js');
      target = ProcessTarget.run(prog, rest, { cwd: flags.cwd, randomize: flags.randomize });
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = 1;
      return;
    }
    process.exitCode = await runProcessSession(target, { execute: scriptOf(flags.execute), json: flags.json, gdb: flags.gdb, allowRemote: flags['gdb-allow-remote'], allowHostIo: flags['gdb-allow-host-io'] });
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
