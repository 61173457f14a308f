/*
 * Debuggee for unwinding through a signal frame: a thread takes SIGUSR1 and blocks inside its
 * handler (two calls deep), so its stack holds the kernel's signal frame and libc's __restore_rt
 * trampoline, whose CFI is all DWARF expressions. Prints "ready <pid>" once it is in place.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int in_handler;

static __attribute__((noinline)) void wait_in_handler(int depth) {
    if (depth > 0) {
        wait_in_handler(depth - 1);
        return;
    }
    struct timespec ts = {3600, 0};
    in_handler = 1;
    for (;;) nanosleep(&ts, NULL);
}

static void on_usr1(int sig) {
    (void)sig;
    wait_in_handler(2);
}

static __attribute__((noinline)) void interrupted_work(void) {
    pthread_kill(pthread_self(), SIGUSR1);
}

static void *signalled(void *arg) {
    (void)arg;
    interrupted_work();
    return NULL;
}

int main(void) {
    pthread_t t;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_create(&t, NULL, signalled, NULL);
    while (!in_handler) usleep(1000);
    usleep(100000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    pthread_join(t, NULL);
    return 0;
}
