/*
 * Debuggee for the process-core tests: globals of several types, a heap linked list reachable
 * from a global head pointer, and threads blocked in different libc calls. Once every thread is
 * about to block it prints "ready <pid>" and the main thread joins a thread that never ends.
 * Built with -O0 -g -fno-omit-frame-pointer -pthread.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct node {
    long value;
    struct node *next;
};

struct point {
    int x;
    short y;
    char tag;
};

struct node *list_head;
int global_int = -123456;
unsigned long global_ulong = 0xdeadbeefcafef00dUL;
short global_short = 0x1234;
unsigned char global_byte = 0xab;
double global_double = 3.5;
char global_string[16] = "hello, core";
struct point global_point = {7, -2, 'z'};
int global_array[5] = {1, 2, 3, 5, 8};
const char *global_ptr = global_string;
static int static_counter = 42;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int pipefd[2];
static volatile int blocked;

static void mark_blocked(void) {
    __sync_fetch_and_add(&blocked, 1);
}

static void build_list(int n) {
    for (int i = 0; i < n; i++) {
        struct node *p = malloc(sizeof *p);
        p->value = (long)i * 11;
        p->next = list_head;
        list_head = p;
    }
}

static void *cond_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    mark_blocked();
    for (;;) pthread_cond_wait(&cv, &mu);
    return NULL;
}

static void sleep_deeply(int depth) {
    if (depth > 0) {
        sleep_deeply(depth - 1);
        return;
    }
    struct timespec ts = {3600, 0};
    mark_blocked();
    for (;;) nanosleep(&ts, NULL);
}

static void *sleeper(void *arg) {
    (void)arg;
    sleep_deeply(3);
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    char buf[64];
    mark_blocked();
    for (;;) {
        if (read(pipefd[0], buf, sizeof buf) <= 0) break;
    }
    return NULL;
}

int main(void) {
    pthread_t t[3];
    build_list(6);
    if (pipe(pipefd) != 0) return 1;
    pthread_create(&t[0], NULL, cond_waiter, NULL);
    pthread_create(&t[1], NULL, sleeper, NULL);
    pthread_create(&t[2], NULL, reader, NULL);
    while (blocked < 3) usleep(1000);
    usleep(100000); /* let the threads get into their system calls */
    static_counter++;
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    pthread_join(t[0], NULL);
    return 0;
}
