/** Where `dbg live` records when no --record FILE is given: $XDG_CACHE_HOME/dbg, else ~/.cache/dbg. */

import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { DbgError } from '../common/errors.js';

export function defaultTracePath(guest: string, now = new Date()): string {
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dbg');
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new DbgError('io', `cannot create the trace directory ${dir}: ${(e as Error).message} (pass --record FILE or --no-record)`);
  }
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join(dir, `${basename(guest)}-${stamp}-${process.pid}.trace`);
}
