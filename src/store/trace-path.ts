/** Where `dbg live` records when no --record FILE is given: a new file in the trace folder (trace-folder.ts). */

import { basename, join } from 'node:path';
import { traceFolder } from './trace-folder.js';

export function defaultTracePath(guest: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return join(traceFolder(), `${basename(guest)}-${stamp}-${process.pid}.trace`);
}
