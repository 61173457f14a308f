/**
 * Opt-in: dbg attach to a live Linux guest through QEMU's gdbstub. Debian's 6.1 kernel boots
 * under QEMU (TCG, 2 vCPUs, KASLR on) with the busybox initramfs of scripts/make-linux-dumps.mjs
 * (scripts/linux-initramfs.mjs), runs to userspace, and is stopped by the stub when dbg attaches
 * with --symbols vmlinux: dbg finds the KASLR slide from linux_banner, and ::ps and ::dmesg are
 * compared with what the guest itself printed on its console (busybox `ps`, the kernel's log).
 *
 *   node scripts/setup-vmlinux.mjs          # the -dbg vmlinux (once, as root)
 *   DBG_LINUX_LIVE_TESTS=1 npx vitest run test/gdb-client/attach-linux.test.ts
 *
 * Needs /boot/vmlinuz-RELEASE of the cached vmlinux, qemu-system-x86_64, cpio and a static
 * /bin/busybox. Booting under TCG takes about 10 s.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initramfs, SLEEPERS } from '../../scripts/linux-initramfs.mjs';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { symbolTableFor } from '../../src/symbols/compact-symbol-table.js';
import { RemoteTarget } from '../../src/targets/remote/remote-target.js';
import { skipReason } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { run, sessionOn } from '../mdb/helpers.js';
import { freePort, runDbg } from './attach-helpers.js';

const vmlinux = join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const record = join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux.json');
const release = existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { package: string }).package.replace(/^linux-image-/, '').replace(/-dbg$/, '') : '';
const vmlinuz = `/boot/vmlinuz-${release}`;
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const why =
  process.env.DBG_LINUX_LIVE_TESTS !== '1'
    ? 'opt-in: set DBG_LINUX_LIVE_TESTS=1 (after node scripts/setup-vmlinux.mjs)'
    : !existsSync(vmlinux) || !existsSync(record)
      ? 'no cached vmlinux: run node scripts/setup-vmlinux.mjs'
      : !existsSync(vmlinuz)
        ? `no ${vmlinuz} (the kernel of the cached vmlinux): apt-get install linux-image-${release}`
        : !has('qemu-system-x86_64') || !has('cpio') || !existsSync('/bin/busybox')
          ? 'needs qemu-system-x86_64, cpio and a static /bin/busybox (apt-get install qemu-system-x86 cpio busybox-static)'
          : undefined;
const skip = skipReason('a live Linux guest under QEMU', why);

let dir: string;
let qemu: ChildProcess | undefined;
let port: number;
let consoleFile: string;
/** What the guest printed up to the moment dbg attached. */
let printed: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'dbg-attach-linux-'));
  const fwcfg = `/lib/modules/${release}/kernel/drivers/firmware/qemu_fw_cfg.ko`;
  const initrd = initramfs(dir, 'live', 'true', { fwcfg });
  consoleFile = join(dir, 'console.txt');
  port = await freePort();
  qemu = spawn(
    'qemu-system-x86_64',
    ['-machine', 'pc', '-m', '512M', '-smp', '2', '-display', 'none', '-no-reboot', '-net', 'none', '-serial', `file:${consoleFile}`, '-gdb', `tcp:127.0.0.1:${port}`, '-kernel', vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=0'],
    { stdio: 'ignore' },
  );
  // Userspace is up when /init has printed `ps` (its last row is ps's own: `{ps} /bin/busybox sh /init`).
  const t0 = Date.now();
  for (;;) {
    const text = existsSync(consoleFile) ? readFileSync(consoleFile, 'latin1') : '';
    if (/DBG-PROCESSES-STARTED[\s\S]*\{ps\}[^\n]*\n/.test(text)) break;
    if (qemu.exitCode !== null || Date.now() - t0 > 180_000) throw new Error(`the guest did not reach userspace; its console:\n${text.slice(-2000)}`);
    await sleep(500);
  }
}, 200_000);

