// Kernel dumps built in the test: a kdump-style vmcore with VMCOREINFO and KASLR, and broken
// dumps (no page-table root, roots and entries outside the dump, loops, overlapping and truncated
// PT_LOADs, a symbol file of another kernel). Symbol files are made by the real `as` and `ld`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { isKernelDump, KernelDumpTarget } from '../../src/targets/elfcore/kernel-dump-target.js';
import { PageTableBuilder, writeVmcore, type VmcoreSpec } from '../../src/targets/elfcore/kernel-vmcore-writer.js';
import { formatPrintk, readPrintkLog } from '../../src/os/linux/printk.js';
import { CaptureOutput, Session } from '../../src/mdb/session.js';
import { builtinModules } from '../../src/mdb/modules/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-kdump-edge-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dump(name: string, spec: VmcoreSpec): string {
  const p = join(dir, name);
  writeVmcore(p, spec);
  return p;
}

/** A DbgError's code and message, or a failure when `f` does not throw one. */
function failure(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof DbgError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a DbgError');
}

// --- a kdump-style vmcore of a KASLR kernel -------------------------------------------------------
//
// Link-time layout of the "vmlinux" (built below with as + ld):
//   .text at 0xffffffff81000000 (_text)
//   .data at 0xffffffff81200000: swapper_pg_dir (4 KiB), then jiffies (u64), then linux_banner
// Run time: KERNELOFFSET 0x2000000 (virtual slide), phys_base 0x200000, so
//   swapper_pg_dir runs at 0xffffffff83200000 and lives at phys
//   0xffffffff83200000 - __START_KERNEL_map (0xffffffff80000000) + 0x200000 = 0x3400000.
const KO = 0x2000000n;
const PHYS_BASE = 0x200000n;
const SWAPPER_LINK = 0xffffffff81200000n;
const SWAPPER_RUN = SWAPPER_LINK + KO;
const SWAPPER_PHYS = 0x3400000n;
const RAM = 0x3400000n; // one 2 MiB RAM segment from here
const BANNER = 'Linux version 6.1.0-dbgtest (dbg@test) #1 SMP\n';

function vmlinux(name: string, banner: string, buildId = false): string {
  const s = join(dir, `${name}.s`);
  writeFileSync(
    s,
    `.text\n.globl _text\n_text: ret\n` +
      `.data\n.globl swapper_pg_dir\n.type swapper_pg_dir,@object\n.size swapper_pg_dir,4096\nswapper_pg_dir: .zero 4096\n` +
      `.globl jiffies\n.type jiffies,@object\n.size jiffies,8\njiffies: .quad 0\n` +
      `.globl linux_banner\n.type linux_banner,@object\n.size linux_banner,${banner.length + 1}\nlinux_banner: .asciz ${JSON.stringify(banner)}\n`,
  );
  execFileSync('as', ['--64', '-o', join(dir, `${name}.o`), s]);
  const out = join(dir, name);
  execFileSync('ld', ['-o', out, '-e', '_text', '-Ttext=0xffffffff81000000', '-Tdata=0xffffffff81200000', ...(buildId ? ['--build-id=sha1'] : []), join(dir, `${name}.o`)]);
  return out;
}

function kdumpSpec(vmcoreinfo: string, extra: Partial<VmcoreSpec> = {}, build?: (pt: PageTableBuilder) => void): VmcoreSpec {
  const pt = new PageTableBuilder(SWAPPER_PHYS, RAM + 0x10000n);
  build?.(pt);
  pt.map(SWAPPER_RUN, SWAPPER_PHYS, 4096); // swapper_pg_dir itself
  pt.map(SWAPPER_RUN + 0x1000n, SWAPPER_PHYS + 0x1000n, 4096); // jiffies, linux_banner
  pt.map(0xffff888000000000n, 0n, 0x40000000, 0x8000000000000003n); // direct map, NX
  const data = Buffer.alloc(8 + BANNER.length + 1);
  data.writeBigUInt64LE(0x1234n, 0);
  data.write(BANNER, 8, 'latin1');
  return {
    cpus: [
      { pid: 0, regs: { rip: SWAPPER_RUN - 0x200000n + 0x10n, rsp: 0xffffc90000003f00n } },
      { pid: 1234, regs: { rip: SWAPPER_RUN - 0x200000n + 0x20n } },
    ],
    vmcoreinfo,
    segments: [
      // kdump describes RAM by its direct-map address: nothing maps swapper_pg_dir's virtual address.
      { paddr: RAM, vaddr: 0xffff888000000000n + RAM, size: 0x200000, chunks: [...pt.chunks(RAM), { offset: 0x1000, bytes: data }] },
    ],
    ...extra,
  };
}

