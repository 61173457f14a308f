/*
 * dbg's live Linux process target (src/targets/process/): ptrace on x86-64, as an N-API addon.
 *
 * ptrace binds a tracee to the *thread* that attached, so every ptrace call of this addon runs on
 * one dedicated pthread (the "tracer"). The JavaScript thread hands it one job at a time:
 *
 *   sync jobs    spawn, attach, registers, detach, kill...: the JS thread waits on a condition
 *                variable until the tracer has run the job (a round trip of a few microseconds)
 *   resume       the tracer resumes threads and waits (waitpid) until a stop worth reporting, stops
 *                every other thread (all-stop), and hands the stop back as bytes in a buffer of
 *                the caller's: at once when the JS thread still waits for it (SYNC_WAIT_NS),
 *                else through a threadsafe function that settles a promise; the end of a step
 *                and a plain breakpoint hit can have their RSP stop reply written to gdb's socket
 *                by the tracer itself, before the JS thread hears of the stop (see send_ahead),
 *                and gdb's requests after it answered by the tracer, the next step or continue
 *                among them, while the JS thread still waits (see serve_requests)
 *
 * Only these run on the JS thread itself, because they need no ptrace: memory reads and writes
 * through /proc/PID/mem (pread/pwrite on a descriptor the tracer opened), the breakpoint table
 * (its bytes are written through the same descriptor), interrupt (tgkill SIGSTOP) and the event
 * log. The JS side never calls a sync job while a resume runs (ProcessTarget enforces it).
 *
 * Stops the tracer reports (kind strings of the result object):
 *   breakpoint  an inserted int3 ran; pc is moved back onto it
 *   step        a single step (or a step over a breakpoint) ended
 *   watchpoint  DR6 names a debug register that fired (slot 0-3), or a software watchpoint's
 *               bytes changed (slot 4 + its index; see below)
 *   signal      a signal whose policy is "stop"; whether it is passed on the next resume is policy
 *   syscall-entry / syscall-exit   a caught system call (nr, args, rval)
 *   thread-created / thread-exited  when asked for (catchThreads); else only logged
 *   fork / vfork  the child (pid) was detached and runs on; when asked for (catchFork)
 *   vfork-done  the vfork child exec'd or exited, the parent runs again with its breakpoints back
 *               in; when asked for (bit 2 of catchEvents' vfork: gdb's vforkdone)
 *   exec        always: the image changed, breakpoints are gone
 *   exited / killed  the process ended (code / signal)
 *   interrupted  interrupt() was called
 * Events that do not stop are appended to a log that the JS side drains (drainEvents).
 *
 * Software watchpoints (write only; for when the four debug registers are taken): while any is
 * set, a continue single-steps the thread it was asked for (the others run freely) and compares
 * the watched bytes after every instruction it runs; a change stops everything as a watchpoint.
 * The cost is one PTRACE_SINGLESTEP, waitpid and pread per instruction of that thread.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>
#include <node_api.h>
#include "../common/napi-args.h"

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#define XSTATE_MAX 4096
#define MAX_BP 4096
#define MAX_LOG 4096

extern char **environ;

/* --------------------------------------------------------------------------------------------- */
/* State (touched by the tracer; the JS thread only while no job runs, or under `lock`)           */
/* --------------------------------------------------------------------------------------------- */

typedef struct {
  pid_t tid;
  int running;        /* resumed, no stop seen since */
  int stop_expected;  /* we sent it a SIGSTOP (interrupt, all-stop) that has not arrived yet */
  int has_pending;    /* a stop collected while stopping the others, to report before resuming */
  int pending_status;
  int deliver;        /* signal to deliver at its next resume */
  int stepping;
  uint64_t skip_pc;   /* the pc of its last reported stop: a breakpoint there is stepped over */
  int fresh;          /* seen stopping before its parent's clone event */
} thr_t;

typedef struct {
  uint64_t addr;
  uint8_t orig;
  int inserted;
} bp_t;

typedef struct {
  char kind[24];
  pid_t tid;
  int64_t arg;
} logent_t;

static pid_t g_pid;
static int g_memfd = -1;
static int g_spawned;
static thr_t *g_thr;
static int g_nthr, g_capthr;
static int g_thr_epoch; /* bumped when a thread is added or removed */
static bp_t g_bp[MAX_BP];
static int g_nbp;
static uint64_t g_dr[4];
static uint64_t g_dr7;
static uint8_t g_sig_stop[65] , g_sig_pass[65];
static uint8_t g_sys[1024]; /* 1 entry, 2 exit */
static int g_sys_any;
static int g_catch_threads, g_catch_fork, g_catch_vfork;
static volatile int g_interrupt;
static int g_vfork_pending;
static logent_t g_log[MAX_LOG];

#define MAX_SW 16
#define SW_BYTES 4096
typedef struct {
  uint64_t addr;
  size_t len; /* 0: free */
  uint8_t old[SW_BYTES];
} sw_t;
static sw_t g_sw[MAX_SW];
static int g_nsw; /* slots in use */
static uint8_t g_swbuf[SW_BYTES];
static int g_nlog;
static pthread_mutex_t g_loglock = PTHREAD_MUTEX_INITIALIZER;

/* --------------------------------------------------------------------------------------------- */
/* The tracer thread and its job slot                                                             */
/* --------------------------------------------------------------------------------------------- */

typedef struct job job_t;
struct job {
  void (*fn)(job_t *);
  /* inputs */
  int op;
  pid_t tid;
  int64_t a, b;
  char *path;
  char **argv;
  char *cwd;
  void *buf;
  size_t len;
  /* outputs */
  int err;
  char where[64];
  int64_t r;
  /* resume */
  napi_deferred deferred;
  napi_ref out_ref; /* the JS buffer the stop goes into, kept alive while the resume is async */
  struct stop *stop;
  volatile int finished; /* the resume ended while the JS thread still waited for it */
  int async;    /* the JS thread stopped waiting: the result goes through tsfn */
  int ahead;    /* send the stop reply from the tracer when the stop allows it (send_ahead) */
  int serve;    /* ... and answer the requests after it (serve_requests), from thread list `epoch` until `until` */
  int epoch;
  uint64_t until;
  int serving;  /* the tracer answers requests now: the JS thread waits, however long */
  volatile uint64_t run_start; /* now_ns() when the current resume started (the JS thread's wait is from then) */
};

static pthread_t g_thread;
static int g_started;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static job_t *g_job;
static volatile int g_done;

/*
 * Spinning before sleeping: a handoff between the JS thread and the tracer through the condition
 * variable costs two wake-ups, each a trip through the scheduler (tens to hundreds of
 * microseconds on a busy machine); most handoffs complete within a few microseconds, so each
 * side first polls for that long -- but only while a CPU is spare. With every CPU taken, the
 * other side (the tracer, the tracee, gdb) is waiting for the very CPU a spin holds, so each spin
 * ran to its end: at load 13 on 2 CPUs a step or breakpoint hit cost ~300 µs of CPU, ~250 of it
 * spinning. The load is read from /proc/loadavg at most every 50 ms.
 */
static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Both threads ask; either may refresh (relaxed atomics: a stale answer only costs a spin). */
static int spare_cpu(void) {
  static uint64_t checked;
  static int spare = 1;
  uint64_t now = now_ns();
  if (now - __atomic_load_n(&checked, __ATOMIC_RELAXED) > 50000000ull) {
    double load;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    __atomic_store_n(&spare, getloadavg(&load, 1) != 1 || load < (double)cpus - 0.5, __ATOMIC_RELAXED);
    __atomic_store_n(&checked, now, __ATOMIC_RELAXED);
  }
  return __atomic_load_n(&spare, __ATOMIC_RELAXED);
}

static int spin_until(volatile int *flag, uint64_t ns) {
  if (!spare_cpu()) return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
  uint64_t end = now_ns() + ns;
  for (int i = 0;; i++) {
    if (__atomic_load_n(flag, __ATOMIC_ACQUIRE)) return 1;
    __builtin_ia32_pause();
    if ((i & 63) == 63 && now_ns() > end) return 0;
  }
}

static volatile int g_has_job;

static void *tracer_main(void *arg) {
  (void)arg;
  for (;;) {
    spin_until(&g_has_job, 20000);
    pthread_mutex_lock(&g_lock);
    while (!g_job) pthread_cond_wait(&g_cv, &g_lock);
    job_t *j = g_job;
    pthread_mutex_unlock(&g_lock);
    j->fn(j);
    pthread_mutex_lock(&g_lock);
    g_job = NULL;
    __atomic_store_n(&g_has_job, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_done, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&g_lock);
    pthread_cond_broadcast(&g_cv);
  }
  return NULL;
}

static void start_tracer(void) {
  if (g_started) return;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setstacksize(&at, 1 << 20);
  pthread_create(&g_thread, &at, tracer_main, NULL);
  pthread_attr_destroy(&at);
  g_started = 1;
}

/* Runs j on the tracer; `wait`: until it is done. */
static void post(job_t *j, int wait) {
  start_tracer();
  pthread_mutex_lock(&g_lock);
  while (g_job) pthread_cond_wait(&g_cv, &g_lock);
  g_done = 0;
  g_job = j;
  __atomic_store_n(&g_has_job, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_lock);
  /* after the unlock: the tracer woken under the lock would only block on it again */
  pthread_cond_broadcast(&g_cv);
  if (wait) {
    spin_until(&g_done, 50000);
    pthread_mutex_lock(&g_lock);
    while (!g_done || g_job == j) pthread_cond_wait(&g_cv, &g_lock);
    pthread_mutex_unlock(&g_lock);
  }
}

/* --------------------------------------------------------------------------------------------- */
/* Threads, memory, breakpoints, debug registers                                                  */
/* --------------------------------------------------------------------------------------------- */

static thr_t *find_thr(pid_t tid) {
  for (int i = 0; i < g_nthr; i++)
    if (g_thr[i].tid == tid) return &g_thr[i];
  return NULL;
}

static thr_t *add_thr(pid_t tid) {
  thr_t *t = find_thr(tid);
  if (t) return t;
  if (g_nthr == g_capthr) {
    g_capthr = g_capthr ? g_capthr * 2 : 16;
    g_thr = realloc(g_thr, sizeof(thr_t) * g_capthr);
  }
  t = &g_thr[g_nthr++];
  g_thr_epoch++;
  memset(t, 0, sizeof *t);
  t->tid = tid;
  t->skip_pc = (uint64_t)-1;
  return t;
}

