/*
 * boot.S - multiboot v1 entry (32-bit protected mode, paging off), the switch to long mode, the
 * higher-half jump, the secondary-CPU entry and the timer interrupt stub of the dbg sample kernel.
 *
 * Paging: PML4[0] -> PDPT_low[0] -> PD (identity, 1 GiB in 2 MiB pages); PML4[511] ->
 * PDPT_high[510] -> the same PD, so 0xffffffff80000000 + x = physical x.
 */
#define KVIRT 0xffffffff80000000
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00010002          /* memory info, a.out kludge */

        .section .mbhdr, "a"
        .align 4
mb_header:
        .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
        .long mb_header, 0x100000, __load_end_phys, __bss_end_phys, mb_entry

        .section .boot32, "ax"
        .code32
        .globl mb_entry
mb_entry:
        cli
        mov %eax, %edi                       /* multiboot magic -> kmain's 1st argument */
        mov %ebx, %esi                       /* multiboot info  -> 2nd */
        /* page tables (in .bss, at physical = virtual - KVIRT) */
        mov $(pml4 - KVIRT), %ebx
        mov $(pdpt_low - KVIRT), %ecx
        or $3, %ecx
        mov %ecx, (%ebx)
        mov $(pdpt_high - KVIRT), %ecx
        or $3, %ecx
        mov %ecx, 4088(%ebx)                 /* PML4[511] */
        mov $(pd - KVIRT), %ecx
        or $3, %ecx
        mov %ecx, (pdpt_low - KVIRT)
        mov %ecx, (pdpt_high - KVIRT + 4080) /* PDPT_high[510] */
        xor %eax, %eax
        mov $(pd - KVIRT), %ebx
1:      mov %eax, %edx
        shl $21, %edx
        or $0x83, %edx                       /* present, writable, 2 MiB */
        mov %edx, (%ebx,%eax,8)
        inc %eax
        cmp $512, %eax
        jne 1b
        mov %cr4, %eax
        or $0x20, %eax                       /* PAE */
        mov %eax, %cr4
        mov $(pml4 - KVIRT), %eax
        mov %eax, %cr3
        mov $0xc0000080, %ecx                /* EFER.LME */
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80010001, %eax                 /* PG, WP, PE */
        mov %eax, %cr0
        lgdt (gdtr32 - KVIRT)
        ljmp $0x08, $long_entry

        .code64
long_entry:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        movabs $kstart, %rax
        jmp *%rax

        .text
        .globl kstart, ap_entry, timer_isr
kstart:
        movabs $(boot_stack + 16384), %rsp
        xor %ebp, %ebp
        lgdt gdtr64
        call kmain
2:      cli
        hlt
        jmp 2b

/* A secondary CPU, started through the dbg machine's port 0x518: rsp and rdi (cpu) are set. */
ap_entry:
        xor %ebp, %ebp
        call ap_main
3:      cli
        hlt
        jmp 3b

/* Vector 0x20: the dbg machine's instruction-count timer. */
timer_isr:
        push %rax
        push %rcx
        push %rdx
        push %rsi
        push %rdi
        push %r8
        push %r9
        push %r10
        push %r11
        cld
        call timer_tick
        pop %r11
        pop %r10
        pop %r9
        pop %r8
        pop %rdi
        pop %rsi
        pop %rdx
        pop %rcx
        pop %rax
        iretq

        .data
        .align 16
        .globl gdt
gdt:    .quad 0, 0x00af9b000000ffff, 0x00cf93000000ffff
gdtr64: .word 23
        .quad gdt
gdtr32: .word 23
        .long gdt - KVIRT

        .section .pgtables, "aw", @nobits
        .align 4096
pml4:      .skip 4096
pdpt_low:  .skip 4096
pdpt_high: .skip 4096
pd:        .skip 4096
        .section .kstack, "aw", @nobits
        .align 16
boot_stack: .skip 16384
