/*
 * A multiboot guest that exercises the standard-PC devices and 32-bit interrupt delivery, and
 * prints what it finds on COM1 (its output is compared with QEMU's): MP table, 8259A + 8254 ticks,
 * the UART's THR-empty interrupt, CGA text and CRTC cursor, i8042 self test and typed keys, ATA
 * IDENTIFY and a sector read, the local APIC timer, I/O APIC routing, #DE, ring 3 -> ring 0 through
 * the TSS, #GP with its error code, and a second CPU started with INIT/SIPI. It ends by writing
 * to port 0xf4 (isa-debug-exit).
 */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putc(char c) { while (!(inb(0x3fd) & 0x20)) {} outb(0x3f8, c); }
static void puts(const char *s) { while (*s) putc(*s++); }
static void puthex(u32 v) { const char *d = "0123456789abcdef"; char b[9]; int i = 8; b[8] = 0; do { b[--i] = d[v & 15]; v >>= 4; } while (v); puts(b + i); }
static void putdec(u32 v) { char b[11]; int i = 10; b[10] = 0; do { b[--i] = '0' + v % 10; v /= 10; } while (v); puts(b + i); }

struct frame { u32 eip, cs, eflags, esp, ss; };

/* GDT: null, kernel code, kernel data, user code, user data, TSS */
static unsigned long long gdt[6] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL, 0x00cffa000000ffffULL, 0x00cff2000000ffffULL, 0};
static struct { u16 lim; u32 base; } __attribute__((packed)) gdtr, idtr;
static u32 idt[256][2];
static u32 tss[26];

static void gate(int v, void *h, int dpl) {
  u32 a = (u32)h;
  idt[v][0] = (a & 0xffff) | (0x08 << 16);
  idt[v][1] = (a & 0xffff0000) | 0x8e00 | (dpl << 13);
}

static volatile u32 ticks, lticks, iticks, uart_iir = 0xff, keys[8], nkeys, ide_irqs;
static volatile u32 *const lapic = (u32 *)0xfee00000;
static volatile u32 *const ioapic = (u32 *)0xfec00000;
static u32 ioapic_read(int r) { ioapic[0] = r; return ioapic[4]; }
static void ioapic_write(int r, u32 v) { ioapic[0] = r; ioapic[4] = v; }

__attribute__((interrupt)) static void pit_irq(struct frame *f) { (void)f; ticks++; outb(0x20, 0x20); }
__attribute__((interrupt)) static void uart_irq(struct frame *f) { (void)f; uart_iir = inb(0x3fa); outb(0x3f9, 0); outb(0x20, 0x20); }
__attribute__((interrupt)) static void kbd_irq(struct frame *f) { (void)f; while (inb(0x64) & 1) { u8 c = inb(0x60); if (nkeys < 8) keys[nkeys++] = c; } outb(0x20, 0x20); }
__attribute__((interrupt)) static void ide_irq(struct frame *f) { (void)f; ide_irqs++; outb(0xa0, 0x20); outb(0x20, 0x20); }
__attribute__((interrupt)) static void lapic_timer(struct frame *f) { (void)f; lticks++; lapic[0xb0 / 4] = 0; }
__attribute__((interrupt)) static void ioapic_tick(struct frame *f) { (void)f; iticks++; lapic[0xb0 / 4] = 0; }
__attribute__((interrupt)) static void spurious(struct frame *f) { (void)f; }
__attribute__((interrupt)) static void divide_error(struct frame *f) { puts("#DE from cs="); puthex(f->cs); puts("\n"); f->eip += 6; }
__attribute__((interrupt)) static void syscall(struct frame *f) { puts("int 0x80 from cs="); puthex(f->cs); puts(" ss="); puthex(f->ss); puts(" esp0 stack: "); u32 sp; __asm__ volatile("mov %%esp, %0" : "=r"(sp)); puts(sp - 64 < tss[1] && sp < tss[1] ? "yes\n" : "no\n"); }
__attribute__((interrupt)) static void gp_fault(struct frame *f, u32 err) { puts("#GP error code "); puthex(err); puts(" from cs="); puthex(f->cs); puts("\n"); puts("done\n"); outb(0xf4, 0); for (;;) __asm__ volatile("cli; hlt"); }

static void wait_ticks(volatile u32 *n, u32 want) { while (*n < want) __asm__ volatile("sti; hlt; cli"); }

extern char ap_start[], ap_end[], user_code[], user_stack_top[];

static u8 sector[512];
static int ata_wait(void) { for (int i = 0; i < 100000; i++) { u8 s = inb(0x1f7); if (!(s & 0x80) && (s & 0x08)) return 0; if (s & 1) return -1; } return -2; }

