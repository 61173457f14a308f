import { parseArgs } from 'node:util';
import { runOpen } from './open-command.js';
import { scriptOf } from './script-flag.js';

/**
 * `dbg open` without oclif. Loading @oclif/core costs 80-200 ms, more than opening a 1 GiB core
 * and unwinding every thread, and `dbg open core -e '::stack -a'` is the command people script.
 * Only a command line this parser fully understands runs here; anything else (help, a bad or
 * unknown flag, a missing argument) returns undefined and goes to oclif, which explains it.
 */
export async function fastPath(argv: readonly string[]): Promise<number | undefined> {
  if (argv[0] !== 'open' || argv.some((a) => a === '--help' || a === '-h')) return undefined;
  let parsed;
  try {
    parsed = parseArgs({
      args: argv.slice(1),
      allowPositionals: true,
      strict: true,
      options: {
        raw: { type: 'boolean' },
        exe: { type: 'string' },
        sysroot: { type: 'string' },
        'solib-search-path': { type: 'string' },
        'source-path': { type: 'string' },
        symbols: { type: 'string', multiple: true },
        modules: { type: 'string' },
        'debug-file-directory': { type: 'string' },
        execute: { type: 'string', short: 'e', multiple: true },
        json: { type: 'boolean' },
        gdb: { type: 'string' },
        'gdb-allow-remote': { type: 'boolean' },
        'gdb-allow-host-io': { type: 'boolean' },
      },
    });
  } catch {
    return undefined;
  }
  if (parsed.positionals.length !== 1) return undefined;
  return runOpen(parsed.positionals[0]!, { ...parsed.values, execute: scriptOf(parsed.values.execute) });
}
