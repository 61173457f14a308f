// The kernel-dump target against the QEMU fixture in dumps/qemu/: a kernel
// built by gcc, panicked under QEMU 7.2, dumped with dump-guest-memory with and without -p.
// Every expected value comes from the fixture's facts.json (QEMU's monitor, gdb, a page walk).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKernelDump, KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { unwind } from '../../src/targets/unwind.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { need } from '../../src/targets/target.js';
import { DbgError } from '../../src/common/errors.js';
import { qemuSample } from '../helpers/repo.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const facts: any = JSON.parse(readFileSync(qemuSample('facts.json'), 'utf8'));
const kernel = qemuSample('kernel.elf');
const big = (s: string) => BigInt(s);

let dir: string;
const dumps: Record<string, string> = {};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-kdump-'));
  for (const f of ['vmcore.elf', 'vmcore-paging.elf']) {
    dumps[f] = join(dir, f);
    writeFileSync(dumps[f], execFileSync('xz', ['-dc', qemuSample(`${f}.xz`)], { maxBuffer: 64 << 20 }));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function open(f: string, symbols = true): KernelDumpTarget {
  return KernelDumpTarget.open(dumps[f]!, symbols ? { symbols: [kernel] } : {});
}

function u64(t: KernelDumpTarget, addr: bigint, thread = 1): bigint {
  return t.readVirtual(addr, 8, thread).readBigUInt64LE(0);
}

describe.each(['vmcore.elf', 'vmcore-paging.elf'])('QEMU fixture %s', (file) => {
  let t: KernelDumpTarget;
  beforeAll(() => {
    t = open(file);
  });
  afterAll(() => t.close());

  it('is recognised as a kernel dump with two CPUs as threads', () => {
    const elf = ElfFile.open(dumps[file]!);
    expect(isKernelDump(elf)).toBe(true);
    elf.close();
    expect(t.kind).toBe('kernel-dump');
    expect(t.threads().map((x) => [x.index, x.tid, x.name])).toEqual([
      [1, 0, 'CPU 0'],
      [2, 1, 'CPU 1'],
    ]);
  });

  it('has the registers of both CPUs, with control registers from the QEMU notes', () => {
    for (const cpu of [0, 1]) {
      const regs = t.registers(cpu + 1);
      const pr = facts.dumps[file].prstatus[cpu].regs;
      for (const [name, value] of Object.entries(pr)) {
        if (name === 'orig_rax') continue;
        expect(regs.get(name), `CPU ${cpu} ${name}`).toBe(big(value as string));
      }
      const c = facts.cpus[cpu];
      expect(regs.get('cr0')).toBe(big(c.cr0));
      expect(regs.get('cr3')).toBe(big(c.cr3));
      expect(regs.get('cr4')).toBe(big(c.cr4));
      expect(regs.get('rip')).toBe(big(c.rip));
      expect(regs.get('rsp')).toBe(big(c.rsp));
    }
    expect(t.registers(1).get('gdtr_base')).toBe(0xffffffffc0003000n);
    expect(t.registers(2).get('gdtr_base')).toBe(0xf6180n);
    expect(() => t.registers(3)).toThrow(/no thread 3 in kernel dump "vmcore.*\.elf": threads are 1\.\.2/);
  });

  it('translates every probe of facts.json like QEMU gva2gpa, with each level', () => {
    const x = need(t, 'physical');
    for (const p of facts.paging.translations) {
      const tr = x.translate(big(p.virt), 1);
      expect(tr.phys, p.what).toBe(big(p.phys));
      expect(tr.pageSize, p.what).toBe(p.page_size);
      expect(tr.writable, p.what).toBe(p.writable);
      expect(tr.executable, p.what).toBe(!p.nx);
      expect(tr.steps.map((s) => [s.level + 'E', s.index, s.entryAddr, s.entry])).toEqual(
        p.walk.map((w: { level: string; index: number; entry_phys: string; value: string }) => [w.level, w.index, big(w.entry_phys), big(w.value)]),
      );
    }
    const sizes = new Set(facts.paging.translations.map((p: { page_size: number }) => p.page_size));
    expect(sizes).toEqual(new Set([4096, 2 << 20, 1 << 30]));
    for (const p of facts.paging.unmapped) {
      const tr = x.translate(big(p.virt), 1);
      expect(tr.phys, p.what).toBeUndefined();
      expect(tr.fault).toBe(p.reason);
      expect(tr.steps.length).toBe(p.walk.length);
      expect(() => t.readVirtual(big(p.virt), 8)).toThrow(new RegExp(`not mapped for thread 1 \\(CPU 0 CR3 0x206000\\): ${p.reason.replace(/[()[\]]/g, '\\$&')}`));
    }
  });

  it('walks the run queue through next at offset 40', () => {
    let p = u64(t, t.symbols.lookup('runqueue'));
    expect(p).toBe(big(facts.memory.runqueue.value));
    const pids: number[] = [];
    const comms: string[] = [];
    while (p !== 0n && pids.length < 10) {
      pids.push(t.readVirtual(p, 4).readUInt32LE(0));
      comms.push(t.readString(p + 8n, 24));
      p = u64(t, p + 40n);
    }
    expect(pids).toEqual([231, 1, 1187, 17, 1042, 2]);
    expect(comms).toEqual(facts.memory.runqueue.order_comms);
    const procs = t.readVirtual(t.symbols.lookup('procs'), 336);
    expect(procs.toString('hex')).toBe(facts.memory.procs.bytes_hex);
  });

  it('reads the klog ring, jiffies and the panic message', () => {
    expect(u64(t, t.symbols.lookup('jiffies'))).toBe(200000n);
    expect(u64(t, t.symbols.lookup('klog_head'))).toBe(908n);
    const text = t.readVirtual(t.symbols.lookup('klog'), 908).toString('latin1');
    expect(text).toBe(facts.memory.klog.text);
    expect(text).toContain('PANIC: fixture: run queue corrupted (jiffies 200000)');
    const msg = u64(t, t.symbols.lookup('panic_msg'));
    expect(msg).toBe(0xffffffffc000202an);
    expect(t.readString(msg)).toBe('fixture: run queue corrupted');
    expect(t.status()).toEqual({ reason: { kind: 'panic', message: 'fixture: run queue corrupted' }, thread: 1, pc: 0xffffffffc00016c0n });
  });

  it('unwinds CPU 0: panic <- check_runqueue <- kmain <- kstart', () => {
    const frames = unwind(t, 1);
    const names = frames.map((f) => t.symbols.resolve(f.level > 0 ? f.pc - 1n : f.pc)?.sym.name);
    expect(names).toEqual(['panic', 'check_runqueue', 'kmain', 'kstart']);
    expect(frames.map((f) => f.pc)).toEqual([0xffffffffc00016c0n, 0xffffffffc0001711n, 0xffffffffc0001a8bn, 0xffffffffc0001015n]);
    // kernel.elf has .debug_frame: the callers come from CFI, given the module's ELF.
    expect(frames.slice(1).map((f) => f.how)).toEqual(['cfi', 'cfi', 'cfi']);
    // Without a symbol file the frame-pointer chain gives the same return addresses.
    const bare = open(file, false);
    const fp = unwind(bare, 1);
    expect(fp.map((f) => [f.pc, f.how])).toEqual([
      [0xffffffffc00016c0n, 'registers'],
      [0xffffffffc0001711n, 'frame-pointer'],
      [0xffffffffc0001a8bn, 'frame-pointer'],
      [0xffffffffc0001015n, 'frame-pointer'],
    ]);
    bare.close();
  });

  it('reads CPU 1 (32-bit, paging off) with virtual = physical', () => {
    const tr = t.translate(0xfd09an, 2);
    expect(tr.phys).toBe(0xfd09an);
    expect(tr.steps).toEqual([]);
    if (file === 'vmcore.elf') {
      // SeaBIOS: `hlt` at 0xfd099, then a short jmp back to it.
      expect(t.readVirtual(0xfd099n, 3, 2).toString('hex')).toBe('f4ebfd');
      expect(t.readVirtual(0x1234560n, 32, 2).toString('latin1')).toBe('fixture marker at phys 0x1234560');
    } else {
      expect(() => t.readVirtual(0xfd099n, 3, 2)).toThrow(/with paging off, that is physical 0xfd099, which is not in kernel dump "vmcore-paging.elf"/);
    }
  });

  it('lists the mappings the page tables make', () => {
    const m = t.mappings().map((x) => [x.start, x.end, x.perms, x.name]);
    expect(m).toEqual([
      [0x0n, 0x2000000n, 'rwx', '2M pages'],
      [0xffff888000000000n, 0xffff888040000000n, 'rw-', '1G pages'],
      [0xffffffffc0000000n, 0xffffffffc0002000n, 'r-x', '4K pages'],
      [0xffffffffc0002000n, 0xffffffffc0003000n, 'r--', '4K pages'],
      [0xffffffffc0003000n, 0xffffffffc000d000n, 'rw-', '4K pages'],
      [0xffffffffc000e000n, 0xffffffffc0012000n, 'rw-', '4K pages'],
    ]);
  });
});

describe('physical versus paging dump', () => {
  it('the physical dump has all RAM; the paging dump only what its PT_LOADs p_paddr + p_filesz cover', () => {
    const phys = open('vmcore.elf');
    const paging = open('vmcore-paging.elf');
    const marker = facts.memory.marker;
    expect(phys.readPhysical(big(marker.phys), 32).toString('latin1')).toBe(marker.text);
    expect(phys.readVirtual(big(marker.value), 32).toString('latin1')).toBe(marker.text); // via the 1 GiB direct map
    expect(phys.readVirtual(0x1234560n, 32).toString('latin1')).toBe(marker.text); // via the 2 MiB identity map
    // The paging dump's direct-map PT_LOAD claims 1 GiB at 0xffff888000000000 but holds 0xa0000 bytes:
    // through the page tables, procs via the direct map is the real data, not zeros.
    expect(paging.readVirtual(0xffff888000205060n, 8).toString('hex')).toBe('0100000001000000');
    expect(() => paging.readVirtual(big(marker.value), 32)).toThrow(
      /read of 32 bytes at 0xffff888001234560 \(thread 1\) failed: it translates to physical 0x1234560, which is not in kernel dump "vmcore-paging.elf"/,
    );
    try {
      paging.readPhysical(0x1234560n, 8);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DbgError);
      expect((e as DbgError).code).toBe('unmapped');
      expect((e as DbgError).message).toBe(
        'read of 8 bytes at physical 0x1234560 failed: physical 0x1234560 is not in kernel dump "vmcore-paging.elf" (nearest 0x20e000-0x211fff)',
      );
    }
    // A failed read does not poison the next ones.
    expect(paging.readVirtual(paging.symbols.lookup('fixture_cookie'), 8).readBigUInt64LE(0)).toBe(0xf1c7c0de0badcafen);
    expect(need(paging, 'physical').physicalRanges()).toEqual([
      { start: 0x0n, end: 0xa0000n },
      { start: 0x200000n, end: 0x20d000n },
      { start: 0x20e000n, end: 0x212000n },
    ]);
    phys.close();
    paging.close();
  });

  it('refuses a kernel file whose read-only data differs from the dump (no linux_banner to compare)', () => {
    const elf = ElfFile.open(kernel);
    const rodata = elf.section('.rodata')!;
    elf.close();
    const bytes = readFileSync(kernel);
    bytes[rodata.offset + 0x2a] ^= 0xff; // the 'f' of "fixture: run queue corrupted"
    const other = join(dir, 'kernel-patched.elf');
    writeFileSync(other, bytes);
    let err: DbgError | undefined;
    try {
      KernelDumpTarget.open(dumps['vmcore.elf']!, { symbols: [other] });
    } catch (e) {
      err = e as DbgError;
    }
    expect([err?.code, err?.message]).toEqual([
      'bad-input',
      `--symbols ${other} does not match kernel dump "vmcore.elf": its .rodata at 0xffffffffc0002000 differs from the dump's (first at +0x2a: 0x99 in the file, 0x66 in the dump). Give the vmlinux of the kernel that was dumped`,
    ]);
  });

  it('without symbols the dump still opens and reads by address', () => {
    const t = open('vmcore.elf', false);
    expect(t.symbols.modules).toEqual([]);
    expect(t.readVirtual(0xffffffffc0004030n, 8).readBigUInt64LE(0)).toBe(200000n);
    expect(t.status().reason).toEqual({ kind: 'none' });
    t.close();
    expect(() => t.readVirtual(0xffffffffc0004030n, 8)).toThrow(/is closed/);
  });
});
