/**
 * Separate debug files and DWZ, against gdb 13 given the same files: a stripped program whose
 * DWARF is found by build-id under a debug-file directory (`--debug-file-directory`, gdb's
 * `set debug-file-directory`) or by .gnu_debuglink beside it (CRC checked); two programs whose
 * common DWARF dwz moved into a supplementary file (.gnu_debugaltlink, DW_FORM_GNU_ref_alt and
 * GNU_strp_alt). Everything is made in a temporary directory from test/fixtures-src/frames.c.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setDebugFileDirectories } from '../../src/symbols/dwarf/debug-files.js';
import { ElfFile } from '../../src/symbols/elf-file.js';
import { openTarget } from '../../src/targets/open-target.js';
import { fixturesSrc } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { failure, run, sessionOn, tempDir } from '../mdb/helpers.js';

let tmp: ReturnType<typeof tempDir>;
let full: string;
const src = join(fixturesSrc, 'frames.c');
const questions = ['main::line', 'wait_here+0x20::line', '::sizeof struct job', '::offsetof struct job name', 'jobs::print [1].name'];

function gdbSays(exe: string, debugDir: string): string[] {
  const cmds = ['info line *main', 'info line *(wait_here+0x20)', 'p sizeof(struct job)', 'p &((struct job *)0)->name', 'p jobs[1].name'];
  const r = spawnSync('gdb', ['-nx', '-batch', '-iex', `set debug-file-directory ${debugDir}`, '-iex', 'set debuginfod enabled off', exe, ...cmds.flatMap((c, i) => ['-ex', `echo @@${i}\\n`, '-ex', c])], { encoding: 'utf8' });
  return r.stdout.split(/^@@\d+\n/m).slice(1).map((x) => x.trim().replace(/^\$\d+ = /, ''));
}

/** Our answers in gdb's terms: line and range, sizes and offsets as numbers, the string. */
async function oursSay(exe: string): Promise<string[]> {
  const s = sessionOn(openTarget(exe, {}));
  try {
    const out: string[] = [];
    for (const q of questions) out.push((await run(s, q)).join('\n'));
    return out;
  } finally {
    s.target.close();
  }
}

function sameAsGdb(ours: string[], gdb: string[]): void {
  const line = (t: string) => /^Line (\d+) of "(.*)" starts at address (0x[0-9a-f]+) .*and ends at (0x[0-9a-f]+)/.exec(t)!.slice(1).map((x, i) => (i >= 2 ? BigInt(x) : x));
  expect(line(ours[0]!)).toEqual(line(gdb[0]!));
  expect(line(ours[1]!)).toEqual(line(gdb[1]!));
  expect(BigInt(ours[2]!.split(' = ')[1]!)).toBe(BigInt(gdb[2]!));
  expect(BigInt(ours[3]!.split(' = ')[1]!.split(',')[0]!)).toBe(BigInt(/0x[0-9a-f]+/.exec(gdb[3]!)![0]));
  expect(ours[4]!.split(' ').pop()).toBe(gdb[4]!.split(' ').pop());
}

beforeAll(() => {
  tmp = tempDir('dbg-debugfiles-');
  full = join(tmp.dir, 'full');
  execFileSync('gcc', ['-O0', '-g', '-o', full, src]);
});
afterAll(() => {
  setDebugFileDirectories(undefined);
  tmp?.cleanup();
});

/** A stripped copy of the program in `dir`, and its debug file (objcopy --only-keep-debug). */
function split(dir: string): { exe: string; debug: string; buildId: string } {
  mkdirSync(dir, { recursive: true });
  const exe = join(dir, 'prog');
  const debug = join(dir, 'prog.debug');
  copyFileSync(full, exe);
  execFileSync('objcopy', ['--only-keep-debug', exe, debug]);
  execFileSync('strip', ['-g', exe]);
  const elf = ElfFile.open(exe);
  const buildId = elf.buildId()!;
  elf.close();
  return { exe, debug, buildId };
}

