#!/usr/bin/env node
// Bundles `dbg open`'s fast path (dist/src/cli/fast-path.js and what it imports) into
// dist/fast-path.bundle.js: loading ~50 small ES modules costs more start-up time than opening a
// 1 GiB core and unwinding every thread. Native and wasm packages stay external. bin/dbg uses
// the bundle only when it is at least as new as the compiled fast-path.js (tsc rewrites every
// output file, so a bare `tsc` after the bundle makes bin/dbg fall back to the unbundled files).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const r = spawnSync(
  join(root, 'node_modules', '.bin', 'esbuild'),
  [
    'dist/src/cli/fast-path.js', '--bundle', '--platform=node', '--format=esm', '--target=node20',
    '--outfile=dist/fast-path.bundle.js', '--external:koffi', '--external:better-sqlite3', '--external:capstone-wasm',
    '--log-level=warning',
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
