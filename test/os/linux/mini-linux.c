/*
 * A miniature "vmlinux" for test/os/linux/mini-linux.test.ts: the Linux structures dbg's Linux
 * view reads (task_struct and its lists, inactive_task_frame, the printk ring buffer, panic_cpu),
 * with the members Linux 6.1 has and the same names, statically linked at kernel addresses. The
 * test lays its sections out as a kdump without VMCOREINFO, so everything is read through the
 * DWARF types gcc writes here, and then corrupts copies of it.
 */
#include <stddef.h>

struct list_head { struct list_head *next, *prev; };
struct thread_info { unsigned long flags; unsigned int cpu; };
struct thread_struct { unsigned long sp; };
struct signal_struct { int nr_threads; struct list_head thread_head; };
struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	int on_cpu;
	unsigned int flags;
	struct list_head tasks;
	int exit_state;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct signal_struct *signal;
	struct list_head thread_node;
	char comm[16];
	struct thread_struct thread;
};
struct inactive_task_frame {
	unsigned long r15, r14, r13, r12, bx, bp, ret_addr;
};
struct inactive_task_frame *frame_type_kept; /* gcc writes only the types something uses */

typedef struct { int counter; } atomic_t;
atomic_t panic_cpu = { 1 };

void __schedule(void) { __asm__ volatile("nop; nop; nop; nop"); }
void schedule(void) { __schedule(); }
void _text(void) { schedule(); }

extern struct task_struct init_task, task_init, task_kthreadd, task_sleeper, task_sleeper2;
extern struct signal_struct init_signals, sig_init, sig_kthreadd, sig_sleeper;

/*
 * The saved stack of task_sleeper: an inactive_task_frame (r15 r14 r13 r12 bx bp ret_addr) resuming
 * in __schedule after its prologue (push %rbp; mov %rsp,%rbp), whose frame at [8] returns to
 * schedule after its call.
 */
unsigned long sleeper_stack[16] = { 0xf15, 0xf14, 0xf13, 0xf12, 0xb0, (unsigned long)&sleeper_stack[8], (unsigned long)__schedule + 4, 0, 0, (unsigned long)schedule + 9 };

#define TASK(name, pid_, tgid_, state, flags_, comm_, parent, sig, prev_t, next_t)                         \
	struct task_struct name = {                                                                       \
		.thread_info = { .cpu = 0 }, .__state = state, .flags = flags_,                              \
		.tasks = { &next_t.tasks, &prev_t.tasks }, .pid = pid_, .tgid = tgid_, .real_parent = &parent, \
		.signal = &sig, .thread_node = { &sig.thread_head, &sig.thread_head }, .comm = comm_,         \
	}

TASK(init_task, 0, 0, 0, 0x00200000, "swapper/0", init_task, init_signals, task_sleeper, task_init);
TASK(task_init, 1, 1, 1, 0, "init", init_task, sig_init, init_task, task_kthreadd);
TASK(task_kthreadd, 2, 2, 0x402, 0x00200000, "kthreadd", init_task, sig_kthreadd, task_init, task_sleeper);
struct task_struct task_sleeper = {
	.__state = 1, .tasks = { &init_task.tasks, &task_kthreadd.tasks }, .pid = 3, .tgid = 3,
	.real_parent = &task_init, .signal = &sig_sleeper, .thread_node = { &task_sleeper2.thread_node, &sig_sleeper.thread_head },
	.comm = "sleeper", .thread = { .sp = (unsigned long)sleeper_stack },
};
struct task_struct task_sleeper2 = {
	.__state = 2, .pid = 4, .tgid = 3, .real_parent = &task_init, .signal = &sig_sleeper,
	.thread_node = { &sig_sleeper.thread_head, &task_sleeper.thread_node }, .comm = "sleeper-worker",
	.thread = { .sp = (unsigned long)sleeper_stack },
};
struct signal_struct init_signals = { 1, { &init_task.thread_node, &init_task.thread_node } };
struct signal_struct sig_init = { 1, { &task_init.thread_node, &task_init.thread_node } };
struct signal_struct sig_kthreadd = { 1, { &task_kthreadd.thread_node, &task_kthreadd.thread_node } };
struct signal_struct sig_sleeper = { 2, { &task_sleeper.thread_node, &task_sleeper2.thread_node } };

/* The printk ring buffer (kernel/printk/printk_ringbuffer.h): four finalized records in a 512-byte text ring. */
struct prb_data_blk_lpos { unsigned long begin, next; };
struct prb_desc { unsigned long state_var; struct prb_data_blk_lpos text_blk_lpos; };
struct dev_printk_info { char subsystem[16]; char device[48]; };
struct printk_info {
	unsigned long long seq;
	unsigned long long ts_nsec;
	unsigned short text_len;
	unsigned char facility;
	unsigned char flags : 5;
	unsigned char level : 3;
	unsigned int caller_id;
	struct dev_printk_info dev_info;
};
struct prb_desc_ring {
	unsigned int count_bits;
	struct prb_desc *descs;
	struct printk_info *infos;
	unsigned long head_id, tail_id, last_finalized_id;
};
struct prb_data_ring { unsigned int size_bits; char *data; unsigned long head_lpos, tail_lpos; };
struct printk_ringbuffer { struct prb_desc_ring desc_ring; struct prb_data_ring text_data_ring; long fail; };

