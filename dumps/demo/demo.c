/*
 * The program `npm start` dumps for its demo: a worker thread blocked in a libc call, a heap
 * linked list reachable from a global, and a few globals to print. It says "ready" once the
 * worker is blocked, then waits to be dumped by gdb's gcore.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct task {
    int id;
    const char *what;
    struct task *next;
};

struct task *todo;
const char *greeting = "hello from a core dump";
long counter = 1234;
static int pipefd[2];

static void add(int id, const char *what) {
    struct task *t = malloc(sizeof *t);
    t->id = id;
    t->what = what;
    t->next = todo;
    todo = t;
}

static void *worker(void *arg) {
    char c;
    (void)arg;
    read(pipefd[0], &c, 1); /* blocks forever: nobody writes */
    return NULL;
}

static void wait_here(void) {
    pause();
}

int main(void) {
    pthread_t th;
    add(3, "write the report");
    add(2, "run the tests");
    add(1, "read the brief");
    if (pipe(pipefd) != 0) return 1;
    pthread_create(&th, NULL, worker, NULL);
    usleep(100000);
    printf("ready %d\n", getpid());
    fflush(stdout);
    for (;;) wait_here();
}
