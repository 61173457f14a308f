#!/usr/bin/env node
// Opt-in: a real Debian vmlinux with full DWARF for the vmlinux test (test/types/vmlinux.test.ts,
// DBG_VMLINUX_TESTS=1) and bench (bench/vmlinux.ts), and python3-drgn to compare with.
//
//   node scripts/setup-vmlinux.mjs          # as root (or through sudo): apt-get install, then cache
//
// Installs (apt-get, what is missing) Debian's linux-image-<version>-cloud-amd64-dbg (about 280 MB
// to download, 1.7 GiB installed; DBG_VMLINUX_PKG names another, e.g.
// linux-image-6.1.0-57-amd64-dbg), and python3-drgn and crash to compare with, then caches the
// vmlinux in test/.fixtures/vmlinux/ (a hard link when the file system allows, else a copy) with a
// record of what it is, so tests read only the repository. The kernel itself and its headers, which
// the dumps need, are make-linux-dumps.mjs's to install.
// Idempotent: with the cache in place it does nothing.

import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptGet, aptInstall } from './apt-install.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'test', '.fixtures', 'vmlinux');
const record = join(cache, 'vmlinux.json');

function say(text) {
  process.stdout.write(`setup-vmlinux: ${text}\n`);
}

if (existsSync(record)) {
  const r = JSON.parse(readFileSync(record, 'utf8'));
  say(`cached: ${r.package} ${r.version} (${join(cache, 'vmlinux')})`);
  process.exit(0);
}

let pkg = process.env.DBG_VMLINUX_PKG;
if (!pkg) {
  aptGet(['update', '-qq'], say);
  // The newest cloud-flavour debug image the archive has: one search, by name pattern.
  const found = execFileSync('apt-cache', ['search', '--names-only', '^linux-image-[0-9.]+-[0-9]+-cloud-amd64-dbg$'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);
  const abi = (p) => p.match(/linux-image-([0-9.]+)-(\d+)-/).slice(1).map(Number);
  found.sort((a, b) => {
    const x = abi(a);
    const y = abi(b);
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    return 0;
  });
  pkg = found.at(-1);
  if (!pkg) {
    say('no linux-image-*-cloud-amd64-dbg in the apt sources; set DBG_VMLINUX_PKG');
    process.exit(1);
  }
}
aptInstall([pkg, 'python3-drgn', 'crash'], say);
const flavour = pkg.replace(/^linux-image-/, '').replace(/-dbg$/, '');
const boot = '/usr/lib/debug/boot';
const file = readdirSync(boot).find((f) => f === `vmlinux-${flavour}`);
if (!file) {
  say(`${pkg} installed no ${boot}/vmlinux-${flavour}`);
  process.exit(1);
}
mkdirSync(cache, { recursive: true });
const dest = join(cache, 'vmlinux');
try {
  linkSync(join(boot, file), dest);
} catch {
  copyFileSync(join(boot, file), dest);
}
const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' }).trim();
writeFileSync(record, JSON.stringify({ package: pkg, version, file: join(boot, file) }, null, 2));
say(`cached ${pkg} ${version} as ${dest}`);
