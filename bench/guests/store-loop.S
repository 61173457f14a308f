/*
 * The recorder's worst case for bench/recording.ts (issue 10): a 32-bit multiboot guest in a
 * tight loop that stores every 13 instructions, over a 64 KiB array, forever.
 */
#include "../../test/fixtures-src/i386/multiboot.h"

.text
.code32
.globl _start
_start:
  mov $stack_top, %esp
  xor %ecx, %ecx
  xor %eax, %eax
loop:
  add $0x9e3779b9, %eax
  mov %eax, %edx
  shr $7, %edx
  xor %edx, %eax
  mov %ecx, %ebx
  and $0x3fff, %ebx
  lea array(,%ebx,4), %edi
  mov %eax, (%edi)
  inc %ecx
  mov %eax, %esi
  rol $3, %esi
  add %esi, %eax
  jmp loop

.bss
.align 16
array:
  .skip 65536
  .skip 4096
stack_top:
