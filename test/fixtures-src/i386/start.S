/*
 * Entry of the i386 test guest (see guest.c): a multiboot v1 header, a stack, x87 and SSE
 * enabled (CR0.MP, CR4.OSFXSR | OSXMMEXCPT), kmain in 32-bit C, then the switch to long mode
 * (PAE, 2 MiB identity pages, EFER.LME, paging, a far jump to a 64-bit code segment) and
 * long_mode_here in 64-bit code. No interrupts are used: every stop is a breakpoint or hlt.
 */
#include "multiboot.h"

.text
.code32
.globl _start
_start:
  mov $stack_top, %esp
  xor %ebp, %ebp
  xor %esi, %esi         /* QEMU and dbg enter with different esi/edi: make them equal */
  xor %edi, %edi
  mov %cr0, %ecx
  and $~4, %ecx          /* EM off */
  or $2, %ecx            /* MP on */
  mov %ecx, %cr0
  mov %cr4, %ecx
  or $0x600, %ecx        /* OSFXSR, OSXMMEXCPT */
  mov %ecx, %cr4
  fninit
  push %ebx
  push %eax
  call kmain
  add $8, %esp

  /* Long mode: identity-map the first 2 MiB and jump to 64-bit code. */
  movl $(pdpt + 3), pml4
  movl $(pd + 3), pdpt
  movl $0x83, pd
  lgdt gdt_desc
  mov %cr4, %eax
  or $0x20, %eax         /* PAE */
  mov %eax, %cr4
  mov $pml4, %eax
  mov %eax, %cr3
  mov $0xc0000080, %ecx  /* EFER */
  rdmsr
  or $0x100, %eax        /* LME */
  wrmsr
  mov %cr0, %eax
  or $0x80000000, %eax   /* PG */
  mov %eax, %cr0
.globl before_far_jump
before_far_jump:
  ljmp $0x18, $long64

.code64
long64:
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x1122334455667788, %rax
  mov $stack_top, %esp
  call long_mode_here
1:
  cli
  hlt
  jmp 1b

.globl long_mode_here
long_mode_here:
  push %rbp
  mov %rsp, %rbp
  mov $0x8877665544332211, %rbx
  pop %rbp
  ret

.data
.align 8
gdt:
  .quad 0
  .quad 0x00cf9b000000ffff   /* 0x08: 32-bit code */
  .quad 0x00cf93000000ffff   /* 0x10: data */
  .quad 0x00af9b000000ffff   /* 0x18: 64-bit code */
gdt_desc:
  .word gdt_desc - gdt - 1
  .long gdt

.bss
.align 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
stack: .skip 16384
stack_top:
