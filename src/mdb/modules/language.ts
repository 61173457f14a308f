/**
 * The dcmds of MDB's language itself, which need no target: $d (the default radix), ::echo,
 * ::eval, ::map, ::dcmds and ::walkers.
 */

import { errors } from '../../common/errors.js';
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

const dcmds: Dcmd = {
  name: 'dcmds',
  usage: '::dcmds',
  help: 'list the dcmds, one a line, with their module',
  run(s, inv, out) {
    if (noFlags(this, inv.args).length > 0) throw errors.badInput(`::dcmds: unexpected argument "${inv.args[0]}" (usage: ${this.usage})`);
    const all = full(s).dcmds();
    if (out.jsonMode) {
      out.json(all.map((r) => ({ name: r.item.name, module: r.module, help: r.item.help.split('\n')[0] })));
      return;
    }
    const w = Math.max(...all.map((r) => r.item.name.length));
    for (const r of all) out.line(`${r.item.name.padEnd(w)} - ${r.item.help.split('\n')[0]} (${r.module})`);
  },
};

const walkers: Dcmd = {
  name: 'walkers',
  usage: '::walkers',
  help: 'list the walkers, one a line, with their module',
  run(s, inv, out) {
    if (noFlags(this, inv.args).length > 0) throw errors.badInput(`::walkers: unexpected argument "${inv.args[0]}" (usage: ${this.usage})`);
    const all = full(s).walkers();
    if (out.jsonMode) {
      out.json(all.map((r) => ({ name: r.item.name, module: r.module, help: r.item.help })));
      return;
    }
    const w = Math.max(0, ...all.map((r) => r.item.name.length));
    for (const r of all) out.line(`${r.item.name.padEnd(w)} - ${r.item.help} (${r.module})`);
  },
};

export const languageModule: DcmdModule = {
  name: 'mdb',
  dcmds: [radix, echo, evalDcmd, map, dcmds, walkers],
};
