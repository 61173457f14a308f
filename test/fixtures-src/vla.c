/* C99 variable-length arrays: their bounds are DWARF expressions (or artificial variables) that
 * only a frame can evaluate; gdb's `bt full` prints them with their run-time lengths. Blocked in
 * pause() for gcore. */
#include <stdio.h>
#include <unistd.h>
volatile int sink;
__attribute__((noipa)) void wait_here(void) {
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (;;) pause();
}
__attribute__((noipa)) int fill(int n) {
    int vla[n];
    for (int i = 0; i < n; i++) vla[i] = i * 3;
    char grid[2][n + 1];
    for (int i = 0; i < n; i++) { grid[0][i] = 'a' + i; grid[1][i] = 'A' + i; }
    grid[0][n] = grid[1][n] = 0;
    wait_here();
    return vla[n - 1] + grid[1][0] + sink;
}
int main(int argc, char **argv) {
    (void)argv;
    return fill(argc + 3);
}
