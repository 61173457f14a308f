/**
 * The dcmds of MDB's language itself, which need no target: $d (the default radix), ::echo,
 * ::eval, ::map, ::dcmds and ::walkers; $< and $<< (macro files, found along the macro path) and
 * $> (a copy of the output into a file).
 */

import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { DbgError, errors } from '../../common/errors.js';
import type { Dcmd, DcmdModule, SessionView } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';
import type { Session } from '../session.js';

function full(s: SessionView): Session {
  return s as Session;
}

function noFlags(d: Dcmd, args: readonly string[]): readonly string[] {
  return parseFlags(d.name, d.usage, args, {}).rest;
}

/** `value` in `radix`, as MDB's %r prints it (no prefix). */
export function inRadix(value: bigint, radix: number): string {
  return value.toString(radix);
}

const radix: Dcmd = {
  name: 'radix',
  usage: '[radix]$d',
  help: 'print the default radix of numbers, or set it to the address given ($d)',
  run(s, inv, out) {
    if (noFlags(this, inv.args).length > 0) throw errors.badInput(`$d: unexpected argument "${inv.args[0]}" (usage: ${this.usage})`);
    const session = full(s);
    if (inv.addr !== undefined) {
      if (inv.addr < 2n || inv.addr > 36n) throw errors.badInput(`$d: radix ${inv.addr} is out of range (2 to 36; 0t10 is ten)`);
      session.radix = Number(inv.addr);
    }
    if (out.jsonMode) out.json({ radix: session.radix });
    else out.line(`radix = ${session.radix} base ten`);
  },
};

const echo: Dcmd = {
  name: 'echo',
  usage: '::echo [word...]',
  help: 'print the words, each followed by a blank, then a newline',
  run(_s, inv, out) {
    if (out.jsonMode) out.json(inv.args.join(' '));
    else out.line(inv.args.map((a) => a + ' ').join(''));
  },
};

const evalDcmd: Dcmd = {
  name: 'eval',
  usage: '[addr]::eval COMMAND',
  help: 'run COMMAND (one argument; quote it) with dot at addr: `::walk list | ::eval ./J`',
  async run(s, inv, out) {
    const rest = noFlags(this, inv.args);
    if (rest.length === 0) throw errors.badInput(`::eval needs a command (usage: ${this.usage})`);
    if (inv.addr !== undefined) s.dot = inv.addr;
    await s.execute(rest.join(' '), out);
  },
};

const map: Dcmd = {
  name: 'map',
  usage: '[addr]::map EXPR',
  help: 'print EXPR evaluated with dot at addr, in the default radix: `::walk list | ::map .+8`',
  run(s, inv, out) {
    const rest = noFlags(this, inv.args);
    if (rest.length === 0) throw errors.badInput(`::map needs an expression (usage: ${this.usage})`);
    if (inv.addr !== undefined) s.dot = inv.addr;
    const v = s.evaluate(rest.join(' '));
    if (out.piping && out.value) out.value(v);
    if (out.jsonMode) out.json('0x' + v.toString(16));
    else out.line(inRadix(v, full(s).radix));
  },
};

/** `::dcmds` and `::walkers`: one line per entry, `name - help (module)`; JSON objects with --json. */
function lister(name: 'dcmds' | 'walkers'): Dcmd {
  return {
    name,
    usage: `::${name}`,
    help: `list the ${name}, one a line, with their module`,
    run(s, inv, out) {
      if (noFlags(this, inv.args).length > 0) throw errors.badInput(`::${name}: unexpected argument "${inv.args[0]}" (usage: ${this.usage})`);
      const session = full(s);
      const all = (name === 'dcmds' ? session.dcmds() : session.walkers()).map((r) => ({ name: r.item.name, module: r.module, help: r.item.help.split('\n')[0]! }));
      if (out.jsonMode) {
        out.json(all);
        return;
      }
      const w = Math.max(0, ...all.map((r) => r.name.length));
      for (const r of all) out.line(`${r.name.padEnd(w)} - ${r.help} (${r.module})`);
    },
  };
}

const dcmds = lister('dcmds');
const walkers = lister('walkers');

/**
 * A macro file by name: a name with a `/` is a path; else the first directory of the macro path
 * (::macro_path; the DBG_MACRO_PATH variable, `:`-separated; else the current directory) that has it.
 */
export function findMacro(session: Session, name: string): string {
  if (name.includes('/') || isAbsolute(name)) {
    if (!existsSync(name)) throw new DbgError('not-found', `macro file "${name}" does not exist`);
    return name;
  }
  for (const dir of session.macroPath) {
    const p = join(dir, name);
    if (existsSync(p) && statSync(p).isFile()) return p;
  }
  throw new DbgError('not-found', `macro "${name}" is not in the macro path (${session.macroPath.join(':')}; ::macro_path sets it)`);
}

function macroRunner(name: 'macro' | 'source', usage: string, help: string): Dcmd {
  return {
    name,
    usage,
    help,
    host: 'reads-files',
    async run(s, inv, out) {
      const rest = noFlags(this, inv.args);
      if (rest.length !== 1) throw errors.badInput(`${name === 'macro' ? '$<' : '$<<'} needs one macro file (usage: ${this.usage})`);
      const session = full(s);
      const file = findMacro(session, rest[0]!);
      if (session.macroDepth >= 16) throw errors.badInput(`macro "${rest[0]}": macros nest deeper than 16 (a macro that runs itself?)`);
      const text = readFileSync(file, 'utf8');
      const dot = s.dot;
      session.macroDepth++;
      try {
        if (inv.addr !== undefined) s.dot = inv.addr;
        await s.execute(text, out);
      } finally {
        session.macroDepth--;
        // `$<` runs in a context of its own: dot comes back; `$<<` leaves what the macro set.
        if (name === 'macro') s.dot = dot;
      }
    },
  };
}

const macro = macroRunner('macro', '[addr]$<FILE', "run the commands of macro FILE, with dot at addr (dot is restored after)");
const source = macroRunner('source', '[addr]$<<FILE', 'run the commands of macro FILE in the current context (dot stays where the macro left it)');

const macroPath: Dcmd = {
  name: 'macro_path',
  usage: '::macro_path [DIR:DIR...]',
  help: 'print or set the directories $< and $<< search for macro files',
  run(s, inv, out) {
    const rest = noFlags(this, inv.args);
    const session = full(s);
    if (rest.length > 1) throw errors.badInput(`::macro_path takes one :-separated list (usage: ${this.usage})`);
    if (rest.length === 1) session.macroPath = rest[0]!.split(':').filter((d) => d !== '');
    if (out.jsonMode) out.json(session.macroPath);
    else out.line(session.macroPath.join(':'));
  },
};

const log: Dcmd = {
  name: 'log',
  usage: '$>[FILE]',
  help: 'copy all further output into FILE (appending); $> alone stops',
  host: 'writes-files',
  run(s, inv, out) {
    const rest = noFlags(this, inv.args);
    if (rest.length > 1) throw errors.badInput(`$> takes one file (usage: ${this.usage})`);
    const session = full(s);
    session.logTo(rest[0]);
    if (!out.jsonMode) out.line(rest[0] !== undefined ? `logging output to "${rest[0]}"` : 'logging stopped');
  },
};

export const languageModule: DcmdModule = {
  name: 'mdb',
  dcmds: [radix, echo, evalDcmd, map, dcmds, walkers, macro, source, macroPath, log],
};
