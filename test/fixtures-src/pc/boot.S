/* Multiboot v1 entry of the standard-PC test guest (guest.c): a stack, then main(). */
        .text
        .align 4
        .long 0x1badb002, 0, -0x1badb002

        .globl _start
_start:
        mov $stack_top, %esp
        push %ebx
        call main
1:      cli
        hlt
        jmp 1b

/* The secondary CPU's start-up code, copied to 0x8000 (real mode, CS = 0x800): sets the word at
   0x7ff0 to 0xa5a5 and idles. */
        .globl ap_start, ap_end
        .code16
ap_start:
        xor %ax, %ax
        mov %ax, %ds
        movw $0xa5a5, 0x7ff0
2:      sti
        hlt
        jmp 2b
ap_end:
        .code32

/* Ring 3 code: int $0x80 (a gate of DPL 3), then int $0x81 (DPL 0: #GP). */
        .globl user_code
user_code:
        int $0x80
        int $0x81
3:      jmp 3b

        .bss
        .align 16
        .space 16384
stack_top:
        .space 4096
        .globl user_stack_top
user_stack_top:
