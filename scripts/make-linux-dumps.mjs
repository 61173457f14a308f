#!/usr/bin/env node
// Opt-in: real Linux kernel dumps for the Linux tests (test/os/linux/*-real.test.ts,
// DBG_LINUX_DUMP_TESTS=1) and bench (bench/linux.ts), made from Debian's own kernel.
//
//   node scripts/setup-vmlinux.mjs     # the -dbg vmlinux, cached in test/.fixtures/vmlinux/
//   node scripts/make-linux-dumps.mjs [--force]
//
// As root (or through sudo) it installs with apt-get what is missing: the kernel the vmlinux is of
// (linux-image-VERSION, for /boot/vmlinuz-VERSION and its qemu_fw_cfg module) and its headers
// (linux-headers-VERSION, to build the oops module), qemu-system-x86, busybox-static and cpio.
//
// Boots the kernel whose vmlinux is cached (its /boot/vmlinuz-VERSION) under Debian's QEMU (TCG,
// 512 MiB, 2 vCPUs, KASLR on) with a busybox-static initramfs that starts a few processes (sleepers,
// a shell loop, a pipe) and then panics with `echo c > /proc/sysrq-trigger` pinned to CPU 1. From
// QEMU's QMP socket it writes the guest's memory with dump-guest-memory:
//
//   with -device vmcoreinfo (the guest's qemu_fw_cfg module hands QEMU its VMCOREINFO):
//     vmci.elf              ELF, physical PT_LOADs
//     vmci-paging.elf       ELF, -p (virtual addresses through CR3)
//     vmci.kdump-zlib/-lzo/-snappy   kdump-compressed (diskdump), when this QEMU has the format
//   without it:
//     novmci.elf, novmci-paging.elf
//   a second scenario, an oops in a module (with linux-headers-VERSION installed: the module is
//   built against them): `oops=panic`, and insmod of a module whose init writes through NULL,
//   again on CPU 1, with -device vmcoreinfo:
//     oops.elf, oops-paging.elf, and the module itself as modules/dbg_oops.ko
//
// into test/.fixtures/linux/ with each boot's console (*.console.txt) and facts.json. Takes a few
// minutes under TCG; does nothing when facts.json is there (--force makes them again). The dumps
// and the kernel are never committed.

import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptInstall } from './apt-install.mjs';
import { initramfs as makeInitramfs } from './linux-initramfs.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'test', '.fixtures', 'linux');
const facts = join(out, 'facts.json');
const force = process.argv.includes('--force');

function say(text) {
  process.stdout.write(`make-linux-dumps: ${text}\n`);
}
function fail(text) {
  say(text);
  process.exit(1);
}

if (existsSync(facts) && !force) {
  say(`cached: ${out} (--force to make the dumps again)`);
  process.exit(0);
}

const vmlinuxRecord = join(root, 'test', '.fixtures', 'vmlinux', 'vmlinux.json');
if (!existsSync(vmlinuxRecord)) fail('no cached vmlinux: run node scripts/setup-vmlinux.mjs first');
const pkg = JSON.parse(readFileSync(vmlinuxRecord, 'utf8')).package; // linux-image-VERSION-dbg
const release = pkg.replace(/^linux-image-/, '').replace(/-dbg$/, '');
aptInstall([`linux-image-${release}`, `linux-headers-${release}`, 'qemu-system-x86', 'busybox-static', 'cpio'], say);
const vmlinuz = `/boot/vmlinuz-${release}`;
if (!existsSync(vmlinuz)) fail(`linux-image-${release} installed no ${vmlinuz}`);
const fwcfg = `/lib/modules/${release}/kernel/drivers/firmware/qemu_fw_cfg.ko`;
if (!existsSync(fwcfg)) fail(`no ${fwcfg} (the guest needs it to hand QEMU its VMCOREINFO)`);
if (!execFileSync('file', ['-L', '/bin/busybox'], { encoding: 'utf8' }).includes('statically')) {
  fail('/bin/busybox is not the static one: apt-get install -y busybox-static');
}

const work = mkdtempSync(join(tmpdir(), 'dbg-linux-dumps-'));
mkdirSync(out, { recursive: true });

// --- the initramfs ---------------------------------------------------------------------------
const initramfs = (name, trigger, extra = []) => makeInitramfs(work, name, trigger, { fwcfg, extra });