describe('separate debug files', () => {
  it('by build-id under the debug-file directory, as gdb finds it; none without the directory', async () => {
    const { exe, debug, buildId } = split(join(tmp.dir, 'byid'));
    const dir = join(tmp.dir, 'byid', 'debug');
    mkdirSync(join(dir, '.build-id', buildId.slice(0, 2)), { recursive: true });
    renameSync(debug, join(dir, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`));
    setDebugFileDirectories([dir]);
    sameAsGdb(await oursSay(exe), gdbSays(exe, dir));
    setDebugFileDirectories([]);
    const s = sessionOn(openTarget(exe, {}));
    expect((await failure(s, 'main::line')).message).toMatch(/^no line number information for address 0x[0-9a-f]+ \(no module with DWARF holds it: build with -g, or give the directory of its separate debug file with --debug-file-directory\)$/);
    s.target.close();
    // the CLI flag
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'dbg'), 'open', exe, '--debug-file-directory', `/nonexistent:${dir}`, '-e', '::sizeof struct job'], { encoding: 'utf8' });
    expect([r.stdout, r.stderr]).toEqual(['sizeof (struct job) = 0x20\n', '']);
  });

  it('by .gnu_debuglink beside the program, only when the CRC matches', async () => {
    const { exe, debug } = split(join(tmp.dir, 'link'));
    execFileSync('objcopy', [`--add-gnu-debuglink=${debug}`, exe]);
    setDebugFileDirectories([]);
    sameAsGdb(await oursSay(exe), gdbSays(exe, '/nonexistent'));
    appendFileSync(debug, 'x'); // now its CRC differs from the link's
    const s = sessionOn(openTarget(exe, {}));
    expect((await failure(s, '::sizeof struct job')).message).toMatch(/^::sizeof: unknown type "struct job": no loaded module has DWARF debug info/);
    s.target.close();
  });

  it('a build-id file of another build is not taken', async () => {
    const { exe, buildId } = split(join(tmp.dir, 'wrong'));
    const dir = join(tmp.dir, 'wrong', 'debug');
    mkdirSync(join(dir, '.build-id', buildId.slice(0, 2)), { recursive: true });
    execFileSync('gcc', ['-O0', '-g', '-DOTHER_BUILD=1', '-Wl,--build-id=0x1234', '-o', join(dir, '.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`), src]);
    setDebugFileDirectories([dir]);
    const s = sessionOn(openTarget(exe, {}));
    expect((await failure(s, '::sizeof struct job')).message).toMatch(/no loaded module has DWARF debug info/);
    s.target.close();
  });
});

describe('DWZ supplementary files', () => {
  it('types, strings and lines through .gnu_debugaltlink agree with gdb; a missing supplement is one line', async () => {
    const dir = join(tmp.dir, 'dwz');
    mkdirSync(dir);
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    copyFileSync(full, a);
    execFileSync('gcc', ['-O0', '-g', '-DSECOND=1', '-o', b, src]);
    execFileSync('dwz', ['-m', 'common.dwz', '-M', 'common.dwz', 'a', 'b'], { cwd: dir });
    const elf = ElfFile.open(a);
    expect(elf.section('.gnu_debugaltlink')).toBeDefined();
    elf.close();
    setDebugFileDirectories([]);
    // gdb resolves the relative .gnu_debugaltlink from the program's directory too
    sameAsGdb(await oursSay(a), gdbSays(a, '/nonexistent'));
    renameSync(join(dir, 'common.dwz'), join(dir, 'gone.dwz'));
    const s = sessionOn(openTarget(a, {}));
    expect((await failure(s, '::sizeof struct job')).message).toMatch(/^.*\/a: .* is in a DWZ supplementary file \(\.gnu_debugaltlink\), which was not found \(or its build-id differs\)$/);
    s.target.close();
  });
});
