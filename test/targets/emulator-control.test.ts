import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { session } from './emulator-session.js';
import { UC, X86_REG } from '../../src/targets/emulator/unicorn.js';
import { asmGuest64 } from './asm-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-emuc-'));
const open: EmulatorTarget[] = [];
afterAll(() => open.forEach((t) => t.close()));

const elf64 = (name: string, asm: string): string => asmGuest64(dir, name, asm);

const prog = `
.globl _start, f, g, loop, done, buf
_start:
  mov $0x80000, %rsp
  call f
after_f:
  xor %ecx, %ecx
loop:
  inc %ecx
  movb %cl, buf(%rip)
  cmp $5, %ecx
  jne loop
done:
  cli
  hlt
f:
  push %rbp
  mov %rsp, %rbp
  call g
  pop %rbp
  ret
g:
  nop
  nop
  ret
.data
buf: .quad 0
`;

describe('execution control', () => {
  it('step into, over a call, out of a function', async () => {
    const k = elf64('calls', prog);
    const t = EmulatorTarget.open(k, { ramBytes: 4 << 20 });
    open.push(t);
    const s = session(t);
    const sym = (n: string): bigint => t.symbols.lookup(n);
    await s.run(':s'); // mov rsp
    expect(t.status().pc).toBe(sym('_start') + 7n);
    expect((await s.run('::step over'))[0]).toBe(`stopped: step at 0x${sym('after_f').toString(16).padStart(16, '0')} after_f on vCPU 0`);
    expect(t.status().reason.kind).toBe('step');
    // into f, then g; ::step out of g lands back in f after the call
    const t2 = EmulatorTarget.open(k, { ramBytes: 4 << 20 });
    open.push(t2);
    const s2 = session(t2);
    await s2.run(':s; :s');
    expect(t2.status().pc).toBe(sym('f'));
    await s2.run(':s; :s; :s');
    expect(t2.status().pc).toBe(sym('g'));
    await s2.run('::step out');
    expect(t2.status().pc).toBe(sym('f') + 9n); // after "call g"
    await s2.run('::step out');
    expect(t2.status().pc).toBe(sym('after_f'));
    expect(() => s2.run('::step sideways')).rejects.toThrow(/::step sideways: expected over, out or nothing/);
  });

  it('a breakpoint in a loop hits once per pass, not again at once on resume', async () => {
    const t = EmulatorTarget.open(elf64('loop', prog), { ramBytes: 4 << 20 });
    open.push(t);
    const s = session(t);
    expect((await s.run('loop::bp'))[0]).toMatch(/^1: breakpoint at 0x0*[0-9a-f]+ loop; hits 0$/);
    const seqs: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      await s.run(':c');
      expect(t.status().reason).toMatchObject({ kind: 'breakpoint', id: 1 });
      seqs.push(t.status().seq!);
    }
    expect(seqs.map((x, i) => (i ? x - seqs[i - 1]! : 0n))).toEqual([0n, 4n, 4n, 4n, 4n]);
    expect(await s.run('::events')).toEqual([expect.stringMatching(/^1: breakpoint at .* loop; hits 5$/)]);
    await s.run('::delete 1; :c');
    expect(t.status().reason.kind).toBe('halted');
    expect(await s.run('::events')).toEqual(['no breakpoints or watchpoints']);
  });

  it('exec and physical watchpoints; /W and ::setreg writes', async () => {
    const t = EmulatorTarget.open(elf64('wx', prog), { ramBytes: 4 << 20 });
    open.push(t);
    const s = session(t);
    const g = t.symbols.lookup('g');
    await s.run(`${g.toString(16)}::wp -x -L 3`);
    await s.run(':c');
    expect(t.status().reason).toMatchObject({ kind: 'watchpoint', access: 'exec', addr: g });
    await s.run(':c');
    expect(t.status().reason).toMatchObject({ kind: 'watchpoint', access: 'exec', addr: g + 1n });
    await s.run('::delete all');
    const buf = t.symbols.lookup('buf');
    await s.run(`${buf.toString(16)}::wp -w -p -L 1`); // identity: virtual = physical here
    await s.run(':c');
    expect(t.status().reason).toMatchObject({ kind: 'watchpoint', access: 'write' });
    expect(t.readVirtual(buf, 1)[0]).toBe(1);
    await s.run('::delete all');
    const w = await s.run(`${buf.toString(16)}/W 0x41424344`);
    expect(w[0]).toMatch(/0x1\s+=\s+0x41424344$/);
    expect(t.readVirtual(buf, 4).readUInt32LE(0)).toBe(0x41424344);
    expect(await s.run('5::setreg rcx')).toEqual(['rcx = 0x0000000000000005']);
    await s.run(':c');
    expect(t.status().reason.kind).toBe('halted');
    expect(t.registers(1).get('rcx')).toBe(5n); // written between movb and cmp: the loop ends at once
    expect(() => s.run('::setreg rcx')).rejects.toThrow(/::setreg needs a value and a register name/);
    expect(() => s.run('1::setreg xyz')).rejects.toThrow(/unknown register "xyz"/);
    await expect(s.run('0::wp')).rejects.toThrow(/^::wp needs at least one of -r, -w, -x, -a \(usage: /);
    await expect(s.run('0x3f8::wp -i -rwx')).rejects.toThrow(/^::wp -i: an I\/O-port watchpoint is read, write or both \(-r, -w, -rw\), not execute \(usage: /);
  });

  it('::wp -rwx is one event holding several kinds of access, as in MDB', async () => {
    // g's first byte is read as data, then run. (Without the .data section the read does not
    // stop even a plain read watchpoint: a separate emulator problem, left alone here.)
    const t = EmulatorTarget.open(elf64('rwx', `.globl _start, g, buf\n_start:\n  mov $0x80000, %rsp\n  movb g(%rip), %al\n  movb buf(%rip), %al\n  call g\n  cli\n  hlt\ng:\n  nop\n  ret\n.data\nbuf: .quad 0\n`), { ramBytes: 4 << 20 });
    open.push(t);
    const s = session(t);
    const g = t.symbols.lookup('g');
    expect(await s.run('g::wp -rwx')).toEqual([`1: watchpoint rwx 1 byte at 0x${g.toString(16).padStart(16, '0')} g; hits 0`]);
    expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \((?:read|access) of 0x[0-9a-f]+\) at .* _start\+0xd on vCPU 0$/);
    expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \(exec of 0x[0-9a-f]+\) at .* g on vCPU 0$/);
    expect(await s.run('::events')).toEqual([`1: watchpoint rwx 1 byte at 0x${g.toString(16).padStart(16, '0')} g; hits 2`]);
    await s.run('::disable 1; ::enable 1; ::delete 1');
    expect(await s.run('::events')).toEqual(['no breakpoints or watchpoints']);
    await s.run(':c');
    expect(t.status().reason.kind).toBe('halted'); // every watchpoint of the event went with it
  });

  it('a physical watchpoint on kernel data mapped high fires at each write, set before paging is on', async () => {
    const kernel = join(dirname(fileURLToPath(import.meta.url)), '../../dumps/kernel.elf');
    const t = EmulatorTarget.open(kernel, { ramBytes: 64 << 20 });
    open.push(t);
    const s = session(t);
    const jiffies = t.symbols.lookup('jiffies');
    const phys = jiffies - 0xffff_ffff_8000_0000n; // the sample kernel links its data at -2 GiB + physical
    await s.run(`${phys.toString(16)}::wp -w -p -L 8`);
    for (let want = 1n; want <= 3n; want++) {
      expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 1 \(write of 0x[0-9a-f]+\) at 0x[0-9a-f]+ timer_tick\+0x[0-9a-f]+ on vCPU 0$/);
      expect(t.readVirtual(jiffies, 8).readBigUInt64LE(0)).toBe(want);
      expect(t.machine.translate(0, jiffies).phys).toBe(phys);
    }
    expect(await s.run('::events')).toEqual([expect.stringMatching(/^1: watchpoint write 8 bytes physical at 0x0*109070 .*; hits 3$/)]);
  });

  it('a debugger write into code that already ran takes effect (the code cache is dropped)', async () => {
    const t = EmulatorTarget.open(elf64('patch', prog), { ramBytes: 4 << 20 });
    open.push(t);
    const loop = t.symbols.lookup('loop');
    // A write watchpoint (a memory hook: removing it leaves translated code alone) stops inside
    // the loop's second pass, once its block has been translated and run.
    const ev = t.addWatchpoint(t.symbols.lookup('buf'), 1, 'write');
    await t.caps.execution!.resume();
    await t.caps.execution!.resume();
    expect(t.readVirtual(loop + 8n, 3)).toEqual(Buffer.from([0x83, 0xf9, 0x05])); // cmp $5, %ecx
    t.caps.writeMemory!.writeVirtual(loop + 10n, Buffer.from([0x02]));
    t.deleteEvent(ev.id);
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.registers(1).get('rcx')).toBe(2n);
  });

  it('a deferred breakpoint arms when ::symbols adds a file defining it', async () => {
    const k = elf64('main', prog);
    const t = EmulatorTarget.open(k, { ramBytes: 4 << 20 });
    open.push(t);
    const s = session(t);
    // a symbol file that names an address of this guest "later_sym" (at g)
    const g = t.symbols.lookup('g');
    const sf = join(dir, 'extra.S');
    writeFileSync(sf, `.globl later_sym\n.set later_sym, 0x${g.toString(16)}\n`);
    execFileSync('gcc', ['-c', '-o', join(dir, 'extra.o'), sf]);
    execFileSync('ld', ['-r', '-o', join(dir, 'extra.elf'), join(dir, 'extra.o')]);
    expect((await s.run('::bp later_sym'))[0]).toMatch(/^1: breakpoint at later_sym \(pending: no symbol file defines it yet\); hits 0$/);
    expect((await s.run(`::symbols ${join(dir, 'extra.elf')}`))[0]).toBe('added symbols of extra.elf; 1 pending breakpoint(s) armed');
    await s.run(':c');
    expect(t.status().reason).toMatchObject({ kind: 'breakpoint', id: 1, addr: g });
  });
});

