#!/usr/bin/env node
// Builds the page decompressors of kdump-compressed dumps (native/kdump -> kdump.node, an N-API
// addon in C over libdeflate, liblzo2, libsnappy and libzstd), which also inflate compressed ELF
// sections. Without it dbg decodes pages in JavaScript, three to five times slower, and sections
// at half the speed.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from '../build-addon.mjs';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'kdump');
process.exit(buildAddon({ dir, out: join(dir, 'build', 'Release', 'kdump.node'), what: 'native/kdump (kdump page decompressors)', quiet: process.argv.includes('--quiet') }));
