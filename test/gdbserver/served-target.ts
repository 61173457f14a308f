// A GDB server on a target, for one describe block: the target opened and served before its tests,
// both closed after; `logs` collects what the server logs.
import { afterAll, beforeAll } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import type { Target } from '../../src/targets/target.js';

export interface ServedTarget<T extends Target> {
  target: T;
  server: GdbServerHandle;
  readonly logs: string[];
}

export function servedTarget<T extends Target>(open: () => T | Promise<T>): ServedTarget<T> {
  const s = { logs: [] as string[] } as ServedTarget<T>;
  beforeAll(async () => {
    s.target = await open();
    s.server = await serveGdb(s.target, undefined, { port: 0, log: (m) => s.logs.push(m) });
  }, 150_000);
  afterAll(async () => {
    await s.server?.close();
    s.target?.close();
  });
  return s;
}
