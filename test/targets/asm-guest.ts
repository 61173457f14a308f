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