const VMCOREINFO =
  'OSRELEASE=6.1.0-dbgtest\nPAGESIZE=4096\n' +
  `SYMBOL(swapper_pg_dir)=${SWAPPER_RUN.toString(16)}\nSYMBOL(jiffies)=${(SWAPPER_RUN + 0x1000n).toString(16)}\n` +
  `NUMBER(phys_base)=${PHYS_BASE}\nKERNELOFFSET=${KO.toString(16)}\nCRASHTIME=1700000000\n`;

describe('kdump-style vmcore with VMCOREINFO and no CR3', () => {
  let path: string;
  beforeAll(() => {
    path = dump('kdump.vmcore', kdumpSpec(VMCOREINFO));
  });

  it('finds swapper_pg_dir at SYMBOL(swapper_pg_dir) - __START_KERNEL_map + phys_base', () => {
    const elf = ElfFile.open(path);
    expect(isKernelDump(elf)).toBe(true);
    elf.close();
    const t = KernelDumpTarget.open(path);
    expect(t.flavour).toBe('kdump');
    expect(t.vmcoreinfo?.osrelease).toBe('6.1.0-dbgtest');
    expect(t.kernelRoot().root).toBe(SWAPPER_PHYS);
    expect(t.describe()).toContain(
      'CPU 0: 4-level paging from VMCOREINFO SYMBOL(swapper_pg_dir) = 0xffffffff83200000 - __START_KERNEL_map + phys_base 0x200000 = phys 0x3400000',
    );
    expect(t.threads().map((x) => x.name)).toEqual(['CPU 0', 'CPU 1 (pid 1234)']);
    expect(t.registers(2).get('rip')).toBe(SWAPPER_RUN - 0x200000n + 0x20n);
    expect(t.registers(1).has('cr3')).toBe(false);
    // Without --symbols, VMCOREINFO's SYMBOL() lines name things.
    expect(t.symbols.lookup('jiffies')).toBe(SWAPPER_RUN + 0x1000n);
    expect(t.readVirtual(t.symbols.lookup('jiffies'), 8).readBigUInt64LE(0)).toBe(0x1234n);
    expect(t.readVirtual(0xffff888000000000n + SWAPPER_PHYS + 0x1008n, 14).toString('latin1')).toBe('Linux version ');
    expect(t.translate(0xffff888000000000n + SWAPPER_PHYS).pageSize).toBe(1 << 30);
    t.close();
  });

  it('applies KERNELOFFSET to the symbols of --symbols vmlinux', () => {
    const t = KernelDumpTarget.open(path, { symbols: [vmlinux('vmlinux', BANNER)] });
    expect(t.kernelOffset).toBe(KO);
    expect(t.symbols.lookup('jiffies')).toBe(0xffffffff81201000n + KO);
    expect(t.readVirtual(t.symbols.lookup('jiffies'), 8).readBigUInt64LE(0)).toBe(0x1234n);
    expect(t.readString(t.symbols.lookup('linux_banner'))).toBe(BANNER);
    expect(t.symbols.describe(SWAPPER_RUN + 0x1004n)).toBe('jiffies+0x4');
    t.close();
  });

  it('uses a PT_LOAD that maps swapper_pg_dir when phys_base is missing', () => {
    const info = VMCOREINFO.replace(/NUMBER\(phys_base\)=\d+\n/, '');
    const spec = kdumpSpec(info);
    const seg = spec.segments[0]!;
    // As kdump does, a second PT_LOAD describes the kernel image by its kernel-map address; both
    // point at the same file bytes.
    const p = dump('kdump-textmap.vmcore', {
      ...spec,
      segments: [{ ...seg, fileOffset: 0x2000 }, { paddr: SWAPPER_PHYS, vaddr: SWAPPER_RUN, size: 0x2000, fileOffset: 0x2000 }],
    });
    const t = KernelDumpTarget.open(p);
    expect(t.kernelRoot()).toEqual({ root: SWAPPER_PHYS, from: 'VMCOREINFO SYMBOL(swapper_pg_dir) = 0xffffffff83200000 via PT_LOAD 2 -> phys 0x3400000' });
    expect(t.warnings).toEqual([]);
    expect(t.readVirtual(SWAPPER_RUN + 0x1000n, 8).readBigUInt64LE(0)).toBe(0x1234n);
    t.close();
  });

  it('refuses a symbol file whose linux_banner names another release', () => {
    const other = vmlinux('vmlinux-other', 'Linux version 5.10.0-other (x@y) #2\n');
    const f = failure(() => KernelDumpTarget.open(path, { symbols: [other] }));
    expect(f.code).toBe('bad-input');
    expect(f.message).toBe(
      `--symbols ${other} does not match kernel dump "kdump.vmcore": the dump's OSRELEASE is 6.1.0-dbgtest, the file's linux_banner says 5.10.0-other. Give the vmlinux of the kernel that was dumped`,
    );
  });

  it('refuses a symbol file with another build-id', () => {
    const k = vmlinux('vmlinux-bid', BANNER, true);
    const elf = ElfFile.open(k);
    const id = elf.buildId()!;
    elf.close();
    const p = dump('kdump-bid.vmcore', kdumpSpec(VMCOREINFO + 'BUILD-ID=00112233445566778899aabbccddeeff00112233\n'));
    const f = failure(() => KernelDumpTarget.open(p, { symbols: [k] }));
    expect(f.code).toBe('bad-input');
    expect(f.message).toContain(`the dump's BUILD-ID is 00112233445566778899aabbccddeeff00112233, the file's is ${id}`);
    const ok = dump('kdump-bid-ok.vmcore', kdumpSpec(VMCOREINFO + `BUILD-ID=${id}\n`));
    KernelDumpTarget.open(ok, { symbols: [k] }).close();
  });

  it('refuses a core file or a foreign ELF as --symbols', () => {
    expect(failure(() => KernelDumpTarget.open(path, { symbols: [path] }))).toEqual({
      code: 'bad-input',
      message: `--symbols ${path}: this is a core file, not a kernel ELF`,
    });
  });
});

