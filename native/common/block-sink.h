/*
 * How a fast engine (native/emu/emu.c, "Fast engine") tells a recorder (native/recorder) what it
 * runs, so that a recorded vCPU keeps the fast engine's per-block speed. The recorder owns the
 * sink and hands its address (a BigInt) to emu.c's `recordTo`; the two addons share nothing else.
 *
 * The contract, as emu.c keeps it:
 *   - block() is called from the fast engine's block hook for every block it lets run, before any
 *     of the block's instructions: its linear pc, the CS base (pc = cs_base + eip), its n
 *     instructions (contiguous: instruction i + 1 starts where i ends) as lens[i] = length
 *     (SINK_LEN) | SINK_STORES when it may store, and where the engine keeps eip. Unicorn syncs
 *     eip before a plain integer store while a memory hook exists, so the recorder's write hook
 *     finds the storing instruction from it. A block with a store that Unicorn makes with a stale
 *     eip (atomics, SSE, x87, helpers: emu.c's plain_store) is never told: the exact engine runs
 *     it. `lens` stays valid until the slice ends.
 *   - ran() is called before each stretch either engine runs in a slice (runFast), with the
 *     instructions of the slice that completed so far. A block cut short (a hand-over inside it, a
 *     fault) and the exact engine's hook call for the instruction it was stopped before were told
 *     or seen as run: the recorder takes them back to `done`. The end of the slice is told by the
 *     machine (afterSlice's `executed`), not here.
 *   Both run on the engine's thread, inside uc_emu_start or between two of its calls.
 */
#ifndef DBG_BLOCK_SINK_H
#define DBG_BLOCK_SINK_H

#include <stdint.h>

#define EMU_BLOCK_SINK_VERSION 1
#define SINK_LEN 0x0f
#define SINK_STORES 0x80

typedef struct emu_block_sink {
  uint32_t version; /* EMU_BLOCK_SINK_VERSION */
  void *ud;
  void (*block)(void *ud, uint64_t pc, uint64_t cs_base, const uint8_t *lens, uint32_t n, const uint64_t *eip);
  void (*ran)(void *ud, uint64_t done);
} emu_block_sink;

#endif
