/**
 * Whether dbg may use the terminal on its stdin. A job started with `&` from an interactive shell
 * keeps the terminal as stdin but is not in the terminal's foreground process group: the kernel
 * stops it with SIGTTOU when it changes the terminal's modes (readline's raw mode) and with SIGTTIN
 * when it reads. Such a job must leave the terminal alone.
 */

import { readFileSync } from 'node:fs';

/**
 * True when /proc/self/stat says this process's group is not the terminal's foreground group
 * (fields pgrp and tpgid, after the parenthesised command name, which may itself hold spaces or
 * parentheses). Where /proc is not readable the answer is false: the process is taken to be in
 * the foreground, as before this check existed.
 */
export function inBackground(): boolean {
  let stat: string;
  try {
    stat = readFileSync('/proc/self/stat', 'utf8');
  } catch {
    return false;
  }
  // pid (comm) state ppid pgrp session tty_nr tpgid ...
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const pgrp = Number(f[2]);
  const tpgid = Number(f[5]);
  return tpgid > 0 && pgrp !== tpgid;
}
