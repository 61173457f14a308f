import type { Hook } from '@oclif/core';

/** Edit distance between two words (Levenshtein, one row at a time). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The command closest to `word`, if it is close enough to be what the user meant. */
export function closestCommand(word: string, commands: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of commands) {
    const d = distance(word, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(best.length / 2)) ? best : undefined;
}

/**
 * `dbg opne`: at a terminal, @oclif/plugin-not-found asks "Did you mean open?" and runs it; in a
 * script (no terminal to ask) one line names the closest command and dbg exits 127, as a shell does
 * for a command it cannot find.
 */
const hook: Hook<'command_not_found'> = async function (opts) {
  const visible = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id);
  const word = opts.id.split(':')[0]!;
  if (process.stdin.isTTY && process.stderr.isTTY) {
    const { default: ask } = await import('@oclif/plugin-not-found');
    return ask.call(this, opts);
  }
  const guess = closestCommand(word, visible);
  process.stderr.write(`dbg: "${word}" is not a dbg command${guess ? `; did you mean "dbg ${guess}"?` : ''} (dbg help lists the commands)\n`);
  process.exit(127);
};

export default hook;