describe('a QEMU dump of a KASLR kernel without VMCOREINFO', () => {
  function qemuKaslr(name: string, build?: (pt: PageTableBuilder) => void): string {
    const spec = kdumpSpec('', {}, build);
    const cpus = spec.cpus.map((c) => ({ ...c, qemu: { cr: [0x80050033n, 0n, 0n, SWAPPER_PHYS, 0x20n] as [bigint, bigint, bigint, bigint, bigint] } }));
    return dump(name, { ...spec, cpus, vmcoreinfo: undefined });
  }

  it('finds the KASLR offset from linux_banner and applies it to the symbols', () => {
    const t = KernelDumpTarget.open(qemuKaslr('kaslr.vmcore'), { symbols: [vmlinux('vmlinux-k', BANNER)] });
    expect(t.kernelOffset).toBe(KO);
    expect(t.warnings).toContain('no KERNELOFFSET in the dump: found linux_banner at KASLR offset 0x2000000, and applied it to the symbols');
    expect(t.readVirtual(t.symbols.lookup('jiffies'), 8).readBigUInt64LE(0)).toBe(0x1234n);
    t.close();
  });

  it('refuses a symbol file whose banner is readable at offset 0 with other text', () => {
    // Map the link address of linux_banner too, onto the page that holds this kernel's banner.
    const p = qemuKaslr('kaslr-zero.vmcore', (pt) => pt.map(0xffffffff81201000n, SWAPPER_PHYS + 0x1000n, 4096));
    const other = vmlinux('vmlinux-k3', 'Linux version 5.10.0-other (x@y) #2\n');
    expect(failure(() => KernelDumpTarget.open(p, { symbols: [other] }))).toEqual({
      code: 'bad-input',
      message: `--symbols ${other} does not match kernel dump "kaslr-zero.vmcore": linux_banner in the dump reads "Linux version 6.1.0-dbgtest (dbg@test) #1 SMP", the file has "Linux version 5.10.0-other (x@y) #2". Give the vmlinux of the kernel that was dumped`,
    });
  });

  it('refuses a symbol file whose banner is nowhere, when the dump has another kernel\'s banner at a KASLR offset', () => {
    const other = vmlinux('vmlinux-k2', 'Linux version 5.10.0-other (x@y) #2\n');
    expect(failure(() => KernelDumpTarget.open(qemuKaslr('kaslr-other.vmcore'), { symbols: [other] }))).toEqual({
      code: 'bad-input',
      message: `--symbols ${other} does not match kernel dump "kaslr-other.vmcore": linux_banner in the dump (at KASLR offset 0x2000000) reads "Linux version 6.1.0-dbgtest (dbg@test) #1 SMP", the file has "Linux version 5.10.0-other (x@y) #2". Give the vmlinux of the kernel that was dumped`,
    });
  });
});

