/*
 * A keyboard-echo guest in the manner of arjun024/mkeykernel (whose own build needs nasm): the
 * 8259A pair remapped to 0x20, IRQ 1 at vector 0x21 through a 32-bit interrupt gate, each key's
 * make code read from the i8042 and its character written to the CGA text buffer at 0xb8000, with
 * the CRTC cursor after it. Left and right shift give capitals and symbols, Enter a new line,
 * Backspace erases. Each character also goes to COM1, so that whoever types knows it arrived.
 * Linked with boot.S (a stack, then main()).
 */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(p)); return v; }

static void putc(char c) { while (!(inb(0x3fd) & 0x20)) {} outb(0x3f8, c); }
static void puts(const char *s) { while (*s) putc(*s++); }

struct frame { u32 eip, cs, eflags, esp, ss; };

static unsigned long long gdt[3] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL};
static struct { u16 lim; u32 base; } __attribute__((packed)) gdtr, idtr;
static u32 idt[256][2];

/* Scan code set 1, make codes 0x00-0x39: unshifted, then shifted. */
static const char plain[0x3a] = "\0\0331234567890-=\b\tqwertyuiop[]\n\0asdfghjkl;'`\0\\zxcvbnm,./\0*\0 ";
static const char shifted[0x3a] = "\0\033!@#$%^&*()_+\b\tQWERTYUIOP{}\n\0ASDFGHJKL:\"~\0|ZXCVBNM<>?\0*\0 ";

static volatile u16 *const screen = (u16 *)0xb8000;
static u32 at = 80; /* row 0 holds the title */
static int shift;

static void cursor(void) {
  outb(0x3d4, 14); outb(0x3d5, at >> 8);
  outb(0x3d4, 15); outb(0x3d5, at & 0xff);
}

static void key(u8 code) {
  if (code == 0x2a || code == 0x36) shift = 1;
  else if (code == 0xaa || code == 0xb6) shift = 0;
  if (code >= 0x3a) return; /* break codes and keys without a character */
  char c = (shift ? shifted : plain)[code];
  if (!c) return;
  putc(c);
  if (c == '\n') at = (at / 80 + 1) * 80;
  else if (c == '\b') { if (at % 80) screen[--at] = 0x0720; }
  else screen[at++] = 0x1e00 | (u8)c; /* yellow on blue */
  if (at >= 80 * 25) at = 80;
  cursor();
}

__attribute__((interrupt)) static void kbd_irq(struct frame *f) {
  (void)f;
  while (inb(0x64) & 1) key(inb(0x60));
  outb(0x20, 0x20);
}

int main(void) {
  gdtr.lim = sizeof gdt - 1; gdtr.base = (u32)gdt;
  __asm__ volatile("lgdt %0; ljmp $8, $1f; 1: mov $16, %%ax; mov %%ax, %%ds; mov %%ax, %%es; mov %%ax, %%ss" ::"m"(gdtr) : "eax");
  u32 a = (u32)kbd_irq;
  idt[0x21][0] = (a & 0xffff) | (0x08 << 16);
  idt[0x21][1] = (a & 0xffff0000) | 0x8e00;
  idtr.lim = sizeof idt - 1; idtr.base = (u32)idt;
  __asm__ volatile("lidt %0" ::"m"(idtr));
  for (int i = 0; i < 80 * 25; i++) screen[i] = 0x0720;
  const char *title = "dbg keys: type here";
  for (int i = 0; title[i]; i++) screen[i] = 0x0f00 | (u8)title[i];
  cursor();
  /* ICW1-4: master at 0x20, slave at 0x28 on IRQ 2, 8086 mode; only IRQ 1 unmasked */
  outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 4); outb(0x21, 1);
  outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 2); outb(0xa1, 1);
  outb(0x21, 0xfd); outb(0xa1, 0xff);
  while (inb(0x64) & 1) inb(0x60); /* whatever the firmware left */
  puts("ready\n");
  for (;;) __asm__ volatile("sti; hlt");
}
