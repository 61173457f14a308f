/**
 * Opt-in: kdump-compressed dumps of a real Debian 6.1 kernel (the dumps scripts/make-linux-dumps.mjs
 * makes: QEMU, TCG, 512 MiB, 2 vCPUs, sysrq-c on CPU 1, with VMCOREINFO):
 *   - QEMU's own kdump-zlib dump (flattened), page for page against the ELF dump of the same stop;
 *   - makedumpfile -c, -l and -F -c at dump level 31 (zero, cache, private cache, user and free pages
 *     left out) of that ELF dump, made here and cached in test/.fixtures/linux-kdump/: every page
 *     it kept equals the ELF dump's, every page it left out says so, and drgn (through
 *     libkdumpfile) and crash read the same bytes and refuse the same pages.
 *
 *   node scripts/setup-vmlinux.mjs && node scripts/make-linux-dumps.mjs
 *   DBG_LINUX_DUMP_TESTS=1 npx vitest run test/targets/kdump/kdump-linux.test.ts
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../../src/common/errors.js';
import { KernelDumpTarget } from '../../../src/targets/elfcore/kernel-dump-target.js';
import { KdumpFile } from '../../../src/targets/kdump/kdump-file.js';
import { makedumpfileInput } from '../../../src/targets/kdump/makedumpfile-input.js';
import { openTarget } from '../../../src/targets/open-target.js';
import { skipReason } from '../../helpers/debuggee.js';
import { repoRoot } from '../../helpers/repo.js';
import { run, sessionOn } from '../../mdb/helpers.js';

const linux = join(repoRoot, 'test', '.fixtures', 'linux');
const cache = join(repoRoot, 'test', '.fixtures', 'linux-kdump');
const vmlinux = join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const why =
  process.env.DBG_LINUX_DUMP_TESTS !== '1'
    ? 'opt-in: set DBG_LINUX_DUMP_TESTS=1 (after node scripts/setup-vmlinux.mjs and node scripts/make-linux-dumps.mjs)'
    : !existsSync(join(linux, 'vmci.elf')) || !existsSync(join(linux, 'vmci.kdump-zlib')) || !existsSync(vmlinux)
      ? 'no dumps or no vmlinux: run node scripts/setup-vmlinux.mjs, then node scripts/make-linux-dumps.mjs'
      : undefined;
const skip = skipReason('real Linux kdump-compressed dumps', why);

const d31: Record<string, string> = {};
let elf: KernelDumpTarget;

/** makedumpfile -d 31 of the ELF dump, made once. */
function makeLevel31(): void {
  mkdirSync(cache, { recursive: true });
  const input = join(cache, 'vmci-mdf.elf');
  const outputs = { '-c': 'd31-zlib.kdump', '-l': 'd31-lzo.kdump', '-F -c': 'd31-zlib.flat' } as const;
  for (const [flags, file] of Object.entries(outputs)) {
    const out = join(cache, file);
    d31[`makedumpfile ${flags} -d 31`] = out;
    if (existsSync(out)) continue;
    if (!existsSync(input)) makedumpfileInput(join(linux, 'vmci.elf'), input);
    const flat = flags.startsWith('-F');
    const args = [...flags.split(' '), '-d', '31', input, ...(flat ? [] : [out])];
    const r = spawnSync('makedumpfile', args, { stdio: ['ignore', flat ? openSync(out, 'w') : 'ignore', 'pipe'] });
    if (r.status !== 0) {
      rmSync(out, { force: true });
      throw new Error(`makedumpfile ${args.join(' ')}: ${r.stderr}`);
    }
  }
  rmSync(input, { force: true }); // 550 MB, needed only to make the dumps
}

const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex').slice(0, 16);

describe.skipIf(skip)('kdump-compressed dumps of a real 6.1 kernel', () => {
  beforeAll(() => {
    makeLevel31();
    elf = KernelDumpTarget.open(join(linux, 'vmci.elf'), { symbols: [vmlinux] });
  }, 300_000);
  afterAll(() => elf?.close());

  it("QEMU's kdump-zlib dump: every page equals the ELF dump of the same stop", () => {
    const t = openTarget(join(linux, 'vmci.kdump-zlib'), { symbols: [vmlinux] }) as KernelDumpTarget;
    try {
      expect(t.phys.regions()).toEqual(elf.phys.regions());
      let pages = 0;
      for (const r of elf.phys.regions()) {
        for (let a = r.start; a < r.end; a += 4096n, pages++) {
          if (!t.readPhysical(a, 4096).equals(elf.readPhysical(a, 4096))) throw new Error(`page 0x${a.toString(16)} differs`);
        }
      }
      expect(pages).toBe(135200);
    } finally {
      t.close();
    }
  }, 120_000);

  it('makedumpfile -d 31: kept pages equal the ELF dump, left-out pages say so', () => {
    for (const [name, path] of Object.entries(d31)) {
      const k = KdumpFile.open(path);
      let kept = 0;
      let excluded = 0;
      try {
        expect(k.header.dumpLevel, name).toBe(31);
        for (let pfn = 0; pfn < k.header.maxMapnr; pfn++) {
          if (!k.exists(pfn)) continue;
          if (k.isDumped(pfn)) {
            kept++;
            if (!k.page(pfn).equals(elf.readPhysical(BigInt(pfn * 4096), 4096))) throw new Error(`${name}: page 0x${(pfn * 4096).toString(16)} differs`);
          } else {
            excluded++;
            let message = '';
            try {
              k.page(pfn);
            } catch (e) {
              message = (e as DbgError).message;
            }
            if (message !== `page 0x${(pfn * 4096).toString(16)} was excluded by makedumpfile (dump level 31)`) throw new Error(`${name}: pfn 0x${pfn.toString(16)}: ${message}`);
          }
        }
        expect(kept + excluded, name).toBe(131040);
        expect(excluded, name).toBeGreaterThan(100_000);
        expect(k.describe(), name).toContain(`dump level 31, ${kept} pages dumped, ${excluded} excluded`);
      } finally {
        k.close();
      }
    }
  }, 300_000);

  it('makedumpfile -d 31: the kernel is all there (status, stacks, tasks, log as from the ELF dump)', async () => {
    const want = await run(sessionOn(elf), '::status; ::stack -a; ::ps; ::dmesg');
    for (const [name, path] of Object.entries(d31)) {
      const t = openTarget(path, { symbols: [vmlinux] }) as KernelDumpTarget;
      try {
        const got = await run(sessionOn(t), '::status; ::stack -a; ::ps; ::dmesg');
        // ::status names the dump; the rest is the same.
        expect(got.filter((l) => !/^(debugging )?kernel dump |^physical memory: /.test(l)), name).toEqual(want.filter((l) => !/^(debugging )?kernel dump |^physical memory: /.test(l)));
      } finally {
        t.close();
      }
    }
  }, 300_000);

  it('drgn (libkdumpfile) reads the same bytes and refuses the same pages', () => {
    const path = d31['makedumpfile -c -d 31']!;
    const k = KdumpFile.open(path);
    const probes: number[] = [];
    try {
      // Every 37th page of RAM: kept and left-out pages both.
      for (let pfn = 0; pfn < k.header.maxMapnr; pfn += 37) if (k.exists(pfn)) probes.push(pfn);
      const ours = probes.map((pfn) => {
        try {
          return hash(k.page(pfn));
        } catch (e) {
          return (e as DbgError).message;
        }
      });
      const script = `
import hashlib, sys, drgn
p = drgn.Program()
p.set_core_dump(sys.argv[1])
for a in sys.argv[2:]:
    a = int(a, 16)
    try:
        print(hashlib.sha256(p.read(a, 4096, True)).hexdigest()[:16])
    except drgn.FaultError as e:
        print('FAULT', e)
`;
      const r = spawnSync('/usr/bin/python3', ['-c', script, path, ...probes.map((p) => (p * 4096).toString(16))], { encoding: 'utf8', maxBuffer: 1 << 24 });
      expect(r.status, r.stderr).toBe(0);
      const theirs = r.stdout.trim().split('\n');
      expect(theirs.length).toBe(probes.length);
      let excluded = 0;
      probes.forEach((pfn, i) => {
        const a = `0x${(pfn * 4096).toString(16)}`;
        if (ours[i]!.startsWith('page ')) {
          excluded++;
          expect(theirs[i], a).toBe(`FAULT could not read memory from kdump: Excluded page: ${a}`);
          expect(ours[i], a).toBe(`page ${a} was excluded by makedumpfile (dump level 31)`);
        } else expect(theirs[i], a).toBe(ours[i]);
      });
      expect(excluded).toBeGreaterThan(probes.length / 2);
    } finally {
      k.close();
    }
  }, 120_000);

  it('crash reads the same words and refuses the same pages', () => {
    const path = d31['makedumpfile -l -d 31']!;
    const k = KdumpFile.open(path);
    try {
      const kept: number[] = [];
      const left: number[] = [];
      for (let pfn = 0x1000; pfn < k.header.maxMapnr && (kept.length < 5 || left.length < 5); pfn += 101) {
        if (k.isDumped(pfn) && kept.length < 5) kept.push(pfn * 4096 + 0x88);
        else if (k.exists(pfn) && !k.isDumped(pfn) && left.length < 5) left.push(pfn * 4096 + 0x88);
      }
      const cmds = [...kept, ...left].map((a) => `rd -p ${a.toString(16)} 2`).join('\n') + '\nquit\n';
      const r = spawnSync('crash', ['-s', vmlinux, path], { input: cmds, encoding: 'utf8', timeout: 120_000 });
      for (const a of kept) {
        const q = k.read(a, 16);
        const words = `${q.readBigUInt64LE(0).toString(16).padStart(16, '0')} ${q.readBigUInt64LE(8).toString(16).padStart(16, '0')}`;
        expect(r.stdout, `rd -p ${a.toString(16)}`).toMatch(new RegExp(`^\\s*${a.toString(16)}:  ${words} `, 'm'));
      }
      for (const a of left) {
        expect(r.stdout + r.stderr).toContain(`rd: page excluded: physical address: ${a.toString(16)}  type: "64-bit PHYSADDR"`);
        expect(failure(() => k.read(a, 16))).toBe(`page 0x${(a & ~0xfff).toString(16)} was excluded by makedumpfile (dump level 31)`);
      }
    } finally {
      k.close();
    }
  }, 180_000);
});

function failure(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}
