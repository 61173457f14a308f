/**
 * One turn of the event loop (timers, I/O, then this callback): what a test that runs long
 * synchronous work (child processes through spawnSync, in-process emulation) awaits between its
 * steps. Vitest's worker asks its parent for things over RPC and gives up on an answer after
 * 60 s; an answer waits for the worker's event loop to read it, and a test that never lets the
 * loop turn for a minute — easily reached at load 10 — ends the whole run in "Timeout calling
 * onTaskUpdate" although every test passed.
 */
export function turnEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
