#!/usr/bin/env node
// Builds the live process target's tracer (native/ptrace -> ptrace.node, an N-API addon in C whose
// ptrace calls all run on one thread of its own). Without it `dbg run` and `dbg attach PID` say so
// and the rest of dbg works. Linux only.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../build-addon.mjs';

if (process.platform !== 'linux') process.exit(0);
const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'ptrace');
process.exit(buildAddon({ dir, out: join(dir, 'build', 'Release', 'ptrace.node'), what: 'native/ptrace (the live process tracer)', quiet: process.argv.includes('--quiet') }));
