/* Frames that left by tail calls: at -O2, hop() and relay() end in a jump to the next function,
 * so the stack holds no frame of theirs; gdb's bt shows them from the call sites' DWARF (each
 * has one way to reach the next), and the parameters passed in registers with their entry
 * values. Blocks in pause() in wait_tail. */
#include <stdio.h>
#include <unistd.h>

volatile int sink;
volatile int forever = 1;

__attribute__((noinline)) void wait_tail(int depth, const char *why) {
    sink = depth + why[0];
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (forever)
        pause();
}

__attribute__((noinline)) void relay(int depth, const char *why) {
    sink = depth;
    wait_tail(depth + 1, why);
}

__attribute__((noinline)) void hop(int depth, const char *why) {
    sink = depth * 3;
    relay(depth + 1, why);
}

int main(int argc, char **argv) {
    (void)argv;
    hop(argc + 4, "tail");
    sink = 1;
    return 0;
}
