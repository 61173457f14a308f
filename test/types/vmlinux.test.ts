/**
 * Opt-in: types and data of a real Debian vmlinux (full DWARF, ~590 MB) against gdb 13.
 *
 *   node scripts/setup-vmlinux.mjs            # once, as root: installs and caches it
 *   DBG_VMLINUX_TESTS=1 npx vitest run test/types/vmlinux.test.ts
 *
 * Skipped, with the reason printed, unless DBG_VMLINUX_TESTS=1 and the cache is in place. gdb
 * reads the whole DWARF first (about half a minute), so its answers are asked once.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import { skipReason } from '../helpers/debuggee.js';
import { repoRoot } from '../helpers/repo.js';
import { mdbNumber, offsetofLine, run, sessionOn } from '../mdb/helpers.js';

const vmlinux = join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux');
const why =
  process.env.DBG_VMLINUX_TESTS !== '1'
    ? 'opt-in: set DBG_VMLINUX_TESTS=1 (after node scripts/setup-vmlinux.mjs)'
    : !existsSync(vmlinux)
      ? `no cached vmlinux at ${vmlinux}: run node scripts/setup-vmlinux.mjs (as root) first`
      : undefined;
const skip = skipReason('real Debian vmlinux', why);

const types = ['struct task_struct', 'struct list_head', 'struct mm_struct', 'struct file', 'struct inode', 'struct page', 'pid_t', 'struct rq'];
const offsets: [string, string][] = [
  ['struct task_struct', 'tasks'],
  ['struct task_struct', 'comm'],
  ['struct task_struct', 'pid'],
  ['struct task_struct', 'mm'],
  ['struct task_struct', 'thread_info'],
  ['struct mm_struct', 'pgd'],
  ['struct file', 'f_inode'],
  ['struct inode', 'i_ino'],
];

let s: Session;
let gdb: string[];

describe.skipIf(skip)('a real Debian vmlinux against gdb', () => {
  beforeAll(() => {
    s = sessionOn(openTarget(vmlinux, {}));
    const cmds = [...types.map((t) => `p sizeof(${t})`), ...offsets.map(([t, m]) => `p/x (unsigned long)&((${t} *)0)->${m}`), 'p init_task.comm', 'p init_task.pid', 'p/x init_task.tasks.next', 'p/x init_task.flags'];
    const r = spawnSync('gdb', ['-nx', '-batch', '-iex', 'set debuginfod enabled off', vmlinux, ...cmds.flatMap((c, i) => ['-ex', `echo @@${i}\\n`, '-ex', c])], { encoding: 'utf8', timeout: 600_000, maxBuffer: 64 << 20 });
    gdb = r.stdout.split(/^@@\d+\n/m).slice(1).map((x) => x.trim().replace(/^\$\d+ = /, ''));
    console.log(`vmlinux: ${JSON.parse(readFileSync(join(repoRoot, 'test', '.fixtures', 'vmlinux', 'vmlinux.json'), 'utf8')).package}`);
  }, 600_000);
  afterAll(() => s?.target.close());

  it('::sizeof and ::offsetof agree with gdb', async () => {
    for (const [i, t] of types.entries()) expect(await run(s, `::sizeof ${t}`)).toEqual([`sizeof (${t}) = ${mdbNumber(gdb[i]!)}`]);
    for (const [i, [t, m]] of offsets.entries()) expect((await run(s, `::offsetof ${t} ${m}`))[0]).toMatch(offsetofLine(t, m, gdb[types.length + i]!));
  });

  it('init_task::print reads the initialized data as gdb does', async () => {
    const base = types.length + offsets.length;
    expect(await run(s, 'init_task::print comm')).toEqual([`comm = [ "${/^"([^\\"]*)/.exec(gdb[base]!)![1]}" ]`]);
    expect(await run(s, 'init_task::print -d .pid')).toEqual([`.pid = ${gdb[base + 1] === '0' ? '0' : '0t' + gdb[base + 1]}`]);
    expect((await run(s, 'init_task::print -n tasks.next'))[0]).toBe(`tasks.next = ${gdb[base + 2]}`);
    expect(await run(s, 'init_task::print flags')).toEqual([`flags = ${gdb[base + 3]}`]);
    const all = await run(s, 'init_task::print');
    expect(all.length).toBeGreaterThan(500);
    expect(all[0]).toBe('{');
  });
});
