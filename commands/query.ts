import { Args, Command, Flags } from '@oclif/core';
import { reportError, stdoutOutput } from '../src/mdb/cli-session.js';
import { printTable } from '../src/mdb/modules/history.js';
import { TraceReader } from '../src/store/trace-reader.js';

export default class Query extends Command {
  static override summary = 'Run read-only SQL over a recorded trace';

  static override description = [
    'The trace is opened read-only. Views: chunks(chunk, first_seq, last_seq, instructions, writes, lines, pc_bytes), memory_lines(phys_addr, chunk, chunk_first_seq, bytes_written_mask, bytes), checkpoints(seq, vcpu, chunk, kind, full_image, bytes), inputs(seq, vcpu, kind, detail), summary(first_seq, last_seq, instructions, writes, chunks, checkpoints, inputs). Table-valued functions: steps(first_seq, count) -> (seq, vcpu, pc) and writes(phys_addr, length) -> (seq, host, phys_addr, length, old, new).',
    'Tables (chunk, mem, ckpt, ram_init, input, meta) hold packed data; see src/store/schema.ts.',
  ].join('\n\n');

  static override examples = [
    "<%= config.bin %> query kernel.trace 'SELECT * FROM summary'",
    "<%= config.bin %> query kernel.trace \"SELECT seq, printf('%x', pc) FROM steps(1000, 10)\"",
    "<%= config.bin %> query kernel.trace 'SELECT seq, hex(old), hex(new) FROM writes(1052672, 8) LIMIT 5'",
  ];

  static override args = {
    file: Args.string({ required: true, description: 'the trace file', ignoreStdin: true }),
    sql: Args.string({ required: true, description: 'the query', ignoreStdin: true }),
  };

  static override flags = {
    json: Flags.boolean({ description: 'one JSON object per row' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Query);
    let reader: TraceReader | undefined;
    try {
      reader = TraceReader.open(args.file);
      printTable(reader.sql(args.sql), stdoutOutput(flags.json));
    } catch (e) {
      reportError(e);
      process.exitCode = 1;
    } finally {
      reader?.close();
    }
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<void> {
    if (err.oclif?.exit === 0) return;
    (this as unknown as { parsed: boolean }).parsed = true;
    const first = (err.message ?? String(err)).split('\n').find((l) => l.trim() !== '') ?? String(err);
    process.stderr.write(`dbg: ${first.trim()} (see dbg query --help)\n`);
    process.exitCode = 2;
  }
}
