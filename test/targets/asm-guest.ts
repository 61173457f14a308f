/** Test guests from assembly: gcc assembles, ld links them as freestanding ELF64 at 1 MiB. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** `source` (GNU as syntax) built in `dir` as NAME.elf, entered at `_start`; returns the ELF's path. */
export function asmGuest64(dir: string, name: string, source: string): string {
  const s = join(dir, `${name}.S`);
  const o = join(dir, `${name}.o`);
  const k = join(dir, `${name}.elf`);
  writeFileSync(s, source);
  execFileSync('gcc', ['-c', '-m64', '-o', o, s]);
  execFileSync('ld', ['-m', 'elf_x86_64', '-nostdlib', '-Ttext=0x100000', '-e', '_start', '-o', k, o]);
  return k;
}

/**
 * Data that starts vCPU 1 at label `ap` with its stack at 0x7f000, when vCPU 0 writes the
 * address of `block` to port 0x518 (machine.ts: the start block's layout). Opens `.data`.
 */
export const AP_START_BLOCK = `.data
.align 8
block: .long 1, 0
  .quad ap, 0x7f000, 0
`;
