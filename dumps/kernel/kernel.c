/*
 * kernel.c - the dbg sample kernel: a task list, a scheduler driven by the timer interrupt, a
 * console on COM1, two CPUs, and a deliberate memory-corruption bug that later panics.
 *
 * The story (for watchpoints now and reverse execution next):
 *   - tasks[] holds five tasks linked into a run queue; each CPU runs the task `current[cpu]`
 *     and the timer interrupt (vector 0x20, every TICK instructions) picks the next one;
 *   - the "logger" task appends records to `logbuf` (64 bytes) through log_append(), whose bound
 *     check is off: it compares against sizeof(struct logbuf) instead of the room left, so once
 *     the buffer is nearly full a record runs past its end into `tasks[0]`, which the linker
 *     placed right after it (the same .data order every build);
 *   - the scheduler checks each task's magic when it switches; the overwritten tasks[0].magic
 *     makes it panic "scheduler: task 0 corrupted".
 *   With "nobug" on the command line (dbg live --cmdline nobug) the bound is right and the kernel
 *   runs forever (the benchmark uses that).
 *   A write watchpoint on tasks[0].magic (`tasks::wp -w -L 8`) stops at the corrupting store
 *   inside log_append, long before the panic.
 *
 * The dbg machine (see the README): COM1 at 0x3f8; port 0x510 sets this CPU's timer period in
 * instructions; port 0x514 reads the CPU number; port 0x518 starts a secondary CPU from a start
 * block {u32 cpu, u32 0, u64 rip, u64 rsp, u64 rdi}.
 */
#include <stdint.h>
#include <stddef.h>

#define TICK 20000
#define NTASKS 5
#define TASK_MAGIC 0x7461736b6d616763ull /* "cgamksat" */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

struct task {
    uint64_t magic;
    int pid;
    int cpu;            /* -1: any */
    char name[16];
    struct task *next;
    uint64_t runs;
    void (*fn)(struct task *);
};

struct logbuf {
    uint32_t used;
    uint32_t records;
    char data[56];
};

/* Order matters for the story: logbuf is followed by tasks in .data. */
struct logbuf logbuf __attribute__((section(".data.story.0"))) = {0, 0, {0}};
struct task tasks[NTASKS] __attribute__((section(".data.story.1")));

struct task *runqueue;
struct task *current[2];
volatile uint64_t jiffies;
volatile uint64_t ticks[2];
volatile int console_lock;
volatile int panicking;
const char *panic_msg;
volatile uint64_t worker_sum;
struct { uint32_t cpu, pad; uint64_t rip, rsp, rdi; } start_block;
uint8_t ap_stack[16384] __attribute__((aligned(16)));
uint64_t idt[512] __attribute__((aligned(16)));
struct __attribute__((packed)) { uint16_t limit; uint64_t base; } idtr;

extern void timer_isr(void);
extern void ap_entry(void);

static void lock(void) { while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE)) {} }
static void unlock(void) { __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE); }

static void putc_raw(char c) {
    while (!(inb(0x3fd) & 0x20)) {}
    outb(0x3f8, (uint8_t)c);
}

static void puts_raw(const char *s) { while (*s) putc_raw(*s++); }

static void put_udec(uint64_t v) {
    char b[21]; int i = 20; b[i] = 0;
    do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    puts_raw(b + i);
}

