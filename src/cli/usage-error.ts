/**
 * oclif's flag and argument errors as dbg prints every failure: one line `dbg: …` on stderr naming
 * the flag or argument, the bad value and the accepted form, then exit status 2 (a usage error).
 * oclif's own messages span several lines, carry colour and end in "See more help with --help".
 */

import { reportError } from '../mdb/cli-session.js';
import { errorJson } from '../mdb/json.js';

const ANSI = /\x1b\[[0-9;]*m/g;

interface OclifError extends Error {
  oclif?: { exit?: number };
  args?: { name?: string; description?: string }[];
}

/** The one line for a parse error of `dbg <command>`. */
export function usageErrorLine(command: string, err: OclifError): string {
  const lines = (err.message ?? String(err))
    .replace(ANSI, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== 'See more help with --help' && !/^The following errors? occurred:$/.test(l));
  let text: string;
  const parsing = /^Parsing (--?\S+)$/.exec(lines[0] ?? '');
  const missing = /^Missing \d+ required args?/.exec(lines[0] ?? '');
  if (parsing && lines[1]) {
    // "Parsing --cpus" + "Expected an integer greater than or equal to 1 but received: 0"
    const m = /^Expected (.*?) but received: (.*)$/.exec(lines[1]);
    text = m ? `${parsing[1]} ${m[2]}: expected ${m[1]}` : `${parsing[1]}: ${lowerFirst(lines[1])}`;
  } else if (missing && err.args?.length) {
    const named = err.args.map((a) => `${(a.name ?? '?').toUpperCase()}${a.description ? `: ${a.description}` : ''}`);
    text = `missing argument${named.length > 1 ? 's' : ''} ${named.join('; ')}`;
  } else {
    text = lines
      .filter((l) => !l.startsWith('Note:') && !l.startsWith('Alternatively,'))
      .map((l) => l.replace(/^Nonexistent flags?: /, 'unknown flag '))
      .map((l) => lowerFirst(l).replace(/\.$/, ''))
      .join('; ');
  }
  return `dbg: ${text} (see dbg ${command} --help)`;
}

function lowerFirst(s: string): string {
  return /^[A-Z][a-z]/.test(s) ? s[0]!.toLowerCase() + s.slice(1) : s;
}

/**
 * The body of every command's `catch`: a parse error as one line and exit status 2; a dbg error
 * thrown past the command's own handling as one line and exit status 1. `--help` and `--version`
 * end by an exit of 0, which is no error.
 */
export function reportCommandError(command: { id?: string }, err: OclifError): void {
  if (err.oclif?.exit === 0) return;
  // Reported here: oclif's "did not parse its arguments" warning would only repeat it.
  (command as { parsed?: boolean }).parsed = true;
  // The flags did not parse, so --json is looked for in the words themselves.
  const json = (command as { argv?: string[] }).argv?.includes('--json') ?? false;
  if (err.oclif === undefined) {
    reportError(err, json);
    process.exitCode = 1;
    return;
  }
  const line = usageErrorLine(command.id ?? '', err);
  if (json) process.stdout.write(`${errorJson('usage', line.replace(/^dbg: /, ''))}\n`);
  else process.stderr.write(`${line}\n`);
  process.exitCode = 2;
}

/**
 * oclif reads `--raw=yes` as the flag --raw and a word "yes" (which then stands as FILE, or is
 * dropped): a boolean flag given a value is a usage error here, before oclif parses.
 */
export function refuseBooleanValues(argv: readonly string[], flags: Record<string, { type: string; char?: string }>): void {
  const byChar = new Map<string, { type: string }>(Object.values(flags).flatMap((f) => (f.char ? [[`-${f.char}`, f] as [string, { type: string }]] : [])));
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') return;
    const named = word.startsWith('--') ? flags[word.slice(2)] : byChar.get(word);
    if (named && named.type !== 'boolean') {
      i++; // the flag's value, which may itself start with --
      continue;
    }
    const m = /^--([\w-]+)=(.*)$/.exec(word);
    if (m && flags[m[1]!]?.type === 'boolean') {
      throw Object.assign(new Error(`--${m[1]} takes no value (got ${word}); give --${m[1]} alone`), { oclif: { exit: 2 } });
    }
  }
}
