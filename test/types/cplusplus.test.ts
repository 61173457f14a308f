/**
 * C++ types against gdb 13: template instances by their full names (`geo::Vec<int, 3>`,
 * `geo::Pair<int, geo::Vec<float, 2> >`), namespaces, a base class (`<geo::Base> = {...}`, its
 * members found through it), a reference member, and frames named by their DWARF names where the
 * symbol is mangled. test/fixtures-src/templates.cpp built by g++ -O0, dumped by gcore.
 */

import { beforeAll, describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { run, sessionOn } from '../mdb/helpers.js';

let d: Debuggee;
let gdb: Map<string, string>;
let t: ProcessCoreTarget;

/** gdb's answers, by the key each was asked under. */
function askGdb(questions: Record<string, string>): Map<string, string> {
  const cmds = Object.entries(questions).flatMap(([k, q]) => [`echo @@${k}\\n`, q]);
  const out = gdbBatch(d.exe, d.core, cmds);
  const m = new Map<string, string>();
  for (const part of out.split(/^@@/m).slice(1)) {
    const nl = part.indexOf('\n');
    m.set(part.slice(0, nl), part.slice(nl + 1).trim().replace(/^\$\d+ = /, ''));
  }
  return m;
}

beforeAll(async () => {
  d = await debuggee('templates');
  gdb = askGdb({
    sizeVec: 'p sizeof(geo::Vec<int, 3>)',
    sizePair: 'p sizeof(geo::Pair<int, geo::Vec<float, 2> >)',
    sizeShape: 'p sizeof(geo::Shape)',
    offId: 'p/d (long)&((geo::Shape *)0)->id',
    offName: 'p/d (long)&((geo::Shape *)0)->name',
    whatisVi: 'whatis vi',
    whatisPv: 'whatis pv',
    id: 'p shape->id',
    bt: 'bt full',
  });
  t = ProcessCoreTarget.open(d.core);
  return () => t.close();
});

describe('C++ types, as gdb names and prints them', () => {
  it('sizes and offsets of template instances and derived classes by their full names', async () => {
    const s = sessionOn(t);
    const n = (line: string) => BigInt(/ = (\w+)/.exec(line)![1]!);
    expect(n((await run(s, '::sizeof geo::Vec<int, 3>'))[0]!)).toBe(BigInt(gdb.get('sizeVec')!));
    expect(n((await run(s, '::sizeof geo::Pair<int, geo::Vec<float, 2> >'))[0]!)).toBe(BigInt(gdb.get('sizePair')!));
    expect(n((await run(s, '::sizeof geo::Shape'))[0]!)).toBe(BigInt(gdb.get('sizeShape')!));
    // A base class's member, found through the base.
    expect(n((await run(s, '::offsetof geo::Shape id'))[0]!)).toBe(BigInt(gdb.get('offId')!));
    expect(n((await run(s, '::offsetof geo::Shape name'))[0]!)).toBe(BigInt(gdb.get('offName')!));
    expect((await run(s, '*shape::print geo::Shape id'))).toEqual([`id = 0x${Number(gdb.get('id')).toString(16)}`]);
  });

  it('names template instances with their namespace and arguments', async () => {
    const s = sessionOn(t);
    expect(gdb.get('whatisVi')).toBe('type = geo::Vec<int, 3>');
    expect(gdb.get('whatisPv')).toBe('type = geo::Pair<int, geo::Vec<float, 2> >');
    expect((await run(s, 'vi::print -t'))[0]).toBe('struct geo::Vec<int, 3> {');
    expect((await run(s, 'pv::print -t'))[0]).toBe('struct geo::Pair<int, geo::Vec<float, 2> > {');
    expect((await run(s, 'pv::print -t value'))[0]).toBe('struct geo::Vec<float, 2> value = {');
  });

  it('::stack -v: the frames and the derived object as bt full shows them', async () => {
    const lines = await run(sessionOn(t), '::stack -v');
    const bt = gdb.get('bt')!;
    // gdb names the frame by its DWARF name; the symbol is mangled (_Z9wait_hereRN3geo5ShapeE).
    expect(bt).toMatch(/^#1\s+0x[0-9a-f]+ in wait_here \(s=\.\.\.\)/m);
    expect(lines.some((l) => / wait_here\+0x[0-9a-f]+\(s=@0x[0-9a-f]+\) at /.test(l))).toBe(true);
    // main's local s: the base class subobject first, then the members, as gdb prints them (gdb
    // also names the vtable the pointer points into, which needs a C++ demangler).
    const gdbS = /^#2 .* in main \(\)[^\n]*\n\s+s = (.*)$/m.exec(bt)![1]!.replace(/ <vtable for [^>]*>/, '');
    expect(gdbS).toMatch(/^\{<geo::Base> = \{_vptr\.Base = 0x[0-9a-f]+, id = 3\}, origin = \{v = \{1\.25, -2\.5\}\}, name = 0x[0-9a-f]+ "circle", ref = @0x[0-9a-f]+\}$/);
    const ours = lines[lines.findIndex((l) => / main\+0x/.test(l)) + 1]!.trim();
    expect(ours).toBe(`s = ${gdbS}`);
  });
});
