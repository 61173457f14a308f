// The kernel dcmds (::vtop, ::hexdump -p, ::cpus, ::panicinfo, ::vmcoreinfo) and MDB's language over
// the QEMU fixture dump, through a Session, and once end to end through `dbg open -e`.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOutput, Session } from '../../src/mdb/session.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { writeVmcore } from '../../src/targets/elfcore/kernel-vmcore-writer.js';
import { DbgError } from '../../src/common/errors.js';
import { qemuSample, repoRoot } from '../helpers/repo.js';
import { rawSession } from '../mdb/helpers.js';

const kernel = qemuSample('kernel.elf');
let dir: string;
let vmcore: string;
let t: KernelDumpTarget;
let s: Session;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-kdump-mdb-'));
  vmcore = join(dir, 'vmcore.elf');
  writeFileSync(vmcore, execFileSync('xz', ['-dc', qemuSample('vmcore.elf.xz')], { maxBuffer: 64 << 20 }));
  t = KernelDumpTarget.open(vmcore, { symbols: [kernel] });
  s = new Session(t, builtinModules);
});
afterAll(() => {
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(line: string, json = false): Promise<CaptureOutput> {
  const out = new CaptureOutput(json);
  await s.execute(line, out);
  return out;
}

async function fails(line: string): Promise<{ code: string; message: string }> {
  try {
    await run(line);
  } catch (e) {
    if (e instanceof DbgError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error(`${line} did not fail`);
}

describe('kernel dcmds on the QEMU fixture', () => {
  it('::vtop shows each level and the physical address, for all three page sizes', async () => {
    expect((await run('procs::vtop')).lines).toEqual([
      'PML4E[511] @ phys 0x206ff8 = 0x000000000020a023',
      'PDPTE[511] @ phys 0x20aff8 = 0x000000000020b023',
      'PDE[0]     @ phys 0x20b000 = 0x000000000020c023',
      'PTE[5]     @ phys 0x20c028 = 0x8000000000205063',
      'virtual 0xffffffffc0005060 mapped to physical 0x205060 (4 KiB page, rw, nx)',
    ]);
    expect((await run('1234560::vtop')).lines.at(-1)).toBe('virtual 0x0000000001234560 mapped to physical 0x1234560 (2 MiB page, rw, exec)');
    expect((await run('ffff888001234560::vtop')).lines.at(-1)).toBe('virtual 0xffff888001234560 mapped to physical 0x1234560 (1 GiB page, rw, nx)');
    const j = (await run('panic::vtop', true)).values[0] as { phys: string; pageSize: number; steps: unknown[] };
    expect([j.phys, j.pageSize, j.steps.length]).toEqual(['0x201683', 4096, 4]);
  });

  it('::vtop of a non-present page prints the walk, then fails with the level and index', async () => {
    expect(await fails('kstack_guard::vtop')).toEqual({ code: 'unmapped', message: 'virtual 0xffffffffc000d000 is not mapped: PTE[13] = 0x0 (not present)' });
    // The session goes on.
    expect((await run('jiffies/K')).lines.join('\n')).toMatch(/30d40/);
  });

  it('::vtop -t 2 uses CPU 1, which has paging off', async () => {
    expect((await run('fd099::vtop -t 2')).lines).toEqual(['virtual 0x00000000000fd099 mapped to physical 0xfd099 (no paging)']);
    expect(await fails('fd099::vtop -t x')).toEqual({ code: 'bad-input', message: '::vtop: -t needs a thread number (1-based), not "x"' });
  });

  it('::hexdump -p reads physical memory; ::hexdump (::xd) reads virtual', async () => {
    const p = (await run('1234560,20::hexdump -p')).lines;
    expect(p[1]).toBe('01234560:  66697874 75726520 6d61726b 65722061  fixture marker a');
    expect(p[2]).toBe('01234570:  74207068 79732030 78313233 34353630  t phys 0x1234560');
    const v = (await run('marker/K')).lines.join(' ');
    expect(v).toContain('ffff888001234560');
    expect((await run('ffff888001234560,10::xd')).lines[1]).toBe('ffff888001234560:  66697874 75726520 6d61726b 65722061  fixture marker a');
    expect(await fails('40000000,8::hexdump -p')).toEqual({
      code: 'unmapped',
      message: 'read of 8 bytes at physical 0x40000000 failed: physical 0x40000000 is not in kernel dump "vmcore.elf" (nearest 0xc0000-0x1ffffff)',
    });
  });

  it('::cpus, ::panicinfo, and ::vmcoreinfo when there is none', async () => {
    expect((await run('::cpus')).lines).toEqual([
      ' THR CPU MODE             CR3              PC',
      '>  1   0 4-level paging   0x206000         0xffffffffc00016c0 panic+0x3d',
      '   2   1 paging off       0x0              0x00000000000fd09a',
    ]);
    const pi = (await run('::panicinfo')).lines;
    expect(pi[1]).toBe('   message fixture: run queue corrupted');
    expect(pi).toContain('       cr3 0x0000000000206000');
    expect(await fails('::vmcoreinfo')).toEqual({
      code: 'not-found',
      message: 'kernel dump "vmcore.elf" has no VMCOREINFO note (QEMU writes one only when the guest has the vmcoreinfo device)',
    });
  });

  it('::vmcoreinfo prints the note of a kdump', async () => {
    const p = join(dir, 'kdump.vmcore');
    writeVmcore(p, { cpus: [{ regs: {} }], vmcoreinfo: 'OSRELEASE=6.1.0-x\nPAGESIZE=4096\nKERNELOFFSET=0\n', segments: [{ paddr: 0n, size: 4096 }] });
    const k = KernelDumpTarget.open(p);
    const out = new CaptureOutput();
    await new Session(k, builtinModules).execute('::vmcoreinfo', out);
    expect(out.lines).toEqual(['OSRELEASE=6.1.0-x', 'PAGESIZE=4096', 'KERNELOFFSET=0']);
    k.close();
  });
});

describe('kernel dcmds on a target without physical memory', () => {
  it('say what is not supported, naming the target', async () => {
    const raw = rawSession(dir, Buffer.alloc(64));
    const err = async (line: string) => {
      try {
        await raw.execute(line, new CaptureOutput());
      } catch (e) {
        return [(e as DbgError).code, (e as DbgError).message];
      }
      return [];
    };
    expect(await err('::cpus')).toEqual(['unsupported', `listing CPUs (::cpus is for kernel dumps) is not supported by raw file "${join(dir, 'raw.bin')}"`]);
    expect((await err('0::vtop'))[0]).toBe('unsupported');
    expect((await err('0::hexdump -p'))[0]).toBe('unsupported');
  });
});

describe('dbg open on a kernel dump, end to end', () => {
  it('::status; ::regs; ::stack; procs::nm; runqueue/K', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', vmcore, '--symbols', kernel, '-e', '::status; ::regs; ::stack; procs::nm; runqueue/K'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const out = r.stdout;
    expect(out).toContain('status: panic: fixture: run queue corrupted');
    expect(out).toMatch(/%cr3\s+= 0x0000000000206000/);
    expect(out).toMatch(/%cr0\s+= 0x0000000080010011/);
    expect(out).toContain(
      ['0xffffffffc00016c0 panic+0x3d', '0xffffffffc0001711 check_runqueue+0x4f', '0xffffffffc0001a8b kmain+0x37a', '0xffffffffc0001015 kstart+0x15'].join('\n'),
    );
    expect(out).toContain('0xffffffffc0005060|0x0000000000000150|OBJT  |GLOB|procs');
    expect(out).toMatch(/runqueue:\s+ffffffffc0005108/);
  });

  it('the sample pair made by setup opens: dumps/vmcore.0 with dumps/kernel.elf', () => {
    const sample = join(repoRoot, 'dumps', 'vmcore.0');
    const stamp = readFileSync(join(repoRoot, 'dumps', '.work', 'vmcore.0.source'), 'utf8').trim();
    const symbols = join(repoRoot, 'dumps', stamp.startsWith('emulator') ? 'kernel.elf' : 'qemu/kernel.elf');
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', sample, '--symbols', symbols, '-e', '::status; ::stack -a'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/status: panic: /);
    expect(r.stdout).toMatch(/\n0x[0-9a-f]{16} panic\+0x[0-9a-f]+\n0x[0-9a-f]{16} \w+\+0x/); // panic, then its caller
  });

  it('sym/s, sym,N/J and addr::list OFFSET work in kernel virtual addresses', () => {
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', vmcore, '--symbols', kernel, '-e', '*panic_msg/s; procs,2/J; *runqueue::list 28'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('fixture: run queue corrupted');
    expect(r.stdout).toMatch(/procs:\s+100000001\s+74696e69/); // pid 1, state 1; then "init"
    expect(r.stdout).toContain(['0xffffffffc0005108', '0xffffffffc0005060', '0xffffffffc0005178', '0xffffffffc00050d0', '0xffffffffc0005140', '0xffffffffc0005098'].join('\n'));
  });
});
