/**
 * Tab completion for the REPL (node:readline's completer): the word before the cursor completes to
 *
 *   `::na` / `addr::na` / `:na`     a dcmd name (or alias) of the session;
 *   `::walk na`                      a walker name;
 *   `::load F`, `::symbols F`, `::dump F`, and any word starting with `.`, `/` or `~`: a file name;
 *   an identifier, also inside an expression (`*tas`, `main+`) or qualified (`libc.so.6`mal`): a
 *   symbol of the target.
 *
 * Returns [candidates, the text they replace], the shape readline wants.
 */

import { readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Session } from './session.js';

/** More candidates than this are not listed (a libc has thousands of symbols). */
const MAX_CANDIDATES = 200;

export function completeLine(session: Session, line: string): [string[], string] {
  const word = /[^\s;|]*$/.exec(line)![0];
  const before = line.slice(0, line.length - word.length);

  const dcmd = /^(.*?)(::?)([\w-]*)$/.exec(word);
  if (dcmd && !word.includes('/')) {
    const [, addr, colons, stem] = dcmd;
    const names = session.dcmds().flatMap((r) => [r.item.name, ...(r.item.aliases ?? [])]);
    return [limit(unique(names).filter((n) => n.startsWith(stem!)).map((n) => `${addr}${colons}${n}`)), word];
  }
  if (/::walk\s+$/.test(before)) return [limit(session.walkers().map((w) => w.item.name).filter((n) => n.startsWith(word))), word];
  if (/::(load|symbols|dump)\s+$/.test(before) || /^[./~]/.test(word)) return [files(word), word];

  const ident = /[A-Za-z_][\w.$@`]*$/.exec(word);
  if (!ident) return [[], word];
  const stem = ident[0];
  const head = word.slice(0, word.length - stem.length);
  const tick = stem.indexOf('`');
  const out = new Set<string>();
  for (const m of session.target.symbols.modules) {
    if (tick >= 0 && m.name !== stem.slice(0, tick)) continue;
    const want = tick >= 0 ? stem.slice(tick + 1) : stem;
    for (const sym of m.table.rows()) {
      if (!sym.name.startsWith(want) || sym.name === '') continue;
      out.add(`${head}${tick >= 0 ? `${m.name}\`` : ''}${sym.name}`);
      if (out.size > MAX_CANDIDATES) return [[...out].sort(), word];
    }
  }
  return [[...out].sort(), word];
}

function files(word: string): string[] {
  const expanded = word.startsWith('~') ? homedir() + word.slice(1) : word;
  const dir = expanded.endsWith('/') ? expanded : dirname(expanded);
  const base = expanded.endsWith('/') ? '' : expanded.slice(dir === '.' && !expanded.startsWith('./') ? 0 : dir.length + (dir.endsWith('/') ? 0 : 1));
  let names: string[];
  try {
    names = readdirSync(dir || '.');
  } catch {
    return [];
  }
  const shown = word.slice(0, word.length - base.length);
  return limit(
    names
      .filter((n) => n.startsWith(base) && (base.startsWith('.') || !n.startsWith('.')))
      .sort()
      .map((n) => {
        let isDir = false;
        try {
          isDir = statSync(join(dir || '.', n)).isDirectory();
        } catch {
          // a dangling link completes as a file
        }
        return `${shown}${n}${isDir ? '/' : ''}`;
      }),
  );
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)].sort();
}

function limit(xs: string[]): string[] {
  return xs.length > MAX_CANDIDATES ? xs.slice(0, MAX_CANDIDATES) : xs;
}
