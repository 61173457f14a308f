/*
 * For typedef/tst.libctype: illumos runs that test on /lib/libc.so, whose CTF has uint8_t; a
 * gcc -g program that uses uint8_t has it in its DWARF.
 */
#include <stdint.h>

uint8_t libctype_byte = 7;

int
main(void)
{
	return (libctype_byte);
}