afterAll(() => {
  if (qemu && qemu.exitCode === null) qemu.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** busybox ps's rows on the console: pid and command. */
function busyboxPs(text: string): { pid: number; command: string }[] {
  const after = text.slice(text.indexOf('DBG-PROCESSES-STARTED'));
  return [...after.matchAll(/^\s*(\d+) \S+\s+(\S.*?)\r?$/gm)].map((m) => ({ pid: Number(m[1]), command: m[2]! }));
}

describe.skipIf(skip)('dbg attach to a live Linux guest (QEMU gdbstub, --symbols vmlinux)', () => {
  it('finds the KASLR slide; ::ps lists the processes busybox started, within 2 s; ::dmesg is the console; ::stacks of the sleepers; ::task and ::stack of init', async () => {
    // QEMU's stub stops the guest when a client connects.
    const t = RemoteTarget.attach('127.0.0.1', port, { symbols: [vmlinux] });
    printed = readFileSync(consoleFile, 'latin1');
    const s = sessionOn(t);
    try {
      const link = symbolTableFor('vmlinux', ElfFile.open(vmlinux), 0n).lookup('linux_banner')!.addr;
      expect(t.kernelOffset % (2n << 20n)).toBe(0n);
      expect(t.symbols.find('linux_banner')!.addr).toBe(link + t.kernelOffset);
      expect(t.warnings).toEqual([]);

      const t0 = performance.now();
      const ps = await run(s, '::ps');
      const psMs = performance.now() - t0;
      console.log(`::ps on the live guest: ${psMs.toFixed(0)} ms for ${ps.length - 1} tasks (KASLR offset 0x${t.kernelOffset.toString(16)})`);
      expect(psMs).toBeLessThan(2000);
      const rows = ps.slice(1).map((l) => /^(\S) +(\d+) +(\d+) +(\d+) (0x[0-9a-f]{16}) (.*)$/.exec(l)!);
      expect(rows.every((r) => r !== null)).toBe(true);
      const byPid = new Map(rows.map((r) => [Number(r[2]), { ppid: Number(r[3]), comm: r[6]! }]));
      expect(byPid.get(0)!.comm).toBe('[swapper/0]');
      expect(byPid.get(1)!.comm).toBe('init');
      expect(byPid.get(2)!.comm).toBe('[kthreadd]');
      // Every sleeper busybox's ps showed, at its pid, with its command's name.
      const truth = busyboxPs(printed);
      for (const arg of SLEEPERS) {
        const row = truth.find((r) => r.command === `sleep ${arg}`);
        expect(row, `sleep ${arg} in the guest's ps`).toBeDefined();
        expect(byPid.get(row!.pid)?.comm).toBe('sleep');
      }
      // Kernel threads busybox showed in brackets are there under the same name (kworkers come and
      // go, and ps adds what they work on: left out).
      const kthreads = truth.filter((x) => /^\[.*\]$/.test(x.command) && !x.command.startsWith('[kworker'));
      expect(kthreads.length).toBeGreaterThan(20);
      for (const r of kthreads) expect(byPid.get(r.pid)?.comm).toBe(r.command);

      // The kernel log: every line the console showed before the attach, in order.
      // A record of several lines shows its timestamp on each on the console.
      const dmesg = (await run(s, '::dmesg')).flatMap((r) => {
        const [first, ...more] = r.split('\n');
        const stamp = /^\[ *\d+\.\d{6}\] /.exec(first!)?.[0] ?? '';
        return [first!, ...more.map((m) => stamp + m)];
      });
      const logged = printed.split(/\r?\n/).filter((l) => /^\[ *\d+\.\d{6}\] /.test(l));
      expect(logged.length).toBeGreaterThan(100);
      let at = 0;
      for (const line of logged) {
        const i = dmesg.indexOf(line.trimEnd(), at);
        expect(i, `console line ${JSON.stringify(line)} in ::dmesg`).toBeGreaterThanOrEqual(at);
        at = i + 1;
      }

      // The sleepers' stacks, from their saved context: in the kernel's nanosleep.
      const stacks = (await run(s, '::stacks -c do_nanosleep')).join('\n');
      expect(stacks).toMatch(/^0xffff[0-9a-f]{12} S +\d+$/m);
      expect(stacks).toMatch(/^ +schedule\+0x[0-9a-f]+\n +do_nanosleep\+0x[0-9a-f]+\n +hrtimer_nanosleep\+0x[0-9a-f]+$/m);

      // init (the shell running /init) waits for its children: a thread of its own, unwound.
      const init = (await run(s, '1::pid2task | ::task; ::stack')).join('\n');
      expect(init).toMatch(/^thread \d+: task 0xffff[0-9a-f]{12} \(pid 1 init\), from its saved context$/m);
      expect(init).toMatch(/ schedule\+0x[0-9a-f]+\n0x[0-9a-f]{16} do_wait\+0x[0-9a-f]+\n0x[0-9a-f]{16} kernel_wait4\+/);
    } finally {
      t.close();
    }
  }, 120_000);

  it('dbg attach --symbols vmlinux -e "::ps; ::dmesg" from the command line', async () => {
    const r = await runDbg(['attach', '--gdb', `127.0.0.1:${port}`, '--symbols', vmlinux, '-e', '::ps; ::dmesg -n 3'], 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^S +PID +PPID CPU TASK +COMM$/m);
    expect(r.stdout).toMatch(/^S +1 +0 +\d 0xffff[0-9a-f]{12} init$/m);
    expect(r.stdout.match(/ sleep$/gm)!.length).toBeGreaterThanOrEqual(SLEEPERS.length);
  }, 90_000);

  it('a vmlinux of another kernel is refused in one line naming both releases', async () => {
    // A "vmlinux" of one symbol: another kernel's linux_banner at this vmlinux's link address.
    const link = symbolTableFor('vmlinux', ElfFile.open(vmlinux), 0n).lookup('linux_banner')!.addr;
    writeFileSync(join(dir, 'banner.c'), 'const char linux_banner[] = "Linux version 5.10.0-dbg-other (dbg@test) #1 SMP\\n";\n');
    spawnSync('gcc', ['-c', '-fno-pic', '-mcmodel=kernel', '-o', join(dir, 'banner.o'), join(dir, 'banner.c')]);
    const other = join(dir, 'vmlinux-other');
    const ld = spawnSync('ld', ['-o', other, `--section-start=.rodata=0x${link.toString(16)}`, '-e', '0', join(dir, 'banner.o')], { encoding: 'utf8' });
    expect(ld.stderr).toBe('');
    const r = await runDbg(['attach', '--gdb', `127.0.0.1:${port}`, '--symbols', other, '-e', '::ps'], 60_000);
    expect(r.stderr).toMatch(
      new RegExp(`^dbg: --symbols vmlinux-other is not the kernel running under gdb stub 127\\.0\\.0\\.1:${port}: the guest's linux_banner \\(at KASLR offset 0x[0-9a-f]+\\) says ${release.replace(/\./g, '\\.')}, the file's says 5\\.10\\.0-dbg-other\\n$`),
    );
    expect(r.code).not.toBe(0);
  }, 90_000);

  it('attached at the reset vector (-S): the kernel is found at the first stop after it runs', async () => {
    const early = await freePort();
    const console2 = join(dir, 'console-early.txt');
    const fwcfg = `/lib/modules/${release}/kernel/drivers/firmware/qemu_fw_cfg.ko`;
    const q = spawn(
      'qemu-system-x86_64',
      ['-S', '-machine', 'pc', '-m', '512M', '-smp', '2', '-display', 'none', '-no-reboot', '-net', 'none', '-serial', `file:${console2}`, '-gdb', `tcp:127.0.0.1:${early}`, '-kernel', vmlinuz, '-initrd', initramfs(dir, 'early', 'true', { fwcfg }), '-append', 'console=ttyS0 panic=0'],
      { stdio: 'ignore' },
    );
    try {
      let t: RemoteTarget | undefined;
      for (let i = 0; i < 50 && !t; i++) {
        try {
          t = RemoteTarget.attach('127.0.0.1', early, { symbols: [vmlinux] });
        } catch {
          await sleep(200);
        }
      }
      try {
        expect(t!.warnings.join('\n')).toMatch(/linux_banner of vmlinux is nowhere in the guest's kernel memory yet/);
        // Run until userspace is up, then stop the guest.
        const poll = setInterval(() => {
          if (existsSync(console2) && readFileSync(console2, 'latin1').includes('DBG-PROCESSES-STARTED')) t!.caps.execution!.interrupt();
        }, 500);
        try {
          await t!.caps.execution!.resume();
        } finally {
          clearInterval(poll);
        }
        const link = symbolTableFor('vmlinux', ElfFile.open(vmlinux), 0n).lookup('linux_banner')!.addr;
        expect(t!.symbols.find('linux_banner')!.addr).toBe(link + t!.kernelOffset);
        const ps = (await run(sessionOn(t!), '::ps')).join('\n');
        expect(ps).toMatch(/^S +1 +0 +\d 0xffff[0-9a-f]{12} init$/m);
      } finally {
        t?.close();
      }
    } finally {
      q.kill('SIGTERM');
    }
  }, 200_000);
});
