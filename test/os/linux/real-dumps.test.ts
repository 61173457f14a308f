/**
 * Opt-in: dbg's Linux view of real dumps of Debian's 6.1 kernel (QEMU, TCG, 2 vCPUs, KASLR on,
 * sysrq-c on CPU 1) against drgn (Debian's python3-drgn) on the same dumps.
 *
 *   node scripts/setup-vmlinux.mjs          # the -dbg vmlinux (once, as root)
 *   node scripts/make-linux-dumps.mjs       # the dumps, in test/.fixtures/linux/ (a few minutes)
 *   DBG_LINUX_DUMP_TESTS=1 npx vitest run test/os/linux/real-dumps.test.ts
 *
 * drgn reads only the dump with VMCOREINFO written with paging (it refuses the others), so the
 * dumps without VMCOREINFO are checked against the same kernel's console and against panic_cpu.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb } from '../../../src/gdbserver/gdb-server.js';
import { symbolName } from '../../../src/mdb/names.js';
import { CaptureOutput, type Session } from '../../../src/mdb/session.js';
import { ElfFile } from '../../../src/symbols/elf-file.js';
import { KernelDumpTarget } from '../../../src/targets/elfcore/kernel-dump-target.js';
import { unwind } from '../../../src/targets/unwind.js';
import { skipReason } from '../../helpers/debuggee.js';
import { repoRoot } from '../../helpers/repo.js';
import { gdbBatch } from '../../gdbserver/gdb-batch.js';
import { run, runJson, sessionOn } from '../../mdb/helpers.js';

const dir = join(repoRoot, 'test', '.fixtures', 'linux');
const vmlinux = join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const why =
  process.env.DBG_LINUX_DUMP_TESTS !== '1'
    ? 'opt-in: set DBG_LINUX_DUMP_TESTS=1 (after node scripts/setup-vmlinux.mjs and node scripts/make-linux-dumps.mjs)'
    : !existsSync(join(dir, 'facts.json')) || !existsSync(vmlinux)
      ? 'no dumps or no vmlinux: run node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs'
      : undefined;
const skip = skipReason('real Linux dumps', why);

/** The text lines of `line`, trailing blanks kept (the kernel log has some). */
async function exact(s: Session, line: string): Promise<string[]> {
  const out = new CaptureOutput(false);
  await s.execute(line, out);
  return out.lines;
}

interface DrgnTask {
  pid: number;
  ppid: number;
  state: string;
  cpu: number;
  comm: string;
  addr: string;
  pcs: string[] | null;
}
interface Drgn {
  panic_cpu: number;
  tasks: DrgnTask[];
  log: string[];
  current: string[];
  modules: { addr: string; name: string; base: string; size: number }[];
}