static void del_thr(pid_t tid) {
  for (int i = 0; i < g_nthr; i++)
    if (g_thr[i].tid == tid) {
      g_thr[i] = g_thr[g_nthr - 1];
      g_nthr--;
      g_thr_epoch++;
      return;
    }
}

static void log_event(const char *kind, pid_t tid, int64_t arg) {
  pthread_mutex_lock(&g_loglock);
  if (g_nlog < MAX_LOG) {
    logent_t *e = &g_log[g_nlog++];
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    e->tid = tid;
    e->arg = arg;
  }
  pthread_mutex_unlock(&g_loglock);
}

static int mem_write(uint64_t addr, const void *p, size_t n) {
  if (g_memfd < 0) return -1;
  return pwrite(g_memfd, p, n, (off_t)addr) == (ssize_t)n ? 0 : -1;
}

/* Up to len bytes at addr (short at the first unreadable byte), with the program's bytes under our int3s. */
static size_t read_mem(uint64_t addr, void *buf, size_t len) {
  size_t done = 0;
  while (done < len && g_memfd >= 0) {
    ssize_t n = pread(g_memfd, (char *)buf + done, len - done, (off_t)(addr + done));
    if (n <= 0) break;
    done += (size_t)n;
  }
  for (int i = 0; i < g_nbp; i++) {
    bp_t *b = &g_bp[i];
    if (b->inserted && b->addr >= addr && b->addr < addr + done) ((uint8_t *)buf)[b->addr - addr] = b->orig;
  }
  return done;
}

static int open_mem(pid_t pid) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/mem", pid);
  if (g_memfd >= 0) close(g_memfd);
  g_memfd = open(p, O_RDWR | O_CLOEXEC);
  return g_memfd;
}

static bp_t *find_bp(uint64_t addr) {
  for (int i = 0; i < g_nbp; i++)
    if (g_bp[i].addr == addr) return &g_bp[i];
  return NULL;
}

static void bp_put(bp_t *b, int in) {
  uint8_t byte = in ? 0xcc : b->orig;
  if (b->inserted == in) return;
  if (mem_write(b->addr, &byte, 1) == 0) b->inserted = in;
}

static void all_bps(int in) {
  for (int i = 0; i < g_nbp; i++) bp_put(&g_bp[i], in);
}

static long dr_off(int i) { return (long)offsetof(struct user, u_debugreg) + i * 8; }

static void apply_dr(pid_t tid) {
  ptrace(PTRACE_POKEUSER, tid, dr_off(7), 0);
  for (int i = 0; i < 4; i++)
    if (g_dr7 & (3ULL << (2 * i))) ptrace(PTRACE_POKEUSER, tid, dr_off(i), g_dr[i]);
  if (g_dr7) ptrace(PTRACE_POKEUSER, tid, dr_off(7), g_dr7);
}

/* The software watchpoints' bytes as they are now (at the start of a resume). */
static void sw_snapshot(void) {
  for (int i = 0; i < MAX_SW; i++)
    if (g_sw[i].len && pread(g_memfd, g_sw[i].old, g_sw[i].len, (off_t)g_sw[i].addr) != (ssize_t)g_sw[i].len) memset(g_sw[i].old, 0, g_sw[i].len);
}

/* The first software watchpoint whose bytes changed since the last look (its bytes now kept), or -1. */
static int sw_changed(void) {
  for (int i = 0; i < MAX_SW; i++) {
    sw_t *w = &g_sw[i];
    if (!w->len) continue;
    if (pread(g_memfd, g_swbuf, w->len, (off_t)w->addr) != (ssize_t)w->len) continue;
    if (memcmp(g_swbuf, w->old, w->len) != 0) {
      memcpy(w->old, g_swbuf, w->len);
      return i;
    }
  }
  return -1;
}

static uint64_t get_pc(pid_t tid) {
  errno = 0;
  long v = ptrace(PTRACE_PEEKUSER, tid, offsetof(struct user_regs_struct, rip), 0);
  return errno ? (uint64_t)-1 : (uint64_t)v;
}

static void set_pc(pid_t tid, uint64_t pc) { ptrace(PTRACE_POKEUSER, tid, offsetof(struct user_regs_struct, rip), pc); }

static const long OPTIONS = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACESYSGOOD;

static void set_options(pid_t tid) { ptrace(PTRACE_SETOPTIONS, tid, 0, OPTIONS | (g_spawned ? PTRACE_O_EXITKILL : 0)); }

static void reset_state(void) {
  g_nthr = 0;
  g_nbp = 0;
  g_dr7 = 0;
  memset(g_dr, 0, sizeof g_dr);
  g_interrupt = 0;
  g_vfork_pending = 0;
  g_nlog = 0;
  for (int s = 1; s <= 64; s++) {
    g_sig_stop[s] = 1;
    g_sig_pass[s] = 1;
  }
  /* gdb's defaults: these the program uses for itself, so they are passed quietly. */
  int quiet[] = {SIGALRM, SIGURG, SIGCHLD, SIGWINCH, SIGPIPE, SIGPROF, SIGVTALRM, SIGIO};
  for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++) g_sig_stop[quiet[i]] = 0;
  g_sig_stop[SIGPIPE] = 1;
  memset(g_sys, 0, sizeof g_sys);
  g_sys_any = 0;
  g_catch_threads = g_catch_fork = g_catch_vfork = 0;
  memset(g_sw, 0, sizeof g_sw);
  g_nsw = 0;
}

/* --------------------------------------------------------------------------------------------- */
/* Jobs: spawn, attach, detach, kill, registers                                                   */
/* --------------------------------------------------------------------------------------------- */

static void job_spawn(job_t *j) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) < 0) {
    j->err = errno;
    strcpy(j->where, "pipe");
    return;
  }
  pid_t pid = vfork();
  if (pid == 0) {
    int e;
    ptrace(PTRACE_TRACEME, 0, 0, 0);
    setpgid(0, 0);
    /* as gdb and gdbserver start a program (set disable-randomization on): the same addresses every run */
    if (j->a) personality(ADDR_NO_RANDOMIZE);
    /* Node marks its stdio close-on-exec and non-blocking; the program gets them as a shell gives them (as libuv's spawn does) */
    for (int fd = 0; fd <= 2; fd++) {
      fcntl(fd, F_SETFD, 0);
      int fl = fcntl(fd, F_GETFL);
      if (fl >= 0 && (fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    if (j->cwd && chdir(j->cwd) < 0) {
      e = errno;
      (void)!write(pfd[1], &e, sizeof e);
      _exit(127);
    }
    execve(j->path, j->argv, environ);
    e = errno;
    (void)!write(pfd[1], &e, sizeof e);
    _exit(127);
  }
  close(pfd[1]);
  if (pid < 0) {
    j->err = errno;
    strcpy(j->where, "fork");
    close(pfd[0]);
    return;
  }
  int e = 0;
  ssize_t n = read(pfd[0], &e, sizeof e);
  close(pfd[0]);
  int st;
  if (n == (ssize_t)sizeof e) {
    waitpid(pid, &st, __WALL | __WNOTHREAD);
    j->err = e;
    strcpy(j->where, "execve");
    return;
  }
  if (waitpid(pid, &st, __WALL | __WNOTHREAD) < 0 || !WIFSTOPPED(st)) {
    j->err = ECHILD;
    strcpy(j->where, "waitpid");
    return;
  }
  reset_state();
  g_pid = pid;
  g_spawned = 1;
  add_thr(pid);
  set_options(pid);
  open_mem(pid);
  j->r = pid;
}

/* Waits for `tid`'s stop after PTRACE_ATTACH: its SIGSTOP, keeping any other signal for later. */
static int wait_attach_stop(thr_t *t) {
  for (;;) {
    int st;
    if (waitpid(t->tid, &st, __WALL | __WNOTHREAD) < 0) return -1;
    if (!WIFSTOPPED(st)) return -1;
    if (WSTOPSIG(st) == SIGSTOP) return 0;
    t->deliver = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
    ptrace(PTRACE_CONT, t->tid, 0, 0);
  }
}

static int list_tasks(pid_t pid, pid_t *out, int max) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/task", pid);
  DIR *d = opendir(p);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < max) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    out[n++] = atoi(e->d_name);
  }
  closedir(d);
  return n;
}

static void job_attach(job_t *j) {
  pid_t pid = j->tid;
  static pid_t tids[65536];
  reset_state();
  g_pid = pid;
  g_spawned = 0;
  for (int round = 0;; round++) {
    int n = list_tasks(pid, tids, 65536);
    if (n < 0) {
      j->err = ESRCH;
      strcpy(j->where, "/proc/PID/task");
      return;
    }
    int added = 0;
    /* Attach to every new thread first and wait after: the stops arrive together. */
    int first = g_nthr;
    for (int i = 0; i < n; i++) {
      if (find_thr(tids[i])) continue;
      if (ptrace(PTRACE_ATTACH, tids[i], 0, 0) < 0) {
        if (errno == ESRCH && round + added > 0) continue; /* a thread that just ended */
        j->err = errno;
        strcpy(j->where, "PTRACE_ATTACH");
        for (int k = 0; k < g_nthr; k++) ptrace(PTRACE_DETACH, g_thr[k].tid, 0, 0);
        g_nthr = 0;
        return;
      }
      add_thr(tids[i]);
      added++;
    }
    for (int i = first; i < g_nthr; i++) {
      if (wait_attach_stop(&g_thr[i]) < 0) {
        g_thr[i].tid = 0;
        continue;
      }
      set_options(g_thr[i].tid);
    }
    for (int i = 0; i < g_nthr; i++)
      if (g_thr[i].tid == 0) del_thr(0), i--;
    if (!added) break;
  }
  if (open_mem(pid) < 0) {
    j->err = errno;
    strcpy(j->where, "open /proc/PID/mem");
    for (int k = 0; k < g_nthr; k++) ptrace(PTRACE_DETACH, g_thr[k].tid, 0, 0);
    g_nthr = 0;
    return;
  }
  j->r = pid;
}

/* Absorbs SIGSTOPs we sent that have not arrived yet, so that none is left to stop the process. */
static void absorb_expected(void) {
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    int guard = 0;
    while (t->stop_expected && guard++ < 16) {
      int st;
      if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0) break;
      if (waitpid(t->tid, &st, __WALL | __WNOTHREAD) < 0 || !WIFSTOPPED(st)) {
        t->stop_expected = 0;
        break;
      }
      if (WSTOPSIG(st) == SIGSTOP) t->stop_expected = 0;
      else if (WSTOPSIG(st) != SIGTRAP && (st >> 16) == 0) t->deliver = WSTOPSIG(st);
    }
  }
}

