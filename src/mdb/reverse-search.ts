/**
 * Ctrl-R in the REPL: bash's reverse incremental search over the history, which node:readline
 * lacks. While searching the prompt reads `(reverse-i-search)'text': ` and the line shows the
 * newest history entry containing the text; Ctrl-R again finds an older one, Backspace shortens
 * the text, Enter runs the line, Ctrl-G or Escape gives the line back as it was, and any other key
 * (an arrow, Ctrl-A/E...) keeps the line for editing and then acts on it.
 *
 * It wraps readline's keypress handler (`_ttyWrite`) and redraws with `_refreshLine`, both
 * undocumented but stable since Node 10; where they are missing Ctrl-R is left as it was.
 */

import type { Interface } from 'node:readline';

interface Key {
  readonly name?: string;
  readonly ctrl?: boolean;
  readonly meta?: boolean;
  readonly sequence?: string;
}

interface ReadlineInternals {
  line: string;
  cursor: number;
  history: string[];
  _ttyWrite(s: string | undefined, key: Key): void;
  _refreshLine(): void;
}

export function addReverseSearch(rl: Interface, prompt: () => string): void {
  const r = rl as unknown as ReadlineInternals;
  if (typeof r._ttyWrite !== 'function' || typeof r._refreshLine !== 'function') return;
  const original = r._ttyWrite.bind(r);
  let search: { text: string; index: number; saved: string } | undefined;

  const show = (line: string): void => {
    rl.setPrompt(`(reverse-i-search)'${search!.text}': `);
    r.line = line;
    r.cursor = line.length;
    r._refreshLine();
  };
  /** The newest entry at index `from` or older containing the text. */
  const find = (from: number): void => {
    for (let i = from; i < r.history.length; i++) {
      if (r.history[i]!.includes(search!.text)) {
        search!.index = i;
        return show(r.history[i]!);
      }
    }
    show(r.line); // no (further) match: the line stays, as bash's "failing" search
  };
  const leave = (line: string): void => {
    search = undefined;
    rl.setPrompt(prompt());
    r.line = line;
    r.cursor = line.length;
    r._refreshLine();
  };

  r._ttyWrite = (s, key) => {
    if (!search) {
      if (key?.ctrl && key.name === 'r') {
        search = { text: '', index: -1, saved: r.line };
        return show(r.line);
      }
      return original(s, key);
    }
    if (key?.ctrl && key.name === 'r') return find(search.index + 1);
    if ((key?.ctrl && key.name === 'g') || key?.name === 'escape') return leave(search.saved);
    if (key?.name === 'backspace') {
      search.text = search.text.slice(0, -1);
      return find(0);
    }
    if (s && !key?.ctrl && !key?.meta && s.length === 1 && s >= ' ' && key?.name !== 'return' && key?.name !== 'enter') {
      search.text += s;
      return find(Math.max(search.index, 0));
    }
    // Any other key ends the search with the found line, then does what it does.
    leave(r.line);
    return original(s, key);
  };
}
