/**
 * Target descriptions as stubs send them: QEMU's one include, gdbserver's several, regnum gaps,
 * and the descriptions dbg refuses (with what was wrong).
 */

import { describe, expect, it } from 'vitest';
import { decodeRegisters, defaultX86_64, DescriptionError, parseDescription } from '../../src/gdb-client/target-xml.js';

const annexes = (files: Record<string, string>) => (annex: string): string => {
  const f = files[annex];
  if (f === undefined) throw new DescriptionError(`no annex ${annex}`);
  return f;
};

const gp64 = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

describe('target descriptions', () => {
  it('follows xi:include in order, numbering registers from 0 unless regnum says otherwise', () => {
    const d = parseDescription(
      annexes({
        'target.xml': '<?xml version="1.0"?><!-- a comment <reg name="no"/> --><target><architecture>i386:x86-64</architecture><xi:include href="64bit-core.xml"/><xi:include href="extra.xml"/></target>',
        '64bit-core.xml': `<feature name="org.gnu.gdb.i386.core">${gp64.map((n) => `<reg name="${n}" bitsize="64" type="int64"/>`).join('')}<reg name="eflags" bitsize="32"/></feature>`,
        'extra.xml': '<feature name="x"><reg name="fs_base" bitsize="64" regnum="40"/><reg name="gs_base" bitsize="64"/></feature>',
      }),
    );
    expect(d.arch.name).toBe('x86-64');
    expect(d.registers.map((r) => `${r.name}:${r.regnum}`).slice(16)).toEqual(['rip:16', 'eflags:17', 'fs_base:40', 'gs_base:41']);
    // A g reply: values little-endian in regnum order; xx is unavailable.
    const hex = gp64.map((_, i) => (i === 16 ? '0010400000000000' : 'xxxxxxxxxxxxxxxx')).join('') + '46020000';
    const regs = decodeRegisters(d, hex);
    expect(regs.get('rip')).toBe(0x401000n);
    expect(regs.get('eflags')).toBe(0x246n);
    expect(regs.has('rax')).toBe(false);
    expect(regs.has('fs_base')).toBe(false); // the reply ended before it
  });

  it('an i386 description has eip as its 32-bit pc', () => {
    const regs = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'eip'].map((n) => `<reg name="${n}" bitsize="32"/>`).join('');
    const d = parseDescription(annexes({ 'target.xml': `<target><architecture>i386</architecture><feature name="c">${regs}</feature></target>` }));
    expect(d.arch.name).toBe('i386');
    expect(d.registers.find((r) => r.name === 'eip')!.regnum).toBe(8);
  });

  it("gdb's default x86-64 layout for a stub without a description: 57 registers, 536 bytes", () => {
    const d = defaultX86_64();
    expect(d.registers).toHaveLength(57);
    expect(d.registers.reduce((s, r) => s + r.bits / 8, 0)).toBe(536);
  });

  const bad: [what: string, files: Record<string, string>, message: string][] = [
    ['an unknown architecture', { 'target.xml': '<target><architecture>aarch64</architecture></target>' }, 'architecture "aarch64" (dbg reads i386:x86-64 and i386)'],
    ['no architecture and no pc', { 'target.xml': '<target><feature name="f"><reg name="x0" bitsize="64"/></feature></target>' }, 'no <architecture> and neither rip nor eip among 1 registers (dbg reads x86-64 and i386)'],
    ['a pc of the wrong width', { 'target.xml': `<target><architecture>i386:x86-64</architecture><feature name="f"><reg name="rsp" bitsize="64"/><reg name="rip" bitsize="32"/></feature></target>` }, 'rip is 32 bits wide; i386:x86-64 has 64'],
    ['a bitsize that is not whole bytes', { 'target.xml': '<target><feature name="f"><reg name="rip" bitsize="63"/></feature></target>' }, 'register rip: bitsize "63" (expected a multiple of 8 up to 1024)'],
    ['a register twice', { 'target.xml': '<target><feature name="f"><reg name="rip" bitsize="64"/><reg name="rip" bitsize="64"/></feature></target>' }, 'register rip (regnum 1) described twice'],
    ['an include that includes itself', { 'target.xml': '<target><xi:include href="target.xml"/></target>' }, 'too many nested xi:include annexes (at target.xml)'],
    ['an include with a path', { 'target.xml': '<target><xi:include href="../etc/passwd"/></target>' }, 'an xi:include without a plain href in target.xml'],
  ];
  it.each(bad)('refuses %s', (_, files, message) => {
    expect(() => parseDescription(annexes(files))).toThrow(new DescriptionError(message));
  });
});