static void job_detach(job_t *j) {
  if (!g_pid) return;
  absorb_expected();
  all_bps(0);
  g_nbp = 0;
  g_dr7 = 0;
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    int sig = t->deliver;
    if (t->has_pending && WIFSTOPPED(t->pending_status) && (t->pending_status >> 16) == 0) {
      int s = WSTOPSIG(t->pending_status);
      if (s != SIGTRAP && s != (SIGTRAP | 0x80) && s != SIGSTOP) sig = s;
    }
    ptrace(PTRACE_POKEUSER, t->tid, dr_off(7), 0);
    ptrace(PTRACE_DETACH, t->tid, 0, sig);
  }
  g_nthr = 0;
  if (g_memfd >= 0) close(g_memfd);
  g_memfd = -1;
  g_pid = 0;
  (void)j;
}

static void job_kill(job_t *j) {
  if (!g_pid) return;
  kill(g_pid, SIGKILL);
  for (;;) {
    int st;
    pid_t w = waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (w < 0) break;
    if (w == g_pid && (WIFEXITED(st) || WIFSIGNALED(st))) break;
  }
  g_nthr = 0;
  g_nbp = 0;
  if (g_memfd >= 0) close(g_memfd);
  g_memfd = -1;
  g_pid = 0;
  (void)j;
}

enum { OP_GETREGS, OP_SETREGS, OP_GETXSTATE, OP_SETXSTATE, OP_GETFPREGS, OP_SETFPREGS, OP_PEEKDR, OP_SETDR };

static void job_regs(job_t *j) {
  long r = 0;
  switch (j->op) {
    case OP_GETREGS: r = ptrace(PTRACE_GETREGS, j->tid, 0, j->buf); break;
    case OP_SETREGS: r = ptrace(PTRACE_SETREGS, j->tid, 0, j->buf); break;
    case OP_GETFPREGS: r = ptrace(PTRACE_GETFPREGS, j->tid, 0, j->buf); break;
    case OP_SETFPREGS: r = ptrace(PTRACE_SETFPREGS, j->tid, 0, j->buf); break;
    case OP_GETXSTATE:
    case OP_SETXSTATE: {
      struct iovec iov = {j->buf, j->len};
      r = ptrace(j->op == OP_GETXSTATE ? PTRACE_GETREGSET : PTRACE_SETREGSET, j->tid, NT_X86_XSTATE, &iov);
      if (r == 0) j->r = (int64_t)iov.iov_len;
      break;
    }
    case OP_SETDR: {
      /* a = slot (0-3), b = address; len holds the new DR7 */
      if (j->a >= 0 && j->a < 4) g_dr[j->a] = (uint64_t)j->b;
      g_dr7 = j->len;
      for (int i = 0; i < g_nthr; i++) apply_dr(g_thr[i].tid);
      break;
    }
  }
  if (r < 0) {
    j->err = errno;
    strcpy(j->where, "ptrace");
  }
}

/* --------------------------------------------------------------------------------------------- */
/* Resume and the stop machine                                                                    */
/* --------------------------------------------------------------------------------------------- */

typedef struct stop {
  char kind[24];
  pid_t tid;
  int sig;
  int code;
  uint64_t addr;
  int64_t msg;
  int slot;
  int nr;
  uint64_t args[6];
  int64_t rval;
  char err[96];
  int has_regs; /* regs: the stopping thread's user_regs_struct, read by the tracer at the stop */
  struct user_regs_struct regs;
  int reply_len; /* the stop reply the tracer sent itself (send_ahead): its bytes, how many went */
  int sent;
  char reply[256];
  int run_mode; /* the resume this stop ended: a request answered in C may have asked for it (serve_requests) */
  pid_t run_tid;
} stop_t;

enum { M_CONT_ALL, M_CONT_ONE, M_STEP };
static int r_mode;
static pid_t r_sel;
static pid_t r_over_tid; /* the thread being stepped over a breakpoint */
static uint64_t r_over_addr;

static void resume_thr(thr_t *t) {
  int sig = t->deliver;
  t->deliver = 0;
  int req = t->stepping ? PTRACE_SINGLESTEP : (g_sys_any ? PTRACE_SYSCALL : PTRACE_CONT);
  if (ptrace(req, t->tid, 0, sig) == 0) t->running = 1;
}

static int wants_run(thr_t *t) { return r_mode == M_CONT_ALL || t->tid == r_sel; }

/* The thread a continue single-steps to check software watchpoints. */
static int sw_steps(thr_t *t) { return g_nsw && r_mode != M_STEP && t->tid == r_sel; }

/*
 * Resumes the threads the mode runs. A thread whose last reported stop was at an inserted
 * breakpoint first steps over it alone (the breakpoint out for one instruction); the others go
 * when that step ends. Returns the tid being stepped over, or 0 when everything is running.
 */
static pid_t start_threads(void) {
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    if (t->running || !wants_run(t)) continue;
    /* pc is read only when there is a breakpoint to step over: one syscall per thread saved */
    bp_t *b = t->skip_pc != (uint64_t)-1 ? find_bp(t->skip_pc) : NULL;
    if (b && (!b->inserted || get_pc(t->tid) != t->skip_pc)) b = NULL;
    t->skip_pc = (uint64_t)-1;
    if (b) {
      bp_put(b, 0);
      r_over_tid = t->tid;
      r_over_addr = b->addr;
      t->stepping = 1;
      resume_thr(t);
      return t->tid;
    }
  }
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    if (t->running || !wants_run(t)) continue;
    t->stepping = r_mode == M_STEP || sw_steps(t);
    resume_thr(t);
  }
  return 0;
}

static void end_step_over(void) {
  if (!r_over_tid) return;
  bp_t *b = find_bp(r_over_addr);
  if (b && !g_vfork_pending) bp_put(b, 1);
  r_over_tid = 0;
}

/* Stops every running thread (SIGSTOP), keeping what else any of them stopped for as pending. */
static void stop_others(void) {
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    if (!t->running) continue;
    if (!t->stop_expected) syscall(SYS_tgkill, g_pid, t->tid, SIGSTOP);
    t->stop_expected = 1;
  }
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    if (!t->running) continue;
    int st;
    if (waitpid(t->tid, &st, __WALL | __WNOTHREAD) < 0) {
      t->running = 0;
      continue;
    }
    t->running = 0;
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      t->has_pending = 1;
      t->pending_status = st;
      t->stop_expected = 0;
      continue;
    }
    if (WSTOPSIG(st) == SIGSTOP && (st >> 16) == 0) {
      t->stop_expected = 0;
      continue;
    }
    /* A breakpoint hit while we were stopping it: put pc back and let it hit again later. */
    if (WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0 && !t->stepping) {
      uint64_t pc = get_pc(t->tid);
      bp_t *b = find_bp(pc - 1);
      if (b && b->inserted) {
        set_pc(t->tid, pc - 1);
        continue;
      }
    }
    t->has_pending = 1;
    t->pending_status = st;
  }
}

static void set_stop(stop_t *s, const char *kind, pid_t tid) {
  snprintf(s->kind, sizeof s->kind, "%s", kind);
  s->tid = tid;
}

/*
 * After a reported stop: everything stopped, and the reporting thread's registers read once, for
 * its skip pc (a breakpoint under it is stepped over at the next resume) and for the stop reply.
 */
static void after_stop(stop_t *s) {
  end_step_over();
  stop_others();
  thr_t *t = find_thr(s->tid);
  if (t) {
    t->stepping = 0;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &s->regs) == 0) {
      s->has_regs = 1;
      t->skip_pc = s->regs.rip;
    } else
      t->skip_pc = get_pc(t->tid);
  }
}

/* 1: stop reported in s; 0: handled, keep waiting. */
static int handle(pid_t tid, int st, stop_t *s) {
  thr_t *t = find_thr(tid);
  if (!t) {
    if (WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP) {
      /* a new thread stopping before its parent's clone event reached us */
      t = add_thr(tid);
      t->fresh = 1;
      apply_dr(tid);
    }
    return 0;
  }
  t->running = 0;
  if (WIFEXITED(st) || WIFSIGNALED(st)) {
    if (tid == g_pid) {
      if (WIFEXITED(st)) {
        set_stop(s, "exited", tid);
        s->code = WEXITSTATUS(st);
      } else {
        set_stop(s, "killed", tid);
        s->sig = WTERMSIG(st);
      }
      g_nthr = 0;
      g_pid = 0;
      return 1;
    }
    del_thr(tid);
    log_event("thread-exited", tid, WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
    if (g_catch_threads) {
      set_stop(s, "thread-exited", tid);
      s->msg = tid; /* the thread that ended; the stop is reported on one still there */
      s->code = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
      s->tid = g_pid;
      if (!find_thr(g_pid) && g_nthr) s->tid = g_thr[0].tid;
      end_step_over();
      stop_others();
      return 1;
    }
    return 0;
  }
  int sig = WSTOPSIG(st);
  int ev = st >> 16;
  if (sig == (SIGTRAP | 0x80)) {
    struct __ptrace_syscall_info si;
    memset(&si, 0, sizeof si);
    long n = ptrace(PTRACE_GET_SYSCALL_INFO, tid, sizeof si, &si);
    int entry = n > 0 && si.op == PTRACE_SYSCALL_INFO_ENTRY;
    int nr;
    if (entry) nr = (int)si.entry.nr;
    else {
      /* the exit: the number is orig_rax */
      errno = 0;
      nr = (int)ptrace(PTRACE_PEEKUSER, tid, offsetof(struct user_regs_struct, orig_rax), 0);
    }
    int want = nr >= 0 && nr < 1024 ? g_sys[nr] : 0;
    if ((entry && (want & 1)) || (!entry && (want & 2))) {
      set_stop(s, entry ? "syscall-entry" : "syscall-exit", tid);
      s->nr = nr;
      if (entry)
        for (int i = 0; i < 6; i++) s->args[i] = si.entry.args[i];
      else
        s->rval = si.exit.rval;
      after_stop(s);
      return 1;
    }
    resume_thr(t);
    return 0;
  }
  if (ev == PTRACE_EVENT_CLONE) {
    unsigned long nt = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &nt);
    thr_t *c = find_thr((pid_t)nt);
    if (!c) {
      int cst;
      /* its first stop is a SIGSTOP that is on its way */
      while (waitpid((pid_t)nt, &cst, __WALL | __WNOTHREAD) == (pid_t)nt && !(WIFSTOPPED(cst) && WSTOPSIG(cst) == SIGSTOP)) {
        if (!WIFSTOPPED(cst)) break;
        ptrace(PTRACE_CONT, (pid_t)nt, 0, 0);
      }
      c = add_thr((pid_t)nt);
      apply_dr(c->tid);
    }
    t = find_thr(tid);
    c->fresh = 0;
    log_event("thread-created", (pid_t)nt, tid);
    if (g_catch_threads) {
      set_stop(s, "thread-created", (pid_t)nt);
      s->msg = tid;
      after_stop(s);
      return 1;
    }
    resume_thr(t);
    if (r_mode == M_CONT_ALL && !r_over_tid) {
      c->stepping = 0;
      resume_thr(c);
    }
    return 0;
  }
  if (ev == PTRACE_EVENT_FORK || ev == PTRACE_EVENT_VFORK) {
    unsigned long child = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &child);
    int cst;
    while (waitpid((pid_t)child, &cst, __WALL | __WNOTHREAD) == (pid_t)child && WIFSTOPPED(cst) && WSTOPSIG(cst) != SIGSTOP)
      ptrace(PTRACE_CONT, (pid_t)child, 0, 0);
    if (ev == PTRACE_EVENT_FORK) {
      /* the child has a copy of our int3s: put its bytes back before it runs */
      char p[64];
      snprintf(p, sizeof p, "/proc/%lu/mem", child);
      int fd = open(p, O_RDWR | O_CLOEXEC);
      if (fd >= 0) {
        for (int i = 0; i < g_nbp; i++)
          if (g_bp[i].inserted) (void)!pwrite(fd, &g_bp[i].orig, 1, (off_t)g_bp[i].addr);
        close(fd);
      }
    } else {
      /* shared memory until the child execs or exits: breakpoints out until VFORK_DONE */
      all_bps(0);
      g_vfork_pending = 1;
    }
    ptrace(PTRACE_POKEUSER, (pid_t)child, dr_off(7), 0);
    ptrace(PTRACE_DETACH, (pid_t)child, 0, 0);
    log_event(ev == PTRACE_EVENT_FORK ? "fork" : "vfork", tid, (int64_t)child);
    if (ev == PTRACE_EVENT_FORK ? g_catch_fork : g_catch_vfork & 1) {
      set_stop(s, ev == PTRACE_EVENT_FORK ? "fork" : "vfork", tid);
      s->msg = (int64_t)child;
      after_stop(s);
      return 1;
    }
    resume_thr(t);
    return 0;
  }
  if (ev == PTRACE_EVENT_VFORK_DONE) {
    g_vfork_pending = 0;
    all_bps(1);
    if (g_catch_vfork & 2) {
      set_stop(s, "vfork-done", tid);
      after_stop(s);
      return 1;
    }
    resume_thr(t);
    return 0;
  }
  if (ev == PTRACE_EVENT_EXEC) {
    unsigned long former = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &former);
    /* every other thread is gone; the execing one now has the leader's id */
    g_nthr = 0;
    thr_t *l = add_thr(g_pid);
    l->running = 0;
    g_nbp = 0;
    g_dr7 = 0;
    memset(g_sw, 0, sizeof g_sw);
    g_nsw = 0;
    r_over_tid = 0;
    open_mem(g_pid);
    set_stop(s, "exec", g_pid);
    s->msg = (int64_t)former;
    log_event("exec", g_pid, (int64_t)former);
    stop_others();
    l->skip_pc = (uint64_t)-1;
    l->stepping = 0;
    return 1;
  }
  if (ev != 0) {
    resume_thr(t);
    return 0;
  }
  if (sig == SIGTRAP) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    ptrace(PTRACE_GETSIGINFO, tid, 0, &si);
    /* DR6 only matters while a debug register is armed: no syscall otherwise */
    errno = 0;
    uint64_t dr6 = g_dr7 ? (uint64_t)ptrace(PTRACE_PEEKUSER, tid, dr_off(6), 0) : 0;
    if (dr6 & 0xf) {
      ptrace(PTRACE_POKEUSER, tid, dr_off(6), 0);
      int slot = __builtin_ctzll(dr6 & 0xf);
      set_stop(s, "watchpoint", tid);
      s->slot = slot;
      s->addr = g_dr[slot];
      after_stop(s);
      return 1;
    }
    if (t->stepping && (si.si_code == TRAP_TRACE || si.si_code == TRAP_BRKPT || si.si_code == SI_KERNEL || si.si_code == 0)) {
      if (g_dr7) ptrace(PTRACE_POKEUSER, tid, dr_off(6), 0);
      if (sw_steps(t)) {
        int hit = sw_changed();
        if (hit >= 0) {
          set_stop(s, "watchpoint", tid);
          s->slot = 4 + hit;
          s->addr = g_sw[hit].addr;
          after_stop(s);
          return 1;
        }
      }
      if (tid == r_over_tid) {
        end_step_over();
        t->stepping = 0;
        if (r_mode == M_STEP && tid == r_sel) {
          set_stop(s, "step", tid);
          after_stop(s);
          return 1;
        }
        start_threads();
        return 0;
      }
      if (si.si_code == SI_KERNEL) {
        /* a step that ran an int3: a breakpoint of ours or the program's own */
        uint64_t pc = get_pc(tid);
        bp_t *b = find_bp(pc - 1);
        if (b && b->inserted) {
          set_pc(tid, pc - 1);
          set_stop(s, "breakpoint", tid);
          s->addr = pc - 1;
          after_stop(s);
          return 1;
        }
      }
      if (sw_steps(t)) {
        /* one more instruction of the watched continue */
        resume_thr(t);
        return 0;
      }
      set_stop(s, "step", tid);
      after_stop(s);
      return 1;
    }
    if (si.si_code == SI_KERNEL || si.si_code == TRAP_BRKPT) {
      uint64_t pc = get_pc(tid);
      bp_t *b = find_bp(pc - 1);
      if (b && b->inserted) {
        set_pc(tid, pc - 1);
        set_stop(s, "breakpoint", tid);
        s->addr = pc - 1;
        after_stop(s);
        return 1;
      }
      if (!b && find_bp(pc - 1) == NULL && si.si_code == SI_KERNEL) {
        /* the program's own int3 */
      }
    }
  }
  if (sig == SIGSTOP && t->stop_expected) {
    t->stop_expected = 0;
    if (g_interrupt) {
      g_interrupt = 0;
      set_stop(s, "interrupted", tid);
      after_stop(s);
      return 1;
    }
    t->running = 0;
    resume_thr(t);
    return 0;
  }
  if (sig > 0 && sig <= 64 && !g_sig_stop[sig]) {
    t->deliver = g_sig_pass[sig] ? sig : 0;
    log_event("signal", tid, sig);
    resume_thr(t);
    return 0;
  }
  set_stop(s, "signal", tid);
  s->sig = sig;
  t->deliver = sig > 0 && sig <= 64 && g_sig_pass[sig] ? sig : 0;
  if (sig == SIGSTOP && g_interrupt) {
    /* interrupt() raced a program's own SIGSTOP: report one interrupt */
    g_interrupt = 0;
    set_stop(s, "interrupted", tid);
    t->deliver = 0;
  }
  after_stop(s);
  return 1;
}

static void job_resume(job_t *j) {
  stop_t *s = j->stop;
  memset(s, 0, sizeof *s);
  if (!g_pid || g_nthr == 0) {
    set_stop(s, "error", 0);
    snprintf(s->err, sizeof s->err, "the process is gone");
    return;
  }
  s->run_mode = (int)j->a;
  s->run_tid = j->tid;
  r_mode = (int)j->a;
  r_sel = j->tid;
  thr_t *sel = find_thr(r_sel);
  if (sel && j->b >= 0) sel->deliver = (int)j->b;
  /* Stops collected while stopping the others last time come first. */
  for (int i = 0; i < g_nthr; i++) {
    thr_t *t = &g_thr[i];
    if (!t->has_pending || !wants_run(t)) continue;
    t->has_pending = 0;
    if (handle(t->tid, t->pending_status, s)) return;
  }
  if (g_nsw) sw_snapshot();
  start_threads();
  for (;;) {
    int st;
    /* A step or a nearby breakpoint stops within microseconds: poll for it before sleeping in
       waitpid, which would cost a wake-up through the scheduler. */
    pid_t w = 0;
    uint64_t until = spare_cpu() ? now_ns() + 30000 : 0;
    while ((w = waitpid(-1, &st, __WALL | __WNOTHREAD | WNOHANG)) == 0 && now_ns() < until) __builtin_ia32_pause();
    if (w == 0) w = waitpid(-1, &st, __WALL | __WNOTHREAD);
    if (w < 0) {
      if (errno == EINTR) continue;
      set_stop(s, "exited", g_pid);
      s->code = -1;
      g_nthr = 0;
      g_pid = 0;
      return;
    }
    if (handle(w, st, s)) return;
    /* a thread that ended while being stepped over: the rest still has to run */
    if (r_over_tid && !find_thr(r_over_tid)) {
      r_over_tid = 0;
      bp_t *b = find_bp(r_over_addr);
      if (b) bp_put(b, 1);
      start_threads();
    }
    int any = 0;
    for (int i = 0; i < g_nthr; i++) any |= g_thr[i].running;
    if (!any && g_nthr > 0 && r_mode != M_CONT_ALL) {
      /* the one thread we ran ended: report the process stopped on the leader */
      set_stop(s, "thread-exited", g_thr[0].tid);
      s->msg = r_sel;
      return;
    }
  }
}

/* --------------------------------------------------------------------------------------------- */
/* N-API                                                                                          */
/* --------------------------------------------------------------------------------------------- */

static napi_value mkint(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}
static napi_value mkstr(napi_env env, const char *s) {
  napi_value r;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r);
  return r;
}
static void setp(napi_env env, napi_value o, const char *k, napi_value v) { napi_set_named_property(env, o, k, v); }

static napi_value throw_errno(napi_env env, int err, const char *where) {
  napi_value e, code, msg;
  char text[160];
  snprintf(text, sizeof text, "%s: %s", where, strerror(err));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}

