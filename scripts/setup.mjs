#!/usr/bin/env node
// Brings a checkout to a runnable state, doing only what is missing:
//   1. system packages (apt-get, as root): the Unicorn engine, capstone, gcc, gdb, xz
//   2. npm ci, when node_modules is absent or older than package-lock.json
//   3. the build: TypeScript -> dist/, the native addons, the sample kernel and dumps
// Idempotent and quick when everything is in place. `--quiet` (what `npm test` runs) prints only
// what it does and never installs system packages: it names what is missing and stops, so a test
// run never waits for a sudo password. `--build` does step 3 only (test/global-setup.ts runs it).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');
const buildOnly = process.argv.includes('--build');
const say = (m) => console.error(`setup: ${m}`);
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit', ...opts });
  if (r.status !== 0) {
    say(`'${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
};

// --- 1. system packages -----------------------------------------------------------------------
const needs = [
  { pkg: 'libunicorn2', has: () => existsSync('/usr/lib/x86_64-linux-gnu/libunicorn.so.2') },
  { pkg: 'libunicorn-dev', has: () => existsSync('/usr/include/unicorn/unicorn.h') },
  // the emulator's fast engine counts and classifies the instructions of translated blocks
  { pkg: 'libcapstone-dev', has: () => existsSync('/usr/include/capstone/capstone.h') },
  // native/kdump decodes kdump-compressed pages with these libraries (zlib pages by libdeflate)
  { pkg: 'libdeflate-dev', has: () => existsSync('/usr/include/libdeflate.h') },
  { pkg: 'liblzo2-dev', has: () => existsSync('/usr/include/lzo/lzo1x.h') },
  { pkg: 'libsnappy-dev', has: () => existsSync('/usr/include/snappy-c.h') },
  { pkg: 'libzstd-dev', has: () => existsSync('/usr/include/zstd.h') },
  { pkg: 'gcc', has: () => which('gcc') },
  { pkg: 'g++', has: () => which('g++') },
  { pkg: 'make', has: () => which('make') },
  { pkg: 'gdb', has: () => which('gdb') },
  { pkg: 'xz-utils', has: () => which('xz') },
  { pkg: 'python3', has: () => which('python3') },
  { pkg: 'gdbserver', has: () => which('gdbserver') },
  { pkg: 'dwz', has: () => which('dwz') },
  // oracles for differential tests: QEMU (standard-PC guests, kdump-compressed dumps, its gdbstub),
  // lldb and gdb-multiarch as GDB-protocol clients, crash, drgn and makedumpfile on Linux dumps
  { pkg: 'qemu-system-x86', has: () => which('qemu-system-x86_64') },
  { pkg: 'lldb', has: () => which('lldb') },
  { pkg: 'gdb-multiarch', has: () => which('gdb-multiarch') },
  { pkg: 'crash', has: () => which('crash') },
  { pkg: 'python3-drgn', has: () => which('drgn') },
  { pkg: 'makedumpfile', has: () => which('makedumpfile') },
  // libkdumpfile reads kdump-compressed dumps beside dbg in test/targets/kdump
  { pkg: 'python3-libkdumpfile', has: () => existsSync('/usr/lib/python3/dist-packages/kdumpfile') },
  // dumps/qemu/kdump/recompress.py writes snappy and zstd dumps (bench/kdump.ts, make-fixtures.sh)
  { pkg: 'python3-snappy', has: () => existsSync('/usr/lib/python3/dist-packages/snappy') },
  { pkg: 'python3-zstandard', has: () => existsSync('/usr/lib/python3/dist-packages/zstandard') },
  // libstdc++ built with full DWARF: the C++ core that bench/cpp-core.ts reads beside gdb
  { pkg: 'libstdc++6-12-dbg', has: () => existsSync('/usr/lib/x86_64-linux-gnu/debug/libstdc++.so.6') },
  { pkg: 'busybox-static', has: () => existsSync('/bin/busybox') },
  { pkg: 'nasm', has: () => which('nasm') },
  // the browser that renders `dbg report` pages in the tests (driven by playwright-core)
  { pkg: 'chromium', has: () => which('chromium') },
];
function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}
const missing = buildOnly ? [] : needs.filter((n) => !n.has()).map((n) => n.pkg);
if (missing.length > 0 && quiet) {
  say(`missing system packages: ${missing.join(' ')}; run \`npm start\` once (its first step installs them with apt-get as root or through sudo)`);
  process.exit(1);
}
if (missing.length > 0) {
  if (process.getuid && process.getuid() !== 0 && !which('sudo')) {
    say(`missing system packages: ${missing.join(' ')}; install them with apt-get (needs root)`);
    process.exit(1);
  }
  const sudo = process.getuid && process.getuid() !== 0 ? ['sudo'] : [];
  say(`installing system packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => run(sudo[0] ?? 'apt-get', sudo.length ? ['apt-get', ...args] : args, { env });
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', ...missing]);
}

// --- 2. npm dependencies ----------------------------------------------------------------------
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');
// By content, not by time: a checkout or merge rewrites package-lock.json with a new mtime and the
// same packages, and `npm ci` then deletes and rebuilds node_modules for nothing (better-sqlite3 and
// koffi compile for a minute, and any other run using that node_modules meanwhile breaks).
function installedMatchesLock() {
  if (!existsSync(installed)) return false;
  try {
    const want = JSON.parse(readFileSync(lock, 'utf8')).packages ?? {};
    const have = JSON.parse(readFileSync(installed, 'utf8')).packages ?? {};
    for (const [path, p] of Object.entries(want)) {
      if (path === '' || p.link) continue;
      const got = have[path];
      if (!got) {
        if (p.optional || p.peer) continue; // an optional package for another platform
        return false;
      }
      if (got.version !== p.version) return false;
    }
    return Object.keys(have).every((path) => path in want);
  } catch {
    return false;
  }
}
if (!buildOnly && !installedMatchesLock()) {
  say('installing npm dependencies (npm ci; better-sqlite3 compiles from source, about a minute)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

// --- 3. build ---------------------------------------------------------------------------------
function newest(dir, exts) {
  let t = 0;
  if (!existsSync(dir)) return 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}
const srcTime = Math.max(
  ...['src', 'commands', 'bench'].map((d) => newest(join(root, d), ['.ts'])),
  statSync(join(root, 'tsconfig.json')).mtimeMs,
  statSync(join(root, 'scripts', 'bundle.mjs')).mtimeMs,
);
const stamp = join(root, 'dist', '.built');
if (!existsSync(stamp) || statSync(stamp).mtimeMs < srcTime) {
  say('building TypeScript (tsc)');
  // For the tests (--build), type errors do not stop the build: tsc still writes dist/ (exit 2)
  // and the tests show what the edit broke; `npm run typecheck` lists the errors.
  const tsc = [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'];
  if (buildOnly) {
    const status = spawnSync(process.execPath, tsc, { cwd: root, stdio: 'ignore' }).status;
    if (status === 2) say('tsc found type errors (dist/ was written anyway; npm run typecheck lists them)');
    else if (status !== 0) {
      say(`tsc failed (exit ${status}); npm run typecheck shows why`);
      process.exit(1);
    }
  } else run(process.execPath, tsc);
  run(process.execPath, [join(root, 'scripts', 'bundle.mjs')]);
  execFileSync('touch', [stamp]);
}

// Further build steps (native addon, sample kernel, sample dumps) are scripts beside this one,
// each idempotent; they run in name order.
const stepsDir = join(root, 'scripts', 'setup.d');
if (existsSync(stepsDir)) {
  for (const f of readdirSync(stepsDir).filter((f) => f.endsWith('.mjs')).sort()) {
    run(process.execPath, [join(stepsDir, f), ...(quiet ? ['--quiet'] : [])]);
  }
}
if (!quiet) say('ready');