describe('the Linux printk ring buffer, located by VMCOREINFO', () => {
  // A 4-record ring with 64 bytes of text, in RAM reached through the direct map:
  //   id 2 (index 2): "second line", id 3 (index 3): "wrapped!" (its block wraps to index 0),
  //   id 4 (index 0): reserved, not committed: skipped. tail_id 2, head_id 4.
  const P = RAM + 0x100000n;
  const V = 0xffff888000000000n + P;
  const info =
    VMCOREINFO +
    `SYMBOL(prb)=${V.toString(16)}\n` +
    'OFFSET(printk_ringbuffer.desc_ring)=0\nOFFSET(printk_ringbuffer.text_data_ring)=48\n' +
    'OFFSET(prb_desc_ring.count_bits)=0\nOFFSET(prb_desc_ring.descs)=8\nOFFSET(prb_desc_ring.infos)=16\n' +
    'OFFSET(prb_desc_ring.head_id)=24\nOFFSET(prb_desc_ring.tail_id)=32\nSIZE(prb_desc)=24\nOFFSET(prb_desc.state_var)=0\n' +
    'OFFSET(prb_desc.text_blk_lpos)=8\nOFFSET(prb_data_blk_lpos.begin)=0\nOFFSET(prb_data_blk_lpos.next)=8\n' +
    'SIZE(printk_info)=88\nOFFSET(printk_info.seq)=0\nOFFSET(printk_info.ts_nsec)=8\nOFFSET(printk_info.text_len)=16\n' +
    'OFFSET(prb_data_ring.size_bits)=0\nOFFSET(prb_data_ring.data)=8\n';
  function ring(): Buffer {
    const m = Buffer.alloc(0x700);
    const q = (o: number, v: bigint) => m.writeBigUInt64LE(v, o);
    q(0, V + 0x100n); // prb -> the ring buffer
    m.writeUInt32LE(2, 0x100); // count_bits: 4 descriptors
    q(0x108, V + 0x200n);
    q(0x110, V + 0x300n);
    q(0x118, 4n); // head_id
    q(0x120, 2n); // tail_id
    m.writeUInt32LE(6, 0x130); // size_bits: 64 bytes of text
    q(0x138, V + 0x600n);
    const desc = (index: number, state: bigint, id: bigint, begin: bigint, next: bigint) => {
      q(0x200 + index * 24, (state << 62n) | id);
      q(0x208 + index * 24, begin);
      q(0x210 + index * 24, next);
    };
    const inf = (index: number, seq: bigint, ts: bigint, len: number) => {
      q(0x300 + index * 88, seq);
      q(0x308 + index * 88, ts);
      m.writeUInt16LE(len, 0x310 + index * 88);
    };
    desc(2, 2n, 2n, 0x50n, 0x68n); // finalized, data at index 0x10
    inf(2, 1n, 1_500_000_000n, 11);
    q(0x610, 2n);
    m.write('second line', 0x618, 'latin1');
    desc(3, 1n, 3n, 0x78n, 0x90n); // committed; wraps: data at index 0
    inf(3, 2n, 2_000_123_456n, 8);
    q(0x600, 3n);
    m.write('wrapped!', 0x608, 'latin1');
    desc(0, 0n, 4n, 0x90n, 0xa0n); // reserved: skipped
    return m;
  }

  it('reads the records in order, skipping the uncommitted one', () => {
    const spec = kdumpSpec(info);
    const seg = spec.segments[0]!;
    const p = dump('printk.vmcore', { ...spec, segments: [{ ...seg, chunks: [...seg.chunks!, { offset: 0x100000, bytes: ring() }] }] });
    const t = KernelDumpTarget.open(p);
    const recs = readPrintkLog(t.linux);
    expect(recs.map(formatPrintk)).toEqual(['[    1.500000] second line', '[    2.000123] wrapped!']);
    return (async () => {
      const out = new CaptureOutput();
      await new Session(t, builtinModules).execute('::dmesg -n 1', out);
      expect(out.lines).toEqual(['[    2.000123] wrapped!']);
      t.close();
    })();
  });

  it('says what is missing when VMCOREINFO does not describe the buffer', () => {
    const t = KernelDumpTarget.open(dump('printk-old.vmcore', kdumpSpec(VMCOREINFO + `SYMBOL(prb)=${V.toString(16)}\n`)));
    expect(failure(() => readPrintkLog(t.linux))).toEqual({
      code: 'not-found',
      message: 'VMCOREINFO has no OFFSET(printk_ringbuffer.desc_ring): the kernel predates the lockless printk ring buffer (Linux 5.10) or does not describe it',
    });
    expect(failure(() => readPrintkLog({ ...t.linux, vmcoreinfo: undefined })).message).toBe(
      'kernel dump "printk-old.vmcore" has no VMCOREINFO note and no vmlinux types (--symbols vmlinux): the kernel log\'s layout is unknown',
    );
    t.close();
  });
});