#define ARGS(n)                  \
  size_t argc = n;               \
  napi_value argv[n];            \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static int64_t geti(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

static char *getstr(napi_env env, napi_value v) {
  size_t n = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  char *s = malloc(n + 1);
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

/* spawn(path, argv[], cwd|null, noRandomize) -> pid */
static napi_value n_spawn(napi_env env, napi_callback_info info) {
  ARGS(4);
  job_t j = {0};
  j.fn = job_spawn;
  bool norand = false;
  napi_get_value_bool(env, argv[3], &norand);
  j.a = norand;
  j.path = getstr(env, argv[0]);
  uint32_t n = 0;
  napi_get_array_length(env, argv[1], &n);
  j.argv = calloc(n + 1, sizeof(char *));
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, argv[1], i, &e);
    j.argv[i] = getstr(env, e);
  }
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  j.cwd = t == napi_string ? getstr(env, argv[2]) : NULL;
  post(&j, 1);
  free(j.path);
  for (uint32_t i = 0; i < n; i++) free(j.argv[i]);
  free(j.argv);
  free(j.cwd);
  if (j.err) return throw_errno(env, j.err, j.where);
  return mkint(env, j.r);
}

static napi_value n_attach(napi_env env, napi_callback_info info) {
  ARGS(1);
  job_t j = {0};
  j.fn = job_attach;
  j.tid = (pid_t)geti(env, argv[0]);
  post(&j, 1);
  if (j.err) return throw_errno(env, j.err, j.where);
  return mkint(env, j.r);
}

static napi_value n_detach(napi_env env, napi_callback_info info) {
  job_t j = {0};
  j.fn = job_detach;
  post(&j, 1);
  return NULL;
}

static napi_value n_kill(napi_env env, napi_callback_info info) {
  job_t j = {0};
  j.fn = job_kill;
  post(&j, 1);
  return NULL;
}

static napi_value n_threads(napi_env env, napi_callback_info info) {
  napi_value a;
  napi_create_array_with_length(env, g_nthr, &a);
  for (int i = 0; i < g_nthr; i++) napi_set_element(env, a, i, mkint(env, g_thr[i].tid));
  return a;
}

/* regs(op, tid, buffer) -> bytes */
static napi_value n_regs(napi_env env, napi_callback_info info) {
  ARGS(3);
  job_t j = {0};
  j.fn = job_regs;
  j.op = (int)geti(env, argv[0]);
  j.tid = (pid_t)geti(env, argv[1]);
  napi_get_buffer_info(env, argv[2], &j.buf, &j.len);
  post(&j, 1);
  if (j.err) return throw_errno(env, j.err, j.where);
  return mkint(env, j.r);
}

/* setDebugRegs(slot, addr, dr7) */
static napi_value n_setdr(napi_env env, napi_callback_info info) {
  ARGS(3);
  job_t j = {0};
  j.fn = job_regs;
  j.op = OP_SETDR;
  j.a = geti(env, argv[0]);
  uint64_t addr = 0, dr7 = 0;
  get_u64(env, argv[1], &addr);
  get_u64(env, argv[2], &dr7);
  j.b = (int64_t)addr;
  j.len = dr7;
  post(&j, 1);
  if (j.err) return throw_errno(env, j.err, j.where);
  return NULL;
}

/* readMemory(addr, buffer) -> bytes read (short at the first unreadable byte) */
static napi_value n_read(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint64_t addr = 0;
  get_u64(env, argv[0], &addr);
  void *buf;
  size_t len;
  napi_get_buffer_info(env, argv[1], &buf, &len);
  return mkint(env, (int64_t)read_mem(addr, buf, len));
}

/* writeMemory(addr, buffer) -> bytes written */
static napi_value n_write(napi_env env, napi_callback_info info) {
  ARGS(2);
  uint64_t addr = 0;
  get_u64(env, argv[0], &addr);
  void *buf;
  size_t len;
  napi_get_buffer_info(env, argv[1], &buf, &len);
  uint8_t *copy = malloc(len ? len : 1);
  memcpy(copy, buf, len);
  /* a write over an inserted breakpoint changes its saved byte and keeps the int3 */
  for (int i = 0; i < g_nbp; i++) {
    bp_t *b = &g_bp[i];
    if (b->inserted && b->addr >= addr && b->addr < addr + len) {
      b->orig = copy[b->addr - addr];
      copy[b->addr - addr] = 0xcc;
    }
  }
  size_t done = 0;
  while (done < len && g_memfd >= 0) {
    ssize_t n = pwrite(g_memfd, copy + done, len - done, (off_t)(addr + done));
    if (n <= 0) break;
    done += (size_t)n;
  }
  free(copy);
  return mkint(env, (int64_t)done);
}

/* insertBreakpoint(addr) -> true, or false when the byte cannot be read or written */
static napi_value n_bp_insert(napi_env env, napi_callback_info info) {
  ARGS(1);
  uint64_t addr = 0;
  get_u64(env, argv[0], &addr);
  napi_value r;
  if (find_bp(addr)) {
    napi_get_boolean(env, true, &r);
    return r;
  }
  bp_t b = {addr, 0, 0};
  int ok = g_nbp < MAX_BP && g_memfd >= 0 && pread(g_memfd, &b.orig, 1, (off_t)addr) == 1;
  if (ok) {
    g_bp[g_nbp] = b;
    if (!g_vfork_pending) {
      bp_put(&g_bp[g_nbp], 1);
      ok = g_bp[g_nbp].inserted;
    }
    if (ok) g_nbp++;
  }
  napi_get_boolean(env, ok, &r);
  return r;
}

static napi_value n_bp_remove(napi_env env, napi_callback_info info) {
  ARGS(1);
  uint64_t addr = 0;
  get_u64(env, argv[0], &addr);
  for (int i = 0; i < g_nbp; i++)
    if (g_bp[i].addr == addr) {
      bp_put(&g_bp[i], 0);
      g_bp[i] = g_bp[--g_nbp];
      break;
    }
  return NULL;
}

static napi_value n_interrupt(napi_env env, napi_callback_info info) {
  if (!g_pid) return NULL;
  g_interrupt = 1;
  /* the leader if it is ours, else any thread: one SIGSTOP ends the wait, the rest stop with it */
  pid_t tid = g_pid;
  for (int i = 0; i < g_nthr; i++)
    if (g_thr[i].running) {
      tid = g_thr[i].tid;
      if (tid == g_pid) break;
    }
  thr_t *t = find_thr(tid);
  if (t && t->running && !t->stop_expected) {
    t->stop_expected = 1;
    syscall(SYS_tgkill, g_pid, tid, SIGSTOP);
  }
  return NULL;
}

/* signalPolicy(sig, stop, pass) */
static napi_value n_sigpolicy(napi_env env, napi_callback_info info) {
  ARGS(3);
  int sig = (int)geti(env, argv[0]);
  if (sig > 0 && sig <= 64) {
    g_sig_stop[sig] = (uint8_t)geti(env, argv[1]);
    g_sig_pass[sig] = (uint8_t)geti(env, argv[2]);
  }
  return NULL;
}

/* catchSyscall(nr, mask): mask 1 entry, 2 exit, 0 none */
static napi_value n_catchsys(napi_env env, napi_callback_info info) {
  ARGS(2);
  int nr = (int)geti(env, argv[0]);
  if (nr >= 0 && nr < 1024) g_sys[nr] = (uint8_t)geti(env, argv[1]);
  g_sys_any = 0;
  for (int i = 0; i < 1024; i++) g_sys_any |= g_sys[i] != 0;
  return NULL;
}

/* catchEvents(threads, fork, vfork): vfork bit 1 stops at the vfork, bit 2 when it is done */
static napi_value n_catchev(napi_env env, napi_callback_info info) {
  ARGS(3);
  g_catch_threads = (int)geti(env, argv[0]);
  g_catch_fork = (int)geti(env, argv[1]);
  g_catch_vfork = (int)geti(env, argv[2]);
  return NULL;
}

static napi_value n_drain(napi_env env, napi_callback_info info) {
  pthread_mutex_lock(&g_loglock);
  napi_value a;
  napi_create_array_with_length(env, g_nlog, &a);
  for (int i = 0; i < g_nlog; i++) {
    napi_value o;
    napi_create_object(env, &o);
    setp(env, o, "kind", mkstr(env, g_log[i].kind));
    setp(env, o, "tid", mkint(env, g_log[i].tid));
    setp(env, o, "arg", mkint(env, g_log[i].arg));
    napi_set_element(env, a, i, o);
  }
  g_nlog = 0;
  pthread_mutex_unlock(&g_loglock);
  return a;
}

/*
 * The stop as resume() writes it into the caller's buffer: plain bytes, decoded by
 * ptrace-addon.ts (decodeStop), because building a JS object of 13 properties through N-API
 * cost ~15 µs of every stop.
 */
enum {
  SO_KIND = 0,  /* char[24], NUL-terminated */
  SO_TID = 24,  /* int32 */
  SO_SIG = 28,
  SO_CODE = 32,
  SO_SLOT = 36,
  SO_NR = 40,
  SO_HAS_REGS = 44,
  SO_ADDR = 48, /* uint64 */
  SO_MSG = 56,  /* int64 */
  SO_RVAL = 64, /* int64 */
  SO_ARGS = 72, /* uint64[6] */
  SO_ERR = 120, /* char[96] */
  SO_REGS = 216, /* user_regs_struct */
  SO_SENT = 216 + (int)sizeof(struct user_regs_struct), /* int32: bytes of the reply sent ahead */
  SO_REPLY_LEN = SO_SENT + 4,                            /* int32 */
  SO_REPLY = SO_SENT + 8,                                /* char[256]: the reply sent ahead */
  SO_RUN = SO_REPLY + 256,   /* int32 mode, int32 tid: the resume that ended here */
  SO_SERVED = SO_RUN + 8,    /* int32: requests answered in C during this resume() (serve_requests) */
  SO_PARKED = SO_SERVED + 4, /* uint8[SERVE_POINTS]: each served point's parked flag as it is now */
  SO_BYTES = SO_PARKED + 256,
};

/*
 * The requests answered in C (see serve_requests): the client's software breakpoints as the JS
 * side gave them (serveAhead), each with its "parked" flag (removed by z0, still in the program
 * until the next resume: the GDB server's lazy removal, gdb-client.ts point()).
 */
#define SERVE_POINTS 256
#define SERVE_DOC 8192
static struct {
  int on;
  int npoints;
  uint64_t addr[SERVE_POINTS];
  int kind[SERVE_POINTS];
  uint8_t parked[SERVE_POINTS];
  int served;
  /* qXfer:threads' document as the JS side renders it, a NUL where each thread's name goes, the
     threads in that order; ndoc 0: not answered here */
  char doc[SERVE_DOC];
  size_t ndoc;
  pid_t doc_tid[SERVE_POINTS];
  int ndoc_tid;
} g_serve;

