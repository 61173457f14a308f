/*
 * Symbols whose names read like numbers (ffffabcde00 is a hexadecimal number, ffffab_cde00 one
 * with a digit separator, _007 a decimal one with a leading separator): the debugger must take
 * them as symbols. Built without PIE so the pointers hold addresses in the file itself.
 */
#include <stdio.h>

const char *ffffabcde00 = "Am I a string?";
const char *ffffab_cde00 = "I am not a string";

int _007(void) { return 7; }

int main(void) {
    puts(ffffabcde00);
    return _007();
}