#define FINAL(id) ((2UL << 62) | (id))
struct blk { unsigned long id; char text[56]; };
struct blk ring_data[8] = { { 0, "Linux version 6.1.0-mini" }, { 1, "a warning" }, { 2, "Kernel panic - not syncing: mini panic" }, { 3, "CPU: 1 PID: 3 Comm: sleeper" } };
struct prb_desc ring_descs[4] = { { FINAL(0), { 0, 64 } }, { FINAL(1), { 64, 128 } }, { FINAL(2), { 128, 192 } }, { FINAL(3), { 192, 256 } } };
/* The infos end the section's first page half-way: a dump that keeps one page cuts the ring. */
struct ringpage {
	char pad[4096 - 2 * sizeof(struct printk_info)];
	struct printk_info infos[4];
} ringpage __attribute__((section(".ring"), aligned(4096))) = { .infos = {
	{ 0, 1000000, 24, 0, 2, 5, 0 }, { 1, 2500000000, 9, 0, 2, 4, 0 }, { 2, 3000001000, 38, 0, 2, 0, 0 }, { 3, 3000002000, 27, 0, 2, 4, 0 } } };
struct printk_ringbuffer printk_rb_static = {
	{ 2, ring_descs, ringpage.infos, 3, 0, 3 },
	{ 9, (char *)ring_data, 256, 0 },
	0,
};
struct printk_ringbuffer *prb = &printk_rb_static;

/* Offsets the test corrupts, as gcc lays them out. */
const unsigned long off_tasks = offsetof(struct task_struct, tasks);

/* Per-CPU variables: linked at 0 (vmlinux's .data..percpu; named so ld's default script leaves it alone), each CPU's copy at its __per_cpu_offset. */
struct task_struct *current_task __attribute__((section("percpu"))) = 0;
struct task_struct *percpu_area[2][2] = { { &init_task, 0 }, { &task_sleeper, 0 } };
unsigned long __per_cpu_offset[2] = { (unsigned long)percpu_area[0], (unsigned long)percpu_area[1] };

/*
 * Loaded modules (Linux 6.1's struct module: list, name, core_layout, init_layout, kallsyms):
 * qemu_fw_cfg, whose memory is not in the dump and which has no kallsyms, and mini_mod, whose
 * "text" is mini_mod_text and whose kallsyms name mini_func (+0x10) and mini_data (+0x80) there.
 */
typedef struct { unsigned int st_name; unsigned char st_info, st_other; unsigned short st_shndx; unsigned long st_value, st_size; } Elf64_Sym;
struct mod_kallsyms { Elf64_Sym *symtab; unsigned int num_symtab; char *strtab; char *typetab; };
struct module_layout { void *base; unsigned int size; };
struct module { int state; struct list_head list; char name[56]; struct module_layout core_layout, init_layout; struct mod_kallsyms *kallsyms; };
extern struct list_head modules;
extern struct module mod_mini;
unsigned char mini_mod_text[0x100];
char mini_strtab[] = "\0mini_func\0mini_data\0elsewhere";
Elf64_Sym mini_symtab[] = {
	{ 0 },
	{ 1, 0x12, 0, 1, (unsigned long)mini_mod_text + 0x10, 0x20 },  /* FUNC GLOBAL in .text (section 1) */
	{ 11, 0x11, 0, 2, (unsigned long)mini_mod_text + 0x80, 0x8 },  /* OBJECT GLOBAL in .data */
	{ 21, 0x12, 0, 1, 0xffffffffc0001000UL, 0x10 },                /* outside the module: not its name */
};
struct mod_kallsyms mini_kallsyms = { mini_symtab, 4, mini_strtab, 0 };
struct module mod_fw = { 0, { &mod_mini.list, &modules }, "qemu_fw_cfg", { (void *)0xffffffffc0456000UL, 0x5000 }, { 0, 0 }, 0 };
struct module mod_mini = { 0, { &modules, &mod_fw.list }, "mini_mod", { mini_mod_text, sizeof mini_mod_text }, { 0, 0 }, &mini_kallsyms };
struct list_head modules = { &mod_fw.list, &mod_mini.list };

/* A CPU stopped inside panic(): delay_loop's frame (after its prologue) returns into panic. */
void delay_loop(void) { __asm__ volatile("nop; nop; nop; nop"); }
void panic(void) { delay_loop(); }
unsigned long panic_stack[8] = { 0, (unsigned long)panic + 9 };

/*
 * ORC tables, as objtool writes them (arch/x86/include/asm/orc_types.h, Linux 6.1 layout): at
 * __schedule's entry the CFA is sp + 8; after its prologue bp + 16, with bp saved at CFA - 16;
 * schedule is the bottom of the stack (sp_reg undefined, end); from _text on ORC knows nothing
 * (sp_reg undefined, not end: other unwinders take over). GARBAGE_ORC gives __schedule's
 * body a register number ORC does not have (15), which dbg must not follow.
 */
#ifdef GARBAGE_ORC
#define BODY_REGS "0x1f"
#else
#define BODY_REGS "0x14"
#endif
__asm__(".section .orc_unwind_ip,\"a\"\n"
	".long __schedule - .\n"
	".long __schedule + 4 - .\n"
	".long schedule - .\n"
	".long _text - .\n"
	".section .orc_unwind,\"a\"\n"
	".short 8, 0\n .byte 0x05, 0x00\n"
	".short 16, -16\n .byte " BODY_REGS ", 0x00\n"
	".short 0, 0\n .byte 0x00, 0x04\n"
	".short 0, 0\n .byte 0x00, 0x00\n"
	".text\n");
