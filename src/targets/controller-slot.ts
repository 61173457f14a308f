/**
 * One controller at a time per target, whichever protocol it speaks (GDB's RSP, the plain-text
 * contract): the servers of one target share this slot, so a second controller is refused with a
 * reason naming the one in control, and may take over as soon as that one has left.
 *
 * The slot holds who controls, not what they did: each server removes its own client's points
 * and stops a run it left going before it releases the slot.
 */

import type { Target } from './target.js';

export interface Controller {
  /** 'gdb' or 'contract'. */
  readonly protocol: string;
  /** "127.0.0.1:41234". */
  readonly peer: string;
}

/** How long a new client waits for the attached one to leave before it is refused. */
const LEAVE_GRACE_MS = 500;

const PROTOCOL_NAMES: Record<string, string> = { gdb: 'the GDB remote protocol', contract: 'the dbg control contract' };

export class ControllerSlot {
  private current: Controller | undefined;
  private released: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;

  private static readonly slots = new WeakMap<Target, ControllerSlot>();

  /** The slot of `target`, shared by every server of that target. */
  static of(target: Target): ControllerSlot {
    let s = ControllerSlot.slots.get(target);
    if (!s) ControllerSlot.slots.set(target, (s = new ControllerSlot()));
    return s;
  }

  get holder(): Controller | undefined {
    return this.current;
  }

  /** Take the slot for `c`; false when another controller holds it. */
  claim(c: Controller): boolean {
    if (this.current) return false;
    this.current = c;
    this.released = new Promise<void>((resolve) => (this.release = resolve));
    return true;
  }

  /** `c` has left; another may claim. Harmless when `c` does not hold the slot. */
  leave(c: Controller): void {
    if (this.current !== c) return;
    this.current = undefined;
    this.release();
  }

  /**
   * Give the holder a moment to be seen leaving (a client that closes and reconnects at once):
   * resolves when it left, or after LEAVE_GRACE_MS; then claim() says whether the slot is free.
   */
  grace(): Promise<void> {
    if (!this.current) return Promise.resolve();
    return Promise.race([this.released, new Promise<void>((r) => setTimeout(r, LEAVE_GRACE_MS).unref())]);
  }

  /**
   * Why a new client of `protocol`'s server (named `server` for the user) is refused: names the
   * holder, and the protocol it speaks when that is another one.
   */
  refusal(protocol: string, server: string): string {
    const h = this.current;
    if (!h) return '';
    const over = h.protocol === protocol ? '' : `, over ${PROTOCOL_NAMES[h.protocol] ?? h.protocol}`;
    return `another debugger (${h.peer}${over}) is attached to this dbg ${server}; only one at a time`;
  }
}
