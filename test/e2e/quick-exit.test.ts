/**
 * bin/dbg ends a run with _exit(2) (native/exit) once Node has emitted 'exit', skipping Node's
 * teardown: the output through a pipe (more than a pipe holds) and the exit status must be what
 * Node's own exit gives (any Node flag turns the quick exit off, so `node --no-warnings bin/dbg` is
 * the reference).
 */

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { runDbg } from '../gdb-client/attach-helpers.js';

const kernel = join(repoRoot, 'dumps', 'kernel.elf');

const run = (nodeFlags: readonly string[], args: readonly string[]) => runDbg(args, 60_000, { nodeFlags });

describe('quick exit', () => {
  it('native/exit is built, and refuses a code that is not a number', () => {
    const addon = createRequire(import.meta.url)(join(repoRoot, 'native', 'exit', 'build', 'Release', 'exit.node')) as { exitNow(code: unknown): never };
    expect(() => addon.exitNow('0')).toThrow(/^exitNow\(code\): code is not a number$/);
  });

  it('a long output through a pipe and status 0, as Node exits', async () => {
    const args = ['open', kernel, '-e', Array.from({ length: 200 }, () => '::nm').join('; ')];
    const [quick, node] = await Promise.all([run([], args), run(['--no-warnings'], args)]);
    expect(quick.stdout.length).toBeGreaterThan(256 * 1024);
    expect(quick).toEqual({ code: 0, stdout: node.stdout, stderr: '' });
    expect(node.code).toBe(0);
  });

  it('a failing command: its one line and status 1, as Node exits', async () => {
    const args = ['open', kernel, '-e', '::nm; ::nosuch'];
    const [quick, node] = await Promise.all([run([], args), run(['--no-warnings'], args)]);
    expect(quick).toEqual(node);
    expect(quick.code).toBe(1);
    expect(quick.stderr).toBe("dbg: unknown dcmd 'nosuch' (::help lists the dcmds)\n");
  });
});