static void stop_out(const stop_t *s, uint8_t *o) {
  int32_t i32[6] = {s->tid, s->sig, s->code, s->slot, s->nr, s->has_regs};
  memset(o, 0, SO_BYTES);
  memcpy(o + SO_KIND, s->kind, sizeof s->kind);
  memcpy(o + SO_TID, i32, sizeof i32);
  memcpy(o + SO_ADDR, &s->addr, 8);
  memcpy(o + SO_MSG, &s->msg, 8);
  memcpy(o + SO_RVAL, &s->rval, 8);
  memcpy(o + SO_ARGS, s->args, sizeof s->args);
  memcpy(o + SO_ERR, s->err, sizeof s->err);
  if (s->has_regs) memcpy(o + SO_REGS, &s->regs, sizeof s->regs);
  int32_t reply[2] = {s->sent, s->reply_len};
  memcpy(o + SO_SENT, reply, sizeof reply);
  memcpy(o + SO_REPLY, s->reply, (size_t)s->reply_len);
  int32_t run[3] = {s->run_mode, s->run_tid, g_serve.served};
  memcpy(o + SO_RUN, run, sizeof run);
  memcpy(o + SO_PARKED, g_serve.parked, sizeof g_serve.parked);
}

/* $payload#sum of `n` payload bytes already at o+1 (o has room for 3 more). */
static size_t frame(char *o, size_t n) {
  static const char digits[] = "0123456789abcdef";
  uint8_t sum = 0;
  o[0] = '$';
  for (size_t i = 1; i <= n; i++) sum += (uint8_t)o[i];
  o[n + 1] = '#';
  o[n + 2] = digits[sum >> 4];
  o[n + 3] = digits[sum & 15];
  return n + 4;
}

/*
 * The stop reply sent ahead. A gdb client waits for the reply to each step and breakpoint hit
 * before it does anything else, and waking the JS thread to build it was one more trip through the
 * scheduler on the way (at load, often the longest). For the stops whose reply needs no decision
 * of the JS side -- the end of a step of the thread asked for, a hit of a breakpoint the JS side
 * called plain (no step-over logic, IFUNC or library event on it) -- the tracer writes the reply
 * to the client's socket itself, from the parts the JS side gave (replyAhead):
 *
 *   $ <prefix>               <tid> ; <NN>:<register> ; ...          # <checksum>
 *     T05thread:p1f.                 06:<rbp> 07:<rsp> 10:<rip>       (a step)
 *     T05swbreak:;thread:p1f.                                         (a breakpoint hit)
 *
 * tid and NN in hex; a register as its 8 bytes in target order, 16 hex digits. The JS side is told
 * afterwards, as of any stop, and sends what the socket did not take (test/e2e/process.test.ts
 * checks that these replies are the ones the server renders). Only while the JS thread still waits
 * in resume(): then nothing else writes to the socket, and it cannot be closed and its number
 * reused under us.
 */
#define AHEAD_REGS 8
#define AHEAD_PLAIN 256
static struct {
  int fd; /* -1: nothing is sent ahead */
  char step[64];
  char bp[64]; /* "": breakpoint hits are not sent ahead */
  int nregs;
  int regno[AHEAD_REGS];
  int regoff[AHEAD_REGS]; /* in user_regs_struct */
  int nplain;
  uint64_t plain[AHEAD_PLAIN];
} g_ahead = {.fd = -1};

static const char *ahead_prefix(const stop_t *s) {
  if (g_ahead.fd < 0 || !s->has_regs) return NULL;
  if (strcmp(s->kind, "step") == 0) return r_mode == M_STEP && s->tid == r_sel ? g_ahead.step : NULL;
  if (strcmp(s->kind, "breakpoint") != 0 || !g_ahead.bp[0]) return NULL;
  for (int i = 0; i < g_ahead.nplain; i++)
    if (g_ahead.plain[i] == s->addr) return g_ahead.bp;
  return NULL;
}

