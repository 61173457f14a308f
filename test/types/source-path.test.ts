/**
 * A source search path (`--source-path`, `::dir`), as gdb's `directory` finds a source file that
 * is not where the debug info says: DIR + the whole recorded path, then DIR + its base name.
 * frames.c is built by gcc in a temporary directory and moved away afterwards; gdb's `list` with
 * the same directory is the oracle.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixturesSrc } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { tempDir } from '../mdb/helpers.js';

let tmp: ReturnType<typeof tempDir>;
let exe: string;
let built: string;
const dbg = (args: string[]) => spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null' } });

/** gdb's text of the line `list main` centres on, with the source directory given. */
function gdbMainLine(dir: string): string | undefined {
  const out = spawnSync('gdb', ['-nx', '-batch', '-ex', `directory ${dir}`, '-ex', 'info line main', '-ex', 'list main,main', exe], { encoding: 'utf8' }).stdout;
  return /^\d+\t(.*)$/m.exec(out)?.[1];
}

beforeAll(() => {
  tmp = tempDir('dbg-srcpath-');
  built = join(tmp.dir, 'build', 'prog.c');
  mkdirSync(dirname(built), { recursive: true });
  copyFileSync(join(fixturesSrc, 'frames.c'), built);
  exe = join(tmp.dir, 'build', 'prog');
  execFileSync('gcc', ['-O0', '-g', '-o', exe, built]);
});
afterAll(() => tmp?.cleanup());

describe('source search path', () => {
  it('finds a moved source file by base name and by its whole path under the directory, as gdb does', () => {
    const flat = join(tmp.dir, 'flat');
    const root = join(tmp.dir, 'root');
    mkdirSync(flat);
    mkdirSync(join(root, dirname(built)), { recursive: true });
    copyFileSync(built, join(root, built));
    renameSync(built, join(flat, 'prog.c'));

    // Nowhere to be found: file:line only, and gdb has no text either.
    const none = dbg([exe, '-e', 'main::dis -s']);
    expect(none.stdout.split('\n')[0]).toMatch(/^.*prog\.c:\d+$/);
    expect(gdbMainLine(join(tmp.dir, 'empty-nonexistent'))).toBeUndefined();

    for (const dir of [flat, root]) {
      const text = gdbMainLine(dir);
      expect(text).toBe('int main(int argc, char **argv) {');
      const viaFlag = dbg([exe, '--source-path', dir, '-e', 'main::dis -s']);
      expect(viaFlag.stderr).toBe('');
      expect(viaFlag.stdout.split('\n')[0]).toMatch(new RegExp(`^.*prog\\.c:\\d+  ${text!.replace(/[()*]/g, '\\$&')}$`));
      const viaDcmd = dbg([exe, '-e', `::dir ${dir}; main::dis -s`]);
      expect(viaDcmd.stdout.split('\n').slice(0, 2)).toEqual([`Source directories searched: ${dir}:(the path the debug info gives)`, viaFlag.stdout.split('\n')[0]]);
    }
    // ::dir adds in front; -r forgets.
    const both = dbg([exe, '--source-path', flat, '-e', `::dir ${root}; ::dir -r`]);
    expect(both.stdout.split('\n').slice(0, 2)).toEqual([`Source directories searched: ${root}:${flat}:(the path the debug info gives)`, 'Source directories searched: (the path the debug info gives)']);
  });

  it('a directory that is not there, or not a directory: one line', () => {
    const missing = join(tmp.dir, 'missing');
    const a = dbg([exe, '--source-path', missing, '-e', '::dir']);
    expect([a.status, a.stderr]).toEqual([1, `dbg: --source-path "${missing}": no such directory\n`]);
    const b = dbg([exe, '-e', `::dir ${exe}`]);
    expect([b.status, b.stderr]).toEqual([1, `dbg: ::dir "${exe}": not a directory\n`]);
    const c = dbg([exe, '-e', `0::dir ${tmp.dir}`]);
    expect([c.status, c.stderr]).toEqual([1, 'dbg: ::dir takes no address (usage: ::dir [-r] [DIR ...])\n']);
  });
});
