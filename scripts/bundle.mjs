#!/usr/bin/env node
// Bundles `dbg open`'s fast path (dist/src/cli/fast-path.js and what it imports) into one
// CommonJS module, dist/fast-path.bundle.cjs (written as the function expression that wraps it):
// loading ~50 small ES modules costs more start-up time than opening a 1 GiB core and unwinding
// every thread, and a script can be compiled with V8's code cache (bin/dbg keeps it beside the
// bundle). Native and wasm packages stay
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
    '--charset=ascii', '--log-level=warning',
  ],
  { cwd: root, stdio: 'inherit' },
);
if (r.status !== 0) process.exit(r.status ?? 1);
// Node 20 cannot run a dynamic import() from a vm.Script compiled with a code cache (the callback
// is lost, or needs --experimental-vm-modules), so the bundle's import() calls go to a function
// bin/dbg passes in (`__dbgImport`), which imports from an ordinary ES module.
//
// The file holds the function bin/dbg compiles, wrapper and all, so that bin/dbg reads it as one
// string (latin1: esbuild writes ASCII, escaping anything else) instead of decoding UTF-8 and
// joining a wrapper on, which copied the 0.9 MB source twice: 8 ms of CPU and 490 pages of new
// memory off every start (measured on the Linux dump bench's machine).
const bundle = join(root, 'dist', 'fast-path.bundle.cjs');
const code = readFileSync(bundle, 'utf8').replace(/(?<![\w$.])import\(/g, '__dbgImport(');
writeFileSync(bundle, `(function (exports, require, module, __filename, __dirname, __dbgImport) {${code}\n})`);
// A code cache belongs to the bundle it was made from (bin/dbg keeps two: see scriptRun there).
for (const cache of ['fast-path.bundle.cache', 'fast-path.bundle.script.cache']) rmSync(join(root, 'dist', cache), { force: true });
process.exit(r.status ?? 1);