static void put_hex(uint64_t v) {
    char b[19]; int i = 18; b[i] = 0;
    do { b[--i] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    b[--i] = 'x'; b[--i] = '0';
    puts_raw(b + i);
}

/* A tiny printf: %s %d (unsigned) %x (0x-hex). */
static void kprintf(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    lock();
    for (; *fmt; fmt++) {
        if (*fmt != '%') { putc_raw(*fmt); continue; }
        switch (*++fmt) {
        case 's': puts_raw(__builtin_va_arg(ap, const char *)); break;
        case 'd': put_udec(__builtin_va_arg(ap, uint64_t)); break;
        case 'x': put_hex(__builtin_va_arg(ap, uint64_t)); break;
        default: putc_raw(*fmt);
        }
    }
    unlock();
    __builtin_va_end(ap);
}

__attribute__((noreturn)) void panic(const char *msg) {
    __asm__ volatile("cli");
    panicking = 1;
    panic_msg = msg;
    kprintf("PANIC: %s (jiffies %d)\n", msg, jiffies);
    for (;;) __asm__ volatile("cli; hlt");
}

static uint32_t this_cpu(void) { return inl(0x514); }

int nobug; /* "nobug" on the multiboot command line: the bound is right and nothing panics */

/* The bug: the bound is the whole buffer, not the room left after `used`. */
void log_append(const char *rec, uint32_t len) {
    if (len > sizeof(logbuf.data)) return;          /* should be: len > sizeof(data) - used */
    if (nobug && len > sizeof(logbuf.data) - logbuf.used) logbuf.used = 0;
    char *dst = logbuf.data + logbuf.used;
    for (uint32_t i = 0; i < len; i++) dst[i] = rec[i];
    logbuf.used += len;
    logbuf.records++;
}

static void task_logger(struct task *t) {
    static const char rec[] = "tick-record:";
    for (volatile int i = 0; i < 2000; i++) {}
    if (t->runs % 4 == 0) log_append(rec, sizeof rec - 1);
    t->runs++;
}

static void task_worker(struct task *t) {
    for (int i = 0; i < 500; i++) worker_sum += (uint64_t)i * (uint64_t)t->pid;
    t->runs++;
}

static void task_idle(struct task *t) {
    t->runs++;
    __asm__ volatile("sti; hlt");
}

static void check_task(struct task *t) {
    if (t->magic != TASK_MAGIC) {
        kprintf("sched: task at %x has magic %x, expected %x\n", (uint64_t)t, t->magic, TASK_MAGIC);
        panic("scheduler: task list corrupted");
    }
}

/* Called from timer_isr with interrupts off. */
void timer_tick(void) {
    uint32_t cpu = this_cpu();
    ticks[cpu]++;
    if (cpu == 0) jiffies++;
    struct task *t = current[cpu];
    do {
        t = t->next ? t->next : runqueue;
        check_task(t);
    } while (t->cpu != -1 && t->cpu != (int)cpu);
    current[cpu] = t;
}

static void task_init(int i, int pid, int cpu, const char *name, void (*fn)(struct task *)) {
    struct task *t = &tasks[i];
    t->magic = TASK_MAGIC;
    t->pid = pid;
    t->cpu = cpu;
    for (int j = 0; name[j] && j < 15; j++) t->name[j] = name[j];
    t->fn = fn;
    t->next = i + 1 < NTASKS ? &tasks[i + 1] : NULL;
}

static void idt_init(void) {
    uint64_t h = (uint64_t)timer_isr;
    /* vector 0x20: 64-bit interrupt gate, selector 0x08, present, DPL 0 */
    idt[0x20 * 2] = (h & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | (((h >> 16) & 0xffff) << 48);
    idt[0x20 * 2 + 1] = h >> 32;
    idtr.limit = sizeof idt - 1;
    idtr.base = (uint64_t)idt;
    __asm__ volatile("lidt %0" : : "m"(idtr));
}

static void run_cpu(uint32_t cpu) {
    idt_init();
    outl(0x510, TICK);                 /* this CPU's timer period, in instructions */
    __asm__ volatile("sti");
    for (;;) {
        struct task *t = current[cpu];
        t->fn(t);
    }
}

void ap_main(uint64_t cpu) {
    kprintf("cpu%d: online\n", cpu);
    run_cpu((uint32_t)cpu);
}

void kmain(uint32_t magic, uint32_t mbi) {
    kprintf("dbg sample kernel: multiboot magic %x, info %x\n", (uint64_t)magic, (uint64_t)mbi);
    if (magic == 0x2badb002) {
        uint32_t *info = (uint32_t *)(0xffffffff80000000ull + mbi);
        kprintf("memory: lower %d KiB, upper %d KiB\n", (uint64_t)info[1], (uint64_t)info[2]);
        if (info[0] & 4) {
            const char *c = (const char *)(0xffffffff80000000ull + info[4]);
            for (; *c; c++)
                if (c[0] == 'n' && c[1] == 'o' && c[2] == 'b' && c[3] == 'u' && c[4] == 'g') nobug = 1;
        }
        if (nobug) kprintf("nobug: log_append checks the room left\n");
    }
    task_init(0, 1, -1, "init", task_idle);
    task_init(1, 2, 0, "logger", task_logger);
    task_init(2, 3, -1, "worker-a", task_worker);
    task_init(3, 4, 1, "worker-b", task_worker);
    task_init(4, 5, -1, "kworker", task_worker);
    runqueue = &tasks[0];
    for (struct task *t = runqueue; t; t = t->next)
        kprintf("sched: task pid %d %s on cpu %s\n", (uint64_t)t->pid, t->name, t->cpu < 0 ? "any" : t->cpu == 0 ? "0" : "1");
    current[0] = &tasks[1];
    current[1] = &tasks[3];
    if (inl(0x51c) > 1) {
        start_block.cpu = 1;
        start_block.rip = (uint64_t)ap_entry;
        start_block.rsp = (uint64_t)(ap_stack + sizeof ap_stack);
        start_block.rdi = 1;
        outl(0x518, (uint32_t)((uint64_t)&start_block - 0xffffffff80000000ull));
    }
    run_cpu(0);
}
