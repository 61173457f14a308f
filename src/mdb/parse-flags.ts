/**
 * Flag parsing for dcmds, so that every dcmd reports a bad flag the same way.
 *
 * MDB's dcmds take getopt-style flags (`::stack -a`, `::nm -f name`). A dcmd declares its flags
 * once; parseFlags returns the values and the remaining positional words, or throws
 * DbgError('bad-input') naming the dcmd, the bad flag and the usage line.
 */

import { errors } from '../common/errors.js';

export interface FlagSpec {
  /** Single letters without a value: `-a`. */
  readonly booleans?: string;
  /** Single letters that take a value: `-f name` or `-fname`. */
  readonly strings?: string;
}

export interface ParsedFlags {
  readonly flags: ReadonlyMap<string, string | true>;
  readonly rest: readonly string[];
}

export function parseFlags(dcmd: string, usage: string, args: readonly string[], spec: FlagSpec): ParsedFlags {
  const flags = new Map<string, string | true>();
  const rest: string[] = [];
  const bools = spec.booleans ?? '';
  const strs = spec.strings ?? '';
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a.length === 1 || /^-[0-9]/.test(a)) {
      rest.push(a);
      continue;
    }
    for (let j = 1; j < a.length; j++) {
      const c = a[j]!;
      if (bools.includes(c)) {
        flags.set(c, true);
      } else if (strs.includes(c)) {
        const inline = a.slice(j + 1);
        if (inline) flags.set(c, inline);
        else if (i + 1 < args.length) flags.set(c, args[++i]!);
        else throw errors.badInput(`::${dcmd}: option -${c} needs a value (usage: ${usage})`);
        break;
      } else {
        throw errors.badInput(`::${dcmd}: unknown option -${c} (usage: ${usage})`);
      }
    }
  }
  return { flags, rest };
}
