#!/usr/bin/env node
// Opt-in: real Linux kernel dumps for the Linux tests (test/os/linux/*-real.test.ts,
// DBG_LINUX_DUMP_TESTS=1) and bench (bench/linux.ts), made from Debian's own kernel.
//
//   node scripts/setup-vmlinux.mjs     # the -dbg vmlinux, cached in test/.fixtures/vmlinux/
//   apt-get install -y linux-image-6.1.0-57-cloud-amd64 qemu-system-x86 busybox-static cpio
//   node scripts/make-linux-dumps.mjs [--force]
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
//
// into test/.fixtures/linux/ with each boot's console (*.console.txt) and facts.json. Takes a few
// minutes under TCG; does nothing when facts.json is there (--force makes them again). The dumps
// and the kernel are never committed.

import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

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
const vmlinuz = `/boot/vmlinuz-${release}`;
if (!existsSync(vmlinuz)) fail(`no ${vmlinuz}: apt-get install -y linux-image-${release}`);
const fwcfg = `/lib/modules/${release}/kernel/drivers/firmware/qemu_fw_cfg.ko`;
if (!existsSync(fwcfg)) fail(`no ${fwcfg} (the guest needs it to hand QEMU its VMCOREINFO)`);
for (const [tool, deb] of [['qemu-system-x86_64', 'qemu-system-x86'], ['cpio', 'cpio']]) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    fail(`${tool} not found: apt-get install -y ${deb}`);
  }
}
if (!existsSync('/bin/busybox') || !execFileSync('file', ['-L', '/bin/busybox'], { encoding: 'utf8' }).includes('statically')) {
  fail('no static /bin/busybox: apt-get install -y busybox-static');
}

const work = mkdtempSync(join(tmpdir(), 'dbg-linux-dumps-'));
mkdirSync(out, { recursive: true });

// --- the initramfs ---------------------------------------------------------------------------
const initDir = join(work, 'initramfs');
for (const d of ['bin', 'proc', 'sys', 'dev', 'lib', 'tmp']) mkdirSync(join(initDir, d), { recursive: true });
copyFileSync('/bin/busybox', join(initDir, 'bin', 'busybox'));
copyFileSync(fwcfg, join(initDir, 'lib', 'qemu_fw_cfg.ko'));
const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /lib/qemu_fw_cfg.ko 2>/dev/null
sleep 100000 &
sleep 100001 &
(while true; do sleep 1; done) &
(cat /dev/zero | sleep 100002) &
taskset 1 sleep 100003 &
sleep 3
echo DBG-PROCESSES-STARTED
ps
taskset 2 sh -c 'echo c > /proc/sysrq-trigger'
sleep 100000
`;
writeFileSync(join(initDir, 'init'), init);
chmodSync(join(initDir, 'init'), 0o755);
chmodSync(join(initDir, 'bin', 'busybox'), 0o755);
const initrd = join(work, 'initramfs.cpio.gz');
execFileSync('sh', ['-c', `cd "${initDir}" && find . | cpio -o -H newc --quiet | gzip -9 > "${initrd}"`]);

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

async function boot(name, vmcoreinfo, dumps) {
  const console = join(out, `${name}.console.txt`);
  rmSync(console, { force: true });
  const sock = join(work, `${name}.qmp`);
  const args = [
    '-machine', 'pc', '-m', '512M', '-smp', '2', '-display', 'none', '-no-reboot', '-net', 'none',
    '-serial', `file:${console}`, '-qmp', `unix:${sock},server=on,wait=off`,
    '-kernel', vmlinuz, '-initrd', initrd, '-append', 'console=ttyS0 panic=0',
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
  await boot('vmci', true, [
    { file: 'vmci.elf', paging: false },
    { file: 'vmci-paging.elf', paging: true },
    { file: 'vmci.kdump-zlib', paging: false, format: 'kdump-zlib' },
    { file: 'vmci.kdump-lzo', paging: false, format: 'kdump-lzo' },
    { file: 'vmci.kdump-snappy', paging: false, format: 'kdump-snappy' },
  ]);
  await boot('novmci', false, [
    { file: 'novmci.elf', paging: false },
    { file: 'novmci-paging.elf', paging: true },
  ]);
  writeFileSync(
    facts,
    JSON.stringify({ release, vmlinuz, cpus: 2, memory: '512M', panicCpu: 1, made: new Date().toISOString(), qemu: execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0] }, null, 2) + '\n',
  );
  say(`done: ${out}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
