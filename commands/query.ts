import { Args, Command, Flags } from '@oclif/core';
import { refuseBooleanValues, reportCommandError } from '../src/cli/usage-error.js';
import { reportError, stdoutOutput } from '../src/mdb/cli-session.js';
import { printTable } from '../src/mdb/modules/history.js';
import { namesCalls } from '../src/store/calls-db.js';
import { interruptibleSql } from '../src/store/interruptible-sql.js';
import { TraceReader } from '../src/store/trace-reader.js';
import { ReplayTarget } from '../src/targets/replay/replay-target.js';

export default class Query extends Command {
  static override summary = 'Run read-only SQL over a recorded trace';

  static override description = [
    'The trace is opened read-only. Views: chunks(chunk, first_seq, last_seq, instructions, writes, lines, pc_bytes), memory_lines(phys_addr, chunk, chunk_first_seq, bytes_written_mask, bytes), checkpoints(seq, vcpu, chunk, kind, full_image, bytes), inputs(seq, vcpu, kind, detail), summary(first_seq, last_seq, instructions, writes, chunks, checkpoints, inputs). The calls table, derived the first time a query names it (call and interrupt entries paired with their ret/iret, per vCPU): calls(call_seq, return_seq, vcpu, depth, kind, vector, caller_pc, caller, callee_pc, callee, instructions). Table-valued functions: steps(first_seq, count) -> (seq, vcpu, pc), writes(phys_addr, length) -> (seq, host, phys_addr, length, old, new) and activity(buckets) -> (bucket, pc, instructions). hex64(x) writes an address as dbg does (SQLite integers are signed: a kernel pc is negative as a number).',
    'With --json each row is one object: integers are numbers (decimal strings beyond 2^53), blobs hex strings; an error is {"error": {"code", "message"}} on stdout.',
    'Tables (chunk, mem, ckpt, ram_init, input, meta) hold packed data; see src/store/schema.ts.',
  ].join('\n\n');

  static override examples = [
    "<%= config.bin %> query kernel.trace 'SELECT * FROM summary'",
    '<%= config.bin %> query kernel.trace "SELECT seq, vcpu, hex64(pc) AS pc FROM steps(1000, 10)"',
    "<%= config.bin %> query kernel.trace 'SELECT seq, hex(old), hex(new) FROM writes(1052672, 8) LIMIT 5'",
    "<%= config.bin %> query kernel.trace 'SELECT callee, count(*), sum(instructions) FROM calls GROUP BY callee ORDER BY 3 DESC'",
  ];

  static override args = {
    file: Args.string({ required: true, description: 'the trace file', ignoreStdin: true }),
    sql: Args.string({ required: true, description: 'the query', ignoreStdin: true }),
  };

  static override flags = {
    json: Flags.boolean({ description: 'one JSON object per row' }),
  };

  async run(): Promise<void> {
    refuseBooleanValues(this.argv, Query.flags);
    const { args, flags } = await this.parse(Query);
    // Ctrl-C stops the query (it runs on a worker thread; this one keeps watching for SIGINT).
    const abort = new AbortController();
    const onSigint = (): void => abort.abort();
    process.on('SIGINT', onSigint);
    try {
      TraceReader.open(args.file).close(); // a bad trace is reported before any worker starts
      if (namesCalls(args.sql)) {
        // The calls table is derived from the history replayed with its symbols: the target does it.
        const target = ReplayTarget.open(args.file);
        try {
          printTable(await target.caps.history!.sqlInterruptible(args.sql, abort.signal), stdoutOutput(flags.json));
        } finally {
          target.close();
        }
      } else printTable(await interruptibleSql(args.file, args.sql, abort.signal), stdoutOutput(flags.json));
    } catch (e) {
      reportError(e, flags.json);
      process.exitCode = abort.signal.aborted ? 130 : 1;
    } finally {
      process.off('SIGINT', onSigint);
    }
  }

  /** Flag and argument mistakes: one line, no stack, exit status 2 (as usage errors are). */
  protected override async catch(err: Error): Promise<void> {
    reportCommandError(this, err);
  }
}
