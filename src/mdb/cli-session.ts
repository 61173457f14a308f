/**
 * The terminal side of a session: `-e 'CMDS'` scripts and the interactive REPL, used by
 * `dbg open`, `dbg live` and `dbg replay`.
 *
 *   - Output goes to stdout. With --json every answer is one JSON value per line: dcmds with
 *     structure print objects or arrays, other output prints as JSON strings.
 *   - An expected failure (DbgError) prints one line `dbg: <message>` on stderr (with --json, an
 *     {"error": …} object on stdout; see json.ts). Anything else is a bug in dbg and prints its stack.
 *   - `-e`: statements run in order and the first failure stops the script (as `sh -e` would:
 *     later commands usually depend on earlier ones, such as a thread selection); the exit
 *     status is then 1. A script that succeeds exits 0.
 *   - REPL: history in ~/.dbg_history, line editing by node:readline, Tab completes dcmds,
 *     walkers, symbols and file names (completer.ts), Ctrl-R searches the history
 *     (reverse-search.ts); the prompt is "> " as MDB's, or `[seq N, past]> ` on a recording.
 *   - A failing line that is a gdb habit (`bt`, `info registers`, `x/4gx`, `p`) gets the MDB
 *     command that does it appended to its error (gdb-hints.ts).
 *     At a terminal an empty line repeats the last display format at the next address, as in MDB.
 *     A failing command is reported and the session goes on. When stdin is not a terminal the
 *     same loop reads commands from it without a prompt, and exits 1 if any command failed.
 *   - Ctrl-C while a command runs asks the target to stop (`caps.execution.interrupt()`) and ends
 *     the line or `-e` script there (the rest is not run: "dbg: interrupted: …", exit status 130);
 *     a second Ctrl-C before that command has stopped exits dbg (through the caller's SIGINT
 *     handler, which finishes a trace being recorded). At the prompt it clears the line. The
 *     target stays open: the caller closes it.
 */

import { appendFileSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DbgError, isDbgError } from '../common/errors.js';
import { completeLine } from './completer.js';
import { gdbHint } from './gdb-hints.js';
import { errorJson } from './json.js';
import { addReverseSearch } from './reverse-search.js';
import { historyBounds, type Target } from '../targets/target.js';
import type { DcmdModule, Output } from './dcmd.js';
import { builtinModules } from './modules/index.js';
import { Session } from './session.js';

export interface CliSessionOptions {
  /** Commands to run instead of reading a REPL (`-e`). */
  readonly execute?: string;
  readonly json?: boolean;
  readonly prompt?: string;
  /** Modules beyond the built-in ones (a command's own dcmds). */
  readonly modules?: readonly DcmdModule[];
  /** Run in this session rather than a new one (shared with a server: the control contract). */
  readonly session?: Session;
}

const HISTORY_LINES = 1000;

export function historyFile(): string {
  return process.env.DBG_HISTORY ?? join(homedir(), '.dbg_history');
}

/**
 * Print a failure the way dbg prints them: one line `dbg: …` on stderr, or with --json one object
 * {"error": {"code", "message"}} on stdout (src/mdb/json.ts). Returns nothing, never throws.
 */
