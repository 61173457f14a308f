#!/usr/bin/env node
// Builds native/exit (exit.node, an N-API addon in C): bin/dbg ends a command-line run with
// _exit(2) instead of Node's teardown. Without it dbg exits as Node does, a little later.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../build-addon.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'exit');
process.exit(buildAddon({ dir, out: join(dir, 'build', 'Release', 'exit.node'), what: 'native/exit (quick exit)', quiet: process.argv.includes('--quiet') }));
