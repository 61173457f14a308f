/*
 * Does this machine deliver x86 debug-register traps to a ptrace tracer? A child stops itself,
 * the parent arms DR0 as a 4-byte write watchpoint on a variable through PTRACE_POKEUSER, and the
 * child writes it. Prints "fired" (SIGTRAP at the write) or "silent" (the child ran to its exit:
 * some hypervisors accept DR7 but never raise #DB, and gdb's hardware watchpoints are silent too).
 */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

volatile int watched;

int main(void) {
  pid_t child = fork();
  if (child == 0) {
    ptrace(PTRACE_TRACEME, 0, NULL, NULL);
    raise(SIGSTOP);
    watched = 1;
    _exit(0);
  }
  int status;
  waitpid(child, &status, 0);
  /* DR7: L0 enabled, R/W0 = 01 (write), LEN0 = 11 (4 bytes). */
  unsigned long dr7 = 1ul | (1ul << 16) | (3ul << 18);
  if (ptrace(PTRACE_POKEUSER, child, offsetof(struct user, u_debugreg[0]), (void *)&watched) != 0 ||
      ptrace(PTRACE_POKEUSER, child, offsetof(struct user, u_debugreg[7]), (void *)dr7) != 0) {
    perror("PTRACE_POKEUSER");
    return 2;
  }
  ptrace(PTRACE_CONT, child, NULL, NULL);
  waitpid(child, &status, 0);
  puts(WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP ? "fired" : "silent");
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return 0;
}
