/**
 * The typed request layer between the wire and the target (as rr's GdbRequest): each packet the
 * client may send is parsed, in commands/, into one of these; the session acts on them without
 * looking at packet text again.
 */

import type { WatchKind } from '../targets/target.js';

/**
 * A thread as gdb names it: `p<pid>.<tid>` with multiprocess, else `<tid>`; -1 is "all", 0 "any".
 * `index` is the number on the wire: a live process's LWP id (the client maps it to the target's
 * index), else the target's index itself (threads 1..N of pid 1).
 */
export type ThreadSel = { kind: 'all' } | { kind: 'any' } | { kind: 'thread'; index: number };

export type ResumeAction = { action: 'step' | 'continue'; thread: ThreadSel; signal?: number };

export type Request =
  | { kind: 'query-supported'; features: readonly string[] }
  | { kind: 'start-noack' }
  /** lldb's QEnableErrorStrings: error replies become `Exx;HEX-TEXT` (gdb's form is `E.TEXT`). */
  | { kind: 'enable-error-strings' }
  | { kind: 'halt-reason' }
  | { kind: 'read-registers' }
  | { kind: 'write-registers'; data: Buffer }
  | { kind: 'read-register'; regno: number }
  | { kind: 'write-register'; regno: number; data: Buffer }
  | { kind: 'read-memory'; addr: bigint; length: number }
  | { kind: 'write-memory'; addr: bigint; data: Buffer }
  | { kind: 'insert-point' | 'remove-point'; type: PointType; addr: bigint; length: number }
  | { kind: 'resume'; actions: readonly ResumeAction[] }
  | { kind: 'resume-query' }
  | { kind: 'reverse'; action: 'step' | 'continue' }
  | { kind: 'set-thread'; op: 'g' | 'c'; thread: ThreadSel }
  | { kind: 'thread-alive'; thread: ThreadSel }
  | { kind: 'current-thread' }
  | { kind: 'thread-info'; first: boolean }
  | { kind: 'xfer-read'; object: XferObject; annex: string; offset: number; length: number }
  | { kind: 'attached' }
  | { kind: 'monitor'; command: string }
  | { kind: 'offsets' }
  | { kind: 'symbol-lookup' }
  | { kind: 'kill' }
  /** D, or D;PID: the client decides whether PID is the target's or a fork child's (already detached). */
  | { kind: 'detach'; pid?: number }
  | { kind: 'must-reply-empty' }
  /** gdb's `catch syscall`: stop at entry and return of these calls (a live process). */
  | { kind: 'catch-syscalls'; on: false }
  | { kind: 'catch-syscalls'; on: true; nrs: readonly number[] | 'all' }
  /** QThreadEvents:1|0: report threads created (`create:`) and exited (`w`) as stops. */
  | { kind: 'thread-events'; on: boolean }
  /** vFile (host I/O, read-only; see host-files.ts). */
  | { kind: 'file'; op: 'setfs' }
  | { kind: 'file'; op: 'open'; path: string; flags: number }
  | { kind: 'file'; op: 'pread'; fd: number; count: number; offset: number }
  | { kind: 'file'; op: 'fstat' | 'close'; fd: number }
  /** A packet dbg does not implement: the reply is empty, as the protocol asks. */
  | { kind: 'unknown'; packet: string };

export type XferObject = 'features' | 'threads' | 'libraries-svr4' | 'auxv' | 'exec-file';

/** Z/z types: 0 software breakpoint, 1 hardware breakpoint, 2 write, 3 read, 4 access watchpoint. */
export type PointType = 'sw' | 'hw' | WatchKind;

/** A packet that was recognised but whose arguments are wrong: the reply is `E<code>`. */
export class BadPacket extends Error {
  constructor(
    readonly packet: string,
    readonly why: string,
  ) {
    super(`bad packet "${packet.length > 60 ? packet.slice(0, 60) + '...' : packet}": ${why}`);
  }
}