/* s's reply, when it has one to send ahead: rendered into s->reply and written (s->sent bytes). */
static void send_ahead(stop_t *s) {
  static const char digits[] = "0123456789abcdef";
  const char *prefix = ahead_prefix(s);
  if (!prefix) return;
  char *o = s->reply;
  int n = snprintf(o, sizeof s->reply, "$%s%x;", prefix, (unsigned)s->tid);
  const uint8_t *regs = (const uint8_t *)&s->regs;
  for (int i = 0; i < g_ahead.nregs; i++) {
    o[n++] = digits[(g_ahead.regno[i] >> 4) & 15];
    o[n++] = digits[g_ahead.regno[i] & 15];
    o[n++] = ':';
    for (int b = 0; b < 8; b++) {
      o[n++] = digits[regs[g_ahead.regoff[i] + b] >> 4];
      o[n++] = digits[regs[g_ahead.regoff[i] + b] & 15];
    }
    o[n++] = ';';
  }
  n = (int)frame(o, (size_t)n - 1);
  s->reply_len = n;
  /* a socket that is not ready (full, closed by its peer) takes nothing: the JS side sends it all */
  ssize_t w = send(g_ahead.fd, o, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
  s->sent = w > 0 ? (int)w : 0;
}

/*
 * Requests answered in C. After a stop whose reply went out ahead, gdb's next requests come within
 * about a hundred microseconds: reading the stop's frame (m), taking its breakpoints out and
 * putting them back (z0, Z0), the next step or continue. Each of them through the JS thread cost a
 * wake-up of its event loop, the socket's stream and the server's dispatch, where gdbserver reads
 * and answers in one process: at 11:01 UTC on 12-07 (load 0.4-1.8) dbg took 1136 µs per
 * breakpoint hit and 350 µs per stepi to gdbserver's 1013 and 273, and a packet log showed every
 * request slower than gdbserver's, `m` after a step by 70 µs.
 *
 * So while the JS thread still waits in resume() (nothing else reads or writes the socket, as for
 * send_ahead; it waits for as long as this goes on, see wait_resume), the tracer answers the ones
 * below itself, as gdbserver would, with no thread woken on the way, until one comes that it
 * leaves to the JS side (anything else, or these in any other form), gdb is quiet for
 * SERVE_WAIT_MS, or SERVE_NS have gone (the JS thread's event loop must turn now and then). First
 * done on the JS thread, in C (it posted each resume to the tracer and was woken back): 805-857 µs
 * per hit to gdbserver's 895-968, 259-279 µs per stepi to its 247-263, at 11:35 UTC (load 0.0-1.0);
 * on the tracer, at 11:37 (load 1.2): 590 vs 956 and 182 vs 249.
 *
 *   m ADDR,LEN        LEN <= SERVE_MEMORY, all of it readable: the bytes as readMemory gives them
 *   Z0,ADDR,KIND      a point the client has (serveAhead): unparked, OK
 *   z0,ADDR,KIND      parked, OK (the int3 stays until the next resume, as gdb-client.ts does)
 *   qXfer:threads:read::OFF,LEN   the JS side's document, with the names as they are now
 *   vCont;s:pP.T[;c[:pP.-1]]   T the thread that stopped: a step of it
 *   vCont;c[:pP.-1]   continue all (the stopped thread's resume)
 *
 * A continue is taken only while no point is parked (else the JS side carries the removals out
 * first); a step also with parked points, which it cannot run into (it runs one instruction, and
 * one at the pc it steps over as if it were out), and the thread list must be what it was when the
 * JS side asked (it numbers new threads at a stop);
 * its stop goes out ahead as any, or, when it cannot, ends the loop and goes to the JS side as the
 * stop of this resume() with the mode and thread it ran (SO_RUN). Only in no-ack mode, with every
 * byte gdb sent so far read by the JS side (the plan is given then: serveAhead), on packets with
 * nothing escaped. The JS side reads the parked flags back (SO_PARKED) and the count (SO_SERVED).
 */
#define SERVE_MEMORY 2048
#define SERVE_WAIT_MS 2
#define SERVE_NS 20000000ull
#define SERVE_PEEK 512

static int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Hex digits (1-16) at *p up to a character not a hex digit; *p moved past them. -1: none or too many. */
static int parse_hex(const char **p, uint64_t *v) {
  int n = 0;
  *v = 0;
  for (int d; (d = hex_digit(**p)) >= 0; (*p)++, n++) *v = (*v << 4) | (uint64_t)d;
  return n >= 1 && n <= 16 ? 0 : -1;
}

/* "pPID.TID" (TID hex, or -1 when all_ok); *tid -1 for all. 0, or -1 when it is not that. */
static int parse_thread(const char **p, int all_ok, int64_t *tid) {
  uint64_t v;
  if (**p != 'p') return -1;
  (*p)++;
  if (parse_hex(p, &v) < 0 || **p != '.') return -1;
  (*p)++;
  if (all_ok && strncmp(*p, "-1", 2) == 0) {
    *p += 2;
    *tid = -1;
    return 0;
  }
  if (parse_hex(p, &v) < 0 || v > 0x7fffffff) return -1;
  *tid = (int64_t)v;
  return 0;
}

/* Writes all of a framed packet to the client (waiting while its socket buffer is full); -1 on error. */
static int send_all(const char *o, size_t n) {
  while (n > 0) {
    ssize_t w = send(g_ahead.fd, o, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) {
      o += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    struct pollfd p = {g_ahead.fd, POLLOUT, 0};
    if (poll(&p, 1, 1000) <= 0) return -1;
  }
  return 0;
}

static char g_serve_out[2 * SERVE_DOC + 8];

/*
 * qXfer:threads:read::OFF,LEN: the document the JS side rendered with each thread's name as it is
 * now, read from /proc as the JS side reads it (and escaped as it escapes it); a name the JS side
 * would change on the way (not printable ASCII, blanks at either end) leaves it to the JS side.
 */
static int threads_reply(uint64_t off, uint64_t n, size_t *len) {
  static char doc[SERVE_DOC];
  static const char *const entity[128] = {['<'] = "&lt;", ['>'] = "&gt;", ['&'] = "&amp;", ['"'] = "&quot;"};
  if (!g_serve.ndoc) return -1;
  size_t d = 0;
  int k = 0;
  for (size_t i = 0; i < g_serve.ndoc; i++) {
    if (g_serve.doc[i]) {
      if (d == sizeof doc) return -1;
      doc[d++] = g_serve.doc[i];
      continue;
    }
    if (k == g_serve.ndoc_tid) return -1;
    char path[64], name[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/comm", g_pid, g_serve.doc_tid[k++]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t m = read(fd, name, sizeof name);
    close(fd);
    if (m <= 0 || name[m - 1] != '\n') return -1;
    m--;
    if (m > 0 && (name[0] == ' ' || name[m - 1] == ' ')) return -1;
    for (ssize_t c = 0; c < m; c++) {
      if (name[c] < 0x20 || name[c] > 0x7e) return -1;
      const char *e = entity[(int)name[c]];
      size_t el = e ? strlen(e) : 1;
      if (d + el > sizeof doc) return -1;
      memcpy(doc + d, e ? e : &name[c], el);
      d += el;
    }
  }
  if (k != g_serve.ndoc_tid) return -1;
  size_t from = off < d ? (size_t)off : d;
  size_t to = off + n < d ? (size_t)(off + n) : d;
  /* framed with $ # } * escaped (} and the byte xor 0x20), as encodePacket does */
  size_t o = 1;
  g_serve_out[o++] = off + n >= d ? 'l' : 'm';
  for (size_t i = from; i < to; i++) {
    char c = doc[i];
    if (o + 2 > sizeof g_serve_out - 3) return -1;
    if (c == '$' || c == '#' || c == '}' || c == '*') {
      g_serve_out[o++] = '}';
      c ^= 0x20;
    }
    g_serve_out[o++] = c;
  }
  *len = frame(g_serve_out, o - 1);
  return 0;
}

/*
 * One request (payload, NUL-terminated): 0 answered (its reply framed in g_serve_out, *len),
 * 1 a resume (*mode, *tid), -1 left to the JS side. `s` is the last stop.
 */
static int serve_one(const char *q, const stop_t *s, int epoch, int64_t *mode, pid_t *tid, size_t *len) {
  static const char digits[] = "0123456789abcdef";
  uint64_t addr, n;
  if (q[0] == 'm') {
    const char *p = q + 1;
    static uint8_t bytes[SERVE_MEMORY];
    if (parse_hex(&p, &addr) < 0 || *p++ != ',' || parse_hex(&p, &n) < 0 || *p || n == 0 || n > SERVE_MEMORY) return -1;
    if (read_mem(addr, bytes, n) != n) return -1; /* a short read: the JS side finds where it ends */
    for (uint64_t i = 0; i < n; i++) {
      g_serve_out[1 + 2 * i] = digits[bytes[i] >> 4];
      g_serve_out[2 + 2 * i] = digits[bytes[i] & 15];
    }
    *len = frame(g_serve_out, 2 * n);
    return 0;
  }
  if ((q[0] == 'Z' || q[0] == 'z') && q[1] == '0' && q[2] == ',') {
    const char *p = q + 3;
    if (parse_hex(&p, &addr) < 0 || *p++ != ',' || parse_hex(&p, &n) < 0 || *p) return -1;
    for (int i = 0; i < g_serve.npoints; i++) {
      if (g_serve.addr[i] != addr || g_serve.kind[i] != (int64_t)n) continue;
      g_serve.parked[i] = q[0] == 'z';
      memcpy(g_serve_out + 1, "OK", 2);
      *len = frame(g_serve_out, 2);
      return 0;
    }
    return -1;
  }
  if (strncmp(q, "qXfer:threads:read::", 20) == 0) {
    const char *p = q + 20;
    uint64_t off;
    if (g_thr_epoch != epoch || parse_hex(&p, &off) < 0 || *p++ != ',' || parse_hex(&p, &n) < 0 || *p) return -1;
    /* beyond these the JS side refuses the length or reckons past 2^53: its answer, not ours */
    if (off > 0xffffffffu || n > 0x7fffffff) return -1;
    return threads_reply(off, n, len);
  }
  if (strncmp(q, "vCont;", 6) != 0) return -1;
  thr_t *t = find_thr(s->tid);
  if (g_thr_epoch != epoch || !t || !s->has_regs) return -1;
  /* A parked point is out for gdb: a continue could run into it, so the JS side takes the
     removals out first. A step cannot, but for one at the pc, which it steps over as out. */
  int parked_here = 0, parked = 0;
  for (int i = 0; i < g_serve.npoints; i++) {
    parked |= g_serve.parked[i];
    parked_here |= g_serve.parked[i] && g_serve.addr[i] == s->regs.rip && t->skip_pc != s->regs.rip;
  }
  const char *p = q + 6;
  int64_t who = -1;
  if (p[0] == 's' && p[1] == ':') {
    p += 2;
    if (parse_thread(&p, 0, &who) < 0 || who != s->tid) return -1;
    if (*p == ';') {
      /* the others' continue: all-stop steps the one thread alone */
      p++;
      int64_t all = 0;
      if (*p++ != 'c' || (*p == ':' && (p++, parse_thread(&p, 1, &all) < 0 || all != -1))) return -1;
    }
    if (*p || parked_here) return -1;
    *mode = M_STEP;
  } else if (p[0] == 'c') {
    p++;
    if (*p == ':' && (p++, parse_thread(&p, 1, &who) < 0 || who != -1)) return -1;
    if (*p || parked) return -1;
    *mode = M_CONT_ALL;
  } else
    return -1;
  *tid = s->tid;
  return 1;
}

/*
 * The requests that follow stop `s` (see above): 1 when one asked for a resume (*mode, *tid), 0
 * when the rest is the JS side's.
 */
static int serve_requests(const stop_t *s, int epoch, uint64_t until, int64_t *mode, pid_t *tid) {
  /* the stop's own reply must be out, whole: the JS side sends what the socket did not take */
  if (!g_serve.on || g_ahead.fd < 0 || s->reply_len == 0 || s->sent != s->reply_len) return 0;
  char in[SERVE_PEEK + 1];
  for (;;) {
    if (now_ns() > until) return 0;
    struct pollfd pf = {g_ahead.fd, POLLIN, 0};
    if (poll(&pf, 1, SERVE_WAIT_MS) <= 0 || !(pf.revents & POLLIN)) return 0;
    /* peeked, and read only once answered here: what is left to the JS side stays in the socket */
    ssize_t n = recv(g_ahead.fd, in, SERVE_PEEK, MSG_PEEK | MSG_DONTWAIT);
    if (n < 4 || in[0] != '$') return 0;
    char *hash = memchr(in, '#', (size_t)n);
    if (!hash || hash + 3 > in + n) return 0;
    size_t whole = (size_t)(hash + 3 - in);
    *hash = 0;
    if (strpbrk(in + 1, "$}*")) return 0;
    size_t len = 0;
    int r = serve_one(in + 1, s, epoch, mode, tid, &len);
    if (r < 0) return 0;
    if (recv(g_ahead.fd, in, whole, MSG_DONTWAIT) != (ssize_t)whole) return 0; /* cannot be: it was there */
    g_serve.served++;
    if (r == 1) return 1;
    if (send_all(g_serve_out, len) < 0) return 0;
  }
}

/*
 * One threadsafe function for every resume that outlives the JS thread's wait (made per resume,
 * it cost ~20 µs of each step: a uv handle opened and closed). Unreferenced while no resume
 * waits on it, so that it never holds the event loop open by itself.
 */
static napi_threadsafe_function g_tsfn;
static napi_env g_tsfn_env;

static void resume_done_js(napi_env env, napi_value cb, void *ctx, void *data) {
  job_t *j = data;
  if (env) {
    void *out = NULL;
    size_t len = 0;
    napi_value buf;
    if (napi_get_reference_value(env, j->out_ref, &buf) == napi_ok && buf) napi_get_buffer_info(env, buf, &out, &len);
    if (out && len >= SO_BYTES) stop_out(j->stop, out);
    napi_delete_reference(env, j->out_ref);
    napi_value undef;
    napi_get_undefined(env, &undef);
    napi_resolve_deferred(env, j->deferred, undef);
    if (g_tsfn && g_tsfn_env == env) napi_unref_threadsafe_function(env, g_tsfn);
  }
  free(j->stop);
  free(j);
}

static void tsfn_cleanup(void *arg) {
  (void)arg;
  pthread_mutex_lock(&g_lock);
  napi_threadsafe_function t = g_tsfn;
  g_tsfn = NULL;
  g_tsfn_env = NULL;
  pthread_mutex_unlock(&g_lock);
  if (t) napi_release_threadsafe_function(t, napi_tsfn_abort);
}

static void job_resume_async(job_t *j) {
  for (;;) {
    job_resume(j);
    /* The stop's registers now, in the same trip to the tracer: every stop reply needs pc, sp, fp. */
    stop_t *s = j->stop;
    if (!s->has_regs && g_pid && s->tid && find_thr(s->tid) && ptrace(PTRACE_GETREGS, s->tid, 0, &s->regs) == 0) s->has_regs = 1;
    pthread_mutex_lock(&g_lock);
    int async = j->async;
    /* under the lock: the JS thread cannot stop waiting (and let the socket close) meanwhile */
    if (!async && j->ahead) send_ahead(s);
    j->serving = !async && j->serve && s->reply_len > 0 && s->sent == s->reply_len;
    pthread_mutex_unlock(&g_lock);
    if (!j->serving) break;
    int64_t mode;
    pid_t tid;
    int again = serve_requests(s, j->epoch, j->until, &mode, &tid);
    pthread_mutex_lock(&g_lock);
    j->serving = 0;
    j->run_start = now_ns();
    pthread_mutex_unlock(&g_lock);
    if (!again) break;
    /* a resume gdb asked for, answered here: the same job again */
    j->a = mode;
    j->tid = tid;
    j->b = -1;
  }
  pthread_mutex_lock(&g_lock);
  int async = j->async;
  napi_threadsafe_function t = g_tsfn;
  if (!async) __atomic_store_n(&j->finished, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&g_lock);
  /* after the unlock: a waiter woken under the lock would only block on it again */
  if (!async) pthread_cond_broadcast(&g_cv);
  else if (t) napi_call_threadsafe_function(t, j, napi_tsfn_blocking);
}

/*
 * How long the JS thread waits for a resume to end before it lets the event loop run: a step or a
 * breakpoint hit that soon is reported without a trip through the loop (uv_async), which is most of
 * a stepi round trip; anything longer is reported through the threadsafe function.
 */
#define SYNC_WAIT_NS 3000000L

/*
 * Waits for resume job j to end: while the tracer answers requests, however long (it alone reads
 * the socket then), and while a resume runs, SYNC_WAIT_NS from its start. 1: it ended; 0: it goes
 * on and reports through tsfn.
 */
static int wait_resume(job_t *j) {
  /* a stop whose reply the tracer sends itself needs no hurry here: no spin to hold a CPU */
  if (!j->ahead) spin_until(&j->finished, 200000);
  pthread_mutex_lock(&g_lock);
  for (;;) {
    if (j->finished) break;
    uint64_t now = now_ns();
    uint64_t end = j->serving ? now + SYNC_WAIT_NS : j->run_start + SYNC_WAIT_NS;
    if (now >= end) {
      j->async = 1;
      break;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    uint64_t ns = (uint64_t)dl.tv_nsec + (end - now);
    dl.tv_sec += (time_t)(ns / 1000000000ull);
    dl.tv_nsec = (long)(ns % 1000000000ull);
    pthread_cond_timedwait(&g_cv, &g_lock, &dl);
  }
  int done = j->finished;
  pthread_mutex_unlock(&g_lock);
  return done;
}

/*
 * resume(mode, tid, signal, out, ahead) -> true, or Promise<void>; mode 0 all, 1 that thread
 * alone, 2 step it. The stop is written into `out` (SO_BYTES): at once when the resume ended within
 * SYNC_WAIT_NS (true), else when the promise settles. `ahead`: its reply may be sent by the tracer.
 */
static napi_value n_resume(napi_env env, napi_callback_info info) {
  ARGS(5);
  void *out = NULL;
  size_t outlen = 0;
  if (napi_get_buffer_info(env, argv[3], &out, &outlen) != napi_ok || outlen < SO_BYTES) {
    napi_throw_range_error(env, NULL, "resume: the stop buffer is too short");
    return NULL;
  }
  if (g_tsfn_env != env) {
    napi_value name;
    napi_create_string_utf8(env, "dbg-ptrace-resume", NAPI_AUTO_LENGTH, &name);
    napi_threadsafe_function t;
    if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, resume_done_js, &t) != napi_ok) {
      napi_throw_error(env, NULL, "resume: cannot create the threadsafe function");
      return NULL;
    }
    napi_unref_threadsafe_function(env, t);
    napi_add_env_cleanup_hook(env, tsfn_cleanup, NULL);
    pthread_mutex_lock(&g_lock);
    g_tsfn = t;
    g_tsfn_env = env;
    pthread_mutex_unlock(&g_lock);
  }
  job_t *j = calloc(1, sizeof *j);
  j->stop = calloc(1, sizeof(stop_t));
  j->fn = job_resume_async;
  j->a = geti(env, argv[0]);
  j->tid = (pid_t)geti(env, argv[1]);
  j->b = geti(env, argv[2]);
  bool ahead = false;
  if (argc >= 5) napi_get_value_bool(env, argv[4], &ahead);
  j->ahead = ahead;
  g_serve.served = 0;
  j->serve = ahead && g_serve.on;
  j->epoch = g_thr_epoch;
  j->until = now_ns() + SERVE_NS;
  j->run_start = now_ns();
  post(j, 0);
  if (wait_resume(j)) {
    /* the tracer no longer touches j once finished is set */
    stop_out(j->stop, out);
    free(j->stop);
    free(j);
    napi_value r;
    napi_get_boolean(env, true, &r);
    return r;
  }
  /* j now belongs to the tracer until resume_done_js */
  napi_value promise;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_reference(env, argv[3], 1, &j->out_ref);
  napi_ref_threadsafe_function(env, g_tsfn);
  return promise;
}

/*
 * replyAhead(fd, step, breakpoint, registers, plain): the parts of the replies the tracer sends
 * ahead (see send_ahead): `registers` pairs of (number on the wire, offset in user_regs_struct),
 * `plain` the breakpoint addresses whose hits it may report. fd -1, or parts that do not fit,
 * turn it off. Only while no resume runs.
 */
static napi_value n_reply_ahead(napi_env env, napi_callback_info info) {
  ARGS(5);
  g_ahead.fd = -1;
  int fd = (int)geti(env, argv[0]);
  size_t n1 = 0, n2 = 0;
  if (napi_get_value_string_utf8(env, argv[1], g_ahead.step, sizeof g_ahead.step, &n1) != napi_ok || n1 + 1 >= sizeof g_ahead.step) return NULL;
  if (napi_get_value_string_utf8(env, argv[2], g_ahead.bp, sizeof g_ahead.bp, &n2) != napi_ok || n2 + 1 >= sizeof g_ahead.bp) return NULL;
  napi_typedarray_type type;
  size_t count;
  void *data;
  if (napi_get_typedarray_info(env, argv[3], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_int32_array || count % 2 || count / 2 > AHEAD_REGS) return NULL;
  const int32_t *pairs = data;
  for (size_t i = 0; i < count / 2; i++) {
    if (pairs[2 * i] < 0 || pairs[2 * i] > 255 || pairs[2 * i + 1] < 0 || pairs[2 * i + 1] + 8 > (int)sizeof(struct user_regs_struct)) return NULL;
    g_ahead.regno[i] = pairs[2 * i];
    g_ahead.regoff[i] = pairs[2 * i + 1];
  }
  g_ahead.nregs = (int)(count / 2);
  if (napi_get_typedarray_info(env, argv[4], &type, &count, &data, NULL, NULL) != napi_ok || type != napi_biguint64_array) return NULL;
  /* more plain breakpoints than fit: their hits go the general way */
  if (count > AHEAD_PLAIN) g_ahead.bp[0] = 0;
  g_ahead.nplain = count > AHEAD_PLAIN ? 0 : (int)count;
  memcpy(g_ahead.plain, data, (size_t)g_ahead.nplain * 8);
  g_ahead.fd = fd;
  return NULL;
}

/*
 * serveAhead(on, points, kinds, threads, tids): whether the next resume() with `ahead` may answer
 * requests itself (see serve_requests); the client's software breakpoints as (address, kind)
 * pairs, none of them parked (more than fit: those beyond are left to the JS side); qXfer:threads'
 * document with a NUL for each name, and the threads named, in order ('': left to the JS side).
 * Only while no resume runs.
 */
static napi_value n_serve_ahead(napi_env env, napi_callback_info info) {
  ARGS(5);
  bool on = false;
  napi_get_value_bool(env, argv[0], &on);
  napi_typedarray_type ta, tk;
  size_t na = 0, nk = 0;
  void *da = NULL, *dk = NULL;
  g_serve.on = 0;
  if (napi_get_typedarray_info(env, argv[1], &ta, &na, &da, NULL, NULL) != napi_ok || ta != napi_biguint64_array) return NULL;
  if (napi_get_typedarray_info(env, argv[2], &tk, &nk, &dk, NULL, NULL) != napi_ok || tk != napi_int32_array || nk != na) return NULL;
  g_serve.npoints = na > SERVE_POINTS ? SERVE_POINTS : (int)na;
  memcpy(g_serve.addr, da, (size_t)g_serve.npoints * 8);
  for (int i = 0; i < g_serve.npoints; i++) g_serve.kind[i] = ((const int32_t *)dk)[i];
  memset(g_serve.parked, 0, sizeof g_serve.parked);
  g_serve.ndoc = 0;
  size_t nd = 0;
  if (napi_get_value_string_latin1(env, argv[3], g_serve.doc, sizeof g_serve.doc, &nd) == napi_ok && nd + 1 < sizeof g_serve.doc &&
      napi_get_typedarray_info(env, argv[4], &tk, &nk, &dk, NULL, NULL) == napi_ok && tk == napi_int32_array && nk <= SERVE_POINTS) {
    g_serve.ndoc = nd;
    g_serve.ndoc_tid = (int)nk;
    memcpy(g_serve.doc_tid, dk, nk * 4);
  }
  g_serve.on = on;
  return NULL;
}

static napi_value n_pid(napi_env env, napi_callback_info info) { return mkint(env, g_pid); }

/* softWatch(index, addr, length): a software write watchpoint in slot index (0-15); length 0 frees it. */
static napi_value n_softwatch(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t i = geti(env, argv[0]);
  uint64_t addr = 0;
  get_u64(env, argv[1], &addr);
  int64_t len = geti(env, argv[2]);
  if (i < 0 || i >= MAX_SW || len < 0 || len > SW_BYTES) {
    napi_throw_range_error(env, NULL, "softWatch: slot 0-15, length 0-4096");
    return NULL;
  }
  g_sw[i].addr = addr;
  g_sw[i].len = (size_t)len;
  g_nsw = 0;
  for (int k = 0; k < MAX_SW; k++) g_nsw += g_sw[k].len != 0;
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"spawn", 0, n_spawn, 0, 0, 0, napi_default, 0},
      {"attach", 0, n_attach, 0, 0, 0, napi_default, 0},
      {"detach", 0, n_detach, 0, 0, 0, napi_default, 0},
      {"kill", 0, n_kill, 0, 0, 0, napi_default, 0},
      {"threads", 0, n_threads, 0, 0, 0, napi_default, 0},
      {"regs", 0, n_regs, 0, 0, 0, napi_default, 0},
      {"setDebugRegs", 0, n_setdr, 0, 0, 0, napi_default, 0},
      {"readMemory", 0, n_read, 0, 0, 0, napi_default, 0},
      {"writeMemory", 0, n_write, 0, 0, 0, napi_default, 0},
      {"insertBreakpoint", 0, n_bp_insert, 0, 0, 0, napi_default, 0},
      {"removeBreakpoint", 0, n_bp_remove, 0, 0, 0, napi_default, 0},
      {"interrupt", 0, n_interrupt, 0, 0, 0, napi_default, 0},
      {"signalPolicy", 0, n_sigpolicy, 0, 0, 0, napi_default, 0},
      {"catchSyscall", 0, n_catchsys, 0, 0, 0, napi_default, 0},
      {"catchEvents", 0, n_catchev, 0, 0, 0, napi_default, 0},
      {"drainEvents", 0, n_drain, 0, 0, 0, napi_default, 0},
      {"resume", 0, n_resume, 0, 0, 0, napi_default, 0},
      {"pid", 0, n_pid, 0, 0, 0, napi_default, 0},
      {"softWatch", 0, n_softwatch, 0, 0, 0, napi_default, 0},
      {"replyAhead", 0, n_reply_ahead, 0, 0, 0, napi_default, 0},
      {"serveAhead", 0, n_serve_ahead, 0, 0, 0, napi_default, 0},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
