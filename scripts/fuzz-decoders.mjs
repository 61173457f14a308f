#!/usr/bin/env node
// Fuzzes the trace decoders of the native recorder (native/recorder/decode.h: pc streams and
// delta checkpoints) under AddressSanitizer and UBSan for a bounded time.
//
//   node scripts/fuzz-decoders.mjs [--seconds N] [--seed S]
//
// With clang and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev) the harness is built
// as a libFuzzer target (coverage-guided); otherwise with gcc and fuzz-driver.c, a seeded
// mutation loop (what CI runs: gcc is already a dependency). Exit 0 when no input faulted;
// otherwise the sanitizer's report and the faulting input are printed and the exit status is 1.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'native', 'recorder', 'fuzz');
const out = join(dir, 'build');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : dflt;
};
const seconds = Number(arg('--seconds', '60'));
const seed = arg('--seed', '0x9E3779B97F4A7C15');
if (!(seconds > 0)) {
  console.error(`fuzz-decoders: --seconds ${arg('--seconds')}: expected a positive number`);
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const flags = ['-O1', '-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-Wall'];
const harness = join(dir, 'decoders-fuzz.c');
const cc = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' });

let run;
const libfuzzer = join(out, 'decoders-libfuzzer');
const clang = cc('clang', ['-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=all', '-O1', '-g', '-o', libfuzzer, harness]);
if (!clang.error && clang.status === 0) {
  run = [libfuzzer, [`-max_total_time=${Math.ceil(seconds)}`, `-seed=${Number(BigInt(seed) & 0x7fffffffn)}`, '-max_len=4096', '-print_final_stats=1']];
  console.log('fuzz-decoders: libFuzzer (clang)');
} else {
  const bin = join(out, 'decoders-fuzz');
  const gcc = cc('gcc', [...flags, '-o', bin, harness, join(dir, 'fuzz-driver.c')]);
  if (gcc.error || gcc.status !== 0) {
    console.error(`fuzz-decoders: cannot build the harness with gcc and -fsanitize=address,undefined: ${gcc.error?.message ?? gcc.stderr.trim()}`);
    process.exit(2);
  }
  run = [bin, [String(seconds), seed]];
  console.log('fuzz-decoders: seeded mutation loop (gcc; install clang and libclang-rt-14-dev for libFuzzer)');
}
const r = spawnSync(run[0], run[1], { cwd: out, stdio: 'inherit' });
process.exit(r.status === 0 ? 0 : 1);
