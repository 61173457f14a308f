#!/usr/bin/env node
// Builds the emulator's native hook addon (native/emu -> native/emu/build/Release/dbg_emu.node)
// with npm's bundled node-gyp against Node's installed headers. Idempotent: rebuilds only when a
// source is newer than the built addon.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quiet = process.argv.includes('--quiet');
const dir = join(root, 'native', 'emu');
const out = join(dir, 'build', 'Release', 'dbg_emu.node');

// The addon's own sources and the headers shared with the recorder (native/common).
const common = join(dir, '..', 'common');
const newest = Math.max(
  ...[dir, common].flatMap((d) => readdirSync(d).filter((f) => /\.(c|h|gyp)$/.test(f)).map((f) => statSync(join(d, f)).mtimeMs)),
);
if (existsSync(out) && statSync(out).mtimeMs >= newest) process.exit(0);

function nodeGyp() {
  const npmRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout.trim();
  const candidates = [
    join(npmRoot, 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((c) => existsSync(c));
  if (!found) {
    console.error(`setup: node-gyp not found (looked in ${candidates.join(', ')})`);
    process.exit(1);
  }
  return found;
}

// Node's headers: the distribution's (/usr/include/node) or the ones beside this node binary.
const nodeDir = [dirname(dirname(process.execPath)), '/usr'].find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (!quiet) console.error('setup: building native/emu (Unicorn hooks addon)');
const args = [nodeGyp(), 'rebuild', '--directory', dir, ...(quiet ? ['--loglevel=error'] : []), ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
const r = spawnSync(process.execPath, args, { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
if (r.status !== 0) {
  console.error(`setup: building native/emu failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
