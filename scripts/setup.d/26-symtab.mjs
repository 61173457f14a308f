#!/usr/bin/env node
// Builds native/symtab (symtab.node, an N-API addon in C): the passes over a whole ELF symbol
// table that the compact symbol table makes once per table (a kernel's 119,000 entries). Without
// it they run in JavaScript, 40-90 ms of CPU on a vmlinux instead of about 1 ms.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../build-addon.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'symtab');
process.exit(buildAddon({ dir, out: join(dir, 'build', 'Release', 'symtab.node'), what: 'native/symtab (symbol table passes)', quiet: process.argv.includes('--quiet') }));
