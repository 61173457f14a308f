import { Args, Command, Flags } from '@oclif/core';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { reportError } from '../src/mdb/cli-session.js';
import { writeReport } from '../src/report/write-report.js';

export default class Report extends Command {
  static override summary = 'Write a picture of a recorded trace: one self-contained HTML page';

  static override description = [
    'The page (every asset inlined: it opens offline) shows a timeline lane per vCPU coloured by function (drag to zoom down to single instructions), interrupts, halts, the end of the history and the guest console output placed on it, a heatmap of memory writes per page over time, the call tree with inclusive and exclusive instruction counts, and the calls (call seq, return seq, vCPU, caller, callee, depth). Clicking a point shows its seq, vCPU, pc, symbol and the `dbg replay` command that goes there.',
    'What the trace lacks (symbols, instructions, console output) is said at the top of the page.',
  ].join('\n\n');

  static override examples = ['<%= config.bin %> report kernel.trace', '<%= config.bin %> report kernel.trace -o kernel.html --symbols kernel.elf'];

  static override args = {
    file: Args.string({ required: true, description: 'the trace file', ignoreStdin: true }),
  };

  static override flags = {
    output: Flags.string({ char: 'o', description: 'the HTML file to write (default: the trace with .html)', helpValue: 'FILE.html' }),
    symbols: Flags.string({ description: 'symbol file of the guest (default: the one the trace names); repeat for more', multiple: true, helpValue: 'FILE' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Report.flags);
    const { args, flags } = await this.parse(Report);
    const out = flags.output ?? args.file.replace(/\.trace$/, '') + '.html';
    try {
      const data = await writeReport(args.file, { out, ...(flags.symbols ? { symbols: flags.symbols } : {}) });
      process.stdout.write(`dbg: wrote ${out}: ${data.instructions} instructions on ${data.vcpus} vCPU${data.vcpus === 1 ? '' : 's'}, ${data.funcs.length} functions, ${data.calls.total} calls, ${data.console.length} console lines\n`);
      for (const l of data.lacks) process.stdout.write(`dbg: report: ${l}\n`);
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
