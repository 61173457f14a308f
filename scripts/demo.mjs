#!/usr/bin/env node
// `npm start`'s demo, run after scripts/setup.mjs: dbg on samples in dumps/.
//
//   1. A process core: dumps/demo/demo.c is built by gcc, run until it says "ready", dumped by
//      gdb's gcore into dumps/.work/ (cached: redone only when the source changes), and opened
//      with `dbg open` to show threads, stacks, a heap list and globals.
//   2. A raw file: the same program's executable opened with --raw (bytes at offsets).
//   3. A kernel crash dump: dumps/vmcore.0 (made by setup) with the sample kernel's symbols.
//   4. A live emulated guest: the sample kernel boots on the emulator, a watchpoint catches the
//      write that corrupts its task list, recorded into a trace.
//   5. Time travel: the trace opened with `dbg replay`, run backwards to that write.
//
// When gcc, gdb or ptrace are not available, part 1 says why and the raw demo still runs.
// `--core-only` only makes the core (for bench/open.ts).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, 'dumps', '.work');
const src = join(root, 'dumps', 'demo', 'demo.c');
const exe = join(work, 'demo');
const core = join(work, 'demo.core');
const rel = (p) => relative(process.cwd(), p) || '.';

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Run dbg as a user would, echoing the command line first. */
function dbg(args) {
  const shown = args.map((a) => (/[\s;*|$`'"]/.test(a) ? `'${a}'` : a)).join(' ');
  console.log(`\n$ dbg ${shown}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'dbg'), ...args], { stdio: 'inherit', env: { ...process.env, DBG_HISTORY: '/dev/null' } });
  if (r.status !== 0) {
    console.error(`demo: dbg exited with status ${r.status}`);
    process.exitCode = 1;
  }
}

async function makeCore() {
  mkdirSync(work, { recursive: true });
  const stamp = join(work, 'demo.source');
  const source = readFileSync(src, 'utf8');
  if (existsSync(core) && existsSync(exe) && existsSync(stamp) && readFileSync(stamp, 'utf8') === source && statSync(core).size > 0) return;
  execFileSync('gcc', ['-O0', '-g', '-fno-omit-frame-pointer', '-pthread', '-o', exe, src], { stdio: 'inherit' });
  const child = spawn(exe, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the demo program did not start within 10 s')), 10_000);
      child.stdout.on('data', (d) => {
        if (/ready/.test(String(d))) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`the demo program exited (${code}) before it was ready`)));
    });
    const r = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', '-p', String(child.pid), '-ex', `gcore ${core}`], { encoding: 'utf8', timeout: 120_000 });
    if (!existsSync(core)) throw new Error(`gcore failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ')}`);
    writeFileSync(stamp, source);
  } finally {
    child.kill('SIGKILL');
  }
}

// `--core-only`: make dumps/.work/demo.core and exit (bench/open.ts uses it).
if (process.argv.includes('--core-only')) {
  await makeCore();
  process.exit(0);
}

console.log('dbg demo: a process core, a raw file, a kernel crash dump, a live guest and its recording (see README)');
let coreOk = false;
if (have('gcc') && have('gdb')) {
  try {
    await makeCore();
    coreOk = true;
  } catch (e) {
    console.log(`demo: skipping the process-core part: ${e.message}`);
  }
} else {
  console.log('demo: skipping the process-core part: gcc and gdb are needed to make a core (npm start installs them)');
}

if (coreOk) {
  dbg(['open', rel(core), '-e', '::status; ::threads']);
  dbg(['open', rel(core), '-e', '::stack -a']);
  dbg(['open', rel(core), '-e', '*todo::list 10 | /D; *greeting/s; counter/E; main::dis -n 4']);
}
if (existsSync(exe)) dbg(['open', '--raw', rel(exe), '-e', '0,2/X; 1/3c; 0::mappings']);
else {
  const sample = join(work, 'sample.bin');
  mkdirSync(work, { recursive: true });
  writeFileSync(sample, Buffer.concat([Buffer.from('dbg raw sample\0', 'latin1'), Buffer.from([0x78, 0x56, 0x34, 0x12])]));
  dbg(['open', rel(sample), '-e', '0/s; f/X; 0t15,4/B']);
}

const vmcore = join(root, 'dumps', 'vmcore.0');
const kernel = join(root, 'dumps', 'kernel.elf');
if (existsSync(vmcore) && existsSync(kernel)) {
  dbg(['open', rel(vmcore), '--symbols', rel(kernel), '-e', '::status; ::stack; tasks/K; tasks::vtop']);
}
if (existsSync(kernel)) {
  mkdirSync(work, { recursive: true });
  const trace = join(work, 'demo.trace');
  for (const f of [trace, `${trace}-wal`, `${trace}-shm`]) rmSync(f, { force: true });
  dbg(['live', '--emulate', rel(kernel), '--cpus', '2', '--wait', '-q', '--record', rel(trace), '-e', 'tasks::wp -w -L 8; :c; :c; ::stack; ::delete 1; :c; ::console']);
  if (existsSync(trace)) dbg(['replay', rel(trace), '-e', '::now; tasks::wp -w -L 8; ::rcont; ::stack; tasks::whowrote; ::rstep; ::now']);
}
