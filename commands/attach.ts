import { Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError, runSession } from '../src/mdb/cli-session.js';
import { parseListenAddress } from '../src/gdbserver/gdb-listen.js';
import { RemoteTarget } from '../src/targets/remote/remote-target.js';

export default class Attach extends Command {
  static override summary = 'Attach to a GDB stub (QEMU -s, gdbserver, bhyve, dbg --gdb) and debug it with MDB commands';

  static override description = `dbg is the stub's client, as gdb's "target remote" is: registers come from the stub's target
description (x86-64 and i386), memory through m packets, threads from qfThreadInfo (QEMU's vCPUs,
a process's threads under gdbserver). :c continues, :s / ::step [over|out] steps the selected
thread, addr::bp and ::bp SYM insert breakpoints (Z0), addr::wp -w|-r|-a -L N watchpoints (Z2-Z4,
as many as the stub's hardware allows), Ctrl-C sends the 0x03 interrupt. When the stub offers
reverse execution (QEMU record/replay, rr, dbg's own server), ::rstep and ::rcont run backwards.
Leaving dbg detaches (D): the stub's guest or program goes on.

Every packet has a timeout (--timeout): a stub that stops answering, answers with a wrong
checksum, or describes registers dbg cannot use is one line naming the packet, never a hang.`;

  static override examples = [
    "<%= config.bin %> attach --gdb 1234 --symbols vmlinux -e '::regs; ::stack'",
    "<%= config.bin %> attach --gdb 127.0.0.1:2345 --symbols ./a.out -e 'main::bp; :c; ::stack'",
  ];

  static override flags = {
    gdb: Flags.string({ description: 'the stub to attach to; host defaults to 127.0.0.1', helpValue: '[HOST:]PORT', required: true }),
    symbols: Flags.string({ description: 'symbol file (the guest kernel, the program); repeat the flag for more', multiple: true, multipleNonGreedy: true, helpValue: 'FILE' }),
    timeout: Flags.string({ description: 'seconds the stub has to answer each packet (default 10)', helpValue: 'SECONDS' }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Attach.flags);
    const { flags } = await this.parse(Attach);
    let target: RemoteTarget;
    try {
      const { host, port } = parseListenAddress(flags.gdb);
      if (port === 0) throw errors.badInput(`--gdb ${flags.gdb}: port 0 is not a stub's port; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234`);
      let timeoutMs: number | undefined;
      if (flags.timeout !== undefined) {
        const s = Number(flags.timeout);
        if (!/^\d+(\.\d+)?$/.test(flags.timeout.trim()) || s <= 0 || s > 3600) throw errors.badInput(`--timeout ${flags.timeout}: expected seconds, more than 0 and at most 3600`);
        timeoutMs = Math.round(s * 1000);
      }
      target = RemoteTarget.attach(host, port, { symbols: flags.symbols, timeoutMs, onConsole: (t) => process.stderr.write(t) });
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = 1;
      return;
    }
    try {
      process.exitCode = await runSession(target, { execute: scriptOf(flags.execute), json: flags.json });
    } finally {
      target.close();
    }
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
