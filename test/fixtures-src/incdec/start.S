/*
 * A 32-bit multiboot guest whose calls follow one-byte inc/dec instructions (test/store/calls.test.ts):
 * in 64-bit code 40-4F would be REX prefixes, so `dec %eax; call f` (48 e8 ...) reads as one call
 * and `dec %ecx; ret` (49 c3) as one ret. The calls table must hold the real calls only.
 */
#include "../i386/multiboot.h"

.text
.code32
.globl _start
_start:
  mov $stack_top, %esp
  mov $3, %eax
  xor %ecx, %ecx
1:
  dec %eax
  call twice
  test %eax, %eax
  jnz 1b
  cli
  hlt

.globl twice
twice:
  inc %ecx
  call leaf
  ret

.globl leaf
leaf:
  dec %ecx
  ret

.bss
.align 16
  .skip 4096
stack_top:
