#!/usr/bin/env node
// Bundles `dbg open`'s fast path (dist/src/cli/fast-path.js and what it imports) into one
// CommonJS file, dist/fast-path.bundle.cjs: loading ~50 small ES modules costs more start-up time
// than opening a 1 GiB core and unwinding every thread, and a CommonJS script can be compiled
// with V8's code cache (bin/dbg keeps it beside the bundle). Native and wasm packages stay
// external. bin/dbg uses the bundle only when it is at least as new as the compiled fast-path.js
// (tsc rewrites every output file, so a bare `tsc` makes bin/dbg fall back to the unbundled files).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(
  join(root, 'node_modules', '.bin', 'esbuild'),
  [
    'dist/src/cli/fast-path.js', '--bundle', '--platform=node', '--format=cjs', '--target=node20',
    '--outfile=dist/fast-path.bundle.cjs', '--external:koffi', '--external:better-sqlite3', '--external:capstone-wasm', '--external:gecko-profiler-demangle',
    '--log-level=warning',
  ],
  { cwd: root, stdio: 'inherit' },
);
if (r.status !== 0) process.exit(r.status ?? 1);
// Node 20 cannot run a dynamic import() from a vm.Script compiled with a code cache (the callback
// is lost, or needs --experimental-vm-modules), so the bundle's import() calls go to a function
// bin/dbg passes in (`__dbgImport`), which imports from an ordinary ES module.
const bundle = join(root, 'dist', 'fast-path.bundle.cjs');
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/(?<![\w$.])import\(/g, '__dbgImport('));
// A code cache belongs to the bundle it was made from.
rmSync(join(root, 'dist', 'fast-path.bundle.cache'), { force: true });
process.exit(r.status ?? 1);
