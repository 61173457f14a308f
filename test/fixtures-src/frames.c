/* Frames for line tables, locations and inline frames: a call chain that blocks in pause(),
 * with arguments, locals, a nested block and an always-inline function on the stack. Built at
 * -O0 and -O2 by the tests. */
#include <stdio.h>
#include <unistd.h>

struct point {
    int x;
    int y;
};

volatile int sink;
volatile int forever = 1;

__attribute__((noipa)) void wait_here(int depth, const char *why) {
    int local = depth * 2;
    sink = local + why[0];
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (forever)
        pause();
}

static inline __attribute__((always_inline)) void inner(int k, struct point *p) {
    int twice = k * 2;
    p->x += twice;
    wait_here(twice + p->x, "inner");
}

__attribute__((noipa)) int compute(int a, long b, struct point pt) {
    int total = a + (int)b;
    double ratio = total / 2.0;
    {
        int block_local = total * 3;
        sink = block_local;
        inner(block_local, &pt);
    }
    return total + (int)ratio + pt.y;
}

int main(int argc, char **argv) {
    struct point origin = {3, 4};
    int result = compute(argc + 6, 40L, origin);
    sink = result + argv[0][0];
    return 0;
}

/* A circular list of embedded nodes, list_head style, for addr::list TYPE MEMBER. */
struct list_node {
    struct list_node *next, *prev;
};
struct job {
    int id;
    struct list_node link;
    const char *name;
};
struct job jobs[3] = {
    {7, {&jobs[1].link, &jobs[2].link}, "seven"},
    {8, {&jobs[2].link, &jobs[0].link}, "eight"},
    {9, {&jobs[0].link, &jobs[1].link}, "nine"},
};
