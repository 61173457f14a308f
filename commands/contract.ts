import { Args, Command, Flags } from '@oclif/core';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError } from '../src/mdb/cli-session.js';
import { parseListenAddress } from '../src/gdbserver/gdb-listen.js';
import { runContractScript } from '../src/contract/contract-script.js';
import { readFileSync } from 'node:fs';

export default class Contract extends Command {
  static override summary = 'Drive a dbg control-contract server (dbg live|replay --contract PORT) with its plain-text commands';

  static override description = `The commands are the VMKernel contract's: BP=SYMBOL; (a C name, or a C++ name unmangled:
ns::Foo::bar for every overload, ns::Foo::bar(int) for one), B=1; (break in), C=1; (continue),
C=0; (stop), D=1; (detach), V=?; (version). Each reply is printed as the server sends it; C=1; and
B=1; wait for the guest's STOP= reply before the next command. The first ERR= reply stops the
script (dbg: REASON, exit status 1). Without -e the commands are read from standard input.
Ctrl-C while the guest runs sends C=0;.`;

  static override examples = [
    "<%= config.bin %> contract 4000 -e 'V=?; BP=Scheduler::tick; C=1; D=1;'",
    "<%= config.bin %> contract 127.0.0.1:4000 -e 'BP=ns::Foo::bar(int); C=1; B=1;'",
  ];

  static override args = {
    address: Args.string({ required: true, description: 'the server: [HOST:]PORT (host defaults to 127.0.0.1)', ignoreStdin: true }),
  };

  static override flags = {
    execute: Flags.string({ char: 'e', description: 'contract commands to send, each ended by ";" (whitespace and newlines between them are ignored); repeat the flag for more', helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    timeout: Flags.string({ description: 'seconds the server has to answer each command, and the guest to stop after C=1; (default: 10 for answers, no limit for stops)', helpValue: 'SECONDS' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Contract.flags);
    const { args, flags } = await this.parse(Contract);
    try {
      const { host, port } = parseListenAddress(args.address, 'contract');
      if (port === 0) throw errors.badInput(`contract ${args.address}: port 0 is not a server's port; expected [HOST:]PORT, e.g. 4000 or 127.0.0.1:4000`);
      let timeoutMs: number | undefined;
      if (flags.timeout !== undefined) {
        const s = Number(flags.timeout);
        if (!/^\d+(\.\d+)?$/.test(flags.timeout.trim()) || s <= 0 || s > 3600) throw errors.badInput(`--timeout ${flags.timeout}: expected seconds, more than 0 and at most 3600`);
        timeoutMs = Math.round(s * 1000);
      }
      // Each -e ends a command: a missing last ";" is added.
      const script = (flags.execute ?? [readFileSync(0, 'latin1')]).map((s) => (s.trim() === '' || s.trim().endsWith(';') ? s : `${s};`)).join('\n');
      await runContractScript(script, { host, port, timeoutMs, print: (l) => process.stdout.write(`${l}\n`) });
    } catch (e) {
      reportError(e);
      process.exitCode = 1;
    }
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
