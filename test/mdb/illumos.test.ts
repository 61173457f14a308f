/**
 * illumos's own MDB tests (usr/src/test/util-tests/tests/mdb in illumos-gate), ported to dbg as
 * data under test/mdb/illumos/: each `tst.*.mdb` / `err.*.mdb` is the commands MDB reads on its
 * standard input, and `X.mdb.out`, when present, the exact standard output expected.
 *
 * As illumos's `mdbtest` driver: a `tst.` file must run without an error and print exactly its
 * `.out`; an `err.` file must fail. Every line runs, as MDB reading commands from a pipe goes on
 * after a failing one; a failure here must be dbg's one-line `dbg: …` error (a DbgError), never an
 * internal error.
 *
 * A `// target: NAME` line chooses what the commands run against: a program of illumos/progs
 * (`number_symbol`, `anon`, `bitfields`, `libctype`), built by gcc with DWARF, or `vmcore` (the sample kernel dump); without
 * one, a small raw file (illumos runs these with no target at all). A `// fails: WHY` line marks a
 * test dbg does not pass yet: it must fail (so fixing it shows, and the marker goes). The README
 * beside the data says what was ported how.
 */

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session, type CaptureOutput } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import type { Target } from '../../src/targets/target.js';
import { repoRoot } from '../helpers/repo.js';
import { rawSession, tempDir } from './helpers.js';

const root = join(repoRoot, 'test', 'mdb', 'illumos');
const tmp = tempDir('dbg-illumos-');
afterAll(() => tmp.cleanup());

const tests = readdirSync(root, { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'progs')
  .flatMap((d) =>
    readdirSync(join(root, d.name))
      .filter((f) => /^(tst|err)\..*\.mdb$/.test(f))
      .map((f) => `${d.name}/${f}`),
  )
  .sort();

const built = new Map<string, string>();
function program(name: string): string {
  let exe = built.get(name);
  if (!exe) {
    exe = join(tmp.dir, name);
    execFileSync('gcc', ['-O0', '-g', '-fno-pie', '-no-pie', '-o', exe, join(root, 'progs', `${name}.c`)], { stdio: 'pipe' });
    built.set(name, exe);
  }
  return exe;
}

function sessionFor(input: string): Session {
  const target = /^\/\/ target: (\S+)/m.exec(input)?.[1];
  if (!target) return rawSession(tmp.dir, Buffer.alloc(64), 'raw.bin');
  let t: Target;
  if (target === 'vmcore') t = openTarget(join(repoRoot, 'dumps', 'vmcore.0'), { symbols: [join(repoRoot, 'dumps', 'kernel.elf')] });
  else t = openTarget(program(target));
  return new Session(t, builtinModules);
}

interface Result {
  readonly stdout: string;
  readonly errors: string[];
}

/** Each line of `input` in turn, as MDB reads a script from its standard input. */
async function runScript(input: string): Promise<Result> {
  const s = sessionFor(input);
  const lines: string[] = [];
  const errors: string[] = [];
  const out: Pick<CaptureOutput, 'jsonMode' | 'line' | 'json'> & { warn(t: string): void } = {
    jsonMode: false,
    line: (t) => lines.push(t),
    json: (v) => lines.push(JSON.stringify(v)),
    warn: (t) => errors.push(`warning: ${t}`),
  };
  for (const line of input.split('\n')) {
    try {
      await s.execute(line, out);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      errors.push(`dbg: ${e.message}`);
    }
    if (s.quitRequested) break;
  }
  return { stdout: lines.map((l) => l + '\n').join(''), errors };
}

const known = new Set(tests.filter((t) => /^\/\/ fails: /m.test(readFileSync(join(root, t), 'utf8'))));

describe("illumos's MDB tests, ported", () => {
  it.each(tests.filter((t) => !known.has(t)))('%s', (name) => check(name));
  it.fails.each([...known])('%s (does not pass yet)', (name) => check(name));
});

async function check(name: string): Promise<void> {
  {
    const input = readFileSync(join(root, name), 'utf8');
    const expected = existsSync(join(root, name + '.out')) ? readFileSync(join(root, name + '.out'), 'utf8') : undefined;
    const r = await runScript(input);
    for (const e of r.errors) expect(e, 'an error is one line').not.toContain('\n');
    if (expected !== undefined) expect(r.stdout).toBe(expected);
    if (name.split('/')[1]!.startsWith('tst.')) expect(r.errors.filter((e) => !e.startsWith('warning:'))).toEqual([]);
    else expect(r.errors.length, 'an err. test fails').toBeGreaterThan(0);
  }
}
