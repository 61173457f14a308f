/*
 * Debuggee for a real crash: once ready it reads a line from stdin, then a worker thread calls
 * through a NULL function pointer (SIGSEGV with pc 0, the caller's return address on top of the
 * stack) while the main thread waits in pthread_join.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

typedef void (*callback)(int);
static callback volatile handler; /* never set */
static int pipefd[2];

static __attribute__((noinline)) void dispatch(int event) {
    handler(event);
}

static void *worker(void *arg) {
    (void)arg;
    char c;
    if (read(pipefd[0], &c, 1) == 1) dispatch(c);
    return NULL;
}

int main(void) {
    pthread_t t;
    char line[16];
    if (pipe(pipefd) != 0) return 1;
    pthread_create(&t, NULL, worker, NULL);
    usleep(100000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    if (fgets(line, sizeof line, stdin)) {
        if (write(pipefd[1], "x", 1) != 1) return 1;
    }
    pthread_join(t, NULL);
    return 0;
}
