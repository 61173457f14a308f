import { DbgError } from './errors.js';

/** A failed open or read of a file as one line: `cannot read kernel "k": no such file`. */
export function fileError(what: string, e: unknown): DbgError {
  const err = e as NodeJS.ErrnoException;
  const why =
    { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a directory', ENOTDIR: 'a component of the path is not a directory' }[err.code ?? ''] ??
    err.message;
  return new DbgError(err.code === 'ENOENT' ? 'not-found' : 'io', `${what}: ${why}`);
}
