#!/usr/bin/env node
// Builds the native execution recorder (native/recorder, an N-API addon in C on libunicorn) with
// npm's bundled node-gyp against the system Node headers. Idempotent: rebuilds only when a source
// is newer than the built addon.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = join(root, 'native', 'recorder');
const out = join(dir, 'build', 'Release', 'recorder.node');
const quiet = process.argv.includes('--quiet');
const sources = [...['recorder.c', 'pages.c', 'deflate.c', 'sqlite-rows.c', 'decode.h', 'seen.h', 'records.h', 'binding.gyp'].map((f) => join(dir, f)), join(dir, '..', 'common', 'napi-args.h')];
if (existsSync(out) && sources.every((s) => statSync(s).mtimeMs <= statSync(out).mtimeMs)) process.exit(0);

function nodeGyp() {
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const candidates = [
    r.status === 0 ? join(r.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : '',
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}
const gyp = nodeGyp();
if (!gyp) {
  console.error('setup: node-gyp (bundled with npm) not found; the native recorder is not built (recording disabled)');
  process.exit(1);
}
// Node's headers: the system's (/usr/include/node) when present, else node-gyp downloads them.
const nodedir = existsSync('/usr/include/node/node_api.h') ? ['--nodedir=/usr'] : [];
if (!quiet) console.error('setup: building the native recorder (native/recorder)');
const r = spawnSync(process.execPath, [gyp, 'rebuild', ...nodedir], {
  cwd: dir,
  stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit',
});
if (r.status !== 0) {
  console.error(`setup: building native/recorder failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
