/**
 * ::typedef, MDB's way to make C types inside the debugger (mdb_typedef.c):
 *
 *   ::typedef -c LP64|LP32|ILP32      the C base types and <stdint.h> typedefs of a data model
 *   ::typedef "struct [tag] { int a; char *b[4]; }" NAME    a struct or union, named NAME
 *   ::typedef TYPE NAME               NAME for an existing type (`::typedef uint8_t rm_t`)
 *   ::typedef -l                      the types made so far, one a line
 *   ::typedef -d                      forget them all
 *   ::typedef -r FILE                 the types of FILE's DWARF (MDB: its CTF), for a target without
 *
 * The types live in the session (synthetic-types.ts) and every typed dcmd sees them after the
 * target's own: ::print, ::sizeof, ::offsetof, ::array, ::printf.
 */

import { DbgError, errors } from '../../common/errors.js';
import { dwarfOf } from '../../symbols/dwarf/dwarf-info.js';
import { ElfFile } from '../../symbols/elf-file.js';
import { DwarfTypes } from '../../types/dwarf-types.js';
import type { Dcmd, DcmdModule } from '../dcmd.js';
import { parseFlags } from '../parse-flags.js';
import { syntheticTypes } from '../synthetic-types.js';
import { typeSpace } from './types.js';

export const typedefDcmd: Dcmd = {
  name: 'typedef',
  usage: '::typedef [-c model | -d | -l | -r file] | ::typedef TYPE NAME | ::typedef "struct|union [tag] { members }" NAME',
  help:
    'create C types inside the debugger, as MDB does: -c LP64|LP32|ILP32 makes the base types and <stdint.h> typedefs of that\n' +
    'data model; "struct [tag] { type name; type *name[N]; }" NAME lays out a struct or union (natural alignment; quote it,\n' +
    "as ';' ends a command) and names it; TYPE NAME names an existing type. -l lists the types made, -d deletes them,\n" +
    '-r FILE adds the types of an ELF file with DWARF. The target\'s own types are found first; these after.',
  host: 'reads-files',
  run(s, inv, out) {
    if (inv.addr !== undefined) throw errors.badInput(`::typedef takes no address (usage: ${this.usage})`);
    const { flags, rest } = parseFlags(this.name, this.usage, inv.args, { booleans: 'dl', strings: 'cr' });
    if (flags.size > 1) throw errors.badInput(`::typedef: -${[...flags.keys()].join(' and -')} exclude each other (usage: ${this.usage})`);
    if (flags.size === 1 && rest.length > 0) throw errors.badInput(`::typedef -${[...flags.keys()][0]}: unexpected argument "${rest[0]}" (usage: ${this.usage})`);
    const synth = syntheticTypes(s);
    const space = typeSpace(s);
    if (flags.has('d')) {
      s.state.delete('synthetic-types');
      return;
    }
    const model = flags.get('c');
    if (typeof model === 'string') {
      synth.createBase(model);
      return;
    }
    if (flags.has('l')) {
      if (out.jsonMode) out.json(synth.names());
      else for (const n of synth.names()) out.line(n);
      return;
    }
    const file = flags.get('r');
    if (typeof file === 'string') {
      synth.importFrom(file, dwarfTypesOf(file));
      return;
    }
    if (rest.length < 2) throw errors.badInput(`::typedef needs a type and a name (usage: ${this.usage})`);
    const exists = (n: string) => space.find(n) !== undefined;
    if (rest.length === 2 && rest[0]!.includes('{')) {
      synth.define(rest[0]!, rest[1]!, (n) => space.find(n), exists);
      return;
    }
    const src = rest.slice(0, -1).join(' ');
    const dst = rest[rest.length - 1]!;
    if (exists(dst)) throw errors.badInput(`::typedef: ${dst} already exists`);
    const type = space.find(src);
    if (!type) throw new DbgError('no-symbol', `::typedef: type ${src} does not exist: ${space.where()}`);
    synth.alias(type, dst);
  },
};

/** The DWARF types of the ELF file at `path`; DbgError when it cannot be read or has none. */
function dwarfTypesOf(path: string): DwarfTypes {
  let elf: ElfFile;
  try {
    elf = ElfFile.open(path);
  } catch (e) {
    if (e instanceof DbgError) throw new DbgError(e.code, `::typedef -r ${path}: ${e.message}`);
    const err = e as NodeJS.ErrnoException;
    throw new DbgError('not-found', `::typedef -r ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  const d = dwarfOf(elf);
  if (!d) throw errors.badInput(`::typedef -r ${path}: the file has no DWARF debug info (build it with -g)`);
  return new DwarfTypes(d);
}

export const typedefModule: DcmdModule = { name: 'typedef', dcmds: [typedefDcmd] };