export function reportError(e: unknown, json = false): void {
  flushStdout();
  const internal = `internal error (a bug in dbg): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  if (json) process.stdout.write(`${errorJson(isDbgError(e) ? e.code : 'internal', isDbgError(e) ? e.message : internal)}\n`);
  else if (isDbgError(e)) process.stderr.write(`dbg: ${e.message}\n`);
  else process.stderr.write(`dbg: ${internal}\n`);
}

/**
 * Lines for stdout not yet written. A listing of 400,000 symbols is 400,000 lines: one write(2)
 * each costs more than making them, so lines are gathered and written when 64 KiB have
 * accumulated, when the running code yields (a microtask), and before anything goes to stderr.
 */
let pending = '';
let flushQueued = false;

export function flushStdout(): void {
  if (pending === '') return;
  const text = pending;
  pending = '';
  process.stdout.write(text);
}

function writeStdout(text: string): void {
  pending += text;
  if (pending.length >= 65536) flushStdout();
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(() => {
      flushQueued = false;
      flushStdout();
    });
  }
}

export function stdoutOutput(json: boolean): Output {
  return {
    jsonMode: json,
    line(text) {
      writeStdout((json ? JSON.stringify(text) : text) + '\n');
    },
    json(value) {
      writeStdout(JSON.stringify(value) + '\n');
    },
    warn(text) {
      flushStdout();
      process.stderr.write(`dbg: ${text}\n`);
    },
  };
}

/** Run a session on `target` until the script ends, ::quit, or end of input. Returns the exit status. */
export async function runSession(target: Target, opts: CliSessionOptions = {}): Promise<number> {
  const session = opts.session ?? new Session(target, [...builtinModules, ...(opts.modules ?? [])]);
  const out = stdoutOutput(opts.json ?? false);
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
  });
  // Warnings found at open, then after each command those it brought (modules loaded on first use).
  let warned = 0;
  const newWarnings = (): void => {
    const ws = target.warnings ?? [];
    for (; warned < ws.length; warned++) process.stderr.write(`dbg: warning: ${ws[warned]}\n`);
  };
  newWarnings();

  let running = false;
  /** Ctrl-Cs since the running command started: the first stops it, a second exits dbg. */
  let interrupts = 0;
  const onSigint = (): void => {
    if (running && ++interrupts >= 2) {
      // The command did not stop: leave to the next SIGINT listener (the live guest's clean exit,
      // which finishes the trace) or to the default action.
      process.off('SIGINT', onSigint);
      process.stderr.write('dbg: second interrupt: exiting\n');
      process.kill(process.pid, 'SIGINT');
      return;
    }
    if (running) session.interrupt();
    if (running && target.caps.execution) {
      target.caps.execution.interrupt();
      return;
    }
    if (!running || opts.execute !== undefined || !process.stdin.isTTY) process.exit(130);
  };

  const run = async (line: string): Promise<boolean> => {
    running = true;
    interrupts = 0;
    try {
      if (line.trim() === '') await session.repeat(out);
      else await session.execute(line, out);
      return true;
    } catch (e) {
      reportError(withGdbHint(e, line), opts.json);
      return false;
    } finally {
      running = false;
      flushStdout();
      newWarnings();
    }
  };

  if (opts.execute !== undefined) {
    process.on('SIGINT', onSigint);
    try {
      if (await run(opts.execute)) return 0;
      return session.signal.aborted ? 130 : 1;
    } finally {
      process.off('SIGINT', onSigint);
    }
  }

  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  // Where the session is: `[seq 1000538, past]> ` in the recorded past, `[seq N]> ` at the
  // present of a recorded guest, `> ` (MDB's) on a dump.
  const promptFor = (): string => {
    if (opts.prompt) return opts.prompt;
    const b = historyBounds(target);
    return b ? `[seq ${b.now}${b.now < b.last ? ', past' : ''}]> ` : '> ';
  };
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
    history: tty ? loadHistory() : [],
    historySize: HISTORY_LINES,
    removeHistoryDuplicates: true,
    prompt: promptFor(),
    completer: (line: string) => completeLine(session, line),
  });
  if (tty) addReverseSearch(rl, promptFor);
  rl.on('SIGINT', () => {
    if (running) {
      process.stdout.write('^C\n');
      onSigint();
      return;
    }
    // At the prompt: drop what was typed and start a fresh line.
    rl.write(null, { ctrl: true, name: 'u' });
    process.stdout.write('^C\n');
    rl.prompt();
  });
  if (!tty) process.on('SIGINT', onSigint);

  let failed = false;
  try {
    if (tty) rl.prompt();
    for await (const line of rl) {
      // A blank line repeats the last format at a terminal; in a script it is only a blank line.
      if (line.trim() !== '' || tty) {
        if (line.trim() !== '' && tty) saveHistory(line);
        if (!(await run(line))) failed = true;
        if (session.quitRequested) break;
      }
      if (tty) {
        rl.setPrompt(promptFor());
        rl.prompt();
      }
    }
  } finally {
    rl.close();
    if (!tty) process.off('SIGINT', onSigint);
  }
  return failed && !tty ? 1 : 0;
}

function loadHistory(): string[] {
  try {
    const lines = readFileSync(historyFile(), 'utf8').split('\n').filter((l) => l.trim() !== '');
    return lines.slice(-HISTORY_LINES).reverse();
  } catch {
    return [];
  }
}

function saveHistory(line: string): void {
  try {
    appendFileSync(historyFile(), line.replace(/\n/g, ' ') + '\n');
  } catch {
    // History is a convenience: a read-only home must not break the session.
  }
}

/** A failed line's error with the MDB way to do what it asked in gdb's language, when it was gdb's. */
function withGdbHint(e: unknown, line: string): unknown {
  const hint = isDbgError(e) ? gdbHint(line) : undefined;
  return hint ? new DbgError((e as DbgError).code, `${(e as DbgError).message}; ${hint}`) : e;
}
