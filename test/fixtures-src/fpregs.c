/*
 * Known x87, SSE and AVX state for the FP-register tests: st0..st2 = log2(e), pi, 1; xmm8..xmm15
 * and the upper halves of ymm8..ymm15 hold counting byte patterns; MXCSR has FZ and DAZ. It then
 * says "ready" and waits in pause(2), both through raw system calls so that no library code
 * touches a vector register after they are set.
 */
#include <stdint.h>

static uint8_t pattern[16 * 32];

int main(void) {
  for (int i = 0; i < (int)sizeof pattern; i++) pattern[i] = (uint8_t)i;
  uint32_t mxcsr = 0x9fc0;
  __asm__ volatile(
      "fninit\n\tfld1\n\tfldpi\n\tfldl2e\n\t"
      "ldmxcsr %1\n\t"
      "vmovdqu 0(%0), %%ymm8\n\tvmovdqu 32(%0), %%ymm9\n\tvmovdqu 64(%0), %%ymm10\n\tvmovdqu 96(%0), %%ymm11\n\t"
      "vmovdqu 128(%0), %%ymm12\n\tvmovdqu 160(%0), %%ymm13\n\tvmovdqu 192(%0), %%ymm14\n\tvmovdqu 224(%0), %%ymm15\n\t"
      /* write(1, "ready\n", 6) */
      "mov $1, %%eax\n\tmov $1, %%edi\n\tlea ready(%%rip), %%rsi\n\tmov $6, %%edx\n\tsyscall\n\t"
      /* for (;;) pause() */
      "1: mov $34, %%eax\n\tsyscall\n\tjmp 1b\n\t"
      "ready: .ascii \"ready\\n\"\n\t"
      :
      : "r"(pattern), "m"(mxcsr)
      : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "memory");
  return 0;
}
