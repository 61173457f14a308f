/** The sample kernel the emulator tests boot: dumps/kernel.elf as built here, else the prebuilt one. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/repo.js';

export function sampleKernel(): string {
  const built = join(repoRoot, 'dumps', 'kernel.elf');
  return existsSync(built) ? built : join(repoRoot, 'dumps', 'kernel.prebuilt.elf');
}
