/**
 * Virtual time of the standard-PC devices. Every device is a function of the instruction count:
 * one guest instruction is one nanosecond (a 1 GHz machine), plus the time skipped while every
 * vCPU idled in `hlt` waiting for the next timer (see Machine.slice). Nothing reads the host clock.
 */

/** Nanoseconds per second, and the 8254's input clock (Hz) as on every PC. */
export const NS_PER_S = 1_000_000_000n;
export const PIT_HZ = 1_193_182n;

/** A line from a device to the interrupt controllers: `set(level)`; edges are the controllers' business. */
export type IrqLine = (level: boolean) => void;

/** Something that wants the machine to stop at a virtual time (a timer's next expiry). */
export interface Timed {
  /** The next virtual time (ns) at which this device changes state by itself, or undefined. */
  nextEvent(): bigint | undefined;
  /** Bring the device's state up to virtual time `now` (fire expired timers). */
  advance(now: bigint): void;
}