describe('Unicorn constants', () => {
  it('match /usr/include/unicorn', () => {
    const c = join(dir, 'consts.c');
    writeFileSync(
      c,
      `#include <unicorn/unicorn.h>
#include <stdio.h>
#define P(x) printf("%s\\t%lld\\n", #x, (long long)(x));
int main(void) {
P(UC_ARCH_X86) P(UC_MODE_64) P(UC_MODE_32) P(UC_PROT_ALL) P(UC_HOOK_INTR) P(UC_HOOK_INSN) P(UC_HOOK_CODE) P(UC_HOOK_MEM_READ) P(UC_HOOK_MEM_WRITE)
P(UC_ERR_OK) P(UC_ERR_READ_UNMAPPED) P(UC_ERR_WRITE_UNMAPPED) P(UC_ERR_FETCH_UNMAPPED) P(UC_ERR_INSN_INVALID) P(UC_ERR_EXCEPTION)
P(UC_MEM_READ) P(UC_MEM_WRITE) P(UC_MEM_FETCH) P(UC_MEM_READ_UNMAPPED) P(UC_MEM_WRITE_UNMAPPED) P(UC_MEM_FETCH_UNMAPPED) P(UC_MEM_WRITE_PROT) P(UC_MEM_READ_PROT) P(UC_MEM_FETCH_PROT)
P(UC_X86_INS_IN) P(UC_X86_INS_OUT) P(UC_CTL_WRITE(UC_CTL_CPU_MODEL, 1)) P(UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0)) P(UC_CPU_X86_QEMU64) P(UC_CPU_X86_SKYLAKE_SERVER)
P(UC_X86_REG_RAX) P(UC_X86_REG_RBX) P(UC_X86_REG_RCX) P(UC_X86_REG_RDX) P(UC_X86_REG_RSI) P(UC_X86_REG_RDI) P(UC_X86_REG_RBP) P(UC_X86_REG_RSP)
P(UC_X86_REG_R8) P(UC_X86_REG_R9) P(UC_X86_REG_R10) P(UC_X86_REG_R11) P(UC_X86_REG_R12) P(UC_X86_REG_R13) P(UC_X86_REG_R14) P(UC_X86_REG_R15)
P(UC_X86_REG_RIP) P(UC_X86_REG_EFLAGS) P(UC_X86_REG_RFLAGS) P(UC_X86_REG_CS) P(UC_X86_REG_SS) P(UC_X86_REG_DS) P(UC_X86_REG_ES) P(UC_X86_REG_FS) P(UC_X86_REG_GS)
P(UC_X86_REG_FS_BASE) P(UC_X86_REG_GS_BASE) P(UC_X86_REG_CR0) P(UC_X86_REG_CR2) P(UC_X86_REG_CR3) P(UC_X86_REG_CR4) P(UC_X86_REG_CR8) P(UC_X86_REG_DR6) P(UC_X86_REG_DR7)
P(UC_X86_REG_IDTR) P(UC_X86_REG_GDTR) P(UC_X86_REG_LDTR) P(UC_X86_REG_TR) P(UC_X86_REG_MSR)
return 0; }
`,
    );
    execFileSync('gcc', ['-o', join(dir, 'consts'), c]);
    const real = new Map(
      execFileSync(join(dir, 'consts'), { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((l) => l.split("\t") as [string, string]),
    );
    const ours: Record<string, number> = {};
    for (const [k, v] of Object.entries(UC)) {
      const name = k === 'CTL_WRITE_CPU_MODEL' ? 'UC_CTL_WRITE(UC_CTL_CPU_MODEL, 1)' : k === 'CTL_WRITE_TB_FLUSH' ? 'UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0)' : `UC_${k}`;
      ours[name] = v;
    }
    for (const [k, v] of Object.entries(X86_REG)) ours[`UC_X86_REG_${k}`] = v;
    for (const [name, value] of Object.entries(ours)) expect(`${name} ${value}`).toBe(`${name} ${real.get(name)}`);
    expect(readFileSync(c, 'utf8')).toContain('UC_X86_REG_MSR');
  });
});

describe('CPU exceptions go to the guest IDT (64-bit, ring 0), as on a real CPU', () => {
  // An IDT with a #PF handler (vector 14) that prints its error code's low byte and CR2, a #UD
  // handler (6), and optionally a #DF handler (8) only.
  const kernel = (gates: number[]): string => `
.globl _start, pf_handler, ud_handler, df_handler, idt
_start:
  mov $0x80000, %rsp
${gates.map((v) => `  lea ${v === 14 ? 'pf' : v === 6 ? 'ud' : 'df'}_handler(%rip), %rax
  mov %ax, idt+${v * 16}(%rip)
  movw $8, idt+${v * 16 + 2}(%rip)
  movw $0x8e00, idt+${v * 16 + 4}(%rip)
  shr $16, %rax
  mov %ax, idt+${v * 16 + 6}(%rip)
  shr $16, %rax
  mov %eax, idt+${v * 16 + 8}(%rip)`).join('\n')}
  lidt idtr(%rip)
  ud2
back:
  movq (0x7000000000), %rax
  cli
  hlt
ud_handler:
  mov $0x3f8, %dx
  mov $'U', %al
  outb %al, %dx
  addq $2, (%rsp)        # skip the ud2
  iretq
pf_handler:
  pop %rbx               # error code
  mov %cr2, %rcx
  mov $0x3f8, %dx
  mov $'P', %al
  outb %al, %dx
  cli
  hlt
df_handler:
  mov $0x3f8, %dx
  mov $'D', %al
  outb %al, %dx
  cli
  hlt
.data
.align 16
idtr: .word 256*16-1
  .quad idt
.align 16
idt: .skip 256*16
`;
  it('delivers #UD and #PF with CR2 and the error code', async () => {
    const t = EmulatorTarget.open(elf64('exc', kernel([6, 14])), { ramBytes: 4 << 20 });
    open.push(t);
    const st = await t.caps.execution!.resume();
    expect(st.reason.kind).toBe('halted');
    expect(t.caps.console!.consoleText()).toBe('UP');
    const r = t.registers(1);
    expect(r.get('rcx')).toBe(0x7000000000n); // CR2
    expect(r.get('rbx')).toBe(0n); // not present, read, supervisor
    expect(st.pc).toBe(t.symbols.lookup('df_handler')); // right after pf_handler's hlt
  });

  it('a #PF without a gate becomes a double fault; without that, a triple fault stop', async () => {
    const d = EmulatorTarget.open(elf64('df', kernel([6, 8])), { ramBytes: 4 << 20 });
    open.push(d);
    await d.caps.execution!.resume();
    expect(d.caps.console!.consoleText()).toBe('UD');
    const n = EmulatorTarget.open(elf64('tf', kernel([6])), { ramBytes: 4 << 20 });
    open.push(n);
    const st = await n.caps.execution!.resume();
    expect(n.caps.console!.consoleText()).toBe('U');
    expect(st.reason).toMatchObject({ kind: 'fault', addr: 0x7000000000n });
    expect((st.reason as { fault: string }).fault).toMatch(/^triple fault: #PF page fault: read of 0x7000000000 not mapped by the page tables \(PDPTE\[448\] = 0x0 \(not present\)\), with no usable IDT gate \(IDT base 0x[0-9a-f]+ limit 0xfff\)$/);
    expect(st.pc).toBe(n.symbols.lookup('back'));
  });
});

describe('32-bit multiboot kernels with paging (legacy 4 MiB pages and PAE)', () => {
  const kernel = (pae: boolean): string => `
.section .text
.align 4
.long 0x1badb002, 0x00000002, -(0x1badb002 + 0x00000002)
.globl _start, high, value
_start:
${pae ? `  movl $(pd0 + 1), pdpt
  movl $(pd3 + 1), pdpt + 24
  movl $0x83, pd0
  movl $0x83, pd3
  mov %cr4, %eax
  or $0x20, %eax
  mov %eax, %cr4
  mov $pdpt, %eax` : `  movl $0x83, pd
  movl $0x83, pd + 768*4
  mov %cr4, %eax
  or $0x10, %eax
  mov %eax, %cr4
  mov $pd, %eax`}
  mov %eax, %cr3
  mov %cr0, %eax
  or $0x80000000, %eax
  mov %eax, %cr0
  mov $high + 0xc0000000, %eax
  jmp *%eax
high:
  movl $0x5a5a, value + 0xc0000000
  mov $0x3f8, %dx
  mov $'H', %al
  outb %al, %dx
  cli
  hlt
.data
value: .long 0
.bss
.align 4096
pd: .skip 4096
pd0: .skip 4096
pd3: .skip 4096
.align 32
pdpt: .skip 32
`;
  for (const pae of [false, true]) {
    it(pae ? 'PAE paging' : '4 MiB pages', async () => {
      const s = join(dir, `p32${pae}.S`);
      writeFileSync(s, kernel(pae));
      execFileSync('gcc', ['-m32', '-c', '-o', join(dir, `p32${pae}.o`), s]);
      execFileSync('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-e', '_start', '-o', join(dir, `p32${pae}.elf`), join(dir, `p32${pae}.o`)]);
      const t = EmulatorTarget.open(join(dir, `p32${pae}.elf`), { ramBytes: 8 << 20 });
      open.push(t);
      const st = await t.caps.execution!.resume();
      expect(st.reason.kind).toBe('halted');
      expect(t.caps.console!.consoleText()).toBe('H');
      const value = t.symbols.lookup('value');
      const tr = t.translate(value + 0xc0000000n);
      expect(tr.phys).toBe(value);
      expect(tr.pageSize).toBe(pae ? 0x200000 : 0x400000);
      expect(t.readVirtual(value + 0xc0000000n, 4).readUInt32LE(0)).toBe(0x5a5a);
      expect(st.pc).toBeGreaterThan(0xc0000000n);
    });
  }
});

it('::input feeds COM1; the guest reads it back (and the observer sees each IN)', async () => {
  const k = elf64('echo', `
.globl _start
_start:
  mov $0x3fd, %dx
1: inb %dx, %al
  test $1, %al
  jz 1b
  mov $0x3f8, %dx
  inb %dx, %al
  outb %al, %dx
  cmp $10, %al
  mov $0x3fd, %dx
  jne 1b
  cli
  hlt
`);
  const t = EmulatorTarget.open(k, { ramBytes: 4 << 20 });
  open.push(t);
  const ins: number[] = [];
  t.machine.setObserver({ attach() {}, beforeSlice() {}, afterSlice() {}, onInput: (e) => e.kind === 'port-in' && e.port === 0x3f8 && ins.push(e.value) });
  const s = session(t);
  expect(await s.run('::input hello dbg')).toEqual(['queued 10 byte(s) for COM1']);
  await s.run(':c');
  expect(t.status().reason.kind).toBe('halted');
  expect(t.caps.console!.consoleText()).toBe('hello dbg\n');
  expect(Buffer.from(ins).toString()).toBe('hello dbg\n');
});