describe('kallsyms from the dump, located by VMCOREINFO (no vmlinux)', () => {
  const P = RAM + 0x180000n;
  const V = 0xffff888000000000n + P;
  const BASE = 0xffffffff81000000n;
  const LONG = 'a'.repeat(129); // 130 tokens with the type letter: Linux 6.1's two-byte length
  const syms: [string, bigint][] = [
    ['T_stext', BASE],
    ['tpanic_helper', BASE + 0x100n],
    ['Dinit_task', BASE + 0x200000n],
    ['Afixed_percpu_data', 0n], // a per-CPU offset, not an address
    ['t' + LONG, BASE + 0x300n],
  ];
  function tables(): Buffer {
    const m = Buffer.alloc(0x1000);
    m.writeUInt32LE(syms.length, 0x800);
    m.writeBigUInt64LE(BASE, 0x808);
    syms.forEach(([, v], i) => m.writeInt32LE(v === 0n ? 0 : -Number(v - BASE) - 1, 0x810 + i * 4));
    // Tokens: 1 = "panic", 2 = "_helper", every printable byte stands for itself, the rest are empty.
    const tok = (i: number) => (i === 1 ? 'panic' : i === 2 ? '_helper' : i >= 0x20 && i < 0x7f ? String.fromCharCode(i) : '');
    let at = 0;
    for (let i = 0; i < 256; i++) {
      m.writeUInt16LE(at, 0x840 + i * 2);
      at += m.write(tok(i) + '\0', 0xa40 + at, 'latin1');
    }
    let o = 0xe00;
    for (const [name] of syms) {
      const toks = name === 'tpanic_helper' ? [0x74, 1, 2] : [...name].map((c) => c.charCodeAt(0));
      if (toks.length >= 0x80) {
        m[o++] = (toks.length & 0x7f) | 0x80;
        m[o++] = toks.length >> 7;
      } else m[o++] = toks.length;
      for (const t of toks) m[o++] = t;
    }
    return m;
  }
  const info =
    VMCOREINFO +
    [['num_syms', 0x800], ['relative_base', 0x808], ['offsets', 0x810], ['token_index', 0x840], ['token_table', 0xa40], ['names', 0xe00]]
      .map(([n, o]) => `SYMBOL(kallsyms_${n})=${(V + BigInt(o as number)).toString(16)}\n`)
      .join('');

  it('decodes names, addresses, kinds and sizes', () => {
    const spec = kdumpSpec(info);
    const seg = spec.segments[0]!;
    const t = KernelDumpTarget.open(dump('kallsyms.vmcore', { ...spec, segments: [{ ...seg, chunks: [...seg.chunks!, { offset: 0x180000, bytes: tables() }] }] }));
    expect(t.symbols.modules.map((m) => m.name)).toEqual(['kallsyms', 'vmcoreinfo']);
    const k = t.symbols.modules[0]!.table;
    expect(k.all().map((x) => [x.name, x.addr, x.size, x.kind, x.global])).toEqual([
      ['_stext', BASE, 0x100n, 'func', true],
      ['panic_helper', BASE + 0x100n, 0x200n, 'func', false],
      [LONG, BASE + 0x300n, 0x1ffd00n, 'func', false],
      ['init_task', BASE + 0x200000n, 0n, 'object', true],
    ]);
    expect(t.symbols.describe(BASE + 0x150n)).toBe('panic_helper+0x50');
    expect(t.symbols.lookup('jiffies')).toBe(SWAPPER_RUN + 0x1000n); // still from VMCOREINFO's SYMBOL()
    t.close();
  });

  it('a broken table leaves a warning and the VMCOREINFO symbols', () => {
    const t = KernelDumpTarget.open(dump('kallsyms-bad.vmcore', kdumpSpec(info))); // the tables' memory is all zero
    expect(t.symbols.modules[0]!.table.size).toBe(0);
    expect(t.warnings).toContain('kallsyms could not be read: kernel dump "kallsyms-bad.vmcore": kallsyms_num_syms is 0: not a kernel symbol count');
    expect(t.symbols.lookup('swapper_pg_dir')).toBe(SWAPPER_RUN);
    t.close();
  });
});

