// The busybox-static initramfs that dbg's Linux guests boot (scripts/make-linux-dumps.mjs, the
// live-guest test): its /init mounts /proc, /sys and /dev, starts a few processes (sleepers, a
// loop, a pipe, one pinned to CPU 0), prints DBG-PROCESSES-STARTED and `ps`, then runs `trigger`
// on CPU 1 and sleeps.

import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The sleepers /init starts, as ground truth: `sleep ARG` for each. */
export const SLEEPERS = ['100000', '100001', '100002', '100003'];

/**
 * A gzipped cpio initramfs in `work` named after `name`. `fwcfg`: the kernel's qemu_fw_cfg.ko
 * (loaded for -device vmcoreinfo; left out when absent); `extra`: files put in /lib.
 */
export function initramfs(work, name, trigger, { fwcfg, extra = [] } = {}) {
  const initDir = join(work, `initramfs-${name}`);
  for (const d of ['bin', 'proc', 'sys', 'dev', 'lib', 'tmp']) mkdirSync(join(initDir, d), { recursive: true });
  copyFileSync('/bin/busybox', join(initDir, 'bin', 'busybox'));
  if (fwcfg && existsSync(fwcfg)) copyFileSync(fwcfg, join(initDir, 'lib', 'qemu_fw_cfg.ko'));
  for (const f of extra) copyFileSync(f, join(initDir, 'lib', f.split('/').at(-1)));
  const init = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /lib/qemu_fw_cfg.ko 2>/dev/null
sleep ${SLEEPERS[0]} &
sleep ${SLEEPERS[1]} &
(while true; do sleep 1; done) &
(cat /dev/zero | sleep ${SLEEPERS[2]}) &
taskset 1 sleep ${SLEEPERS[3]} &
sleep 3
echo DBG-PROCESSES-STARTED
ps
taskset 2 ${trigger}
sleep 100000
`;
  writeFileSync(join(initDir, 'init'), init);
  chmodSync(join(initDir, 'init'), 0o755);
  chmodSync(join(initDir, 'bin', 'busybox'), 0o755);
  const initrd = join(work, `initramfs-${name}.cpio.gz`);
  execFileSync('sh', ['-c', `cd "${initDir}" && find . | cpio -o -H newc --quiet | gzip -9 > "${initrd}"`]);
  return initrd;
}
