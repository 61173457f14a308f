/**
 * `dbg report TRACE`: open the trace as a replay target (its symbols as `dbg replay` finds them),
 * compute the page's data (report-data.ts) and write the page (report-page.ts).
 */

import { writeFileSync } from 'node:fs';
import { DbgError } from '../common/errors.js';
import { Disassembler } from '../mdb/disasm.js';
import { ReplayTarget } from '../targets/replay/replay-target.js';
import { reportData, type ReportData } from './report-data.js';
import { reportPage } from './report-page.js';

export interface WriteReportOptions {
  readonly out: string;
  readonly symbols?: readonly string[];
}

/** Writes the report of `trace` to `opts.out`; the data it drew, for the caller to summarize. */
export async function writeReport(trace: string, opts: WriteReportOptions): Promise<ReportData> {
  const target = ReplayTarget.open(trace, opts.symbols ? { symbols: opts.symbols } : {});
  try {
    const data = await reportData(target, { tracePath: trace, disassembler: await Disassembler.load(target.arch) });
    try {
      writeFileSync(opts.out, reportPage(data));
    } catch (e) {
      throw new DbgError('io', `cannot write the report "${opts.out}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return data;
  } finally {
    target.close();
  }
}