// --- QEMU-style dumps with broken page tables ---------------------------------------------------

const ROOT = 0x10000n;
function qemuSpec(build: (pt: PageTableBuilder) => void, cr3 = ROOT, extra: Partial<VmcoreSpec> = {}): VmcoreSpec {
  const pt = new PageTableBuilder(ROOT, 0x11000n);
  pt.map(0xffffffff81000000n, 0x100000n, 4096);
  build(pt);
  const page = Buffer.from('good page\0', 'latin1');
  return {
    cpus: [{ regs: { rip: 0xffffffff81000000n }, qemu: { cr: [0x80050033n, 0n, 0n, cr3, 0x20n] } }],
    segments: [{ paddr: 0n, size: 0x200000, chunks: [...pt.chunks(0n), { offset: 0x100000, bytes: page }] }],
    ...extra,
  };
}

describe('a CPU stopped with a user page table (KPTI)', () => {
  it('reads kernel addresses through the kernel PGD beside the user one', () => {
    const pt = new PageTableBuilder(0x20000n, 0x30000n); // kernel PGD at 0x20000
    pt.map(0xffffffff81000000n, 0x100000n, 4096);
    const user = new PageTableBuilder(0x21000n, 0x40000n); // user PGD = kernel PGD + 4 KiB
    user.map(0x400000n, 0x101000n, 4096);
    const bytes = Buffer.from('kernel text\0user data\0', 'latin1');
    const p = dump('kpti.vmcore', {
      cpus: [{ regs: { rip: 0x400000n }, qemu: { cr: [0x80050033n, 0n, 0n, 0x21000n | 0x5n, 0x20n | 0x20000n] } }], // PCID 5
      segments: [
        {
          paddr: 0n,
          size: 0x200000,
          chunks: [...pt.chunks(0n), ...user.chunks(0n), { offset: 0x100000, bytes: bytes.subarray(0, 12) }, { offset: 0x101000, bytes: bytes.subarray(12) }],
        },
      ],
    });
    const t = KernelDumpTarget.open(p);
    expect(t.readString(0x400000n)).toBe('user data');
    expect(t.readString(0xffffffff81000000n)).toBe('kernel text');
    expect(t.translate(0xffffffff81000000n).steps[0]!.entryAddr).toBe(0x20000n + 511n * 8n);
    t.close();
  });
});