describe.skipIf(skip)('a real 6.1 dump with VMCOREINFO, against drgn', () => {
  let drgn: Drgn;
  let s: Session;
  let t: KernelDumpTarget;
  beforeAll(() => {
    const r = spawnSync('/usr/bin/python3', [join(repoRoot, 'test', 'os', 'linux', 'drgn-oracle.py'), join(dir, 'vmci-paging.elf'), vmlinux], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`drgn failed: ${r.stderr}`);
    drgn = JSON.parse(r.stdout) as Drgn;
    t = KernelDumpTarget.open(join(dir, 'vmci.elf'), { symbols: [vmlinux] });
    s = sessionOn(t);
  }, 120_000);
  afterAll(() => t?.close());

  it('::ps -t lists drgn\'s tasks: pid, ppid, state, cpu, comm, address', async () => {
    const ours = (await runJson(s, '::ps -t'))[0] as { pid: number; ppid: number; state: string; cpu: number; comm: string; addr: string }[];
    expect(ours[0]).toMatchObject({ pid: 0, comm: 'swapper/0' }); // init_task, which drgn's for_each_task leaves out
    const strip = (x: { pid: number; ppid: number; state: string; cpu: number; comm: string; addr: string }) => ({ pid: x.pid, ppid: x.ppid, state: x.state, cpu: x.cpu, comm: x.comm, addr: BigInt(x.addr) });
    expect(ours.slice(1).map(strip)).toEqual(drgn.tasks.map(strip));
    expect(drgn.tasks.length).toBeGreaterThan(40);
  });

  it('::ps -t, ::stacks and ::stack -a read no module: the modules load on first use', async () => {
    const k = KernelDumpTarget.open(join(dir, 'vmci-paging.elf'), { symbols: [vmlinux] });
    try {
      const ks = sessionOn(k);
      for (const c of ['::status', '::ps -t', '::stacks', '::stack -a']) await run(ks, c);
      expect(k.symbols.modules.map((m) => m.name)).toEqual(['vmlinux']);
      expect((await run(ks, '::modules')).length).toBe(2); // qemu_fw_cfg: the one module
      expect(k.symbols.modules.map((m) => m.name)).toEqual(['vmlinux', 'qemu_fw_cfg']);
    } finally {
      k.close();
    }
  });

  it("every sleeping task's stack is drgn's, frame for frame, down to the user registers (ORC)", () => {
    let compared = 0;
    for (const d of drgn.tasks) {
      // QEMU writes each CPU's NT_PRSTATUS with pr_pid = CPU index + 1, and drgn then takes pids 1
      // and 2 for the tasks those CPUs ran, unwinding them from the CPUs' registers: skip them.
      if (!d.pcs || d.state === 'R' || d.pid <= t.threads().filter((x) => x.name.startsWith('CPU')).length) continue;
      const frames = unwind(t, t.taskThread(BigInt(d.addr), false));
      expect({ pid: d.pid, pcs: frames.map((f) => `0x${f.pc.toString(16)}`) }).toEqual({ pid: d.pid, pcs: d.pcs });
      expect(frames.slice(1).every((f) => f.how === 'orc')).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
  });

  it('with kallsyms only (no vmlinux), ORC from the image in the dump unwinds the panicking CPU as with vmlinux', () => {
    const k = KernelDumpTarget.open(join(dir, 'vmci.elf'));
    try {
      const pcs = (x: KernelDumpTarget) => unwind(x, 2).map((f) => f.pc);
      expect(pcs(k)).toEqual(pcs(t));
      expect(pcs(k).length).toBeGreaterThanOrEqual(10);
      expect(k.symbols.describe(unwind(k, 2)[1]!.pc - 1n)).toMatch(/^panic\+/);
    } finally {
      k.close();
    }
  });

  it("CPU 0's stack crosses the reboot IPI's pt_regs into the idle loop it interrupted", () => {
    const names = unwind(t, 1).map((f) => t.symbols.resolve(f.level ? f.pc - 1n : f.pc)?.sym.name);
    expect(names.slice(0, 5)).toEqual(['stop_this_cpu', '__sysvec_reboot', 'sysvec_reboot', 'asm_sysvec_reboot', 'native_safe_halt']);
    expect(names).toContain('do_idle');
  });

  it('::dmesg is drgn\'s log, line for line', async () => {
    expect((await exact(s, '::dmesg')).join('\n')).toBe(drgn.log.join('\n'));
  });

  it('::status and ::panicinfo name CPU 1 from panic_cpu, as drgn reads it', async () => {
    expect(drgn.panic_cpu).toBe(1);
    expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'sysrq triggered crash' }, thread: 2 });
    const pi = await run(s, '::panicinfo');
    expect(pi.slice(0, 2)).toEqual(['       cpu 1 (thread 2)', '   message sysrq triggered crash']);
    expect(pi).toContain('  found by panic_cpu');
  });

  it('::stacks groups identical stacks: the counts add up to the tasks', async () => {
    const groups = (await runJson(s, '::stacks'))[0] as { task: string; count: number; frames: string[] }[];
    expect(groups.reduce((n, g) => n + g.count, 0)).toBe(drgn.tasks.length + 1);
    expect(groups[0]!.count).toBeGreaterThan(1);
    expect(groups.some((g) => g.frames.some((f) => f.startsWith('panic+')))).toBe(true);
  });

  it("::percpu and ::modules agree with drgn's per_cpu(current_task) and the modules list", async () => {
    const cur = (await runJson(s, '::percpu current_task'))[0] as { cpu: number; addr: string }[];
    const values = cur.map((c) => `0x${t.readVirtual(BigInt(c.addr), 8).readBigUInt64LE(0).toString(16)}`);
    expect(values).toEqual(drgn.current);
    const mods = (await runJson(s, '::modules'))[0] as { addr: string; name: string; base: string; size: number }[];
    expect(mods.map((m) => ({ name: m.name, size: m.size, addr: BigInt(m.addr), base: BigInt(m.base) }))).toEqual(drgn.modules.map((m) => ({ ...m, addr: BigInt(m.addr), base: BigInt(m.base) })));
    expect(mods.map((m) => m.name)).toContain('qemu_fw_cfg');
  });

  it('heap addresses are no symbol+offset (they were __per_cpu_end+0xffff...)', async () => {
    expect(t.symbols.describe(BigInt(drgn.tasks[0]!.addr))).toBeUndefined();
  });

  it('ADDR::task selects a sleeping task, whose ::stack starts in __schedule', async () => {
    const init = drgn.tasks.find((x) => x.pid === 1)!;
    const lines = await run(s, `${init.addr}::task; ::stack`);
    expect(lines[0]).toMatch(/^thread \d+: task 0x[0-9a-f]+ \(pid 1 init\), from its saved context$/);
    expect(lines[1]).toMatch(/ __schedule\+0x/);
    expect(await run(s, '0t1::pid2task')).toEqual([`0x${BigInt(init.addr).toString(16).padStart(16, '0')}`]);
  });
});

