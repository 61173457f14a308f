/**
 * Types from DWARF against gdb 13 as the oracle: a gcc-built program with every kind of C type
 * (test/fixtures-src/types.c), dumped by gcore; ::sizeof, ::offsetof and ::print answer what
 * `p sizeof`, `p &((T *)0)->m` and `p` answer.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { failure, mdbNumber, offsetofLine, run, sessionOn } from '../mdb/helpers.js';

let d: Debuggee;
let s: Session;

/** gdb's answers to `commands`, one per command (each printed between markers). */
function gdbAnswers(exe: string, core: string, commands: readonly string[]): string[] {
  const cmds = commands.flatMap((c, i) => [`echo @@${i}\\n`, c]);
  const out = gdbBatch(exe, core, cmds);
  const parts = out.split(/^@@\d+\n/m).slice(1);
  return parts.map((p) => p.trim());
}

const gdbValue = (text: string) => text.replace(/^\$\d+ = /, '');

const sizes = ['struct item', 'struct bits', 'struct packet', 'union both', 'enum color', 'pid_type', 'ulong_t', 'int', 'unsigned char', 'char *', 'struct item *'];
const offsets: [string, string][] = [
  ['struct item', 'next'],
  ['struct item', 'hits'],
  ['struct item', 'as_float'],
  ['struct item', 'pos'],
  ['struct item', 'pos.y'],
  ['struct item', 'color'],
  ['struct item', 'bits'],
  ['struct item', 'bits.tail'],
  ['struct item', 'grid'],
  ['struct item', 'grid[1][2]'],
  ['struct item', 'name'],
  ['struct item', 'handler'],
  ['struct item', 'weight'],
  ['struct item', 'raw[3]'],
  ['struct packet', 'data'],
  ['union both', 'bytes[5]'],
];
/** Scalar members printed in decimal by both: our `::print -d` against gdb's `p/d`. */
const scalars = [
  'items[0].hits',
  'items[1].hits',
  'items[2].as_int',
  'items[1].pos.x',
  'items[2].pos.y',
  'items[0].bits.a',
  'items[1].bits.b',
  'items[2].bits.b',
  'items[1].bits.c',
  'items[2].bits.wide',
  'items[2].bits.tail',
  'items[1].grid[1][2]',
  'items[2].owner',
  'items[0].raw[3]',
  'matrix[2][3][1]',
  'both_val.bytes[6]',
  'const_int',
  'counter_ul',
  'packet_ptr->len',
  'packet_ptr->kind',
  'item_head->next->next->owner',
];

let gdbSizes: string[];
let gdbOffsets: string[];
let gdbScalars: string[];
let gdbMisc: string[];

beforeAll(async () => {
  d = await debuggee('types');
  s = sessionOn(openTarget(d.core, {}));
  gdbSizes = gdbAnswers(d.exe, d.core, sizes.map((t) => `p sizeof(${t})`));
  gdbOffsets = gdbAnswers(d.exe, d.core, offsets.map(([t, m]) => `p/x (unsigned long)&((${t} *)0)->${m}`));
  // gdb's /d reads an unsigned char as signed; /u keeps it unsigned.
  gdbScalars = gdbAnswers(d.exe, d.core, scalars.map((e) => `p/${e.includes('raw') ? 'u' : 'd'} ${e}`));
  gdbMisc = gdbAnswers(d.exe, d.core, ['p items[1].name', 'p items[0].color', 'p items[2].color', 'p items[2].flags', 'p items[1].as_float', 'p/x &items[1]', 'p items[0].label', 'p/x items[1].weight']);
});
afterAll(() => s?.target.close());