describe('bad input: each a clear error, and the session goes on', () => {
  it('no VMCOREINFO and no CR3: virtual reads say why; physical reads work', () => {
    const p = dump('nocr3.vmcore', { cpus: [{ regs: { rip: 0xffffffff81000000n } }], segments: [{ paddr: 0n, size: 0x10000, chunks: [{ offset: 0x100, bytes: Buffer.from('phys') }] }] });
    const elf = ElfFile.open(p);
    expect(isKernelDump(elf)).toBe(true); // NT_PRSTATUS but no NT_PRPSINFO/NT_AUXV: not a process core
    elf.close();
    const t = KernelDumpTarget.open(p);
    expect(failure(() => t.readVirtual(0xffffffff81000000n, 8))).toEqual({
      code: 'unmapped',
      message:
        'read of 8 bytes at 0xffffffff81000000 failed: kernel dump "nocr3.vmcore" cannot translate virtual addresses: no CPU note has CR3, and neither VMCOREINFO nor the symbols give swapper_pg_dir. Physical reads still work (::pread, addr\\fmt)',
    });
    expect(t.translate(0xffffffff81000000n).fault).toBe('cannot translate: no CPU note has CR3, and neither VMCOREINFO nor the symbols give swapper_pg_dir');
    expect(t.readPhysical(0x100n, 4).toString()).toBe('phys');
    t.close();
  });

  it('CR3 outside the dump', () => {
    const t = KernelDumpTarget.open(dump('cr3-out.vmcore', qemuSpec(() => {}, 0x7000000n)));
    expect(t.translate(0xffffffff81000000n).fault).toBe('the PML4 at phys 0x7000000 (from CR3) is not in the dump');
    expect(failure(() => t.readVirtual(0xffffffff81000000n, 8))).toEqual({
      code: 'unmapped',
      message: 'read of 8 bytes at 0xffffffff81000000 failed: not mapped for thread 1 (CPU 0 CR3 0x7000000): the PML4 at phys 0x7000000 (from CR3) is not in the dump',
    });
    expect(t.readPhysical(0x100000n, 4).toString()).toBe('good');
    t.close();
  });

  it('a page-table entry and a page outside the dump; other reads keep working', () => {
    const t = KernelDumpTarget.open(
      dump(
        'pte-out.vmcore',
        qemuSpec((pt) => {
          pt.map(0xffffffff82000000n, 0x9000000n, 4096); // page frame outside
          pt.set(ROOT + 0x8n, 0x8000003n); // PML4[1] -> a PDPT outside
        }),
      ),
    );
    expect(t.translate(0x8000000000n).fault).toBe('the PDPT at phys 0x8000000 (from PML4E[1] = 0x8000003) is not in the dump');
    expect(failure(() => t.readVirtual(0x8000000000n, 1)).code).toBe('unmapped');
    expect(failure(() => t.readVirtual(0xffffffff82000000n, 8))).toEqual({
      code: 'unmapped',
      message: 'read of 8 bytes at 0xffffffff82000000 (thread 1) failed: it translates to physical 0x9000000, which is not in kernel dump "pte-out.vmcore"',
    });
    expect(t.readString(0xffffffff81000000n)).toBe('good page');
    t.close();
  });

  it('a page-table loop is reported as corrupt, not followed', () => {
    const t = KernelDumpTarget.open(dump('loop.vmcore', qemuSpec((pt) => pt.set(ROOT + 0x10n, ROOT | 0x3n))));
    const va = 2n << 39n; // PML4[2] -> the PML4 itself
    expect(t.translate(va).fault).toBe('page-table loop: PML4E[2] = 0x10003 points back to the PML4 at phys 0x10000');
    expect(failure(() => t.readVirtual(va, 8)).code).toBe('corrupt');
    expect(t.readString(0xffffffff81000000n)).toBe('good page');
    expect(t.mappings().map((m) => m.start)).toEqual([0xffffffff81000000n]); // the loop is not listed
    t.close();
  });

  it('overlapping PT_LOADs that disagree: the overlap fails, the rest reads', () => {
    const spec = qemuSpec(() => {});
    const a = Buffer.alloc(0x1000, 0xaa);
    const p = dump('overlap.vmcore', {
      ...spec,
      segments: [...spec.segments, { paddr: 0x1ff000n, size: 0x2000, chunks: [{ offset: 0, bytes: a }] }],
    });
    const t = KernelDumpTarget.open(p);
    expect(t.warnings).toContain('PT_LOAD 1 and PT_LOAD 2 both claim physical 0x1ff000-0x200000 with different file offsets; reads there fail');
    expect(failure(() => t.readPhysical(0x1ff800n, 8))).toEqual({
      code: 'corrupt',
      message: 'read of 8 bytes at physical 0x1ff800 failed: kernel dump "overlap.vmcore" has two PT_LOADs (1 and 2) for physical 0x1ff800 that disagree',
    });
    expect(t.readPhysical(0x200000n, 4).readUInt32LE(0)).toBe(0); // past the first segment: only the second
    expect(t.readString(0xffffffff81000000n)).toBe('good page');
    t.close();
  });

  it('a truncated dump: readable up to the cut, then a truncation error', () => {
    const spec = qemuSpec(() => {});
    const full = dump('full.vmcore', spec);
    const size = ElfFile.open(full).source.size;
    const cut = size - 0x80000; // the last 512 KiB of the 2 MiB segment are gone
    const t = KernelDumpTarget.open(dump('cut.vmcore', { ...spec, truncateTo: cut }));
    expect(t.warnings[0]).toMatch(/^PT_LOAD 1 \(phys 0x0-0x200000\) needs file bytes up to 0x[0-9a-f]+ but the file ends at 0x[0-9a-f]+: the dump is truncated$/);
    const f = failure(() => t.readPhysical(0x1f0000n, 8));
    expect(f.code).toBe('corrupt');
    expect(f.message).toMatch(/^read of 8 bytes at physical 0x1f0000 failed: physical 0x1f0000 would be at file offset 0x[0-9a-f]+, past the end of kernel dump "cut.vmcore" \(size 0x[0-9a-f]+\); the dump is truncated$/);
    expect(t.readString(0xffffffff81000000n)).toBe('good page');
    t.close();
    // Cut inside the headers: the open itself fails, naming the structure.
    const h = dump('cut-headers.vmcore', { ...spec, truncateTo: 100 });
    const g = failure(() => KernelDumpTarget.open(h));
    expect(g.code).toBe('corrupt');
    expect(g.message).toContain('program header table (2 entries at offset 0x40) runs past the end of the file (size 0x64)');
  });

  it('an unknown thread and a bad length are bad input', () => {
    const t = KernelDumpTarget.open(dump('plain.vmcore', qemuSpec(() => {})));
    expect(failure(() => t.registers(0))).toEqual({ code: 'bad-input', message: 'no thread 0 in kernel dump "plain.vmcore": threads are 1..1' });
    expect(failure(() => t.readVirtual(0xffffffff81000000n, -1))).toEqual({ code: 'bad-input', message: 'read length -1 is not a byte count' });
    t.close();
  });

  it('a non-x86-64 or non-core file is refused', () => {
    const p = dump('x.vmcore', qemuSpec(() => {}));
    const b = ElfFile.open(p).source.read(0, 64);
    const bad = Buffer.from(b);
    bad.writeUInt16LE(183, 18); // EM_AARCH64
    const q = join(dir, 'arm.vmcore');
    writeFileSync(q, bad);
    expect(failure(() => KernelDumpTarget.open(q))).toEqual({
      code: 'bad-input',
      message: `${q}: kernel dumps of machine 183 (ELF64) are not supported; dbg reads x86-64 (EM_X86_64 62, ELF64)`,
    });
  });
});
