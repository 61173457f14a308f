import { Args, Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { errors } from '../src/common/errors.js';
import { reportError, runSession } from '../src/mdb/cli-session.js';
import { parseListenAddress } from '../src/gdbserver/gdb-listen.js';
import { RemoteTarget } from '../src/targets/remote/remote-target.js';
import { gdbPolicyFlags, gdbPolicyProblem } from '../src/cli/gdb-flags.js';
import { runProcessSession } from '../src/cli/process-session.js';

export default class Attach extends Command {
  static override summary = 'Attach to a running process (PID, through ptrace) or to a GDB stub (HOST:PORT: QEMU -s, gdbserver, bhyve, dbg --gdb) and debug it with MDB commands';

  static override description = `dbg attach PID: every thread of the process stops where it is (ptrace, all-stop); the MDB
commands of dbg run apply (::regs, ::stack, ::bp, :c, ::sysbp, ::catch, ::dump, ::detach). With
--gdb PORT, dbg serves the process to gdb as gdbserver would. Leaving dbg (::quit, end of input,
SIGINT at the prompt, SIGTERM, an internal error) removes every breakpoint and detaches: the
process runs on. Attaching needs the same user and kernel.yama.ptrace_scope 0, or CAP_SYS_PTRACE.

dbg attach HOST:PORT (or --gdb HOST:PORT): dbg is the stub's client, as gdb's "target remote" is: registers come from the stub's target
description (x86-64 and i386), memory through m packets, threads from qfThreadInfo (QEMU's vCPUs,
a process's threads under gdbserver). :c continues, :s / ::step [over|out] steps the selected
thread, addr::bp and ::bp SYM insert breakpoints (Z0), addr::wp -w|-r|-a -L N watchpoints (Z2-Z4,
as many as the stub's hardware allows), Ctrl-C sends the 0x03 interrupt. When the stub offers
reverse execution (QEMU record/replay, rr, dbg's own server), ::rstep and ::rcont run backwards.
Leaving dbg detaches (D): the stub's guest or program goes on.

Every packet has a timeout (--timeout): a stub that stops answering, answers with a wrong
checksum, or describes registers dbg cannot use is one line naming the packet, never a hang.`;

  static override examples = [
    "<%= config.bin %> attach 4242 -e '::threads; ::stack -a'",
    '<%= config.bin %> attach 4242 --gdb 2345',
    "<%= config.bin %> attach 127.0.0.1:1234 --symbols vmlinux -e '::regs'",
    "<%= config.bin %> attach --gdb 1234 --symbols vmlinux -e '::regs; ::stack'",
    "<%= config.bin %> attach --gdb 127.0.0.1:2345 --symbols ./a.out -e 'main::bp; :c; ::stack'",
  ];

  static override args = {
    target: Args.string({ description: 'a process id, or the [HOST:]PORT of a GDB stub' }),
  };

  static override flags = {
    gdb: Flags.string({ description: 'with a PID: serve the process to gdb on [HOST:]PORT; without: the stub to attach to (host defaults to 127.0.0.1)', helpValue: '[HOST:]PORT' }),
    ...gdbPolicyFlags(Flags.boolean),
    symbols: Flags.string({ description: 'symbol file (the guest kernel, the program); repeat the flag for more', multiple: true, multipleNonGreedy: true, helpValue: 'FILE' }),
    timeout: Flags.string({ description: 'seconds the stub has to answer each packet (default 10)', helpValue: 'SECONDS' }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Attach.flags);
    const { args, flags } = await this.parse(Attach);
    if (args.target !== undefined && /^\d+$/.test(args.target.trim())) {
      await this.attachProcess(Number(args.target.trim()), flags);
      return;
    }
    let target: RemoteTarget;
    try {
      if (args.target !== undefined && flags.gdb !== undefined) throw errors.badInput(`dbg attach ${args.target} --gdb ${flags.gdb}: give the stub once, as HOST:PORT or with --gdb`);
      const stub = args.target ?? flags.gdb;
      if (stub === undefined) throw errors.badInput('dbg attach needs a process id or a stub: dbg attach PID, dbg attach [HOST:]PORT');
      if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d+$/.test(stub.trim()) && args.target !== undefined) throw errors.badInput(`dbg attach ${stub}: expected a process id or [HOST:]PORT (e.g. 4242, 127.0.0.1:1234)`);
      const { host, port } = parseListenAddress(stub);
      if (port === 0) throw errors.badInput(`--gdb ${stub}: port 0 is not a stub's port; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234`);
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

  private async attachProcess(pid: number, flags: { gdb?: string; symbols?: string[]; timeout?: string; execute?: string[]; json: boolean; 'gdb-allow-remote': boolean; 'gdb-allow-host-io': boolean }): Promise<void> {
    let target;
    try {
      if (flags.symbols !== undefined) throw errors.badInput('--symbols is for a GDB stub: a process\'s symbols come from its own files (/proc/PID/maps)');
      if (flags.timeout !== undefined) throw errors.badInput('--timeout is for a GDB stub, not a process');
      if (flags.gdb !== undefined) parseListenAddress(flags.gdb);
      const problem = gdbPolicyProblem(flags);
      if (problem) throw errors.badInput(problem);
      const { ProcessTarget } = await import('../src/targets/process/process-target.js');
      target = ProcessTarget.attach(pid);
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
