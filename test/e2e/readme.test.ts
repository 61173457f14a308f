// The README cannot drift: every `$ dbg …` line in its code blocks is run as written (through
// bash, with bin/dbg as `dbg` on PATH) and what it prints is compared with the lines the README
// shows under it. A block whose `$ dbg … &` is followed by `$ gdb FILE` and `(gdb) …` lines is a
// gdb session: dbg serves in the background and a real gdb runs those commands.
//
// Blocks run in README order in a scratch directory whose dumps/ links to the checkout's samples
// (made by setup; the demo's core by scripts/demo.mjs --core-only), so traces the examples record
// land in the scratch directory, never beside what `npm start` made. What differs between
// machines and runs is normalised on both sides: a process's addresses (ASLR), pids, ports.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';

interface Command {
  /** The shell line after `$ `. */
  readonly line: string;
  /** The lines the README shows under it. */
  readonly expected: string[];
}
interface GdbSession {
  readonly dbg: Command;
  readonly file: string;
  /** `(gdb) CMD` and the lines under it. */
  readonly steps: Command[];
}
type Example = { kind: 'shell'; cmd: Command } | { kind: 'gdb'; session: GdbSession };

/** The `$ dbg` examples of README.md, in order. */
export function readmeExamples(text: string): Example[] {
  const examples: Example[] = [];
  const blocks = text.split(/^```[a-z]*\n/m).filter((_, i) => i % 2 === 1);
  for (const block of blocks) {
    const lines = block.replace(/\n$/, '').split('\n');
    if (!lines[0]?.startsWith('$ dbg ')) continue;
    // Split into `$ ` commands, each with the lines under it.
    const cmds: Command[] = [];
    for (const l of lines) {
      if (l.startsWith('$ ')) cmds.push({ line: l.slice(2), expected: [] });
      else cmds[cmds.length - 1]!.expected.push(l);
    }
    for (const c of cmds) while (c.expected.length > 0 && c.expected[c.expected.length - 1] === '') c.expected.pop();
    for (let i = 0; i < cmds.length; i++) {
      const c = cmds[i]!;
      const next = cmds[i + 1];
      if (c.line.endsWith(' &') && next?.line.startsWith('gdb ')) {
        const steps: Command[] = [];
        for (const l of next.expected) {
          if (l.startsWith('(gdb) ')) steps.push({ line: l.slice(6), expected: [] });
          else steps[steps.length - 1]!.expected.push(l);
        }
        examples.push({ kind: 'gdb', session: { dbg: { line: c.line.slice(0, -2), expected: c.expected }, file: next.line.slice(4).trim(), steps } });
        i++;
      } else if (c.line.startsWith('dbg ')) examples.push({ kind: 'shell', cmd: c });
      else throw new Error(`README block runs "${c.line}": only dbg and gdb lines can be checked`);
    }
  }
  return examples;
}

/** Both sides of a comparison, with what differs between machines and runs made equal. */
export function normalise(text: string, port?: number): string {
  let s = text.replace(/\r/g, '');
  if (port !== undefined) s = s.replaceAll(String(port), 'PORT');
  return s
    .replace(/:1234\b/g, ':PORT')
    .replace(/--gdb 1234\b/g, '--gdb PORT')
    .replace(/0x0000(?:5[5-6]|7f)[0-9a-f]{10}/g, '0x0000USERADDRESS')
    .replace(/\b0x(?:5[5-6]|7f)[0-9a-f]{10}\b/g, '0xUSERADDRESS')
    .replace(/LWP \d+/g, 'LWP N')
    .replace(/\b(tid|by thread) \d+/g, '$1 N')
    .replace(/^(\*?\s+\d+\s+)\d+(\s+LWP)/gm, '$1N$2')
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/ \(\d+\.\d\d s\)$/gm, ' (N s)') // how long a command took (dbg traces --verify)
    .replace(/dbg gdbserver: (?:no terminal|in the background \(no REPL\)):/g, 'dbg gdbserver: headless:')
    .split('\n')
    .map((l) => l.replace(/[ \t]+/g, ' ').trimEnd())
    .join('\n')
    .trimEnd();
}

const examples = readmeExamples(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
let scratch: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  // The demo's core (npm start makes it; cached by its source).
  const made = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'demo.mjs'), '--core-only'], { encoding: 'utf8', timeout: 180_000 });
  if (made.status !== 0) throw new Error(`scripts/demo.mjs --core-only failed: ${made.stderr}`);
  scratch = mkdtempSync(join(tmpdir(), 'dbg-readme-'));
  const dumps = join(repoRoot, 'dumps');
  mkdirSync(join(scratch, 'dumps', '.work'), { recursive: true });
  for (const f of readdirSync(dumps)) if (f !== '.work') symlinkSync(join(dumps, f), join(scratch, 'dumps', f));
  for (const f of readdirSync(join(dumps, '.work'))) if (!f.endsWith('.trace') && !f.includes('.trace-')) symlinkSync(join(dumps, '.work', f), join(scratch, 'dumps', '.work', f));
  const bin = join(scratch, 'bin');
  mkdirSync(bin);
  symlinkSync(join(repoRoot, 'bin', 'dbg'), join(bin, 'dbg'));
  env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, DBG_HISTORY: '/dev/null', XDG_CACHE_HOME: join(scratch, 'cache'), LC_ALL: 'C', TERM: 'dumb' };
});
afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function freePort(): number {
  return 20000 + ((process.pid * 7) % 20000);
}

describe('README.md examples, run as written', () => {
  it('has examples to run', () => {
    expect(examples.length).toBeGreaterThan(5);
  });

  for (const [i, ex] of examples.entries()) {
    if (ex.kind === 'shell') {
      it(`${i + 1}: $ ${ex.cmd.line}`, () => {
        const r = spawnSync('bash', ['-c', `exec 2>&1; ${ex.cmd.line}`], { cwd: scratch, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
        expect(normalise(r.stdout)).toBe(normalise(ex.cmd.expected.join('\n')));
      });
    } else {
      const { dbg, file, steps } = ex.session;
      it(`${i + 1}: $ ${dbg.line} & with gdb ${file}`, async () => {
        const port = freePort();
        const line = dbg.line.replace(/--gdb 1234\b/, `--gdb ${port}`);
        const child = spawn('bash', ['-c', `exec 2>&1; exec ${line}`], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        try {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => reject(new Error(`dbg did not start serving: ${out}`)), 30_000);
            child.stdout!.on('data', (d: Buffer) => {
              out += d.toString();
              if (/until stopped/.test(out)) {
                clearTimeout(t);
                resolve();
              }
            });
            child.on('exit', (code) => reject(new Error(`dbg exited (${code}): ${out}`)));
          });
          // What dbg printed before gdb came (the README shows the lines of an interactive shell's
          // background job; here stdin is not a terminal, which normalise() makes the same).
          expect(normalise(out, port)).toBe(normalise(dbg.expected.join('\n'), port));
          const args = ['-nx', '-batch', '-iex', 'set auto-load off', '-iex', 'set debuginfod enabled off', '-iex', 'set width 0', '-iex', 'set height 0', '-iex', 'set confirm off', file];
          for (const s of steps) args.push('-ex', `echo (gdb) ${s.line.replace(/\\/g, '\\\\')}\\n`, '-ex', s.line.replace(/:1234\b/, `:${port}`));
          const g = spawnSync('bash', ['-c', 'exec 2>&1; exec gdb "$@"', 'gdb', ...args], { cwd: scratch, env, encoding: 'utf8', timeout: 120_000 });
          const expected = steps.flatMap((s) => [`(gdb) ${s.line}`, ...s.expected]).join('\n');
          // gdb -batch detaches when its commands are done; an interactive gdb would not yet.
          const transcript = g.stdout.replace(/\[Inferior \d+ \(process \d+\) detached\]\n?$/, '');
          expect(normalise(transcript, port)).toBe(normalise(expected, port));
        } finally {
          child.kill('SIGTERM');
        }
      });
    }
  }
});
