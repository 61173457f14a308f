import { Args, Command, Flags } from '@oclif/core';
import { scriptOf } from '../src/cli/script-flag.js';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { contractFlags, gdbPolicyFlags } from '../src/cli/gdb-flags.js';
import { runOpen } from '../src/cli/open-command.js';

export default class Open extends Command {
  static override summary = 'Open a crash dump, process core, ELF file or raw file and debug it with MDB commands';

  static override description = [
    'The target is chosen by what FILE is: a kernel crash dump (kdump or QEMU ELF), a Linux process core (gcore or kernel-written), another ELF file (at its link-time addresses, with its symbols), or anything else as raw bytes (address = file offset). --raw forces the raw view.',
    'Without -e, an interactive MDB-style session starts (history in ~/.dbg_history). With -e, the commands run (separated by \';\' or newlines) and dbg exits; the first failing command stops the script and the exit status is 1.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> open core.1234 -e "::status; ::stack -a"',
    '<%= config.bin %> open core.1234 --exe ./a.out --sysroot /srv/target-root',
    '<%= config.bin %> open vmcore.0 --symbols vmlinux',
    '<%= config.bin %> open --raw disk.img -e "0,4/X"',
    '<%= config.bin %> open core.1234 --json -e "::threads"',
  ];

  static override args = {
    file: Args.string({ required: true, description: 'the dump, core, ELF or raw file to open', ignoreStdin: true }),
  };

  static override flags = {
    raw: Flags.boolean({ description: 'open FILE as raw bytes (address = file offset), even if it is ELF' }),
    exe: Flags.string({ description: 'the executable of a process core, when the path the core records is wrong', helpValue: 'FILE' }),
    sysroot: Flags.string({ description: 'prefix for the paths a process core names: the dynamic linker\'s name of each library, then the kernel\'s (like gdb\'s set sysroot)', helpValue: 'DIR' }),
    'solib-search-path': Flags.string({ description: 'directories where a process core\'s libraries are looked for by base name when the sysroot has none (colon-separated, like gdb\'s set solib-search-path)', helpValue: 'DIRS' }),
    'source-path': Flags.string({ description: "directories where source files are looked for when they are not where the debug info says, for ::dis -s (colon-separated, like gdb's directory; ::dir adds more)", helpValue: 'DIRS' }),
    symbols: Flags.string({ description: 'symbol file for a kernel dump (vmlinux); repeat the flag for more', multiple: true, multipleNonGreedy: true, helpValue: 'FILE' }),
    modules: Flags.string({ description: "where a kernel dump's modules (.ko) are, searched recursively; default /usr/lib/debug/lib/modules/RELEASE (Debian's -dbg) and /lib/modules/RELEASE when present. Needs --symbols vmlinux", helpValue: 'DIR' }),
    'debug-file-directory': Flags.string({ description: "where separate debug files are looked for, by build-id and .gnu_debuglink (colon-separated, empty for none; default /usr/lib/debug, as gdb's set debug-file-directory)", helpValue: 'DIRS' }),
    execute: Flags.string({ char: 'e', description: "run these commands (';' or newline separated) and exit; repeat the flag for more, run in order", helpValue: 'CMDS', multiple: true, multipleNonGreedy: true }),
    json: Flags.boolean({ description: 'print answers as JSON, one value per line' }),
    gdb: Flags.string({ description: 'also serve the target to gdb (target remote HOST:PORT); host defaults to 127.0.0.1', helpValue: '[HOST:]PORT' }),
    ...gdbPolicyFlags(Flags.boolean),
    ...contractFlags(Flags),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Open.flags);
    const { args, flags } = await this.parse(Open);
    process.exitCode = await runOpen(args.file, { ...flags, execute: scriptOf(flags.execute) });
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
