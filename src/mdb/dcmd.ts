/**
 * What a debugger command (dcmd) and a walker are, and what they may use of the session.
 *
 * As in MDB, a dcmd is invoked as `[addr][,count]::name [args]` (or `addr/fmt`, `$r`... which
 * the parser maps onto dcmds). The parser evaluates the address and count; the arguments are
 * handed over as words, and the dcmd parses its own flags with `parseFlags` so that every dcmd
 * reports a bad flag the same way.
 *
 * Modules register their dcmds and walkers in a DcmdModule (src/mdb/modules/*.ts); a loadable
 * debugger module (dmod) is a file exporting one.
 */

import type { CapabilityName, Target } from '../targets/target.js';

/** Where a dcmd writes. In --json mode a dcmd with structured output calls json() instead of line(). */
export interface Output {
  line(text: string): void;
  json(value: unknown): void;
  readonly jsonMode: boolean;
  /** A note beside the answer (a list that cycles, a frame that could not be read): stderr, never a pipe. */
  warn?(text: string): void;
  /** True when this output feeds the next stage of a pipe rather than the terminal. */
  readonly piping?: boolean;
  /**
   * Puts a value into the pipe (only when `piping`): a dcmd that calls it passes exactly these
   * values to the next stage, and its text lines are not parsed for addresses.
   */
  value?(v: bigint): void;
}

export interface Invocation {
  /** The address before `::`, when one was given; else undefined (a dcmd may default to dot). */
  readonly addr?: bigint;
  /** The count after `,`, when one was given. */
  readonly count?: bigint;
  /** Words after the dcmd name, unevaluated. */
  readonly args: readonly string[];
  /** True when invoked once per address coming from a pipe (`::walk x | ::print`). */
  readonly piped: boolean;
}

/** The part of the session dcmds may use. */
export interface SessionView {
  readonly target: Target;
  /** The selected thread, 1-based. */
  thread: number;
  /** MDB's dot: the last address used. */
  dot: bigint;
  /** Evaluate an MDB expression (hex numbers by default, symbols, `*addr`, `.`). */
  evaluate(expr: string): bigint;
  /** Run a command line as if typed, writing to `out`. */
  execute(line: string, out: Output): Promise<void>;
  /** Aborted when the user interrupts the running command (Ctrl-C): long dcmds stop on it. */
  readonly signal: AbortSignal;
  /** Replace the session's target (e.g. after `::dump` is reopened, or a trace is loaded). */
  readonly state: Map<string, unknown>;
}

export interface Dcmd {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** e.g. '[addr]::vtop [-p]'. */
  readonly usage: string;
  /** One line for `::help`; more after a blank line for `::help name`. */
  readonly help: string;
  /** Capabilities the target must have; ::help marks the dcmd unavailable otherwise. */
  readonly needs?: readonly CapabilityName[];
  /**
   * What the dcmd does to the machine dbg runs on, beyond the target: a session that serves a
   * remote client (gdb's `monitor`) refuses such dcmds unless the user allowed it when starting dbg.
   */
  readonly host?: HostEffect;
  /**
   * True when the dcmd reads `,count` itself (`addr,len::hexdump`); otherwise `addr,count::dcmd`
   * runs it count times, as MDB does. A usage showing `[,len]` or `[,count]` says the same.
   */
  readonly readsCount?: boolean;
  run(session: SessionView, inv: Invocation, out: Output): void | Promise<void>;
}

/** A dcmd's effect on the host: it runs code from a file, or reads or writes a file the user names. */
export type HostEffect = 'loads-code' | 'reads-files' | 'writes-files';

export interface Walker {
  readonly name: string;
  readonly help: string;
  readonly needs?: readonly CapabilityName[];
  /** Yields addresses; `addr` is the starting point when one was given (`addr::walk name`). */
  walk(session: SessionView, addr: bigint | undefined): Iterable<bigint>;
}

/** A set of dcmds and walkers, as a built-in module or a loadable dmod exports it. */
export interface DcmdModule {
  readonly name: string;
  readonly dcmds: readonly Dcmd[];
  readonly walkers?: readonly Walker[];
}
