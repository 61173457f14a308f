/*
 * For numbers/tst.bitfields: bit fields that do not start or end on a byte boundary, as in
 * illumos's progs/bitfields.c (same types and values, so the same expected output).
 */
#include <stdint.h>

typedef struct broken {
	uint32_t brk_a:3, brk_b:2, brk_c:1, brk_d:1, brk_e:1, brk_f:1, brk_g:3;
	uint32_t brk_h:3, brk_i:5, brk_j:4, brk_k:6, brk_l:1, brk_m:1;
} broken_t;

broken_t first = { 3, 3, 0, 1, 1, 1, 3, 5, 3, 9, 19, 0, 1 };

typedef struct broken6491 {
	unsigned short a:1, b:8, c:3, d:2, e:1, f:1;
} broken6491_t;

broken6491_t second = { .a = 1, .b = 2, .e = 1 };

int
main(void)
{
	return (first.brk_m + second.e);
}