int main(void) {
  puts("pc guest\n");
  gdt[5] = 0x0000890000000000ULL | (sizeof tss - 1) | ((unsigned long long)((u32)tss & 0xffffff) << 16) | ((unsigned long long)((u32)tss >> 24) << 56);
  gdtr.lim = sizeof gdt - 1; gdtr.base = (u32)gdt;
  __asm__ volatile("lgdt %0; ljmp $0x08, $1f; 1: mov $0x10, %%ax; mov %%ax, %%ds; mov %%ax, %%es; mov %%ax, %%ss" ::"m"(gdtr) : "eax");
  for (int i = 0; i < 256; i++) gate(i, spurious, 0);
  gate(0, divide_error, 0); gate(13, gp_fault, 0); gate(0x20, pit_irq, 0); gate(0x21, kbd_irq, 0); gate(0x24, uart_irq, 0);
  gate(0x2e, ide_irq, 0); gate(0x40, lapic_timer, 0); gate(0x50, ioapic_tick, 0); gate(0x80, syscall, 3); gate(0x81, syscall, 0);
  idtr.lim = sizeof idt - 1; idtr.base = (u32)idt;
  __asm__ volatile("lidt %0" ::"m"(idtr));

  /* MP floating pointer in the BIOS area, then the configuration table */
  u32 cpus = 0, ioid = 0xff, lapic_addr = 0;
  for (u8 *p = (u8 *)0xf0000; p < (u8 *)0x100000; p += 16) {
    if (p[0] != '_' || p[1] != 'M' || p[2] != 'P' || p[3] != '_') continue;
    u8 *c = (u8 *)*(u32 *)(p + 4), *e = c + 44;
    lapic_addr = *(u32 *)(c + 36);
    for (int i = 0; i < *(u16 *)(c + 34); i++) {
      if (*e == 0) { cpus += e[3] & 1; e += 20; } else { if (*e == 2) ioid = e[1]; e += 8; }
    }
    break;
  }
  puts("mp: cpus="); putdec(cpus); puts(" ioapic id="); putdec(ioid); puts(" lapic at "); puthex(lapic_addr); puts("\n");
  puts("bda: base memory "); putdec(*(u16 *)0x413); puts(" KiB, ebda at "); puthex(*(u16 *)0x40e << 4); puts("\n");

  puts("unknown port 0x2e8 reads "); puthex(inb(0x2e8)); puts("\n");

  /* #DE, delivered through a 32-bit interrupt gate */
  volatile u32 zero = 0, q;
  __asm__ volatile("mov $1, %%eax; xor %%edx, %%edx; divl %1; mov %%eax, %0" : "=r"(q) : "m"(zero) : "eax", "edx");

  /* 8259A pair at 0x20/0x28, 8254 channel 0 at 1 kHz */
  outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 4); outb(0x21, 1);
  outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 2); outb(0xa1, 1);
  outb(0x21, 0xfe); outb(0xa1, 0xff);
  outb(0x43, 0x34); outb(0x40, 1193 & 0xff); outb(0x40, 1193 >> 8);
  wait_ticks(&ticks, 5);
  puts("pit: 5 ticks through the 8259A\n");

  /* 16550: THR-empty interrupt on IRQ 4 */
  outb(0x21, 0xef);
  outb(0x3f9, 0x02);
  while (uart_iir == 0xff) __asm__ volatile("sti; hlt; cli");
  puts("uart: irq 4, iir="); puthex(uart_iir); puts("\n");

  /* CGA text and the CRTC cursor */
  volatile u16 *vga = (u16 *)0xb8000;
  const char *msg = "dbg standard pc";
  for (int i = 0; msg[i]; i++) vga[80 + i] = 0x0700 | msg[i];
  outb(0x3d4, 0x0e); outb(0x3d5, 0); outb(0x3d4, 0x0f); outb(0x3d5, 80 + 15);
  outb(0x3d4, 0x0e); u32 cur = inb(0x3d5) << 8; outb(0x3d4, 0x0f); cur |= inb(0x3d5);
  puts("cga: cursor="); putdec(cur); puts(" text=");
  for (int i = 0; i < 15; i++) putc(vga[80 + i] & 0xff);
  puts("\n");

  /* i8042 */
  outb(0x64, 0xaa); while (!(inb(0x64) & 1)) {}
  puts("i8042: self test "); puthex(inb(0x60)); puts("\n");
  outb(0x21, 0xed);

  /* ATA: IDENTIFY, then sector 1 with an interrupt */
  outb(0x1f6, 0xe0); outb(0x1f7, 0xec);
  if (ata_wait() == 0) {
    u16 id[256];
    for (int i = 0; i < 256; i++) id[i] = inw(0x1f0);
    puts("ata: identify lba sectors="); putdec(id[60] | (id[61] << 16)); puts("\n");
    outb(0x21, 0xe9); outb(0xa1, 0xbf);
    inb(0x1f7); /* IDENTIFY's interrupt: its edge, latched while masked, is taken now and not counted */
    for (volatile int i = 0; i < 1000; i++) __asm__ volatile("sti; nop; cli");
    ide_irqs = 0;
    outb(0x3f6, 0); outb(0x1f2, 1); outb(0x1f3, 1); outb(0x1f4, 0); outb(0x1f5, 0); outb(0x1f6, 0xe0); outb(0x1f7, 0x20);
    wait_ticks(&ide_irqs, 1);
    while (inb(0x3f6) & 0x80) {}
    for (int i = 0; i < 128; i++) ((u32 *)sector)[i] = inl(0x1f0);
    puts("ata: sector 1: ");
    for (int i = 0; i < 24 && sector[i] >= ' '; i++) putc(sector[i]);
    puts("\n");
    outb(0x1f2, 1); outb(0x1f3, 0xff); outb(0x1f4, 0xff); outb(0x1f5, 0x7f); outb(0x1f6, 0xe0); outb(0x1f7, 0x20);
    wait_ticks(&ide_irqs, 2);
    while (inb(0x3f6) & 0x80) {}
    puts("ata: sector past the end: status="); puthex(inb(0x1f7)); puts(" error="); puthex(inb(0x1f1)); puts("\n");
  } else puts("ata: no disk\n");
  outb(0x21, 0xff); outb(0xa1, 0xff);

  /* local APIC timer, periodic, vector 0x40 */
  lapic[0xf0 / 4] = 0x1ff;
  puts("lapic: id="); puthex(lapic[0x20 / 4] >> 24); puts(" version="); puthex(lapic[0x30 / 4]); puts("\n");
  lapic[0x3e0 / 4] = 0xb; lapic[0x320 / 4] = 0x20040; lapic[0x380 / 4] = 1000000;
  wait_ticks(&lticks, 3);
  lapic[0x320 / 4] = 0x10000;
  puts("lapic: 3 timer interrupts\n");

  /* I/O APIC: the PIT's IRQ 0 is pin 2, to vector 0x50 on APIC 0 */
  puts("ioapic: id="); putdec(ioapic_read(0) >> 24); puts(" version="); puthex(ioapic_read(1)); puts("\n");
  ioapic_write(0x10 + 2 * 2 + 1, 0); ioapic_write(0x10 + 2 * 2, 0x50);
  wait_ticks(&iticks, 3);
  ioapic_write(0x10 + 2 * 2, 0x10050);
  puts("ioapic: 3 PIT interrupts on pin 2\n");

  /* the second CPU: INIT, start-up at 0x8000 */
  if (cpus > 1) {
    for (char *s = ap_start, *d = (char *)0x8000; s < ap_end;) *d++ = *s++;
    *(volatile u16 *)0x7ff0 = 0;
    lapic[0x310 / 4] = 1 << 24; lapic[0x300 / 4] = 0xc500;
    lapic[0x310 / 4] = 1 << 24; lapic[0x300 / 4] = 0x8500;
    lapic[0x310 / 4] = 1 << 24; lapic[0x300 / 4] = 0x0608;
    for (volatile int i = 0; i < 10000000 && *(volatile u16 *)0x7ff0 != 0xa5a5; i++) {}
    puts("smp: cpu 1 "); puts(*(volatile u16 *)0x7ff0 == 0xa5a5 ? "started\n" : "did not start\n");
  }

  /* keys typed before this point wait in the controller: read them with IRQ 1 */
  outb(0x21, 0xfd);
  for (volatile int i = 0; i < 200000; i++) __asm__ volatile("sti; nop; cli");
  outb(0x21, 0xff);
  puts("kbd: "); putdec(nkeys); puts(" scan codes");
  for (u32 i = 0; i < nkeys; i++) { puts(" "); puthex(keys[i]); }
  puts("\n");

  /* ring 3 through the TSS: int 0x80 (DPL 3) comes back on SS0:ESP0, int 0x81 (DPL 0) is #GP */
  static u8 kstack[4096];
  tss[1] = (u32)(kstack + sizeof kstack); tss[2] = 0x10;
  __asm__ volatile("ltr %%ax" ::"a"(0x28));
  __asm__ volatile("push $0x23; push %0; push $0x202; push $0x1b; push %1; iret" ::"r"(user_stack_top), "r"(user_code));
  return 0;
}
