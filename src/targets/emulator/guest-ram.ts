/**
 * Guest RAM for a replay: a Buffer over a SharedArrayBuffer, which V8 does not count as the
 * isolate's external memory (a shared backing store has no per-isolate owner).
 *
 * A plain Buffer.alloc of 128 MiB adds 128 MiB to V8's external memory, and crossing its limit
 * starts a scavenge and a mark-compact at once ("external memory pressure"): 20-60 ms of the first
 * reverse step on a live guest (issue 10's <= 50 ms), which opens a replay of its own recording,
 * were those collections, for a heap of 15-25 MB. The memory is zeroed lazily as calloc'd memory
 * is (pages appear when written), and freed when the buffer is collected; since no collection is
 * hurried by it, `releaseGuestRam` gives its pages back as soon as the replay closes.
 *
 * Nothing here is handed to another thread: shared memory would be shared, not copied.
 *
 * A live machine's RAM is made otherwise (emuHooks().allocRam: 2 MiB-aligned and asked for
 * transparent huge pages, which halve a memory-filling boot such as xv6's): it is allocated once,
 * at start, where the collection it may start costs little, and it is not given back early.
 */

import { emuHooks } from './emu-hooks.js';

export function allocGuestRam(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

/** The RAM's pages back to the kernel (they read as zeros afterwards); for a RAM no one uses any more. */
export function releaseGuestRam(ram: Buffer): void {
  emuHooks().releaseRam(ram);
}
