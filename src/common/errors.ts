/**
 * The one error class of dbg.
 *
 * Every expected failure (bad input, an address the target does not have, an operation the target
 * cannot do) is a DbgError with a code. Callers report it and go on: a dcmd prints the message, the
 * GDB server answers `Exx`, a CLI in `-e` mode exits non-zero. Anything that is not a DbgError is a
 * bug in dbg and is shown with its stack.
 *
 * Messages say what failed, the bad value, what was expected, and what to do next, in one line:
 *   read of 16 bytes at 0x00007fff0000 failed: not mapped in core "a.core" (nearest 0x7ffe0000-0x7ffeffff)
 */

export type ErrorCode =
  | 'unmapped' // an address the target has no bytes for
  | 'unsupported' // the target lacks the capability
  | 'read-only' // a write to a target that was not opened writable
  | 'bad-input' // a command, flag, expression or packet the user sent is malformed
  | 'no-symbol' // a symbol name that no loaded symbol table defines
  | 'corrupt' // a file (dump, ELF, trace) whose contents contradict themselves or are cut short
  | 'not-found' // a file or object that does not exist
  | 'trace-version' // a trace written by another schema version
  | 'state' // an operation not possible in the target's current state (e.g. running)
  | 'denied' // an operation the user did not allow (a remote client touching the host)
  | 'interrupted' // the user stopped a long operation (Ctrl-C)
  | 'io'; // an operating-system error reading or writing a file

export class DbgError extends Error {
  override readonly name = 'DbgError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isDbgError(e: unknown): e is DbgError {
  return e instanceof DbgError;
}

/** The message of an expected failure, or the stack of a bug. */
export function describeError(e: unknown): string {
  if (e instanceof DbgError) return e.message;
  if (e instanceof Error) return e.stack ?? e.message;
  return String(e);
}

export const errors = {
  unsupported(targetName: string, what: string): DbgError {
    return new DbgError('unsupported', `${what} is not supported by ${targetName}`);
  },
  badInput(message: string): DbgError {
    return new DbgError('bad-input', message);
  },
  corrupt(file: string, message: string): DbgError {
    return new DbgError('corrupt', `${file}: ${message}`);
  },
  noSymbol(name: string, where = 'any loaded symbol table'): DbgError {
    return new DbgError('no-symbol', `unknown symbol "${name}": not defined in ${where}`);
  },
  notFound(what: string): DbgError {
    return new DbgError('not-found', what);
  },
  readOnly(targetName: string, what: string): DbgError {
    return new DbgError('read-only', `${what} refused: ${targetName} is read-only`);
  },
  state(message: string): DbgError {
    return new DbgError('state', message);
  },
};
