/**
 * Command lines for every dcmd, generated from its usage line (tests that must cover the whole
 * dcmd table without listing it).
 */
import { join } from 'node:path';
import type { Dcmd } from '../../src/mdb/dcmd.js';

let files = 0;
/** Values for the placeholders of usage lines (numbers unless known); FILE is a new path in `dir`. */
function fill(word: string, dir: string): string {
  if (/^-[a-zA-Z]+$|^[+-]?\d/.test(word)) return word; // a flag, a number
  switch (word) {
    case 'addr':
      return 'tasks';
    case 'FILE':
      return join(dir, `out-${files++}`); // never an existing file: ::load and ::symbols refuse, ::dump writes it
    case 'SYMBOL':
    case 'name':
      return 'panic';
    case 'NAME':
      return 'r15';
    case 'QUERY':
      return 'SELECT * FROM summary';
    case 'TEXT...':
      return 'x';
    case 'OFFSET':
    case 'len':
      return '8';
    case 'module':
      return 'kernel.elf';
    case 'dcmd':
      return 'status';
    case 'value':
      return '0';
    case 'count':
    case 'MAX':
      return '4';
    default:
      // Other lower-case words are literal (`over`, `all`); other placeholders are numbers.
      return /^[a-z]+$/.test(word) ? word : '1';
  }
}

/**
 * The invocations a usage line describes: each form (`A | B` where B names the dcmd again, or
 * replaces the last argument), with its optional parts left out and put in, and each choice of
 * alternative (`-r|-w`, `[over|out]`).
 */
export function invocations(d: Dcmd, dir: string): string[] {
  const f = (w: string): string => fill(w, dir);
  const out = new Set<string>([`::${d.name}`]);
  // Alternatives inside an optional part (`[name | addr]`) become one word's alternatives.
  const usage = d.usage.replace(/\s*\|\s*(?=[^[]*\])/g, '|');
  const forms: string[] = [];
  for (const piece of usage.split(' | ')) {
    if (piece.includes(':') || forms.length === 0) forms.push(piece);
    // Another value of the last argument (`SEQ | +N | -N`).
    else forms.push(forms[forms.length - 1]!.replace(/\S+$/, /^[+-]/.test(piece) ? piece[0] + f(piece.slice(1)) : f(piece)));
  }
  for (const form of forms) {
    const m = /^(\S*?)(::?\S+)(.*)$/.exec(form.trim());
    if (!m) continue;
    const [, prefix, , rest] = m;
    for (const optional of [false, true]) {
      const pre = prefix!.replace(/\[([^\]]*)\]/g, optional ? '$1' : '').replace(/[A-Za-z.]+/g, f);
      let words = [''];
      for (const tok of rest!.match(/\[[^\]]*\]|\S+/g) ?? []) {
        const inner = tok.startsWith('[') ? tok.slice(1, -1) : tok;
        if (tok.startsWith('[') && !optional) continue;
        const parts = inner.split(/\s+/).map((w) => w.split('|').map(f));
        for (const alts of parts) words = words.flatMap((p) => alts.map((a) => `${p} ${a}`));
      }
      for (const w of words) out.add(`${pre}::${d.name}${w}`);
    }
  }
  return [...out];
}

