/**
 * ::dis prints immediates and displacements in hex, as objdump does, and names an immediate that
 * lies inside a symbol: differential against objdump on the sample kernel's functions.
 */

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { openTarget } from '../../src/targets/open-target.js';
import { run, sessionOn } from './helpers.js';

const kernel = join(repoRoot, 'dumps', 'kernel.elf');
const FUNCTIONS = ['kmain', 'task_init', 'log_append', 'timer_tick', 'run_cpu', 'kprintf'];

/**
 * The numbers of an operand list, in order: `$0x10`, `-0x7fefcf80` … (symbol names dropped). A zero
 * displacement is left out: objdump shows the disp8 that (%r13) needs, capstone does not.
 */
function numbers(operands: string): string[] {
  return [...operands.replace(/ <[^>]*>/g, '').matchAll(/\$-?0x[0-9a-f]+|-?0x[0-9a-f]+(?=\()/g)].map((m) => m[0]).filter((n) => n !== '0x0');
}

describe('::dis operands', () => {
  const s = sessionOn(openTarget(kernel));

  it('has the immediates and displacements objdump has, in hex, for every instruction', async () => {
    for (const fn of FUNCTIONS) {
      const lines = await run(s, `${fn}::dis`);
      for (const l of lines) expect(l, l).not.toMatch(/\$-?\d{2,}|\$[1-9]\b|[,(]-?[1-9]\d+\(/);
      const ours = lines.map((l) => numbers(l.replace(/^\S+:\s+\S+\s*/, '')));
      const dump = spawnSync('objdump', ['-d', '--no-show-raw-insn', `--disassemble=${fn}`, kernel], { encoding: 'utf8' }).stdout;
      const theirs = dump
        .split('\n')
        .filter((l) => /^ *[0-9a-f]+:\t/.test(l))
        .map((l) => numbers(l.split('\t').slice(1).join(' ').replace(/^\S+\s*/, '')));
      expect(ours, fn).toEqual(theirs);
    }
  });

  it('names an immediate inside a symbol, not one that is a plain constant', async () => {
    const lines = await run(s, 'kmain::dis');
    expect(lines).toContain('kmain+0x32:     movq   $0xffffffff801010b9 <task_idle>,%r8');
    expect(lines).toContain('kmain+0x1c:     movl   $0x0,%eax');
    expect(lines).toContain('kmain+0x26:     cmpl   $0x2badb002,%ebx');
    expect(lines.find((l) => l.startsWith('kmain+0x21:'))).toBe('kmain+0x21:     callq  0xffffffff801011f8 <kprintf>');
    // capstone's decimal for the sign-extended 32-bit immediate of a 64-bit add, and for -0x80000000
    const init = await run(s, 'task_init::dis');
    expect(init).toContain('task_init+0xa1: addq   $0xffffffff80103080 <tasks>,%rax');
    expect(init).toContain('task_init+0x25: movq   %r11,-0x7fefcf80(,%rcx,8)');
  });
});
