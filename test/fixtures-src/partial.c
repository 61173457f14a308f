/* A struct the optimizer keeps in part: at -O2 gcc replaces `p` by its members (SRA); across the
 * call p.a lives in a callee-saved register and p.b in nothing, so its DWARF location has an empty
 * piece and gdb prints {a = 15, b = <optimized out>}. Blocked in pause() for gcore. */
#include <stdio.h>
#include <unistd.h>
struct pair { long a; long b; };
volatile long sink;
__attribute__((noipa)) long opaque(long v) { return v ^ 0x55; }
__attribute__((noipa)) void wait_here(long v) {
    sink = v;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
__attribute__((noipa)) long split(long x) {
    struct pair p = { x * 3, opaque(x) };
    sink = p.b;
    wait_here(p.a);
    return p.a * sink;
}
int main(int argc, char **argv) {
    return (int)split(argc + 4);
}
