/*
 * A tiny 32-bit multiboot guest for dbg's i386 tests: kmain -> level1 -> level2 -> level3 ->
 * stop_here, with frame pointers, known values in memory (words) and in the x87 and SSE
 * registers when stop_here is reached. Built with gcc -m32 -ffreestanding; runs the same
 * under `dbg live --emulate` and `qemu-system-i386 -kernel`.
 */

typedef unsigned int u32;

volatile u32 counter;
u32 words[4] = {0x11223344, 0x55667788, 0x99aabbcc, 0xddeeff00};
static const float xmm_init[4] = {1.5f, -2.25f, 3.0f, 4.125f};

static void outb(unsigned short port, unsigned char v) {
  __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static void puts_serial(const char *s) {
  while (*s) outb(0x3f8, (unsigned char)*s++);
}

/* The breakpoint target. */
void __attribute__((noinline)) stop_here(u32 x) {
  counter += x;
}

static u32 __attribute__((noinline)) level3(u32 a) {
  /* x87: st0 = pi, st1 = 1; SSE: xmm0 = xmm_init, xmm1 = words; mxcsr with FZ set. */
  u32 mxcsr = 0x9f80;
  __asm__ volatile("fld1\n\tfldpi\n\tmovups %0, %%xmm0\n\tmovups %1, %%xmm1\n\tldmxcsr %2"
                   : : "m"(xmm_init), "m"(words), "m"(mxcsr));
  stop_here(a * 3);
  return a + 1;
}

static u32 __attribute__((noinline)) level2(u32 a) {
  return level3(a + 1) * 2;
}

static u32 __attribute__((noinline)) level1(u32 a) {
  return level2(a + 1) + 1;
}

void kmain(u32 magic, u32 info) {
  (void)info;
  puts_serial("i386 guest\n");
  counter = level1(magic & 0xff);
}
