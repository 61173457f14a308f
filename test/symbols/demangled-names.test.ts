/**
 * C++ names as dbg prints and reads them: demangled wherever a name is printed, as gdb prints
 * them (checked against gdb's `info symbol` and GNU nm -C on a g++-built program's core), mangled
 * with `::nm -m`, and found by the name a person writes (`Scheduler::tick=K`,
 * `Scheduler::tick::dis`, `::nm ns::Foo::bar`) in the C++ sample guest.
 */

import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ProcessCoreTarget } from '../../src/targets/elfcore/process-core-target.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { FileTarget } from '../../src/targets/file/file-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { failure, run, runJson, sessionOn } from '../mdb/helpers.js';

let d: Debuggee;
beforeAll(async () => {
  d = await debuggee('templates');
});

describe('demangled names on a g++-built program core, against gdb and GNU nm', () => {
  it('$c names every frame as gdb\'s info symbol does', async () => {
    const t = ProcessCoreTarget.open(d.core);
    try {
      const lines = await run(sessionOn(t), '$c');
      const frames = lines.map((l) => /^(0x[0-9a-f]+) (.*)$/.exec(l)!).map((m) => ({ pc: m[1]!, name: m[2]! }));
      expect(frames.some((f) => f.name.startsWith('wait_here(geo::Shape&)+0x'))).toBe(true);
      // One answer per frame: "NAME + OFF in section …" or "No symbol matches …" (other lines are gdb's banner).
      const gdb = gdbBatch(d.exe, d.core, frames.map((f) => `info symbol ${f.pc}`)).split('\n').filter((l) => / in section |^No symbol matches/.test(l));
      expect(gdb).toHaveLength(frames.length);
      frames.forEach((f, i) => {
        // gdb: "wait_here(geo::Shape&) + 31 in section .text of /path/templates"
        const m = /^(.*?)(?: \+ (\d+))? in section /.exec(gdb[i]!);
        if (!m) return; // gdb names no symbol (and neither, then, does dbg's "?")
        const ours = f.name.replace(/^[^`(]*`/, ''); // dbg qualifies a library's names: libc.so.6`pause
        expect(ours).toBe(m[2] ? `${m[1]}+0x${Number(m[2]).toString(16)}` : m[1]);
      });
    } finally {
      t.close();
    }
  });

  it('::nm prints what nm -C prints, and the symbol table\'s own names with -m', async () => {
    const t = ProcessCoreTarget.open(d.core);
    try {
      const s = sessionOn(t);
      const mod = basename(d.exe);
      const shown = (await runJson(s, `::nm -M ${mod}`))[0] as { name: string; addr: string }[];
      const raw = (await runJson(s, `::nm -m -M ${mod}`))[0] as { name: string; addr: string }[];
      expect(shown).toHaveLength(raw.length);
      const gnu = new Map<bigint, Set<string>>();
      for (const l of spawnSync('nm', ['-C', '--defined-only', d.exe], { encoding: 'utf8' }).stdout.split('\n')) {
        const m = /^([0-9a-f]+) \w (.*)$/.exec(l);
        if (m) gnu.set(BigInt(`0x${m[1]}`), (gnu.get(BigInt(`0x${m[1]}`)) ?? new Set()).add(m[2]!));
      }
      const bias = BigInt(shown.find((r) => r.name === 'main')!.addr) - [...gnu].find(([, names]) => names.has('main'))![0];
      let mangled = 0;
      raw.forEach((r, i) => {
        if (!r.name.startsWith('_Z')) return expect(shown[i]!.name).toBe(r.name);
        mangled++;
        expect([...(gnu.get(BigInt(r.addr) - bias) ?? [])]).toContain(shown[i]!.name);
      });
      expect(mangled).toBeGreaterThan(3);
      // A name as written finds the function, printed as gdb prints it.
      expect((await run(s, '::nm wait_here'))[1]).toMatch(/\|FUNC  \|GLOB\|wait_here\(geo::Shape&\)$/);
      expect((await run(s, "::nm 'geo::Vec<int, 3>::sum'"))[1]).toMatch(/\|geo::Vec<int, 3>::sum\(\) const$/);
    } finally {
      t.close();
    }
  });
});

describe('C++ names in the C++ sample guest (dumps/cxx-kernel)', () => {
  const open = () => sessionOn(FileTarget.elf(join(repoRoot, 'dumps', 'cxx-kernel.elf')));
  const mangledAt = async (s: ReturnType<typeof open>, name: string) => {
    const rows = (await runJson(s, '::nm -m'))[0] as { name: string; addr: string }[];
    return BigInt(rows.find((r) => r.name === name)!.addr);
  };

  it('finds a function by its unmangled name in expressions, before a dcmd, and in ::nm', async () => {
    const s = open();
    const tick = await mangledAt(s, '_ZN9Scheduler4tickEv');
    expect(await run(s, 'Scheduler::tick=K')).toEqual([`                ${tick.toString(16)}`]);
    expect(await run(s, 'Scheduler::tick+4=K')).toEqual([`                ${(tick + 4n).toString(16)}`]);
    expect((await run(s, 'Scheduler::tick::dis'))[0]).toMatch(/^Scheduler::tick\(\): +addq/);
    const bar = await mangledAt(s, '_ZNK2ns3Foo3barEii');
    expect(await run(s, 'ns::Foo::bar(int, int) const=K')).toEqual([`                ${bar.toString(16)}`]);
    expect((await run(s, '::nm ns::Foo::bar')).map((l) => l.split('|')[4])).toEqual([undefined, 'ns::Foo::bar(int)', 'ns::Foo::bar(char const*)', 'ns::Foo::bar(int, int) const']);
    expect((await run(s, '::nm -m ns::Foo::bar')).map((l) => l.split('|')[4])).toEqual([undefined, '_ZN2ns3Foo3barEi', '_ZN2ns3Foo3barEPKc', '_ZNK2ns3Foo3barEii']);
    expect((await run(s, '::nm max')).map((l) => l.split('|')[4])).toEqual([undefined, 'max<int>(int, int)', 'max<long>(long, long)']);
    // A C name and dcmd are what they were.
    expect((await run(s, 'kmain::dis'))[0]).toMatch(/^kmain: /);
  });

  it('Scheduler::tick::bp on the running guest: the stop, $c and ::events name it as gdb does', async () => {
    const t = EmulatorTarget.open(join(repoRoot, 'dumps', 'cxx-kernel.elf'), {});
    try {
      const s = sessionOn(t);
      expect(await run(s, 'Scheduler::tick::bp')).toEqual([expect.stringMatching(/^1: breakpoint at 0x[0-9a-f]{16} Scheduler::tick\(\); hits 0$/)]);
      expect((await run(s, ':c'))[0]).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]{16} Scheduler::tick\(\) on vCPU 0$/);
      expect((await run(s, '$c'))[0]).toMatch(/^0x[0-9a-f]{16} Scheduler::tick\(\)$/);
      expect(await run(s, '::events')).toEqual([expect.stringMatching(/^1: breakpoint at 0x[0-9a-f]{16} Scheduler::tick\(\); hits 1$/)]);
    } finally {
      t.close();
    }
  });

  it('bad C++ names get one-line errors', async () => {
    const s = open();
    const amb = await failure(s, 'ns::Foo::bar=K');
    expect(amb.code).toBe('bad-input');
    expect(amb.message).toBe(
      '"ns::Foo::bar" names 3 functions (ns::Foo::bar(int) at 0xffffffff8010129a, ns::Foo::bar(char const*) at 0xffffffff801012a2, ns::Foo::bar(int, int) const at 0xffffffff801012bc): give the parameters, as in ns::Foo::bar(int)',
    );
    const open1 = await failure(s, 'ns::Foo::bar(int=K');
    expect(open1.code).toBe('bad-input');
    expect(open1.message).toBe('bad expression "ns::Foo::bar(int" at column 13: unclosed parameter list of "ns::Foo::bar"');
    const none = await failure(s, 'ns::Foo::baz=K');
    expect([none.code, none.message]).toEqual(['no-symbol', 'unknown symbol "ns::Foo::baz": not defined in cxx-kernel.elf']);
    const mod = await failure(s, '::nm -M nosuch');
    expect([mod.code, mod.message]).toEqual(['bad-input', '::nm: no module "nosuch" (modules: cxx-kernel.elf)']);
  });
});