describe.skipIf(skip || !existsSync(join(dir, 'oops.elf')))('an oops in a module (oops=panic)', () => {
  it("the panicking CPU unwinds through the page fault's pt_regs and the module (its ORC) to user mode, as the kernel's own trace", () => {
    const t = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux] });
    try {
      expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'Fatal exception' }, thread: 2 });
      const frames = unwind(t, 2);
      const names = frames.map((f) => t.symbols.describe(f.level ? f.pc - 1n : f.pc)?.replace(/\+.*/, ''));
      const fault = names.indexOf('asm_exc_page_fault');
      expect(fault).toBeGreaterThan(0);
      // The kernel's trace, as the console printed it: reliable lines (no "?") from <TASK> to the user RIP.
      const text = readFileSync(join(dir, 'oops.console.txt'), 'latin1').replace(/\r/g, '');
      const trace = text.slice(text.indexOf('<TASK>'), text.indexOf('RIP: 0033:')).split('\n').map((l) => l.replace(/^\[[^\]]*\]\s+/, '')).filter((l) => /^\w+\+0x/.test(l));
      const userRip = BigInt(/RIP: 0033:(0x[0-9a-f]+)/.exec(text)![1]!);
      const ours = frames.slice(fault + 2).map((f) => `${t.symbols.describe(f.pc)}`);
      const theirs = trace.map((l) => l.split('/')[0]!); // dbg_oops_init+0xa/0x1000 [dbg_oops]: named from the module's kallsyms
      expect(ours.slice(0, -1)).toEqual(theirs);
      expect(frames.at(-1)!.pc).toBe(userRip);
    } finally {
      t.close();
    }
  });
});