/** The oops scenario's module, built against the kernel's headers; undefined without them. */
function oopsModule() {
  const build = `/lib/modules/${release}/build`;
  if (!existsSync(join(build, 'Makefile'))) return undefined;
  const dir = join(work, 'dbg_oops');
  mkdirSync(dir);
  writeFileSync(join(dir, 'Kbuild'), 'obj-m := dbg_oops.o\n');
  writeFileSync(
    join(dir, 'dbg_oops.c'),
    `#include <linux/module.h>
#include <linux/init.h>
static int *volatile dbg_oops_target;
static noinline int dbg_oops_write(int v) { *dbg_oops_target = v; return v; }
static int __init dbg_oops_init(void) { return dbg_oops_write(42) == 42 ? 0 : -EINVAL; }
module_init(dbg_oops_init);
MODULE_LICENSE("GPL");
`,
  );
  execFileSync('make', ['-s', '-C', build, `M=${dir}`, 'modules'], { stdio: ['ignore', 'ignore', 'inherit'] });
  // Kept beside the dumps: the module tests give it to --modules, as crash's `mod -s` and drgn need it.
  mkdirSync(join(out, 'modules'), { recursive: true });
  copyFileSync(join(dir, 'dbg_oops.ko'), join(out, 'modules', 'dbg_oops.ko'));
  return join(dir, 'dbg_oops.ko');
}

// --- QMP ---------------------------------------------------------------------------------------
function qmpClient(sock) {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let buf = '';
    const waiting = [];
    c.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event) continue;
        if (msg.QMP) {
          resolve(client);
          continue;
        }
        waiting.shift()?.(msg);
      }
    });
    c.on('error', reject);
    const client = {
      run(execute, args) {
        return new Promise((res) => {
          waiting.push(res);
          c.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
        });
      },
      close: () => c.end(),
    };
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function boot(name, vmcoreinfo, dumps, initrd, append = '') {
  const console = join(out, `${name}.console.txt`);
  rmSync(console, { force: true });
  const sock = join(work, `${name}.qmp`);
  const args = [
    '-machine', 'pc', '-m', '512M', '-smp', '2', '-display', 'none', '-no-reboot', '-net', 'none',
    '-serial', `file:${console}`, '-qmp', `unix:${sock},server=on,wait=off`,
    '-kernel', vmlinuz, '-initrd', initrd, '-append', `console=ttyS0 panic=0${append}`,
    ...(vmcoreinfo ? ['-device', 'vmcoreinfo'] : []),
  ];
  const t0 = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'inherit', 'inherit'] });
  let exited = false;
  qemu.on('exit', () => (exited = true));
  try {
    say(`${name}: booting ${vmlinuz} (TCG, 2 vCPUs, 512 MiB${vmcoreinfo ? ', -device vmcoreinfo' : ''})`);
    for (;;) {
      if (exited) fail(`${name}: QEMU exited before the panic; see ${console}`);
      if (Date.now() - t0 > 900_000) fail(`${name}: no panic after 15 minutes; see ${console}`);
      const text = existsSync(console) ? readFileSync(console, 'latin1') : '';
      if (/Kernel panic - not syncing/.test(text) && /---\[ end Kernel panic/.test(text)) break;
      await sleep(2000);
    }
    say(`${name}: panicked after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    await sleep(2000);
    const q = await qmpClient(sock);
    await q.run('qmp_capabilities');
    await q.run('stop');
    for (const d of dumps) {
      const file = join(out, d.file);
      rmSync(file, { force: true });
      const r = await q.run('dump-guest-memory', { paging: d.paging, protocol: `file:${file}`, ...(d.format ? { format: d.format } : {}) });
      if (r.error) say(`${name}: ${d.file}: ${r.error.desc}`);
      else say(`${name}: ${d.file} (${(statSync(file).size / 2 ** 20).toFixed(0)} MiB)`);
    }
    await q.run('quit');
    q.close();
  } finally {
    if (!exited) qemu.kill();
  }
}

try {
  const sysrq = initramfs('sysrq', `sh -c 'echo c > /proc/sysrq-trigger'`);
  await boot('vmci', true, [
    { file: 'vmci.elf', paging: false },
    { file: 'vmci-paging.elf', paging: true },
    { file: 'vmci.kdump-zlib', paging: false, format: 'kdump-zlib' },
    { file: 'vmci.kdump-lzo', paging: false, format: 'kdump-lzo' },
    { file: 'vmci.kdump-snappy', paging: false, format: 'kdump-snappy' },
  ], sysrq);
  await boot('novmci', false, [
    { file: 'novmci.elf', paging: false },
    { file: 'novmci-paging.elf', paging: true },
  ], sysrq);
  const ko = oopsModule();
  if (ko) await boot('oops', true, [{ file: 'oops.elf', paging: false }, { file: 'oops-paging.elf', paging: true }], initramfs('oops', 'insmod /lib/dbg_oops.ko', [ko]), ' oops=panic');
  else say(`oops: no /lib/modules/${release}/build (apt-get install -y linux-headers-${release}): the oops scenario is left out`);
  writeFileSync(
    facts,
    JSON.stringify({ release, vmlinuz, cpus: 2, memory: '512M', panicCpu: 1, oops: !!ko, made: new Date().toISOString(), qemu: execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] }, null, 2) + '\n',
  );
  say(`done: ${out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