describe('DWARF types of a gcc -O0 -g program agree with gdb', () => {
  it('::sizeof gives what `p sizeof(T)` gives', async () => {
    for (let i = 0; i < sizes.length; i++) {
      const ours = await run(s, `::sizeof ${sizes[i]}`);
      expect(ours[0], sizes[i]).toBe(`sizeof (${sizes[i]}) = ${mdbNumber(gdbValue(gdbSizes[i]!))}`);
    }
  });

  it('::offsetof gives what `p &((T *)0)->m` gives, through nested structs, anonymous unions and arrays', async () => {
    for (let i = 0; i < offsets.length; i++) {
      const [t, m] = offsets[i]!;
      const ours = await run(s, `::offsetof ${t} ${m}`);
      const want = BigInt(gdbValue(gdbOffsets[i]!));
      expect(ours[0], `${t} ${m}`).toMatch(offsetofLine(t, m, want));
    }
  });

  it('::print -d of scalar members (bit fields, anonymous unions, multi-dimensional arrays, pointers followed) matches `p/d`', async () => {
    for (let i = 0; i < scalars.length; i++) {
      const e = scalars[i]!;
      const m = /^([a-z_]+)(.*)$/.exec(e)!;
      const [sym, path] = [m[1]!, m[2]!];
      const ours = await run(s, `${sym}::print -d ${path ? path.replace(/^\./, '') : ''}`);
      const g = BigInt(gdbValue(gdbScalars[i]!));
      const text = g === 0n ? '0' : g < 0n ? `-0t${-g}` : `0t${g}`;
      expect(ours[ours.length - 1], e).toMatch(new RegExp(`(^| = )${text.replace(/[-]/g, '\\-')}$`));
    }
  });

  it('char arrays print as strings, enums by name, char pointers with their string, floats', async () => {
    expect(await run(s, 'items::print [1].name')).toEqual([`[1].name = [ ${gdbValue(gdbMisc[0]!).replace(/(\\000)+"$/, '"')} ]`]);
    expect(gdbValue(gdbMisc[1]!)).toBe('RED');
    expect(await run(s, 'items::print [0].color')).toEqual(['[0].color = 0 (RED)']);
    expect(gdbValue(gdbMisc[2]!)).toBe('BLUE');
    expect(await run(s, 'items::print [2].color')).toEqual(['[2].color = -0t2 (BLUE)']);
    // A flags enum (every value a power of two) prints in hex with its names or-ed.
    expect(gdbValue(gdbMisc[3]!)).toBe('(F_READ | F_EXEC)');
    expect(await run(s, 'items::print [2].flags')).toEqual(['[2].flags = 0x5 (F_READ|F_EXEC)']);
    expect(gdbValue(gdbMisc[4]!)).toBe('3');
    expect(await run(s, 'items::print [1].as_float')).toEqual(['[1].as_float = +3.0000000e+00']);
    const label = /(0x[0-9a-f]+) "first"/.exec(gdbMisc[6]!)!;
    expect(await run(s, 'items::print -n [0].label')).toEqual([`[0].label = ${label[1]}`]);
    expect(await run(s, 'items::print [0].label')).toEqual([`[0].label = ${label[1]} "first"`]);
  });

  it('a whole struct prints as MDB lays it out, with -t types and -a addresses', async () => {
    const at = BigInt(gdbValue(gdbMisc[5]!).replace(/^\(.*\) /, ''));
    const lines = await run(s, `${at.toString(16)}::print -t struct item`);
    expect(lines[0]).toBe('struct item {');
    expect(lines).toContain('    struct item *next = items+0xf0');
    expect(lines).toContain('    const char *label = 0x' + (lines.find((l) => l.includes('label'))!.match(/0x([0-9a-f]+)/)![1]) + ' "second"');
    expect(lines).toContain('    volatile int hits = 0x5');
    expect(lines).toContain('    char [12] name = [ "item-1" ]');
    expect(lines).toContain('    int [2][3] grid = [ [ 0x1, 0x2, 0x3 ], [ 0xb, 0xc, 0xd ] ]');
    expect(lines).toContain('        unsigned int:3 a :3 = 0x6');
    expect(lines).toContain('        int:5 b :5 = -0t4');
    expect(lines).toContain('    int (*)(int, const char *) handler = handle');
    expect(lines).toContain('    pid_type owner = 0x3e9');
    expect(lines).toContain('    unsigned char [4] raw = [ 0x1, 0x2, 0x7f, 0xff ]');
    expect(lines[lines.length - 1]).toBe('}');
    const a = await run(s, `${at.toString(16)}::print -a struct item hits`);
    expect(a).toEqual([`${(at + 0x10n).toString(16)} hits = 0x5`]);
  });

  it('sym::print uses the symbol\'s own type; a member path shows children as path.member', async () => {
    const lines = await run(s, 'both_val::print');
    expect(lines).toEqual(['{', '    word = 0x1122334455667788', '    bytes = [ 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11 ]', '}']);
    // A pointer's member path starts with -> implicitly, as in MDB.
    const pos = await run(s, 'item_head::print pos');
    expect(pos).toEqual(['pos = {', '    pos.x = 0xffff', '    pos.y = 0', '}']);
    expect(await run(s, 'item_head::print ->next->owner')).toEqual(['->next->owner = 0x3e9']);
  });

  it('a flexible array member has no size; ::sizeof of the struct stops before it', async () => {
    expect((await failure(s, '::sizeof struct nosuch')).message).toBe('::sizeof: unknown type "struct nosuch": not defined in the debug info of types');
    const lines = await run(s, '*packet_ptr::print struct packet');
    expect(lines).toEqual(['{', '    len = 0x5', '    kind = 0x102', '    data = [ ... ]', '}']);
  });

  it('bad member paths and types are one-line errors', async () => {
    expect((await failure(s, 'items::print struct item nosuch')).message).toMatch(/^failed to find member nosuch of struct item \(members: next, label, hits, /);
    expect((await failure(s, 'items::print struct item grid[5]')).message).toBe('index 5 is outside of array bounds [0 .. 1] of int [2][3]');
    expect((await failure(s, 'items::print struct item hits.x')).message).toBe('volatile int is not a struct or union type (member path ".hits.x")');
    expect((await failure(s, 'items::print struct item next->')).message).toBe('expected a member name at "" in ".next->"');
    expect((await failure(s, '::offsetof struct item next->hits')).message).toMatch(/goes through a pointer/);
    expect((await failure(s, '::offsetof pid_type x')).message).toBe('::offsetof: pid_type is not a struct or union type');
    expect((await failure(s, '::print')).message).toMatch(/^::print needs an address or a type/);
    expect((await failure(s, 'main+1::print')).message).toMatch(/^::print: no symbol starts at 0x/);
  });
});

describe('typed objects for dmods', () => {
  it('walk a list by member name, read members, follow pointers, containerOf', async () => {
    const { objects } = await import('../../src/mdb/modules/types.js');
    const o = objects(s);
    const head = o.object('item_head');
    const names = [...o.listForEach(head.value(), 'struct item', 'next')].map((it) => `${it.member('name').string()} ${it.member('owner').value()} ${it.member('bits.b').value()} ${it.member('label').string()}`);
    expect(names).toEqual(['item-0 1000 -3 first', 'item-1 1001 -4 second', 'item-2 1002 -5 third']);
    const second = head.deref().member('next').deref();
    expect(second.member('grid').index(1).index(2).value()).toBe(13n);
    const pos = second.member('pos.y');
    expect(o.containerOf(pos.address, 'struct item', 'pos.y').address).toBe(second.address);
    expect(() => head.member('nosuch')).toThrow(/failed to find member nosuch of struct item/);
    expect(() => second.member('pos').value()).toThrow(/has no scalar value/);
  });
});