/**
 * Module symbols on the oops dump: dbg_oops (in its init, so its kallsyms hold every symbol) and
 * qemu_fw_cfg (live: core symbols only), against drgn and crash with the same .ko files (both
 * place them by mod->sect_attrs, dbg by kallsyms) and against the kernel's own oops trace. qemu_fw_cfg's .ko is
 * Debian's -dbg one (/usr/lib/debug/lib/modules/RELEASE, installed by setup-vmlinux.mjs).
 */
describe.skipIf(skip || !existsSync(join(dir, 'modules', 'dbg_oops.ko')))('kernel module symbols on the oops dump, against drgn and crash', () => {
  const release = skip ? '' : (JSON.parse(readFileSync(join(dir, 'facts.json'), 'utf8')) as { release: string }).release;
  const fwcfg = `/usr/lib/debug/lib/modules/${release}/kernel/drivers/firmware/qemu_fw_cfg.ko`;
  const mods = join(dir, 'modules');

  function drgnModules(names: string[], kos: string[]): { symbols: Record<string, [string, number] | null>; frames: [string, string | null][] } {
    const r = spawnSync('/usr/bin/python3', [join(repoRoot, 'test', 'os', 'linux', 'drgn-modules.py'), join(dir, 'oops-paging.elf'), vmlinux, ...kos], { input: JSON.stringify(names), encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`drgn failed: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  /**
   * A module's sized symbols whose names occur once in it and nowhere else (drgn looks a name up
   * in every module and vmlinux: __this_module, __func__.23): name -> [address, size].
   */
  function ours(t: KernelDumpTarget, module: string): Map<string, [string, number]> {
    t.symbols.loadDeferred(); // the modules load on first use
    const m = t.symbols.modules.find((x) => x.name === module)!;
    const count = new Map<string, number>();
    for (const s of m.table.all()) count.set(s.name, (count.get(s.name) ?? 0) + 1);
    const elsewhere = (name: string) => t.symbols.modules.some((x) => x !== m && x.table.lookup(name));
    return new Map(
      m.table
        .all()
        .filter((s) => s.size > 0n && s.kind !== 'other' && count.get(s.name) === 1 && !elsewhere(s.name))
        .map((s) => [s.name, [`0x${s.addr.toString(16)}`, Number(s.size)]]),
    );
  }

  it('every sized symbol of both modules is where drgn puts it; the frames in module text are named as drgn and the kernel name them', async () => {
    const t = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux], modules: mods });
    try {
      expect(t.warnings).toEqual([]); // nothing of the modules is read at open
      expect(t.kernelModules).toHaveLength(2);
      expect(t.warnings).toEqual(existsSync(fwcfg) ? [] : [`--modules ${mods}: no .ko for 1 of 2 modules (qemu_fw_cfg); their names come from their kallsyms`]);
      const kos = [join(mods, 'dbg_oops.ko'), ...(existsSync(fwcfg) ? [fwcfg] : [])];
      const want = new Map([...ours(t, 'dbg_oops'), ...(existsSync(fwcfg) ? ours(t, 'qemu_fw_cfg') : [])]);
      expect(want.size).toBeGreaterThan(existsSync(fwcfg) ? 20 : 3);
      const d = drgnModules([...want.keys(), 'dbg_oops_write.constprop.0'], kos);
      const agreed = [...want].filter(([n, v]) => d.symbols[n] && d.symbols[n]![0] === v[0] && d.symbols[n]![1] === v[1]);
      // drgn 0.0.22 places no init section of a module that is still in its init: dbg_oops_init
      expect(want.size - agreed.length).toBeLessThanOrEqual(1);
      expect([...want.keys()].filter((n) => !agreed.some(([a]) => a === n)).every((n) => d.symbols[n] === null)).toBe(true);
      const frames = unwind(t, 2).map((f) => [f.pc, symbolName(t, f.pc, f.level > 0 ? f.pc - 1n : f.pc)] as const);
      // The oopsing frame: inside the function where drgn places it, at the offset the kernel's
      // trace gives (RIP: dbg_oops_write.constprop.0+0xc/0x1000 [dbg_oops]). Not drgn's own stack of
      // the task: QEMU writes the CPU number + 1 as NT_PRSTATUS's pr_pid, and drgn 0.0.22 gives those
      // registers to tasks 1 and 2, so insmod's stack there depends on which CPU oopsed.
      const text = readFileSync(join(dir, 'oops.console.txt'), 'latin1');
      const [wAddr, wSize] = d.symbols['dbg_oops_write.constprop.0']!;
      const wOff = /RIP: 0010:dbg_oops_write\.constprop\.0\+(0x[0-9a-f]+)\//.exec(text)![1]!;
      const write = frames.find(([pc]) => pc >= BigInt(wAddr) && pc < BigInt(wAddr) + BigInt(wSize));
      expect(write?.[1]).toBe(`dbg_oops\`dbg_oops_write.constprop.0+${wOff}`);
      // the init frame, which drgn does not name: as the kernel's trace does (dbg_oops_init+0xa/0x1000 [dbg_oops])
      const init = /\s(dbg_oops_init\+0x[0-9a-f]+)\/0x[0-9a-f]+ \[dbg_oops\]/.exec(text)![1]!;
      expect(frames.some(([, n]) => n === `dbg_oops\`${init}`)).toBe(true);
      const s = sessionOn(t);
      expect((await run(s, '::modules')).map((l) => l.split(/\s+/).slice(1, 2).concat(l.split(/\s+/).slice(4)).join(' '))).toEqual([
        'NAME STATE SYMBOLS',
        `dbg_oops coming ${join(mods, 'dbg_oops.ko')}`,
        `qemu_fw_cfg live ${existsSync(fwcfg) ? fwcfg : 'kallsyms'}`,
      ]);
    } finally {
      t.close();
    }
  }, 120_000);

  it("::stack -s shows file:line inside module frames, as gdb says with the .ko's sections where the kernel loaded them", async () => {
    const ko = join(mods, 'dbg_oops.ko');
    const t = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux], modules: mods });
    try {
      const rows = (await run(sessionOn(t), '::stack -s')).filter((l) => l.includes('dbg_oops`'));
      expect(rows).toHaveLength(2); // dbg_oops_write.constprop.0 and dbg_oops_init
      const ours = rows.map((l) => /^0x([0-9a-f]+) \S+ at (\S+):(\d+)$/.exec(l));
      expect(ours.every(Boolean), rows.join('\n')).toBe(true);
      // gdb places each section of the .ko by hand (add-symbol-file -s), at the run-time address of
      // a symbol of it (the module's kallsyms, which drgn agrees with) minus its value in the .ko
      const elf = ElfFile.open(ko);
      const sections = new Map<string, bigint>();
      try {
        for (const name of ['dbg_oops_write.constprop.0', 'dbg_oops_init']) {
          const s = elf.symbols().find((x) => x.name === name)!;
          sections.set(elf.sections()[s.shndx]!.name, t.symbols.lookup(`dbg_oops\`${name}`) - s.value);
        }
      } finally {
        elf.close();
      }
      const args = ['-nx', '-batch', '-ex', `add-symbol-file ${ko} ${[...sections].map(([n, a]) => `-s ${n} 0x${a.toString(16)}`).join(' ')}`];
      expect([...sections.keys()].sort()).toEqual(['.init.text', '.text.unlikely']);
      // the first frame is where the fault struck (its pc), the second a return address (pc - 1, as dbg and gdb look up callers)
      ours.forEach((m, i) => args.push('-ex', `info line *0x${(BigInt(`0x${m![1]}`) - (i === 0 ? 0n : 1n)).toString(16)}`));
      const g = spawnSync('gdb', args, { encoding: 'utf8', input: 'y\n' });
      const lines = [...g.stdout.matchAll(/^Line (\d+) of "([^"]+)"/gm)].map((x) => `${x[2]}:${x[1]}`);
      expect(lines).toEqual(ours.map((m) => `${m![2]}:${m![3]}`));
    } finally {
      t.close();
    }
  }, 120_000);

  it("without its .ko a module is named by its own kallsyms, as its .ko names it", () => {
    const withKo = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux], modules: mods });
    const without = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux] });
    try {
      expect(without.kernelModules.find((m) => m.name === 'dbg_oops')!.symbols).toBe('kallsyms');
      const a = ours(withKo, 'dbg_oops');
      const b = ours(without, 'dbg_oops');
      expect([...b].filter(([n]) => n.startsWith('dbg_oops')).sort()).toEqual([...a].filter(([n]) => n.startsWith('dbg_oops')).sort());
      for (const [, [addr]] of b) expect(symbolName(without, BigInt(addr))).toBe(symbolName(withKo, BigInt(addr)));
    } finally {
      withKo.close();
      without.close();
    }
  });

  it("crash (mod -s with the same .ko files) names every function of both modules' core text as dbg does", () => {
    const t = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux], modules: mods });
    try {
      t.symbols.loadDeferred();
      const core = (m: string) => t.kernelModules.find((x) => x.name === m)!.ranges.find((r) => r.kind === 'core')!;
      const funcs = ['dbg_oops', ...(existsSync(fwcfg) ? ['qemu_fw_cfg'] : [])].flatMap((m) =>
        t.symbols.modules
          .find((x) => x.name === m)!
          .table.all()
          .filter((s) => s.kind === 'func' && s.addr >= core(m).base && s.addr < core(m).base + core(m).size)
          .map((s) => [m, s.addr] as const),
      );
      expect(funcs.length).toBeGreaterThan(existsSync(fwcfg) ? 10 : 0);
      const cmds = [`mod -s dbg_oops ${join(mods, 'dbg_oops.ko')}`, ...(existsSync(fwcfg) ? [`mod -s qemu_fw_cfg ${fwcfg}`] : []), ...funcs.map(([, a]) => `sym ${a.toString(16)}`), 'quit'].join('\n') + '\n';
      const r = spawnSync('crash', ['-s', vmlinux, join(dir, 'oops.elf')], { input: cmds, encoding: 'utf8', timeout: 240_000 });
      for (const [m, a] of funcs) {
        const line = new RegExp(`^${a.toString(16)} \\(.\\) (\\S+) \\[${m}\\]`, 'm').exec(r.stdout);
        const named = symbolName(t, a)!.replace(`${m}\``, '');
        // crash names module_exit()'s function by its alias (cleanup_module), dbg as the kernel does
        const aliases = t.symbols.modules.find((x) => x.name === m)!.table.all().filter((s) => s.addr === a).map((s) => s.name);
        expect(line?.[1] === named || (line?.[1] === 'cleanup_module' && aliases.includes('cleanup_module')), `crash: sym ${a.toString(16)}: ${line?.[1]}, dbg: ${named}`).toBe(true);
      }
    } finally {
      t.close();
    }
  }, 300_000);

  it('without vmlinux (kallsyms only) ::modules says what it needs in one line', async () => {
    const t = KernelDumpTarget.open(join(dir, 'oops.elf'));
    try {
      await expect(run(sessionOn(t), '::modules')).rejects.toThrow(
        `the module list needs the kernel's types: open the dump "oops.elf" with --symbols vmlinux (a vmlinux with DWARF, e.g. Debian's linux-image-*-dbg)`,
      );
    } finally {
      t.close();
    }
  });

  it('a .ko of another kernel release is left out in one line, and kallsyms name the module', () => {
    const other = mkdtempSync(join(tmpdir(), 'dbg-other-ko-'));
    try {
      const ko = readFileSync(join(mods, 'dbg_oops.ko'));
      const at = ko.indexOf(`vermagic=${release} `);
      expect(at).toBeGreaterThan(0);
      const fake = release.replace(/-\d+-/, '-99-');
      ko.write(`vermagic=${fake} `, at, 'latin1');
      writeFileSync(join(other, 'dbg_oops.ko'), ko);
      const t = KernelDumpTarget.open(join(dir, 'oops.elf'), { symbols: [vmlinux], modules: other });
      try {
        expect(symbolName(t, t.symbols.lookup('dbg_oops`dbg_oops_write.constprop.0') + 0xcn)).toBe('dbg_oops`dbg_oops_write.constprop.0+0xc');
        expect(t.warnings.filter((w) => w.includes('dbg_oops.ko'))).toEqual([
          `${join(other, 'dbg_oops.ko')}: built for Linux ${fake}, but the dump runs ${release}; the names of module dbg_oops come from its kallsyms`,
        ]);
      } finally {
        t.close();
      }
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skip)('gdb through dbg sees the tasks as threads after monitor ::task -a', () => {
  it("info threads lists every task; a sleeping task's bt (gdb's, from the saved context dbg gives) goes through do_wait", async () => {
    const t = KernelDumpTarget.open(join(dir, 'vmci.elf'), { symbols: [vmlinux] });
    const server = await serveGdb(t, sessionOn(t), { port: 0 });
    try {
      const r = await gdbBatch(server.port, ['monitor ::task -a', 'info threads', 'thread 3', 'bt'], { file: vmlinux });
      expect(r.stdout).toMatch(/^\s+61\s+Thread /m);
      const bt = r.stdout.split('\n').filter((l) => /^#\d+ /.test(l));
      expect(bt[0]).toMatch(/__schedule|context_switch/);
      expect(bt.some((l) => / do_wait /.test(l))).toBe(true);
    } finally {
      await server.close();
      t.close();
    }
  }, 300_000);
});

describe.skipIf(skip)('real 6.1 dumps without VMCOREINFO', () => {
  for (const name of ['novmci.elf', 'novmci-paging.elf', 'vmci-paging.elf']) {
    it(`${name}: the panic on CPU 1, from panic_cpu`, () => {
      const t = KernelDumpTarget.open(join(dir, name), { symbols: [vmlinux] });
      try {
        expect(t.status()).toMatchObject({ reason: { kind: 'panic', message: 'sysrq triggered crash' }, thread: 2 });
        expect(t.panicSource()).toBe('panic_cpu');
      } finally {
        t.close();
      }
    });
  }

  it('::dmesg from vmlinux types has every line the console printed', async () => {
    const t = KernelDumpTarget.open(join(dir, 'novmci.elf'), { symbols: [vmlinux] });
    try {
      const log = await exact(sessionOn(t), '::dmesg');
      const console = readFileSync(join(dir, 'novmci.console.txt'), 'latin1').replace(/\r/g, '').split('\n').filter((l) => l.startsWith('['));
      // The console repeats a record's stamp on each of its lines; dmesg and drgn print it once.
      const text = (l: string) => l.replace(/^\[ *\d+\.\d{6}\] /, '');
      const ours = log.flatMap((l) => l.split('\n')).map(text);
      let at = 0;
      for (const line of console) {
        const found = ours.indexOf(text(line), at);
        expect(found, line).toBeGreaterThanOrEqual(0);
        at = found + 1;
      }
      const errs = await exact(sessionOn(t), '::dmesg -l emerg');
      expect(errs).toContain(log.find((l) => l.includes('Kernel panic - not syncing: sysrq triggered crash')));
    } finally {
      t.close();
    }
  });

  it('without vmlinux (kallsyms only), the panic CPU still comes from panic_cpu', () => {
    const t = KernelDumpTarget.open(join(dir, 'vmci.elf'));
    try {
      expect(t.status()).toMatchObject({ thread: 2 });
      expect(t.panicSource()).toBe('panic_cpu');
    } finally {
      t.close();
    }
  });
});
