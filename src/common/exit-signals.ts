/**
 * A clean exit on SIGTERM, SIGHUP and SIGINT for a command that holds something to finish (a
 * trace being recorded): `cleanup` runs, then the process exits with 128 + the signal number, as
 * the default action would have ended it. A signal that something else listens for (SIGINT that
 * interrupts a running guest, the GDB server's stop) is left to that listener.
 *
 * The handler runs between two turns of the event loop, never inside synchronous work (an
 * emulator slice, a SQLite transaction), so `cleanup` sees consistent state.
 */

import { constants } from 'node:os';

const SIGNALS = ['SIGTERM', 'SIGHUP', 'SIGINT'] as const;

/** Install the handlers; the function returned removes them. */
export function exitCleanlyOnSignals(cleanup: () => void): () => void {
  const handlers = SIGNALS.map((sig) => {
    const h = (): void => {
      if (process.listenerCount(sig) > 1) return;
      try {
        cleanup();
      } finally {
        process.exit(128 + constants.signals[sig]);
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}
