#define _GNU_SOURCE
/*
 * dbg's emulator hooks: instruction counting, breakpoints and watchpoints for one Unicorn engine,
 * in C so that they cost nothing measurable while not hit.
 *
 * The engine comes from koffi (src/targets/emulator/unicorn.ts) as a BigInt address. For each
 * engine, create() installs:
 *   - a code hook on every instruction that counts the instructions of the current slice and
 *     stops at the slice limit (uc_emu_start's own count= works the same way, but does not say
 *     how many instructions ran when something else stopped the engine);
 *   - an interrupt hook (CPU exceptions, int n: Unicorn never delivers them through the guest's
 *     IDT), an invalid-memory hook and an invalid-instruction hook, each recording why it stopped.
 * Breakpoints and exec watchpoints are tested by the counting hook itself (a bitmap filter, then
 * the list). Read/write watchpoints are trap pages: the 4 KiB pages they cover are mapped as MMIO
 * over the same host RAM, so only accesses to those pages leave Unicorn's inline TLB fast path
 * (see "Trap pages" below; a Unicorn memory hook would send every access of every page through
 * the slow path).
 *
 * Counting rule (see execution-observer.ts): the counter hook runs first for every instruction.
 *   stop at the limit, at a breakpoint, at an exec watchpoint: that instruction did not run,
 *     executed = counter - 1;
 *   read/write watchpoint: the accessing instruction completes and the engine stops before the
 *     next one (stop_pc), executed = counter - 1 (stop_counter = the accessing instruction's number);
 *   data fault, invalid instruction: the faulting instruction did not complete, executed = counter - 1;
 *   fetch fault: nothing was counted for the unfetchable instruction, executed = counter;
 *   the engine returned by itself (hlt) or a trap (int3): executed = counter.
 */
#include <node_api.h>
#include "../common/napi-args.h"
#include "../common/block-sink.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>
#include <capstone/capstone.h>
#include "phys.h"
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

enum stop_kind {
  STOP_NONE = 0,
  STOP_LIMIT = 1,
  STOP_BREAKPOINT = 2,
  STOP_WATCH = 3,
  STOP_INTERRUPT = 4,
  STOP_BAD_MEMORY = 5,
  STOP_BAD_INSN = 6,
  STOP_REQUEST = 7,
  STOP_HANDOFF = 8, /* fast engine only: the exact engine must run next (never reported) */
  STOP_SPIN = 9,    /* the vCPU came back to a state it was in (see "Spin detection") */
};

enum watch_bits { W_READ = 1, W_WRITE = 2, W_EXEC = 4 };

typedef struct ctx ctx;

typedef struct point {
  ctx *c;
  int32_t id;
  int32_t bits; /* 0 for a breakpoint */
  uint64_t begin, end; /* inclusive */
  struct point *next, *prev; /* every point of the engine */
  struct point *hnext;       /* the next in its id bucket */
} point;

#define ID_BUCKETS 1024u

/* A page of guest memory mapped as MMIO so that dbg sees every access to it (see trap_install). */
typedef struct trap {
  ctx *c;
  uint64_t va;          /* the page, as Unicorn addresses it (guest-virtual) */
  unsigned char *host;  /* its RAM, NULL until installed */
  int refs;             /* watchpoints covering it */
  int fault;            /* a fast engine's stand-in for unmapped memory: every access aborts */
  /* a guard's register that reads as a constant (guardValue): answered without a hand-over */
  int has_const;
  uint32_t const_off, const_size;
  uint64_t const_value;
  struct trap *next;
} trap;

/* Snapshots a slice can take (Brent's from 0, 64, 128... within a 4096-instruction window: 7) */
#define SPIN_LOG 8
/* a logged snapshot: [position, pc, snapAt after it, regs[16]] */
#define SPIN_LOG_WORDS 19

struct ctx {
  uc_engine *uc;
  uint64_t counter;
  uint64_t limit;
  uint64_t last_pc;
  uint64_t skip_pc;
  int skip_armed;
  int pending; /* a stop kind to take before the next instruction */
  int stop_kind;
  int32_t stop_id;
  int32_t stop_access;
  int32_t stop_size;
  uint32_t intno;
  uint64_t stop_pc;
  uint64_t stop_addr;
  uint64_t stop_counter;
  int64_t stop_value;
  uc_hook count_hook, intr_hook, badmem_hook, badinsn_hook;
  point *points;
  trap *traps;
  /* Points by id, so that removing one costs O(1) whatever their number (gdb sends one packet per
     point, and a client may send thousands). */
  point *byid[ID_BUCKETS];
  /* code points (breakpoints, exec watchpoints), checked by on_count: a bitmap filter over the
     addresses of small ranges, then a binary search among them sorted by begin (code[0..nsmall)),
     and the wide ones after them (code[nsmall..ncode)) with their bounds. Rebuilt once after a
     change (code_dirty), at the first instruction that needs it, not at every add or remove. */
  point **code;
  int ncode, nsmall;
  int code_dirty;
  /* data points (read/write watchpoints), for the trap-page handlers */
  point **data;
  int ndata;
  int wide;
  uint64_t wide_lo, wide_hi;
  uint64_t filter[512];
  unsigned char *ram; /* guest RAM (guest-physical 0 .. ram_size), shared by every vCPU */
  uint64_t ram_size;
  uint64_t aliases;   /* virtual ranges mapped so far (see alias_page) */
  /* The fast engine (see "Fast engine" below); all zero in an exact engine. */
  int fast;
  uint64_t env;        /* the engine's CPUX86State (found by enable_features) */
  void *cpu;           /* its CPUState, for precise aborts */
  uc_hook block_hook, in_hook, out_hook;
  uint64_t block_pc, block_size, block_base, block_icount;
  uint64_t handoff_n;  /* instructions the exact engine runs before the fast one goes on */
  int io_ran;          /* port I/O executed in the fast engine: a bug (see on_port_fast) */
  struct blk *blocks;  /* translated blocks seen, by (pc, size, mode) */
  /* blocks met lately, by recent_slot(pc) (see on_block); emptied when `blocks` moves or is emptied */
  struct blk *recent[512];
  size_t nblocks, blocks_cap;
  uint32_t gen;        /* bumped when code points change */
  trap *faults;        /* temporary MMIO pages over unmapped addresses (see on_badmem) */
  trap *guards;        /* device register pages: every access hands over to the exact engine */
  uc_context *xfer;    /* register state moving between the two engines */
  int32_t *old_exception; /* CPUX86State.old_exception (see clear_exception) */
  /* the fast engine's last stores to trap pages in this block (see trap_write) */
  struct undo { uintptr_t host_pc; unsigned char *at; uint64_t old; unsigned size; } undo[16];
  unsigned nundo;
  emu_block_sink *sink; /* a recorder told of every block that runs (see "Recording") */
  /* Guest-physical TLB entries (see "Physical addresses"). */
  int phys;            /* this engine's TLB entries lead to guest-physical addresses */
  int open_bus;        /* OPEN_BUS_PAGE is mapped (see "Open bus") */
  /* device registers past RAM (guard()): guest-physical [dev[i][0], dev[i][1]) is not open bus */
  uint64_t dev[8][2];
  int ndev;
  uint32_t tlb_gen;    /* bumped whenever the engine drops TLB entries by itself */
  uint32_t peer_gen;   /* the other engine's tlb_gen when this one last took the vCPU over */
  /* An interrupt waits for RFLAGS.IF (see irq_open): end the slice where the guest opens it. */
  int irq_wait;
  /* Spin detection (see there): the quantum's detector, carried from slice to slice by machine.ts
     and, within a slice, from engine to engine by runFast. */
  int spin_on;
  uint64_t spin_base;     /* the quantum's instructions before this slice */
  uint64_t spin_prev_end; /* the end (pc + length) of the last instruction run */
  uint64_t spin_prev_pc;  /* its pc */
  uint64_t spin_pc;       /* the snapshot's pc (SPIN_NONE: none) */
  uint64_t spin_snap_at;  /* the next snapshot: at the first branch target from this position on */
  uint64_t spin_until;    /* no detection from this position of the quantum on */
  uint64_t spin_regs[16]; /* the snapshot's general registers */
  /* the snapshots this slice took, as spinLog gives them (machine.ts keeps them for ::discard) */
  unsigned spin_nlog;
  uint64_t spin_log[SPIN_LOG][SPIN_LOG_WORDS];
};

static void stop_now(ctx *c, int kind) {
  c->stop_kind = kind;
  uc_emu_stop(c->uc);
}

static void stop_before(ctx *c, uint64_t addr, int kind);

static void check_code(ctx *c, uint64_t addr, uint32_t size);
static void rebuild_code(ctx *c);
static inline uint32_t fhash(uint64_t a);

static int irq_open(ctx *c);

/* ------------------------------------------------------------------------------------------ */
/* Spin detection                                                                               */
/*
 * A vCPU that comes back to a pc with every general register as it was there has made no
 * progress of its own: until another vCPU, a device or an interrupt changes what it reads, it
 * goes round the same loop (a kernel's idle loop that never halts, as xv6's scheduler; a lock
 * that another vCPU holds; a device status poll). The rest of its quantum would only burn
 * instructions while the vCPU that could change something waits for its turn, so the slice
 * stops there (STOP_SPIN) and machine.ts ends the quantum: VMX's pause-loop exiting, without a
 * pause to key on. Memory is not compared: a loop that moves only memory (a counter in RAM)
 * looks like a spin and yields, which costs it its share of time, never its correctness (any
 * interleaving of vCPUs is one a real machine may run).
 *
 * The schedule must not depend on which engine runs (nor on where the debugger stops the run),
 * so the detector looks only at instructions both engines see as such: a "branch target" is an
 * instruction reached other than by falling through from the one before (pc != the previous
 * instruction's pc + length) and other than by a string instruction repeating itself (pc != the
 * previous instruction's pc). A branch ends a translated block, so the fast engine meets every
 * branch target at a block start; the exact engine meets it in its counting hook; REP STOS done
 * ahead (rep_ahead) repeats the same instruction, never a target. Positions are counted in the
 * quantum (spin_base + instructions of the slice before the instruction), so a slice cut short
 * (a breakpoint, a step, a timer) changes nothing. Brent's cycle finding: a snapshot at the
 * first target from position 0, then from 64, 128, 256...; the next target with the snapshot's
 * pc and registers is the spin. A period up to half the window (spin_until) is found.
 *
 * Where on its loop the spinner stops matters: xv6's idle scheduler holds ptable.lock for most
 * of its round, and a vCPU that yields holding it makes the next one spin on the lock for a
 * whole detection. Each quantum starts its search afresh from where the last one stopped, so
 * the stop drifts round the loop (by the first snapshot's distance, ~512 instructions, modulo
 * the round) and often falls outside the lock. Starting a quantum with the state it stopped at
 * as the snapshot stops it at that same state every round: when that is inside the lock, both
 * vCPUs convoy on it (an xv6 boot to its prompt took 204 M instructions instead of 81 M).
 * Stopping at the cycle's first target with interrupts on (outside xv6's spinlocks) avoided the
 * convoy but cost another round a turn (90 M).
 */
#define SPIN_NONE UINT64_MAX

/* The instruction at pc runs next, the slice having run `before` instructions: is it the spin? */
static int spin_check(ctx *c, uint64_t pc, uint64_t before) {
  /* (SPIN_NONE: the vCPU was moved from outside, an interrupt or a fault: not a target) */
  if (pc == c->spin_prev_end || pc == c->spin_prev_pc || c->spin_prev_pc == SPIN_NONE) return 0;
  uint64_t at = c->spin_base + before;
  if (at >= c->spin_until) {
    c->spin_on = 0;
    return 0;
  }
  const uint64_t *regs = (const uint64_t *)(uintptr_t)c->env;
  if (pc == c->spin_pc && !memcmp(regs, c->spin_regs, sizeof c->spin_regs)) return 1;
  if (at >= c->spin_snap_at) {
    c->spin_pc = pc;
    memcpy(c->spin_regs, regs, sizeof c->spin_regs);
    c->spin_snap_at = at < 32 ? 64 : 2 * at;
    if (c->spin_nlog < SPIN_LOG) {
      uint64_t *e = c->spin_log[c->spin_nlog++];
      e[0] = at;
      e[1] = pc;
      e[2] = c->spin_snap_at;
      memcpy(&e[3], regs, sizeof c->spin_regs);
    }
  }
  return 0;
}

/* The detector moves with the vCPU from one engine to the other (runFast). */
static void spin_copy(const ctx *from, ctx *to) {
  to->spin_on = from->spin_on;
  to->spin_base = from->spin_base;
  to->spin_prev_end = from->spin_prev_end;
  to->spin_prev_pc = from->spin_prev_pc;
  to->spin_pc = from->spin_pc;
  to->spin_snap_at = from->spin_snap_at;
  to->spin_until = from->spin_until;
  memcpy(to->spin_regs, from->spin_regs, sizeof to->spin_regs);
  to->spin_nlog = from->spin_nlog;
  memcpy(to->spin_log, from->spin_log, from->spin_nlog * sizeof from->spin_log[0]);
}

static void on_count(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  ctx *c = (ctx *)ud;
  (void)uc;
  ++c->counter;
  if (c->irq_wait && irq_open(c) && !c->pending && !c->stop_kind) {
    /* the guest opened interrupts: the slice ends before this instruction, as at its limit */
    c->irq_wait = 0;
    c->stop_pc = addr;
    c->stop_counter = c->counter;
    stop_before(c, addr, STOP_LIMIT);
    return;
  }
  if (c->pending) {
    /* a watched access or a device request happened in the previous instruction, which has
       completed: stop before this one */
    int kind = c->pending;
    c->pending = 0;
    c->stop_pc = addr;
    stop_before(c, addr, kind);
    return;
  }
  if (c->counter > c->limit) {
    if (!c->stop_kind) {
      c->stop_pc = addr;
      c->stop_counter = c->counter;
      stop_before(c, addr, STOP_LIMIT);
    }
    return;
  }
  if (c->code_dirty) rebuild_code(c);
  if (c->ncode) {
    uint32_t h = fhash(addr);
    if (((c->filter[h >> 6] >> (h & 63)) & 1) || (c->wide && addr >= c->wide_lo && addr <= c->wide_hi)) {
      check_code(c, addr, size);
      if (c->stop_kind) return;
    }
  }
  if (c->spin_on) {
    if (spin_check(c, addr, c->counter - 1)) {
      c->stop_pc = addr;
      c->stop_counter = c->counter;
      stop_before(c, addr, STOP_SPIN);
      return;
    }
    c->spin_prev_pc = addr;
    c->spin_prev_end = addr + size;
  }
  c->last_pc = addr;
}

#define FILTER_BITS 32768u
#define WIDE 64u /* ranges longer than this go to the wide bounds instead of the filter */
static inline uint32_t fhash(uint64_t a) { return (uint32_t)((a ^ (a >> 15) ^ (a >> 30)) & (FILTER_BITS - 1)); }

/* Index of the first small code point whose begin is > addr (code[0..nsmall) is sorted by begin). */
static int small_after(ctx *c, uint64_t addr) {
  int lo = 0, hi = c->nsmall;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    if (c->code[mid]->begin <= addr) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* The code point covering [lo, hi] with the highest id (the newest, as the list used to give),
   or NULL: small points begin less than WIDE before lo, so only those are looked at. */
static point *code_point_in(ctx *c, uint64_t lo, uint64_t hi) {
  point *best = NULL;
  for (int i = small_after(c, hi) - 1; i >= 0; i--) {
    point *p = c->code[i];
    if (p->begin < lo && lo - p->begin >= WIDE) break;
    if (p->end >= lo && (!best || p->id > best->id)) best = p;
  }
  for (int i = c->nsmall; i < c->ncode; i++) {
    point *p = c->code[i];
    if (p->begin <= hi && p->end >= lo && (!best || p->id > best->id)) best = p;
  }
  return best;
}

/* The instruction at addr may be a code point: find it and stop before the instruction runs. */
static void check_code(ctx *c, uint64_t addr, uint32_t size) {
  if (c->skip_armed && c->counter == 1 && addr == c->skip_pc) return;
  point *p = code_point_in(c, addr, addr);
  if (!p) return;
  c->stop_id = p->id;
  c->stop_pc = addr;
  c->stop_addr = addr;
  c->stop_access = p->bits;
  c->stop_size = (int32_t)size;
  c->stop_counter = c->counter;
  stop_before(c, addr, p->bits ? STOP_WATCH : STOP_BREAKPOINT);
}

static int by_begin(const void *a, const void *b) {
  const point *p = *(point *const *)a, *q = *(point *const *)b;
  return p->begin < q->begin ? -1 : p->begin > q->begin ? 1 : 0;
}

static int is_code(const point *p) { return p->bits == 0 || (p->bits & W_EXEC); }
static int is_small(const point *p) { return p->end - p->begin < WIDE; }

static void rebuild_code(ctx *c) {
  int n = 0, nd = 0;
  for (point *p = c->points; p; p = p->next) {
    if (is_code(p)) n++;
    if (p->bits & (W_READ | W_WRITE)) nd++;
  }
  free(c->code);
  free(c->data);
  c->code = n ? malloc(n * sizeof *c->code) : NULL;
  c->data = nd ? malloc(nd * sizeof *c->data) : NULL;
  memset(c->filter, 0, sizeof c->filter);
  c->wide = 0;
  c->wide_lo = UINT64_MAX;
  c->wide_hi = 0;
  int small = 0, wide = n;
  nd = 0;
  for (point *p = c->points; p; p = p->next) {
    if (p->bits & (W_READ | W_WRITE)) c->data[nd++] = p;
    if (!is_code(p)) continue;
    if (is_small(p)) {
      c->code[small++] = p;
      for (uint64_t a = p->begin;; a++) {
        uint32_t h = fhash(a);
        c->filter[h >> 6] |= 1ull << (h & 63);
        if (a == p->end) break;
      }
    } else {
      c->code[--wide] = p;
      c->wide = 1;
      if (p->begin < c->wide_lo) c->wide_lo = p->begin;
      if (p->end > c->wide_hi) c->wide_hi = p->end;
    }
  }
  if (small > 1) qsort(c->code, (size_t)small, sizeof *c->code, by_begin);
  c->nsmall = small;
  c->ncode = n;
  c->ndata = nd;
  c->code_dirty = 0;
}

/* A point was added or removed: translations are checked again (gen), the tables rebuilt lazily. */
static void points_changed(ctx *c) {
  c->code_dirty = 1;
  c->gen++;
}

/* A read or write by the guest of [addr, addr + size) on a trap page: has it hit a watchpoint? */
static void watch_access(ctx *c, int access, uint64_t addr, unsigned size, uint64_t value) {
  if (c->stop_kind || c->pending) return;
  if (c->code_dirty) rebuild_code(c);
  for (int i = 0; i < c->ndata; i++) {
    point *p = c->data[i];
    if (!(p->bits & access) || addr + size <= p->begin || addr > p->end) continue;
    /* Stopping inside the access would cancel the rest of the instruction (a read-modify-write
       would run twice on resume): let it complete, and stop before the next one (on_count). */
    c->pending = STOP_WATCH;
    c->stop_id = p->id;
    c->stop_addr = addr;
    c->stop_size = (int32_t)size;
    c->stop_access = access;
    c->stop_value = (int64_t)value;
    c->stop_counter = c->counter;
    return;
  }
}

static void fast_exception(ctx *c, uint32_t intno, uint64_t rip);

/* int3, into and int n leave the pc after the instruction (as machine.ts's isTrap) */
static int is_trap(uint32_t intno) { return intno == 3 || intno == 4 || intno >= 32; }

static void on_intr(uc_engine *uc, uint32_t intno, void *ud) {
  ctx *c = (ctx *)ud;
  uint64_t rip = 0;
  uc_reg_read(uc, UC_X86_REG_RIP, &rip);
  if (c->stop_kind) return;
  if (c->fast) {
    fast_exception(c, intno, rip);
    return;
  }
  /* A fault raised while fetching an instruction (a new block's first) comes before its
     counting hook: count it as begun, as for a fault in an instruction that ran its hook. */
  if (rip != c->last_pc && !is_trap(intno)) c->counter++;
  c->intno = intno;
  c->stop_pc = rip;
  c->stop_counter = c->counter;
  stop_now(c, STOP_INTERRUPT);
}

/*
 * Paging. Unicorn 2.0.1 walks the guest's page tables (faults, A/D bits) but then uses the virtual
 * address as the physical one ("identity map guest virtual address", excp_helper.c). dbg puts the
 * physical address back into each TLB entry (phys.c, "Physical addresses" below), so RAM is mapped
 * once, at its physical addresses, and every virtual page the guest maps reaches the RAM its page
 * tables name, remapped as the guest remaps (its CR3 loads and INVLPGs drop the entries, as on a
 * real CPU).
 *
 * Unicorn still asks, before each access that misses its TLB, whether something is mapped at the
 * virtual address in its own map (load_helper: memory_mapping(uc, vaddr)), and raises "unmapped"
 * if not. Below the end of RAM, RAM is there. Above it (a kernel at 0x80000000 or in the top
 * half), on the first access to an unmapped virtual page dbg walks the tables and maps that
 * virtual range as a marker: an alias of the same host RAM with uc_mem_map_ptr (a 2 MiB or 1 GiB
 * guest page at once when it fits, else a run of 4 KiB pages), which the TLB entries bypass.
 * Without the physical entries (an engine whose CPUState was not found, or another Unicorn build)
 * the markers are what the guest reads, as before: then a virtual page below the end of RAM
 * cannot reach other RAM, and a marker stays when the guest remaps its page.
 */
static uint64_t rd64(ctx *c, uint64_t pa, int *ok) {
  if (pa + 8 > c->ram_size) {
    *ok = 0;
    return 0;
  }
  uint64_t v;
  memcpy(&v, c->ram + pa, 8);
  return v;
}

static int guest_walk(ctx *c, uint64_t va, uint64_t *pa, uint64_t *vbase, uint64_t *psize) {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0;
  uc_x86_msr efer = {0xc0000080, 0};
  int ok = 1;
  uc_reg_read(c->uc, UC_X86_REG_CR0, &cr0);
  uc_reg_read(c->uc, UC_X86_REG_CR3, &cr3);
  uc_reg_read(c->uc, UC_X86_REG_CR4, &cr4);
  uc_reg_read(c->uc, UC_X86_REG_MSR, &efer);
  if (!(cr0 & 0x80000000u)) return 0;
  if (efer.value & 0x400) {
    const uint64_t mask = 0x000ffffffffff000ull;
    uint64_t table = cr3 & mask;
    for (int shift = 39; shift >= 12; shift -= 9) {
      uint64_t e = rd64(c, table + ((va >> shift) & 511) * 8, &ok);
      if (!ok || !(e & 1)) return 0;
      if (shift == 12 || ((shift == 30 || shift == 21) && (e & 0x80))) {
        uint64_t page = 1ull << shift;
        *pa = e & mask & ~(page - 1);
        *vbase = va & ~(page - 1);
        *psize = page;
        return 1;
      }
      table = e & mask;
    }
    return 0;
  }
  if (cr4 & 0x20) {
    /* 32-bit PAE paging: 4 PDPTEs at CR3[31:5], then PD and PT of 8-byte entries */
    const uint64_t mask = 0x000ffffffffff000ull;
    uint64_t pdpte = rd64(c, (cr3 & 0xffffffe0u) + ((va >> 30) & 3) * 8, &ok);
    if (!ok || !(pdpte & 1)) return 0;
    uint64_t pde = rd64(c, (pdpte & mask) + ((va >> 21) & 511) * 8, &ok);
    if (!ok || !(pde & 1)) return 0;
    if (pde & 0x80) {
      *pa = pde & mask & ~0x1fffffull;
      *vbase = va & ~0x1fffffull;
      *psize = 0x200000;
      return 1;
    }
    uint64_t pte = rd64(c, (pde & mask) + ((va >> 12) & 511) * 8, &ok);
    if (!ok || !(pte & 1)) return 0;
    *pa = pte & mask;
    *vbase = va & ~0xfffull;
    *psize = 0x1000;
    return 1;
  }
  uint32_t pde, pte;
  uint64_t pdea = (cr3 & 0xfffff000u) + ((va >> 22) & 1023) * 4;
  if (pdea + 4 > c->ram_size) return 0;
  memcpy(&pde, c->ram + pdea, 4);
  if (!(pde & 1)) return 0;
  if ((pde & 0x80) && (cr4 & 0x10)) {
    *pa = pde & 0xffc00000u;
    *vbase = va & ~0x3fffffull;
    *psize = 0x400000;
    return 1;
  }
  uint64_t ptea = (pde & 0xfffff000u) + ((va >> 12) & 1023) * 4;
  if (ptea + 4 > c->ram_size) return 0;
  memcpy(&pte, c->ram + ptea, 4);
  if (!(pte & 1)) return 0;
  *pa = pte & 0xfffff000u;
  *vbase = va & ~0xfffull;
  *psize = 0x1000;
  return 1;
}

static void trap_install_in(ctx *c, uint64_t vbase, uint64_t size);

/*
 * A 4 KiB page: extend [*vbase, *vbase + *size) over the neighbouring entries of its page table
 * that map the next (previous) physical pages, so that a kernel mapping RAM linearly with 4 KiB
 * pages costs one Unicorn region per page table, not one per page (each region makes the next
 * mapping slower: 57,000 of them took seconds per megabyte).
 */
static void extend_run(ctx *c, uint64_t *vbase, uint64_t *pa, uint64_t *size) {
  uint64_t cr4 = 0, q, vb, ps;
  uc_x86_msr efer = {0xc0000080, 0};
  uc_reg_read(c->uc, UC_X86_REG_CR4, &cr4);
  uc_reg_read(c->uc, UC_X86_REG_MSR, &efer);
  uint64_t span = (efer.value & 0x400) || (cr4 & 0x20) ? 0x200000 : 0x400000;
  uint64_t lo = *vbase & ~(span - 1), hi = lo + span;
  while (*vbase > lo && *pa >= 0x1000 && guest_walk(c, *vbase - 0x1000, &q, &vb, &ps) && ps == 0x1000 && q == *pa - 0x1000) {
    *vbase -= 0x1000;
    *pa -= 0x1000;
    *size += 0x1000;
  }
  while (*vbase + *size < hi && *pa + *size + 0x1000 <= c->ram_size && guest_walk(c, *vbase + *size, &q, &vb, &ps) && ps == 0x1000 && q == *pa + *size) *size += 0x1000;
}

static int alias_page(ctx *c, uint64_t va) {
  uint64_t pa, vbase, psize;
  if (!c->ram || !guest_walk(c, va, &pa, &vbase, &psize)) return 0;
  if (pa >= c->ram_size) return 0;
  if (psize == 0x1000) {
    uint64_t rv = vbase, rp = pa, rs = 0x1000;
    extend_run(c, &rv, &rp, &rs);
    if (rs > 0x1000 && uc_mem_map_ptr(c->uc, rv, rs, UC_PROT_ALL, c->ram + rp) == UC_ERR_OK) {
      c->aliases++;
      if (c->traps) trap_install_in(c, rv, rs);
      return 1;
    }
  }
  uint64_t size = psize;
  if (pa + size > c->ram_size) size = (c->ram_size - pa) & ~0xfffull;
  if (size && vbase + size > vbase && uc_mem_map_ptr(c->uc, vbase, size, UC_PROT_ALL, c->ram + pa) == UC_ERR_OK) {
    c->aliases++;
    if (c->traps) trap_install_in(c, vbase, size);
    return 1;
  }
  /* the large page collides with something mapped already: map just this 4 KiB page */
  uint64_t v4 = va & ~0xfffull, p4 = pa + (v4 - vbase);
  if (p4 + 0x1000 > c->ram_size) return 0;
  if (uc_mem_map_ptr(c->uc, v4, 0x1000, UC_PROT_ALL, c->ram + p4) == UC_ERR_OK) {
    c->aliases++;
    if (c->traps) trap_install_in(c, v4, 0x1000);
    return 1;
  }
  return 0;
}

/*
 * Physical addresses. phys.c calls phys_translate from inside Unicorn's TLB fill, after the
 * engine's own page walk has succeeded: the same walk in guest RAM gives the physical page. The
 * pages dbg itself puts at a virtual address (trap pages of watchpoints, a fast engine's stand-ins
 * for unmapped memory and device guards) keep Unicorn's virtual = physical entry, so that their
 * callbacks still see the accesses. Page tables are read at their physical addresses, where RAM
 * is: nothing dbg maps can hide them. A virtual page above the end of RAM gets its marker here
 * (alias_page), before its entry.
 *
 * Each vCPU has two engines (exact and fast) with a TLB each, and uc_context_restore does not
 * drop entries. The engine that drops its entries (the guest loaded CR3, ran INVLPG...) bumps its
 * tlb_gen; the other drops all of its own before it takes the vCPU over (sync_tlb). Changes made
 * from outside (a debugger write to CR3, a state loaded, a CPU started) drop both (flushTlb).
 */
/*
 * Open bus. On a PC, a read of a guest-physical address that neither RAM nor a device decodes
 * ends in a master abort and returns all ones; a write goes nowhere. (QEMU 7.2 reads 0 there
 * instead: its unassigned_mem_read; dbg keeps to the hardware, as for unclaimed I/O ports.) Each
 * engine maps one MMIO page that answers so, at a guest-physical address past any RAM whose
 * virtual twin is not canonical (so no marker can be there); the TLB entry of a virtual page that
 * the guest maps past RAM leads to it (phys_translate), and a physical access past RAM with
 * paging off, or without physical TLB entries, gets such a page in place (on_badmem). Code cannot
 * run from it: a fetch there stops the run as an access to unmapped memory.
 */
#define OPEN_BUS_PAGE 0x000ffffffffff000ull

static uint64_t open_bus_read(uc_engine *uc, uint64_t offset, unsigned size, void *ud) {
  (void)uc, (void)offset, (void)ud;
  return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static void open_bus_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud) {
  (void)uc, (void)offset, (void)size, (void)value, (void)ud;
}

static int is_device(ctx *c, uint64_t pa) {
  for (int i = 0; i < c->ndev; i++)
    if (pa >= c->dev[i][0] && pa < c->dev[i][1]) return 1;
  return 0;
}

/* Put an open-bus page at `page` of Unicorn's map (a physical page past RAM, or a marker). */
static int open_bus_at(ctx *c, uint64_t page) {
  return uc_mmio_map(c->uc, page, 0x1000, open_bus_read, NULL, open_bus_write, NULL) == UC_ERR_OK;
}

static int own_page_at(ctx *c, uint64_t va) {
  va &= ~0xfffull;
  for (trap *t = c->traps; t; t = t->next)
    if (t->va == va && t->host) return 1;
  for (trap *t = c->faults; t; t = t->next)
    if (t->va == va) return 1;
  for (trap *t = c->guards; t; t = t->next)
    if (t->va == va) return 1;
  return 0;
}

static uint64_t phys_translate(void *owner, uint64_t vaddr, uint64_t paddr) {
  ctx *c = (ctx *)owner;
  uint64_t pa, vbase, psize;
  if (!c->phys || !c->ram || !guest_walk(c, vaddr, &pa, &vbase, &psize)) return paddr; /* paging off: virtual = physical */
  uint64_t page = (pa + (vaddr - vbase)) & ~0xfffull;
  if (page >= c->ram_size && c->open_bus) {
    /* past RAM: a device's registers, or open bus; the marker is an open-bus page */
    int device = is_device(c, page);
    if (device && !phys_mapped(c->uc, page)) return paddr; /* not in this engine (see open_bus_there) */
    if (!phys_mapped(c->uc, vaddr) && !open_bus_at(c, vaddr & ~0xfffull)) return paddr;
    if (own_page_at(c, vaddr)) return paddr;
    return device ? page : OPEN_BUS_PAGE;
  }
  /* Unicorn's helpers read a TLB entry before they ask memory_mapping(vaddr), and mapping a marker
     from their unmapped-memory hook drops the TLB under them: so the marker comes first, and a
     virtual page that can have none keeps Unicorn's entry (and its unmapped-memory path) */
  if (!phys_mapped(c->uc, vaddr) && !alias_page(c, vaddr)) return paddr;
  /* after the marker: mapping it installs the trap pages of watchpoints set before */
  if (own_page_at(c, vaddr)) return paddr;
  return page;
}

static void phys_flushed(void *owner) { ((ctx *)owner)->tlb_gen++; }

static const phys_ops phys_hooks = {phys_translate, phys_flushed};

/* `to` takes the vCPU over from `from`: drop its TLB entries if `from` dropped any meanwhile. */
static void sync_tlb(ctx *from, ctx *to) {
  if (!to->phys || to->peer_gen == from->tlb_gen) return;
  phys_flush(to->cpu);
  to->peer_gen = from->tlb_gen;
}

/*
 * Trap pages. Unicorn's inline TLB lookup skips every hook on a hit; it leaves the fast path only
 * for TLB entries flagged MMIO (or when any UC_HOOK_MEM_READ/WRITE exists: then for every access
 * of every page, which halves the guest's speed). So a read/write watchpoint turns the pages it
 * covers into MMIO regions whose callbacks do the access on the same host RAM and check the
 * watchpoints: accesses elsewhere cost nothing, accesses to a trap page about one call. (QEMU's
 * own TLB watchpoints are compiled out of Unicorn 2.0.1.)
 *
 * A trap page is installed at its virtual address when the guest's page tables map it (now, or
 * on the first access: alias_page), and removed (mapped back as RAM) with its last watchpoint.
 * Code fetched from a trap page runs one instruction per translation (QEMU's rule for MMIO);
 * those fetches are reads of the page but not guest data reads, so they are not checked.
 */
static void fast_abort(ctx *c);

/* Does [addr, addr + size) touch a watchpoint of this access kind? */
static int fast_watch_hit(ctx *c, int access, uint64_t addr, unsigned size) {
  if (c->code_dirty) rebuild_code(c);
  for (int i = 0; i < c->ndata; i++) {
    point *p = c->data[i];
    if ((p->bits & access) && addr + size > p->begin && addr <= p->end) return 1;
  }
  return 0;
}

static uintptr_t mem_io_pc(ctx *c);

static uint64_t trap_read(uc_engine *uc, uint64_t offset, unsigned size, void *ud) {
  trap *t = (trap *)ud;
  ctx *c = t->c;
  uint64_t v = 0, rip = 0;
  if (t->fault) {
    if (t->has_const && offset == t->const_off && size == t->const_size) return t->const_value;
    fast_abort(c); /* does not return */
  }
  if (offset + size > 0x1000) size = (unsigned)(0x1000 - offset);
  memcpy(&v, t->host + offset, size);
  /* a fetch for translation: pc (synced before each instruction and at each block) is at or
     just before the bytes read */
  uc_reg_read(uc, UC_X86_REG_RIP, &rip);
  uint64_t addr = t->va + offset;
  if (!(addr >= rip && addr < rip + 16)) {
    /* the fast engine cannot stop after an instruction: it undoes this one and hands over */
    if (c->fast) {
      if (fast_watch_hit(c, W_READ, addr, size)) fast_abort(c);
    } else {
      watch_access(c, W_READ, addr, size, v);
    }
  }
  return v;
}

static void trap_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *ud) {
  trap *t = (trap *)ud;
  ctx *c = t->c;
  (void)uc;
  if (t->fault) fast_abort(c);
  if (offset + size > 0x1000) size = (unsigned)(0x1000 - offset);
  if (c->fast) {
    /* QEMU splits an MMIO store into pieces (an 8-byte one into two 4-byte ones, an unaligned
       one into bytes): when a later piece hits, the earlier ones (same host pc, same block) are
       put back, so the aborted instruction leaves memory as it was */
    uintptr_t hp = mem_io_pc(c);
    if (fast_watch_hit(c, W_WRITE, t->va + offset, size)) {
      for (unsigned j = 0; j < c->nundo && j < 16; j++) { /* newest first */
        struct undo *u = &c->undo[(c->nundo - 1 - j) % 16];
        if (u->host_pc == hp) memcpy(u->at, &u->old, u->size);
      }
      fast_abort(c);
    }
    struct undo *u = &c->undo[c->nundo++ % 16];
    u->host_pc = hp;
    u->at = t->host + offset;
    u->size = size;
    memcpy(&u->old, u->at, size);
  }
  memcpy(t->host + offset, &value, size);
  if (!c->fast) watch_access(c, W_WRITE, t->va + offset, size, value);
}

static int guest_walk(ctx *c, uint64_t va, uint64_t *pa, uint64_t *vbase, uint64_t *psize);

/* Where guest RAM backs virtual page va now, or NULL (not mapped by the guest, or not RAM). */
static unsigned char *page_host(ctx *c, uint64_t va) {
  uint64_t pa, vbase, psize, cr0 = 0;
  uc_reg_read(c->uc, UC_X86_REG_CR0, &cr0);
  if (!(cr0 & 0x80000000u)) {
    pa = va; /* paging off: virtual = physical */
  } else {
    if (!guest_walk(c, va, &pa, &vbase, &psize)) return NULL;
    pa += va - vbase;
  }
  if (!c->ram || pa + 0x1000 > c->ram_size || pa + 0x1000 < pa) return NULL;
  return c->ram + pa;
}

/* Map t's page as MMIO if the guest maps it; returns 0 on success or when it must wait, else a uc_err. */
static uc_err trap_install(ctx *c, trap *t) {
  if (t->host) return UC_ERR_OK;
  unsigned char *host = page_host(c, t->va);
  if (!host) return UC_ERR_OK; /* not mapped yet: alias_page installs it on the first access */
  uc_err err = uc_mem_unmap(c->uc, t->va, 0x1000); /* the RAM alias, if there is one yet */
  if (err != UC_ERR_OK && err != UC_ERR_NOMEM) return err;
  err = uc_mmio_map(c->uc, t->va, 0x1000, trap_read, t, trap_write, t);
  if (err != UC_ERR_OK) return err;
  t->host = host;
  return UC_ERR_OK;
}

static void trap_uninstall(ctx *c, trap *t) {
  if (!t->host) return;
  uc_mem_unmap(c->uc, t->va, 0x1000);
  uc_mem_map_ptr(c->uc, t->va, 0x1000, UC_PROT_ALL, t->host);
  t->host = NULL;
}

/* Trap pages of [vbase, vbase + size) not installed yet (the range was just aliased). */
static void trap_install_in(ctx *c, uint64_t vbase, uint64_t size) {
  for (trap *t = c->traps; t; t = t->next)
    if (!t->host && t->va >= vbase && t->va - vbase < size) trap_install(c, t);
}

static trap *trap_at(ctx *c, uint64_t va) {
  for (trap *t = c->traps; t; t = t->next)
    if (t->va == (va & ~0xfffull)) return t;
  return NULL;
}

static uc_err trap_ref(ctx *c, uint64_t va) {
  trap *t = trap_at(c, va);
  if (t) {
    t->refs++;
    return UC_ERR_OK;
  }
  t = calloc(1, sizeof *t);
  if (!t) return UC_ERR_NOMEM;
  t->c = c;
  t->va = va;
  t->refs = 1;
  uc_err err = trap_install(c, t);
  if (err != UC_ERR_OK) {
    free(t);
    return err;
  }
  t->next = c->traps;
  c->traps = t;
  return UC_ERR_OK;
}

static void trap_unref(ctx *c, uint64_t va) {
  for (trap **tp = &c->traps; *tp; tp = &(*tp)->next) {
    trap *t = *tp;
    if (t->va != va) continue;
    if (--t->refs == 0) {
      trap_uninstall(c, t);
      *tp = t->next;
      free(t);
    }
    return;
  }
}

/* An unmapped access at `addr` of Unicorn's map that an open-bus page there answers: paging off,
   a guest-physical address past RAM where no device is; paging on, a virtual page the guest maps
   past RAM (the page is its marker; phys_translate leads the TLB entry to a device's registers). */
static int open_bus_there(ctx *c, uint64_t addr) {
  uint64_t pa = addr, vbase = addr, psize = 0, cr0 = 0;
  uc_reg_read(c->uc, UC_X86_REG_CR0, &cr0);
  int paged = (cr0 & 0x80000000u) != 0;
  if (paged && !guest_walk(c, addr, &pa, &vbase, &psize)) return 0;
  pa += addr - vbase;
  if (pa < c->ram_size) return 0;
  /* a device's registers: answered only where this engine maps them (a replay's engines do not:
     the access stops there, as it must, instead of reading all ones) */
  if (is_device(c, pa)) return paged && c->open_bus && phys_mapped(c->uc, pa & ~0xfffull);
  return 1;
}

static bool on_badmem(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
  ctx *c = (ctx *)ud;
  (void)uc;
  (void)value;
  if ((type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED || type == UC_MEM_FETCH_UNMAPPED) && alias_page(c, addr)) {
    /* an access may straddle into a second page: that one faults (and aliases) on its own */
    return true;
  }
  /* code on a watched page: trap pages are MMIO, which Unicorn maps without execute permission */
  if (type == UC_MEM_FETCH_PROT && trap_at(c, addr)) return true;
  if ((type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED) && open_bus_there(c, addr) && open_bus_at(c, addr & ~0xfffull)) return true;
  if (c->fast) {
    if (c->stop_kind) return false;
    if (type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED) {
      /* Unicorn would stop mid-block with the pc of the block's start: let the access go to a
         page whose every access aborts the instruction exactly (trap_read/trap_write), and let
         the exact engine fault on it. */
      trap *t = calloc(1, sizeof *t);
      if (t && uc_mmio_map(c->uc, addr & ~0xfffull, 0x1000, trap_read, t, trap_write, t) == UC_ERR_OK) {
        t->c = c;
        t->va = addr & ~0xfffull;
        t->fault = 1;
        t->next = c->faults;
        c->faults = t;
        return true;
      }
      free(t);
    }
    /* a fetch (at a block's start: nothing of it ran), or no way to abort exactly */
    c->handoff_n = 1;
    c->stop_kind = STOP_HANDOFF;
    return false;
  }
  if (c->stop_kind && c->stop_kind != STOP_BAD_MEMORY) return false;
  c->stop_kind = STOP_BAD_MEMORY;
  c->stop_access = (int32_t)type;
  c->stop_addr = addr;
  c->stop_size = size;
  c->stop_pc = type == UC_MEM_FETCH_UNMAPPED || type == UC_MEM_FETCH_PROT ? addr : c->last_pc;
  c->stop_counter = c->counter;
  return false;
}

static bool on_badinsn(uc_engine *uc, void *ud) {
  ctx *c = (ctx *)ud;
  uint64_t rip = 0;
  uc_reg_read(uc, UC_X86_REG_RIP, &rip);
  if (c->fast) {
    /* #UD ends its block; the exact engine meets it again */
    c->handoff_n = 1;
    c->stop_kind = STOP_HANDOFF;
    return false;
  }
  c->stop_kind = STOP_BAD_INSN;
  c->stop_pc = rip;
  c->stop_counter = c->counter;
  return false;
}

/* ------------------------------------------------------------------------------------------ */
/* CPU features                                                                                 */
/*
 * Debian's Unicorn 2.0.1 reports a CPU without NX, 1 GiB pages and SYSCALL whatever model is
 * chosen, so a guest cannot set EFER.NXE and every page-table entry with bit 63 set faults as
 * reserved. QEMU's TCG implements all three: dbg turns them on in the engine's
 * CPUX86State.features[], found in the engine's own memory (no header describes it):
 *   1. run CPUID on a scratch engine to learn the values of features[FEAT_1_EDX] (leaf 1 EDX) and
 *      features[FEAT_8000_0001_EDX] (leaf 0x80000001 EDX) as this library computes them;
 *   2. put 16 distinctive values in the target engine's general registers (env->regs[0..15] opens
 *      CPUX86State), follow each pointer in the engine's struct uc_struct and look for them;
 *   3. after that env, find the features array: u64 [0] = leaf 1 EDX, u64 [6] = leaf 0x80000001 EDX
 *      (FEAT_1_EDX = 0, FEAT_8000_0001_EDX = 6 in QEMU 5's FeatureWord), and set the bits.
 * Memory is read with process_vm_readv on ourselves, so a wrong pointer costs an EFAULT, not a
 * crash. If anything is not found, nothing is written and the guest sees Unicorn's CPU as is.
 */
#define CPUID_EXT2_SYSCALL (1ull << 11)
#define CPUID_EXT2_NX (1ull << 20)
#define CPUID_EXT2_PDPE1GB (1ull << 26)

static size_t safe_read(const void *addr, void *buf, size_t len) {
  struct iovec local = {buf, len}, remote = {(void *)addr, len};
  ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  return n < 0 ? 0 : (size_t)n;
}

static int probe_cpuid(uint64_t *edx1, uint64_t *edx81) {
  uc_engine *uc;
  static const unsigned char code[] = {0xb8, 1, 0, 0, 0x80, 0x0f, 0xa2, 0x89, 0xd7, /* mov eax,0x80000001; cpuid; mov edi,edx */
                                       0xb8, 1, 0, 0, 0, 0x0f, 0xa2};             /* mov eax,1; cpuid */
  if (uc_open(UC_ARCH_X86, UC_MODE_64, &uc)) return 0;
  int ok = !uc_mem_map(uc, 0, 0x2000, UC_PROT_ALL) && !uc_mem_write(uc, 0x1000, code, sizeof code) &&
           !uc_emu_start(uc, 0x1000, 0x1000 + sizeof code, 0, 0);
  uint64_t di = 0, dx = 0;
  uc_reg_read(uc, UC_X86_REG_RDI, &di);
  uc_reg_read(uc, UC_X86_REG_RDX, &dx);
  uc_close(uc);
  *edx1 = dx & 0xffffffffu;
  *edx81 = di & 0xffffffffu;
  return ok;
}

static const int gp_regs[16] = {UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
                                UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
                                UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
                                UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15};

#define SCAN (512 * 1024)

/* Where the first engine's search found things; later engines are checked at the same places. */
static long found_slot = -1, found_env = -1, found_feat = -1;

/*
 * Patches the features when q + env_off holds the engine's registers, and is where they live: the
 * marks can also be met in a stale copy (a freed scan buffer of an earlier engine's search, reused
 * by this engine's heap), so a register written anew must show up there too. Patching a copy would
 * leave NX off in the engine, and find_cpu would find no CPU for it.
 */
static int patch_at(uc_engine *uc, uint64_t q, size_t env_off, size_t feat_off, const uint64_t *mark, uint64_t edx1, uint64_t edx81, uint64_t *env) {
  uint64_t regs[16], w[7], probe = ~mark[0], seen = 0;
  if (safe_read((void *)(uintptr_t)(q + env_off), regs, sizeof regs) != sizeof regs || memcmp(regs, mark, sizeof regs)) return 0;
  uc_reg_write(uc, gp_regs[0], &probe);
  int here = safe_read((void *)(uintptr_t)(q + env_off), &seen, 8) == 8 && seen == probe;
  uc_reg_write(uc, gp_regs[0], &mark[0]);
  if (!here) return 0;
  if (safe_read((void *)(uintptr_t)(q + env_off + feat_off), w, sizeof w) != sizeof w) return 0;
  if (w[0] != edx1 || (w[6] & ~(CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB)) != (edx81 & ~(CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB))) return 0;
  uint64_t *live = (uint64_t *)(uintptr_t)(q + env_off + feat_off);
  live[6] |= CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB;
  *env = q + env_off;
  return 1;
}

/* Returns 1 when the features were set, 0 when the layout was not recognised. */
static int enable_features(uc_engine *uc, uint64_t *env) {
  static uint64_t edx1, edx81;
  static int probed;
  uint64_t saved[16], mark[16], ptrs[1024];
  if (!probed) {
    if (!probe_cpuid(&edx1, &edx81)) return 0;
    probed = 1;
  }
  for (int i = 0; i < 16; i++) {
    uc_reg_read(uc, gp_regs[i], &saved[i]);
    mark[i] = 0x6462675f6d61726bull ^ ((uint64_t)i * 0x0101010101010101ull);
    uc_reg_write(uc, gp_regs[i], &mark[i]);
  }
  size_t n = safe_read(uc, ptrs, sizeof ptrs) / 8;
  int done = 0;
  if (found_slot >= 0 && (size_t)found_slot < n)
    done = patch_at(uc, ptrs[found_slot], (size_t)found_env, (size_t)found_feat, mark, edx1, edx81, env);
  unsigned char *buf = done ? NULL : malloc(SCAN);
  for (size_t i = 0; i < n && !done; i++) {
    uint64_t q = ptrs[i];
    if (q < 0x10000 || (q & 7)) continue;
    /* one read: process_vm_readv stops at the first unreadable page and says how far it got */
    size_t got = safe_read((void *)(uintptr_t)q, buf, SCAN);
    for (size_t off = 0; off + sizeof mark <= got && !done; off += 8) {
      if (*(uint64_t *)(buf + off) != mark[0] || memcmp(buf + off, mark, sizeof mark) != 0) continue;
      for (size_t f = off; f + 7 * 8 <= got; f += 8) {
        uint64_t *w = (uint64_t *)(buf + f);
        if (w[0] == edx1 && w[6] == edx81 && (edx81 & (1ull << 29))) {
          if (patch_at(uc, q, off, f - off, mark, edx1, edx81, env)) {
            found_slot = (long)i;
            found_env = (long)off;
            found_feat = (long)(f - off);
            done = 1;
          }
          break;
        }
      }
    }
  }
  /* the buffer holds copies of the marks: freed as is, a later engine's heap could offer them */
  if (buf) explicit_bzero(buf, SCAN); /* a memset before free may be left out by the compiler */
  free(buf);
  for (int i = 0; i < 16; i++) uc_reg_write(uc, gp_regs[i], &saved[i]);
  return done;
}

/* ------------------------------------------------------------------------------------------ */
/* Fast engine                                                                                  */
/*
 * The counting hook costs half of Unicorn's speed (a helper call, with the guest registers
 * stored and reloaded, before every instruction). So each vCPU has a second engine over the same
 * RAM that counts per translated block instead: a block hook adds the block's instruction count
 * (capstone decodes each distinct block once). It hands over to the exact engine, which holds
 * the vCPU's state between runs, whenever a stop could fall inside a block:
 *   - before a block that holds a breakpoint or exec watchpoint, or port I/O (device accesses
 *     need the exact instruction number), or that crosses the slice's instruction limit: the
 *     block has not run (the hook stops the engine before the block's first instruction);
 *   - at an access that may hit a read/write watchpoint (trap pages), an access to unmapped
 *     memory, a CPU exception or an invalid instruction: QEMU undoes the instruction exactly
 *     (cpu_loop_exit_restore with the host pc of the access, or its own exception path), and
 *     the block's instructions before it are counted by decoding up to it.
 * The exact engine then runs those instructions under its per-instruction rules (stops, device
 * requests, fault reports), and the fast one goes on. Both engines run the same deterministic
 * guest, so counts, stops and vCPU interleaving are those of the exact engine alone.
 *
 * QEMU internals used (libunicorn 2.0.1 exports them; all are checked when the engine is made,
 * and without them there is no fast engine, only the exact one): cpu_loop_exit_restore_x86_64,
 * CPUState.mem_io_pc (the host pc of the current MMIO access), CPUX86State.hflags (code size).
 */
#define HF_CS32 (1u << 4)
#define HF_CS64 (1u << 15)
#define ENV_EIP 128
#define ENV_DF 172
#define ENV_HFLAGS 176

typedef struct blk {
  /* what on_block's short path reads first, in one cache line */
  uint64_t pc;
  uint32_t size;
  uint32_t gen;    /* c->gen when `point` was computed */
  uint16_t icount;
  uint8_t mode;    /* 0 = 16-, 1 = 32-, 2 = 64-bit code */
  uint8_t exact;   /* port I/O or undecodable bytes: always run exactly */
  uint8_t point;   /* holds a breakpoint or exec watchpoint */
  /* a block that is one REP STOS (see rep_ahead): its element size in bytes (0: not one) and
     its address size in bits */
  uint8_t rep_size, rep_abits;
  uint8_t plain;   /* none of exact, point (as of gen), rep_size: the short path may run it */
  /* when `code` was last found to be the bytes at pc (block_refresh): phys_code_epoch(), then
     this engine's and its peer's TLB generations */
  uint32_t seen_tlb, seen_peer;
  uint64_t seen_epoch;
  uint8_t *code;   /* the bytes `lens` were decoded from (block_refresh) */
  uint8_t *lens;   /* its instructions' lengths, once a recorder needed them (block_lens) */
  uint8_t rec_exact; /* recorded, it runs on the exact engine (block_lens) */
  uint16_t last_off; /* where its last instruction begins (spin detection's previous pc) */
} blk;

static void (*exit_restore)(void *cpu, uintptr_t host_pc);
static long memio_off = -1; /* offset of CPUState.mem_io_pc */

static uintptr_t mem_io_pc(ctx *c) { return *(uintptr_t *)((char *)c->cpu + memio_off); }

static void fast_abort(ctx *c) {
  uintptr_t host_pc = mem_io_pc(c);
  c->stop_kind = STOP_HANDOFF;
  c->handoff_n = 1;
  uc_emu_stop(c->uc);
  /* host_pc 0: the access is a fetch for translation (nothing of the block ran yet) */
  exit_restore(c->cpu, host_pc);
}

static void fast_exception(ctx *c, uint32_t intno, uint64_t rip) {
  /* Reported as the exact engine reports it, not handed over: QEMU left its exception state
     (old_exception) behind, and the exact engine would see this fault as a double fault.
     int n / int3 end their block, which has run and been counted; a fault inside the block is
     counted up to it by runFast (the faulting instruction as begun); a fault fetching a new
     block comes after the counted ones. */
  if (c->faults) {
    /* an access to unmapped memory went to a stand-in page, and the guest's page walk then
       faulted: the exact engine reports it as unmapped memory, so let it */
    c->handoff_n = 1;
    stop_now(c, STOP_HANDOFF);
    return;
  }
  c->intno = intno;
  c->stop_pc = rip;
  if (!is_trap(intno)) c->counter++;
  c->stop_counter = c->counter;
  stop_now(c, STOP_INTERRUPT);
}

/* The exception QEMU keeps "in flight" (for double faults) is never cleared when a hook takes the
   exception instead of the guest's IDT: clear it before each run, as delivery would. */
static void clear_exception(ctx *c) {
  if (c->old_exception) *c->old_exception = -1;
}

/* Finds CPUX86State.old_exception after dr[8] and four pointers: dr[] found by its values. */
static void find_old_exception(ctx *c) {
  static const int drs[8] = {UC_X86_REG_DR0, UC_X86_REG_DR1, UC_X86_REG_DR2, UC_X86_REG_DR3,
                             UC_X86_REG_DR4, UC_X86_REG_DR5, UC_X86_REG_DR6, UC_X86_REG_DR7};
  uint64_t saved[8], mark[8], buf[4096];
  if (!c->env) return;
  for (int i = 0; i < 8; i++) {
    uc_reg_read(c->uc, drs[i], &saved[i]);
    mark[i] = 0x6462672d64720000ull + (uint64_t)i;
    uc_reg_write(c->uc, drs[i], &mark[i]);
  }
  size_t n = safe_read((void *)(uintptr_t)c->env, buf, sizeof buf) / 8;
  for (size_t i = 0; i + 13 <= n; i++) {
    if (memcmp(&buf[i], mark, sizeof mark)) continue;
    int32_t *oe = (int32_t *)(uintptr_t)(c->env + (i + 8 + 4) * 8);
    int32_t v;
    if (safe_read(oe, &v, 4) == 4 && v == -1) c->old_exception = oe;
    break;
  }
  for (int i = 0; i < 8; i++) uc_reg_write(c->uc, drs[i], &saved[i]);
}

static csh cs_handles[3];

/* Reads n bytes of guest code at va through the guest's page tables. */
static int read_code(ctx *c, uint64_t va, unsigned char *buf, size_t n) {
  while (n) {
    unsigned char *h = page_host(c, va & ~0xfffull);
    if (!h) return 0;
    size_t k = 0x1000 - (va & 0xfff);
    if (k > n) k = n;
    memcpy(buf, h + (va & 0xfff), k);
    buf += k;
    va += k;
    n -= k;
  }
  return 1;
}

/*
 * Decodes the block [pc, pc + size): its instruction count and whether it must run exactly.
 * With `upto`, stops there and returns the number of instructions before it (-1 if upto is not
 * an instruction boundary of the block). `last`, when given: where the block's last instruction
 * begins, as an offset from pc (spin detection's previous pc).
 */
static long decode_block(ctx *c, uint64_t pc, uint32_t size, int mode, uint64_t upto, int *exact, uint32_t *last) {
  static unsigned char code[8192];
  static cs_insn *insn[3];
  *exact = 1;
  if (size > sizeof code || !read_code(c, pc, code, size)) return upto == UINT64_MAX ? 0 : -1;
  if (!cs_handles[mode]) {
    static const cs_mode modes[3] = {CS_MODE_16, CS_MODE_32, CS_MODE_64};
    if (cs_open(CS_ARCH_X86, modes[mode], &cs_handles[mode]) != CS_ERR_OK) return upto == UINT64_MAX ? 0 : -1;
    insn[mode] = cs_malloc(cs_handles[mode]);
  }
  const uint8_t *p = code;
  size_t left = size;
  uint64_t addr = pc;
  long n = 0;
  int io = 0;
  while (left) {
    if (addr == upto) return n;
    if (last) *last = (uint32_t)(addr - pc);
    if (!cs_disasm_iter(cs_handles[mode], &p, &left, &addr, insn[mode])) {
      /* bytes capstone does not know end the block (QEMU raises #UD there): one more
         instruction, run exactly */
      n++;
      io = 1;
      break;
    }
    unsigned id = insn[mode]->id;
    if (id == X86_INS_IN || id == X86_INS_OUT || id == X86_INS_INSB || id == X86_INS_INSW || id == X86_INS_INSD ||
        id == X86_INS_OUTSB || id == X86_INS_OUTSW || id == X86_INS_OUTSD)
      io = 1;
    n++;
  }
  if (upto != UINT64_MAX) return addr == upto ? n : -1;
  *exact = io;
  return n;
}

static void rep_classify(ctx *c, blk *b);

static int block_has_point(ctx *c, uint64_t pc, uint32_t size) {
  if (c->code_dirty) rebuild_code(c);
  return size > 0 && code_point_in(c, pc, pc + size - 1) != NULL;
}

static size_t block_slot(uint64_t pc, uint32_t size, int mode, size_t cap) {
  return (size_t)(((pc ^ ((uint64_t)size << 40) ^ ((uint64_t)mode << 60)) * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
}

static blk *block_get(ctx *c, uint64_t pc, uint32_t size, int mode) {
  if (2 * (c->nblocks + 1) > c->blocks_cap) {
    size_t cap = c->blocks_cap ? 2 * c->blocks_cap : 4096;
    blk *n = calloc(cap, sizeof *n);
    if (!n) return NULL;
    for (size_t i = 0; i < c->blocks_cap; i++) {
      blk *b = &c->blocks[i];
      if (!b->size) continue;
      size_t j = block_slot(b->pc, b->size, b->mode, cap);
      while (n[j].size) j = (j + 1) & (cap - 1);
      n[j] = *b;
    }
    free(c->blocks);
    c->blocks = n;
    c->blocks_cap = cap;
    memset(c->recent, 0, sizeof c->recent);
  }
  size_t j = block_slot(pc, size, mode, c->blocks_cap);
  for (;;) {
    blk *b = &c->blocks[j];
    if (!b->size) break;
    if (b->pc == pc && b->size == size && b->mode == mode) return b;
    j = (j + 1) & (c->blocks_cap - 1);
  }
  blk *b = &c->blocks[j];
  int exact;
  uint32_t last = 0;
  long n = decode_block(c, pc, size, mode, UINT64_MAX, &exact, &last);
  b->pc = pc;
  b->last_off = (uint16_t)last;
  b->size = size;
  b->mode = (uint8_t)mode;
  b->icount = (uint16_t)(n > 0xffff ? 0xffff : n);
  b->exact = (uint8_t)(exact || n <= 0 || n > 0xffff);
  b->gen = c->gen;
  b->point = (uint8_t)block_has_point(c, pc, size);
  rep_classify(c, b);
  c->nblocks++;
  /* the bytes the count was decoded from, to tell when other code comes to this pc (block_refresh) */
  if (c->phys && size <= 8192 && (b->code = malloc(size)) && !read_code(c, pc, b->code, size)) {
    free(b->code);
    b->code = NULL;
  }
  b->seen_epoch = phys_code_epoch();
  b->seen_tlb = c->tlb_gen;
  b->seen_peer = c->peer_gen;
  return b;
}

static void forget_blocks(ctx *c) {
  for (size_t i = 0; i < c->blocks_cap; i++) {
    free(c->blocks[i].lens);
    free(c->blocks[i].code);
  }
  if (c->blocks) memset(c->blocks, 0, c->blocks_cap * sizeof *c->blocks);
  c->nblocks = 0;
  memset(c->recent, 0, sizeof c->recent);
}

static void drop_faults(ctx *c) {
  for (trap *t = c->faults, *n; t; t = n) {
    n = t->next;
    uc_mem_unmap(c->uc, t->va, 0x1000);
    free(t);
  }
  c->faults = NULL;
}

/*
 * Interrupts the guest can take now: RFLAGS.IF set (CPUX86State.eflags keeps IF) and no STI or
 * MOV SS shadow (hflags HF_INHIBIT_IRQ). dbg delivers device interrupts between slices; a kernel
 * that opens interrupts for a few instructions only (xv6's scheduler: sti, then acquire's cli)
 * would see a slice boundary there by chance, or never when its loop divides the quantum. So
 * while an interrupt waits (waitInterrupt), each engine ends the slice where IF opens: the exact
 * one before each instruction, the fast one before each block (QEMU ends a block after sti's
 * shadow, popf and iret).
 */
#define ENV_EFLAGS 136
#define HF_INHIBIT_IRQ (1u << 3)
static int irq_open(ctx *c) {
  if (!c->env) return 0;
  uint64_t fl = *(uint64_t *)(uintptr_t)(c->env + ENV_EFLAGS);
  uint32_t hf = *(uint32_t *)(uintptr_t)(c->env + ENV_HFLAGS);
  return (fl & 0x200) && !(hf & HF_INHIBIT_IRQ);
}

static int code_mode(ctx *c) {
  uint32_t hf = *(uint32_t *)(uintptr_t)(c->env + ENV_HFLAGS);
  return (hf & HF_CS64) ? 2 : (hf & HF_CS32) ? 1 : 0;
}

/* ---- Recording ------------------------------------------------------------------------------
 * A recorder connected with recordTo (native/common/block-sink.h) hears of every block the fast
 * engine lets run, with its instructions' lengths (decoded once per cached block), and of what
 * ran before each fast stretch (runFast). The hand-overs to the exact engine are recorded there,
 * by the recorder's own hooks, as before.
 */

/* CPUX86State.segs[]: SegmentCache { u32 selector; u64 base; u32 limit; u32 flags } after hflags2 */
#define ENV_SEGS 184
#define SEG_SIZE 24
#define SEG_BASE 8
#define R_CS 1

/*
 * Stop in a code hook, before the instruction at linear addr. Unicorn 2.0.1 sets eip to that
 * linear address, CS base included, before it calls a code hook (translate.c's "Sync PC in
 * advance"; fixed upstream after 2.0.1): a stop there left a real-mode vCPU (CS base = CS << 4)
 * or segmented code at the wrong eip, and its next run began elsewhere (xv6's second CPU, stepped
 * from its start-up IPI at CS 0x700, IP 0, went on at 0x7000 + 0x7001 through zeros). eip is
 * put back relative to CS; with a CS base of 0 (flat and long mode) nothing changes.
 */
static void stop_before(ctx *c, uint64_t addr, int kind) {
  if (c->env) {
    uint64_t base = *(uint64_t *)(uintptr_t)(c->env + ENV_SEGS + R_CS * SEG_SIZE + SEG_BASE);
    if (base) *(uint64_t *)(uintptr_t)(c->env + ENV_EIP) = (addr - base) & (code_mode(c) == 2 ? UINT64_MAX : 0xffffffffull);
  }
  stop_now(c, kind);
}
#define R_FS 4

/*
 * Whether a recorder can tell which instruction of a fast block made a write. Unicorn syncs eip
 * before a store only on QEMU's plain integer store path (gen_op_st_v); atomic operations (LOCK,
 * XCHG with memory), SSE, MMX and x87 stores, helpers (FXSAVE, CMPXCHG16B, far calls, segment
 * loads that set a descriptor's accessed bit) store with a stale eip (measured with Unicorn
 * 2.0.1). An instruction that may store is "plain" when it is one of these, never LOCKed:
 */
static int plain_store(unsigned id) {
  switch (id) {
  case X86_INS_MOV: case X86_INS_MOVNTI: case X86_INS_ADD: case X86_INS_ADC: case X86_INS_SUB:
  case X86_INS_SBB: case X86_INS_AND: case X86_INS_OR: case X86_INS_XOR: case X86_INS_INC:
  case X86_INS_DEC: case X86_INS_NEG: case X86_INS_NOT: case X86_INS_SHL: case X86_INS_SAL:
  case X86_INS_SHR: case X86_INS_SAR: case X86_INS_ROL: case X86_INS_ROR: case X86_INS_RCL:
  case X86_INS_RCR: case X86_INS_SHLD: case X86_INS_SHRD: case X86_INS_SETA: case X86_INS_SETAE:
  case X86_INS_SETB: case X86_INS_SETBE: case X86_INS_SETE: case X86_INS_SETG: case X86_INS_SETGE:
  case X86_INS_SETL: case X86_INS_SETLE: case X86_INS_SETNE: case X86_INS_SETNO: case X86_INS_SETNP:
  case X86_INS_SETNS: case X86_INS_SETO: case X86_INS_SETP: case X86_INS_SETS: case X86_INS_PUSH:
  case X86_INS_PUSHF: case X86_INS_PUSHFD: case X86_INS_PUSHFQ: case X86_INS_PUSHAW: case X86_INS_PUSHAL:
  case X86_INS_CALL: case X86_INS_STOSB: case X86_INS_STOSW: case X86_INS_STOSD: case X86_INS_STOSQ:
  case X86_INS_MOVSB: case X86_INS_MOVSW: case X86_INS_MOVSD: case X86_INS_MOVSQ: case X86_INS_CMPXCHG:
  case X86_INS_XADD: case X86_INS_BTS: case X86_INS_BTR: case X86_INS_BTC: case X86_INS_ENTER:
  case X86_INS_POP:
    return 1;
  }
  return 0;
}

/* 1: stores without a memory operand; 2: loads a segment register (a helper may then store to
   the descriptor, and does for far calls, IRET, LTR...), never plain. */
static int implicit_store(const cs_insn *in) {
  switch (in->id) {
  case X86_INS_LCALL: case X86_INS_LJMP: case X86_INS_IRET: case X86_INS_IRETD: case X86_INS_IRETQ:
  case X86_INS_RETF: case X86_INS_RETFQ: case X86_INS_LTR: case X86_INS_LLDT: case X86_INS_LDS:
  case X86_INS_LES: case X86_INS_LFS: case X86_INS_LGS: case X86_INS_LSS: case X86_INS_SYSCALL:
  case X86_INS_SYSENTER: case X86_INS_SYSEXIT: case X86_INS_SYSRET: case X86_INS_RSM:
  case X86_INS_MASKMOVQ: case X86_INS_MASKMOVDQU:
    return 2;
  case X86_INS_PUSH: case X86_INS_PUSHF: case X86_INS_PUSHFD: case X86_INS_PUSHFQ: case X86_INS_PUSHAW:
  case X86_INS_PUSHAL: case X86_INS_CALL: case X86_INS_ENTER: case X86_INS_STOSB: case X86_INS_STOSW:
  case X86_INS_STOSD: case X86_INS_STOSQ: case X86_INS_MOVSB: case X86_INS_MOVSW: case X86_INS_MOVSD:
  case X86_INS_MOVSQ:
    return 1;
  }
  const cs_x86 *x = &in->detail->x86;
  /* MOV or POP to a segment register (capstone gives POP's segment register no access: 0) */
  for (int i = 0; i < x->op_count; i++)
    if (x->operands[i].type == X86_OP_REG && ((x->operands[i].access & CS_AC_WRITE) || in->id == X86_INS_POP)) {
      x86_reg r = x->operands[i].reg;
      if (r == X86_REG_CS || r == X86_REG_DS || r == X86_REG_ES || r == X86_REG_FS || r == X86_REG_GS || r == X86_REG_SS) return 2;
    }
  return 0;
}

static csh cs_rec[3];

/*
 * The lengths of a block's instructions for a recorder (block-sink.h: bit 7 = may store), and
 * in *exact whether its writes can only be recorded on the exact engine (see plain_store). NULL
 * when it cannot be decoded (never for a block that runs fast: its count came from decoding).
 */
static const uint8_t *block_lens(ctx *c, blk *b) {
  static unsigned char code[8192];
  static cs_insn *insn[3];
  static const cs_mode modes[3] = {CS_MODE_16, CS_MODE_32, CS_MODE_64};
  if (b->lens) return b->lens;
  if (!cs_rec[b->mode]) {
    if (cs_open(CS_ARCH_X86, modes[b->mode], &cs_rec[b->mode]) != CS_ERR_OK) return NULL;
    cs_option(cs_rec[b->mode], CS_OPT_DETAIL, CS_OPT_ON);
    insn[b->mode] = cs_malloc(cs_rec[b->mode]);
  }
  if (b->size > sizeof code || !b->icount || !insn[b->mode] || !read_code(c, b->pc, code, b->size)) return NULL;
  uint8_t *lens = malloc(b->icount);
  if (!lens) return NULL;
  const uint8_t *p = code;
  size_t left = b->size;
  uint64_t addr = b->pc;
  int exact = 0;
  for (unsigned i = 0; i < b->icount; i++) {
    uint64_t at = addr;
    cs_insn *in = insn[b->mode];
    if (!cs_disasm_iter(cs_rec[b->mode], &p, &left, &addr, in) || addr - at > 15) {
      free(lens);
      return NULL;
    }
    const cs_x86 *x = &in->detail->x86;
    int implicit = implicit_store(in), stores = implicit != 0;
    for (int k = 0; k < x->op_count; k++) /* an access capstone does not know (0) counts as a store */
      if (x->operands[k].type == X86_OP_MEM && (!(x->operands[k].access & CS_AC_READ) || (x->operands[k].access & CS_AC_WRITE))) stores = 1;
    if (x->prefix[0] == X86_PREFIX_LOCK || implicit == 2 || (stores && !plain_store(in->id))) exact = 1;
    lens[i] = (uint8_t)((addr - at) | (stores ? 0x80 : 0));
  }
  if (!b->code && !(b->code = malloc(b->size))) {
    free(lens);
    return NULL;
  }
  memcpy(b->code, code, b->size);
  b->lens = lens;
  b->rec_exact = (uint8_t)exact;
  return lens;
}

/*
 * The block cache is keyed by virtual pc, size and code mode: a process that execs (or a page
 * loaded with other code) can bring a block of the same key with other instructions. Its count
 * (and, recorded, the lengths told to the recorder) must be this code's: when the bytes changed
 * since they were decoded, the block is decoded again. (A stale count made an unrecorded xv6
 * run drift from the exact engine's after its first exec.)
 */
static void block_refresh(ctx *c, blk *b) {
  static unsigned char now[8192];
  if (!b->code) return;
  /* The bytes at a virtual pc change only after a store to a page with translated code (any
     engine: the epoch) or a TLB drop of this engine or of its vCPU's other one (a CR3 load,
     INVLPG). Without the physical-TLB hook (phys == 0) they are looked at every time. */
  uint64_t epoch = phys_code_epoch();
  if (c->phys && b->seen_epoch == epoch && b->seen_tlb == c->tlb_gen && b->seen_peer == c->peer_gen) return;
  if (b->size <= sizeof now && read_code(c, b->pc, now, b->size) && !memcmp(now, b->code, b->size)) {
    b->seen_epoch = epoch;
    b->seen_tlb = c->tlb_gen;
    b->seen_peer = c->peer_gen;
    return;
  }
  free(b->lens);
  b->lens = NULL;
  b->rec_exact = 0;
  int exact;
  uint32_t last = 0;
  long n = decode_block(c, b->pc, b->size, b->mode, UINT64_MAX, &exact, &last);
  b->last_off = (uint16_t)last;
  b->icount = (uint16_t)(n > 0xffff ? 0xffff : n);
  b->exact = (uint8_t)(exact || n <= 0 || n > 0xffff);
  rep_classify(c, b);
  if (b->size <= sizeof now && read_code(c, b->pc, b->code, b->size)) {
    b->seen_epoch = epoch;
    b->seen_tlb = c->tlb_gen;
    b->seen_peer = c->peer_gen;
  } else {
    free(b->code);
    b->code = NULL;
  }
}

static void record_block(ctx *c, blk *b) {
  const uint8_t *lens = block_lens(c, b);
  uint64_t cs_base = *(uint64_t *)(uintptr_t)(c->env + ENV_SEGS + R_CS * SEG_SIZE + SEG_BASE);
  /* Unicorn 2.0.1 syncs eip before a hooked store to the instruction's linear address, CS base
     included (fixed upstream in 2.0.2, "Fix wrong IP in x86_16 because of cs_base not
     substracted"): with a CS base (a real-mode AP trampoline, segmented code) the recorder's write
     hook would find no instruction at eip + base, and a stop there would leave the vCPU at the
     wrong eip (xv6's second CPU ran zeros at 0xe000 instead of its start-up code at 0x7000). Such
     blocks run on the exact engine, which counts them one instruction at a time. */
  if (!lens || b->rec_exact || cs_base) {
    /* the recorder could not tell which instruction made a write: the exact engine runs this
       block, and the recorder's hooks there see each one (counted back out of the fast
       engine's count) */
    c->counter -= b->icount;
    c->handoff_n = b->icount;
    c->block_size = 0;
    c->stop_pc = b->pc;
    stop_now(c, STOP_HANDOFF);
    return;
  }
  c->sink->block(c->sink->ud, b->pc, cs_base, lens, b->icount, (const uint64_t *)(uintptr_t)(c->env + ENV_EIP));
}

/*
 * REP STOS. QEMU translates a string instruction with a REP prefix as a block of its own that
 * does one iteration and jumps back to itself (translate.c, gen_repz_stos; repz_opt is off
 * outside single-stepping, so a last run with ECX = 0 leaves the loop): each iteration is one
 * block, one block-hook call and one counted instruction. A kernel clearing its memory (xv6's
 * kinit fills 224 MiB with rep stosl, 58 M of its boot's 73 M instructions) spends most of its
 * time in that hook. So the block hook of such a block does the iterations that TCG would do on
 * its inline store path itself (rep_ahead): the same stores to the same host bytes, ECX and EDI
 * advanced, each iteration counted.
 */
static void rep_classify(ctx *c, blk *b) {
  unsigned char code[15];
  b->rep_size = 0;
  if (b->icount != 1 || b->exact || b->size > sizeof code || !read_code(c, b->pc, code, b->size)) return;
  int rep = 0, a67 = 0, o66 = 0, rexw = 0;
  unsigned i = 0;
  for (; i < b->size; i++) {
    unsigned char x = code[i];
    if (x == 0xf2 || x == 0xf3) rep = 1;
    else if (x == 0x67) a67 = 1;
    else if (x == 0x66) o66 = 1;
    else if (x == 0x2e || x == 0x36 || x == 0x3e || x == 0x26 || x == 0x64 || x == 0x65) continue;
    else break;
  }
  /* REX, in 64-bit code, right before the opcode */
  if (b->mode == 2 && i < b->size && (code[i] & 0xf0) == 0x40) rexw = (code[i++] >> 3) & 1;
  if (!rep || i + 1 != b->size || (code[i] != 0xaa && code[i] != 0xab)) return;
  unsigned osize = code[i] == 0xaa ? 1 : rexw ? 8 : (b->mode == 0) != o66 ? 2 : 4;
  b->rep_abits = (uint8_t)(b->mode == 2 ? (a67 ? 32 : 64) : ((b->mode == 1) != a67 ? 32 : 16));
  b->rep_size = (uint8_t)osize;
}

#define R_EAX 0
#define R_ECX 1
#define R_EDI 7
#define R_ES 0
#define HF_ADDSEG (1u << 6)
#define HF_SMAP (1u << 23)
#define EFLAGS_AC (1u << 18)

/* Writes `v` as an `abits`-bit register result, as QEMU's gen_op_mov_reg_v does. */
static void set_reg(uint64_t *r, unsigned abits, uint64_t v) {
  *r = abits == 64 ? v : abits == 32 ? (v & 0xffffffffull) : ((*r & ~0xffffull) | (v & 0xffff));
}

/*
 * The iterations of the REP STOS block `b` that the fast path would store, done here, before the
 * block runs (the block hook), up to the slice's limit and page by page: an element must lie in a
 * page whose TLB entry lets TCG's inline store through (phys_store_host: writable RAM with no
 * code, no trap page, no MMIO), else the iteration is left to the block, whose store takes QEMU's
 * own path (a TLB fill with its page walk, accessed and dirty bits and faults; a watchpoint; code
 * invalidation). The block itself then does the next iteration as before, and is counted as before.
 */
static void rep_ahead(ctx *c, blk *b) {
  char *env = (char *)(uintptr_t)c->env;
  uint64_t *regs = (uint64_t *)env;
  unsigned s = b->rep_size, abits = b->rep_abits;
  uint64_t amask = abits == 64 ? UINT64_MAX : abits == 32 ? 0xffffffffull : 0xffffull;
  uint64_t count = regs[R_ECX] & amask;
  /* room for the block's own iteration after these */
  uint64_t room = c->limit - c->counter - b->icount;
  if (count > room) count = room;
  if (count == 0) return;
  uint32_t hf = *(uint32_t *)(env + ENV_HFLAGS);
  uint64_t fl = *(uint64_t *)(env + ENV_EFLAGS);
  int mmu = (hf & 3) == 3 ? 1 : (!(hf & HF_SMAP) || (fl & EFLAGS_AC)) ? 2 : 0;
  int down = *(int32_t *)(env + ENV_DF) < 0;
  uint64_t es = *(uint64_t *)(env + ENV_SEGS + R_ES * SEG_SIZE + SEG_BASE);
  int addseg = abits != 64 && (hf & HF_ADDSEG);
  uint64_t value = regs[R_EAX];
  uint64_t di = regs[R_EDI] & amask, done = 0;
  while (done < count) {
    /* the linear address, as gen_lea_v_seg forms it */
    uint64_t lin = addseg ? (b->mode == 2 ? di + es : (di + es) & 0xffffffffull) : di;
    uint64_t off = lin & 0xfff;
    if (off + s > 0x1000) break;
    /* elements of this page from lin on, in the string's direction, without DI wrapping */
    uint64_t n = down ? off / s + 1 : (0x1000 - off) / s;
    uint64_t wrap = down ? di / s + 1 : (amask - di) / s + 1;
    if (n > wrap) n = wrap;
    if (n > count - done) n = count - done;
    if (!n) break;
    unsigned char *host = phys_store_host(env, mmu, lin, s);
    if (!host) break;
    unsigned char *at = down ? host - (n - 1) * s : host;
    if (s == 1) memset(at, (int)(value & 0xff), n);
    else
      for (uint64_t k = 0; k < n; k++) memcpy(at + k * s, &value, s);
    done += n;
    di = (down ? di - n * s : di + n * s) & amask;
  }
  if (!done) return;
  set_reg(&regs[R_EDI], abits, di);
  set_reg(&regs[R_ECX], abits, (regs[R_ECX] & amask) - done);
  c->counter += done;
  c->block_base = c->counter;
}

/* Block b runs next in the fast engine (whole, from its first instruction): stop before it when
   its first instruction is the spin (spin_check), else it becomes the previous instruction. */
static int spin_block(ctx *c, uint64_t addr, blk *b) {
  if (spin_check(c, addr, c->counter)) {
    c->block_size = 0; /* the block did not start */
    c->stop_pc = addr;
    stop_now(c, STOP_SPIN);
    return 1;
  }
  c->spin_prev_pc = addr + b->last_off;
  c->spin_prev_end = addr + b->size;
  return 0;
}

static inline unsigned recent_slot(uint64_t pc) { return (unsigned)((pc * 0x9e3779b97f4a7c15ull) >> 55); }

/* on_block's way for everything but the short path: the block looked up or decoded, its code
   checked, stops, hand-overs, REP STOS, recording. */
static __attribute__((noinline)) void on_block_slow(ctx *c, uint64_t addr, uint32_t size, int mode) {
  /* a string instruction with a rep prefix runs its block once per iteration, and a kernel's idle
     loop goes round a few blocks: blocks met lately skip the table */
  blk **slot = &c->recent[recent_slot(addr)];
  blk *b = *slot;
  if (!b || b->pc != addr || b->size != size || b->mode != mode) {
    b = block_get(c, addr, size, mode);
    *slot = b;
  }
  if (b) block_refresh(c, b);
  c->nundo = 0;
  c->block_pc = addr;
  c->block_size = size;
  c->block_base = c->counter;
  if (c->counter >= c->limit || (c->irq_wait && irq_open(c))) {
    c->irq_wait = 0;
    c->stop_pc = addr;
    stop_now(c, STOP_LIMIT);
    return;
  }
  if (b && b->gen != c->gen) {
    b->point = (uint8_t)block_has_point(c, addr, size);
    b->gen = c->gen;
  }
  if (b) b->plain = !b->exact && !b->point && !b->rep_size;
  if (!b || b->exact || b->point || c->counter + b->icount > c->limit) {
    uint64_t left = c->limit - c->counter;
    c->handoff_n = b && b->icount && b->icount < left ? b->icount : left;
    c->block_size = 0; /* the block did not start */
    c->stop_pc = addr;
    stop_now(c, STOP_HANDOFF);
    return;
  }
  if (c->spin_on && spin_block(c, addr, b)) return;
  /* a recorder hears of every store from its hooks: it gets the iterations one by one */
  if (b->rep_size && !c->sink) rep_ahead(c, b);
  c->block_icount = b->icount;
  c->counter += b->icount;
  if (c->sink) record_block(c, b);
}

/*
 * The block hook of a fast engine. A kernel spinning in its scheduler runs blocks of two or three
 * instructions, and the hook's own cost was most of the time there (16 ns a block against 1.7 ns
 * for the block itself): the common case, a block met lately whose code has not changed since it
 * was checked, that holds no point, needs nothing done ahead and runs whole before the limit, with
 * no recorder and no interrupt waiting for the guest to open them, only counts. The rest is on_block_slow's.
 */
static void on_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  ctx *c = (ctx *)ud;
  (void)uc;
  if (c->stop_kind) return;
  int mode = code_mode(c);
  blk *b = c->recent[recent_slot(addr)];
  if (b && b->pc == addr && b->size == size && b->mode == mode && b->plain && b->gen == c->gen && c->phys &&
      b->seen_epoch == phys_code_epoch() && b->seen_tlb == c->tlb_gen && b->seen_peer == c->peer_gen &&
      !c->sink && c->counter + b->icount <= c->limit && (!c->irq_wait || !irq_open(c))) {
    if (c->spin_on && spin_block(c, addr, b)) return;
    c->nundo = 0;
    c->block_pc = addr;
    c->block_size = size;
    c->block_base = c->counter;
    c->block_icount = b->icount;
    c->counter += b->icount;
    return;
  }
  on_block_slow(c, addr, size, mode);
}

static uint32_t on_in_fast(uc_engine *uc, uint32_t port, int size, void *ud) {
  ctx *c = (ctx *)ud;
  c->io_ran = 1;
  stop_now(c, STOP_HANDOFF);
  return 0;
}

static void on_out_fast(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud) {
  ctx *c = (ctx *)ud;
  c->io_ran = 1;
  stop_now(c, STOP_HANDOFF);
}

/* Where the CPUState's env_ptr lies in it; found by the first engine, checked on every later one. */
static long envptr_off = -1;

/*
 * The offset of CPUState.env_ptr in the object at `q`, which must end before `env`: env_ptr (=
 * env) followed, after icount_decr_ptr, tb_jmp_cache[4096] and node, by two empty QTAILQ heads
 * (breakpoints, watchpoints: NULL, then a pointer to themselves). -1 when `q` is not such an
 * object. `only` >= 0: try that offset alone.
 */
static long envptr_in(uint64_t q, uint64_t env, long only) {
  size_t span = (size_t)(env - q), lo = only >= 0 ? (size_t)only : 0, hi = only >= 0 ? (size_t)only + 8 : span;
  if (hi > span) return -1;
  size_t need = hi + 16 + 4096 * 8 + 16 + 56;
  if (need > span) need = span;
  unsigned char *buf = malloc(need);
  if (!buf || safe_read((void *)(uintptr_t)q, buf, need) != need) {
    free(buf);
    return -1;
  }
  long found = -1;
  for (size_t off = lo; off + 8 <= hi && found < 0; off += 8) {
    if (*(uint64_t *)(buf + off) != env) continue;
    size_t h = off + 16 + 4096 * 8 + 16;
    if (h + 56 > need) continue;
    uint64_t *w = (uint64_t *)(buf + h);
    if (w[0] == 0 && w[1] == q + h && w[2] == 0 && w[3] == q + h + 16) found = (long)off;
  }
  free(buf);
  return found;
}

/*
 * Finds the engine's CPUState and the QEMU internals the fast engine needs; 1 when all are there.
 * The CPUState is the object that uc_struct points to and whose env_ptr lies nearest its start:
 * other pointers of uc_struct may lead to objects before it, whose span to env also holds the
 * CPUState's env_ptr further in; taking one of those for the CPUState hands QEMU's
 * cpu_loop_exit_restore a pointer that is not a CPU, which crashes at the first hand-over (the
 * heap's layout decides which pointer a scan meets first, so that crash came and went).
 */
static int locate_cpu(ctx *c);

static int find_cpu(ctx *c) {
  static int have_exit = -1;
  if (have_exit < 0) {
    void *lib = dlopen("libunicorn.so.2", RTLD_NOW | RTLD_NOLOAD);
    exit_restore = lib ? (void (*)(void *, uintptr_t))dlsym(lib, "cpu_loop_exit_restore_x86_64") : NULL;
    have_exit = exit_restore != NULL;
  }
  return have_exit && (c->cpu || locate_cpu(c));
}

/* The CPUState of any engine (exact or fast): 1 when found (c->cpu). */
static int locate_cpu(ctx *c) {
  if (!c->env) return 0;
  uint64_t rip = 0, eip = 0;
  int32_t df = 0;
  /* CPUX86State: regs[16], eip, eflags, cc_dst, cc_src, cc_src2, cc_op, df, hflags */
  uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
  if (safe_read((void *)(uintptr_t)(c->env + ENV_EIP), &eip, 8) != 8 || eip != rip) return 0;
  if (safe_read((void *)(uintptr_t)(c->env + ENV_DF), &df, 4) != 4 || (df != 1 && df != -1)) return 0;
  uint64_t ptrs[1024];
  size_t n = safe_read(c->uc, ptrs, sizeof ptrs) / 8;
  uint64_t cpu = 0;
  long best = -1;
  for (size_t i = 0; i < n; i++) {
    uint64_t q = ptrs[i];
    if (q < 0x10000 || (q & 7) || q >= c->env || c->env - q > (1u << 20) || q == cpu) continue;
    long off = envptr_in(q, c->env, envptr_off);
    if (off >= 0 && (best < 0 || off < best)) {
      best = off;
      cpu = q;
    }
  }
  if (best < 0 || (envptr_off >= 0 && best != envptr_off)) return 0;
  envptr_off = best;
  /* after env_ptr: icount_decr_ptr, tb_jmp_cache, node, the two heads, watchpoint_hit, opaque */
  memio_off = best + 16 + 4096 * 8 + 16 + 48;
  c->cpu = (void *)(uintptr_t)cpu;
  return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* N-API glue                                                                                   */

#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      napi_throw_error(env, "EMU_NAPI", #call " failed");                                     \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

static napi_value throw_uc(napi_env env, const char *what, uc_err err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (uc_err %d)", what, uc_strerror(err), (int)err);
  napi_throw_error(env, "EMU_UNICORN", msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, "EMU_ARGS", "missing arguments");
    return 0;
  }
  return 1;
}

static ctx *get_ctx(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "EMU_ARGS", "not an emulator hook context");
    return NULL;
  }
  return (ctx *)p;
}

/* A context whose engine is still there: destroy() leaves c->uc NULL, and every uc_* call on a NULL
   engine dereferences it (a SIGSEGV that kills the process instead of an error for the caller). */
static ctx *get_live_ctx(napi_env env, napi_value v) {
  ctx *c = get_ctx(env, v);
  if (c && !c->uc) {
    napi_throw_error(env, "EMU_CLOSED", "the emulator hook context was destroyed");
    return NULL;
  }
  return c;
}

static napi_value make_u64(napi_env env, uint64_t v) {
  napi_value r;
  napi_create_bigint_uint64(env, v, &r);
  return r;
}

/* Drop translated code of [begin, end) so that hooks added or removed there take effect.
   (A whole-cache UC_CTL_TB_FLUSH costs 0.2-5 s in Unicorn 2.0.1, so it is never used. Memory
   hooks are looked up at run time, but only by code translated with the slow path: see
   drop_fast_code.) */
static void invalidate(ctx *c, uint64_t begin, uint64_t end) {
  if (end <= begin) end = begin + 1;
  uc_ctl(c->uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), begin, end);
}

/* create(engineAddress: bigint, ram: Buffer[, counting = true]) -> ctx. `ram` must stay alive as long as the engine. */
static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[4], ext;
  uint64_t addr;
  uc_err err;
  void *ram;
  size_t ram_size;
  size_t argc = 4;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "EMU_ARGS", "missing arguments");
    return NULL;
  }
  if (!get_u64(env, argv[0], &addr)) return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &ram, &ram_size));
  /* A third argument `false` leaves out the counting hook: only for measuring Unicorn's own
     speed (bench/emulator.ts); such an engine cannot run slices or stop at breakpoints exactly.
     A fourth `true` makes a fast engine (see "Fast engine"), driven only through runFast. */
  bool counting = true, fast = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &counting);
  if (argc >= 4) napi_get_value_bool(env, argv[3], &fast);
  ctx *c = calloc(1, sizeof *c);
  c->uc = (uc_engine *)(uintptr_t)addr;
  c->ram = ram;
  c->ram_size = ram_size;
  c->limit = UINT64_MAX;
  c->fast = fast;
  if (!enable_features(c->uc, &c->env)) {
    free(c);
    napi_throw_error(env, "EMU_FEATURES", "cannot enable NX and 1 GiB pages in this Unicorn build (CPU state layout not recognised)");
    return NULL;
  }
  find_old_exception(c);
  if (locate_cpu(c) && phys_install(&phys_hooks, NULL)) {
    phys_engine pe = {c->cpu, c->uc, (void *)(uintptr_t)c->env, c->ram, c->ram_size};
    c->phys = 1;
    phys_register(&pe, c);
    c->open_bus = open_bus_at(c, OPEN_BUS_PAGE);
  }
  if (fast && !find_cpu(c)) {
    if (c->phys) phys_unregister(c->cpu);
    free(c);
    napi_throw_error(env, "EMU_FAST", "no fast engine with this Unicorn build (QEMU's CPU state layout or cpu_loop_exit_restore not found): the exact engine runs alone");
    return NULL;
  }
  if (fast) {
    err = uc_hook_add(c->uc, &c->block_hook, UC_HOOK_BLOCK, (void *)on_block, c, 1, 0);
    if (!err) err = uc_hook_add(c->uc, &c->in_hook, UC_HOOK_INSN, (void *)on_in_fast, c, 1, 0, UC_X86_INS_IN);
    if (!err) err = uc_hook_add(c->uc, &c->out_hook, UC_HOOK_INSN, (void *)on_out_fast, c, 1, 0, UC_X86_INS_OUT);
    if (err) return throw_uc(env, "block hook", err);
  } else if (counting) {
    err = uc_hook_add(c->uc, &c->count_hook, UC_HOOK_CODE, (void *)on_count, c, 1, 0);
    if (err) return throw_uc(env, "counting hook", err);
  }
  err = uc_hook_add(c->uc, &c->intr_hook, UC_HOOK_INTR, (void *)on_intr, c, 1, 0);
  if (err) return throw_uc(env, "interrupt hook", err);
  err = uc_hook_add(c->uc, &c->badmem_hook, UC_HOOK_MEM_UNMAPPED | UC_HOOK_MEM_PROT, (void *)on_badmem, c, 1, 0);
  if (err) return throw_uc(env, "invalid-memory hook", err);
  err = uc_hook_add(c->uc, &c->badinsn_hook, UC_HOOK_INSN_INVALID, (void *)on_badinsn, c, 1, 0);
  if (err) return throw_uc(env, "invalid-instruction hook", err);
  /* no code has been translated yet: nothing to invalidate */
  CHECK(napi_create_external(env, c, NULL, NULL, &ext));
  return ext;
}

/*
 * allocRam(bytes) -> Buffer: guest RAM, zero-filled, on 2 MiB boundaries and asked to be backed
 * by transparent huge pages (MADV_HUGEPAGE, as QEMU asks for its guest RAM). A guest that fills
 * its memory (xv6's kinit writes 224 MiB) otherwise takes one host page fault per 4 KiB: 57,000
 * faults cost 0.8 s of CPU on a virtualised host, half of an xv6 boot; with huge pages 112.
 * Without THP (or when madvise refuses) the memory is the same, in 4 KiB pages.
 */
#define RAM_ALIGN (2ull << 20)

static void free_ram(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

static napi_value js_alloc_ram(napi_env env, napi_callback_info info) {
  napi_value argv[1], buf;
  uint64_t bytes;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (!get_u64(env, argv[0], &bytes) || bytes == 0 || bytes > (1ull << 46) || (bytes & 0xfff)) {
    napi_throw_range_error(env, "EMU_ARGS", "allocRam: a size in bytes, a multiple of 4 KiB");
    return NULL;
  }
  size_t span = (size_t)(bytes + RAM_ALIGN);
  unsigned char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    napi_throw_error(env, "EMU_NOMEM", "allocRam: the host has no room for the guest's RAM");
    return NULL;
  }
  /* keep the aligned part, give back the slack on either side */
  unsigned char *ram = (unsigned char *)(((uintptr_t)p + RAM_ALIGN - 1) & ~(uintptr_t)(RAM_ALIGN - 1));
  if (ram > p) munmap(p, (size_t)(ram - p));
  size_t tail = (size_t)(p + span - (ram + bytes));
  if (tail) munmap(ram + bytes, tail);
  madvise(ram, (size_t)bytes, MADV_HUGEPAGE);
  if (napi_create_external_buffer(env, (size_t)bytes, ram, free_ram, (void *)(uintptr_t)bytes, &buf) != napi_ok) {
    munmap(ram, (size_t)bytes);
    napi_throw_error(env, "EMU_NAPI", "allocRam: napi_create_external_buffer failed");
    return NULL;
  }
  return buf;
}

/* destroy(ctx): removes every hook (the engine must still be open) */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || !c->uc) return NULL;
  for (point *p = c->points, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  c->points = NULL;
  memset(c->byid, 0, sizeof c->byid);
  for (trap *t = c->traps, *n; t; t = n) {
    n = t->next;
    trap_uninstall(c, t);
    free(t);
  }
  c->traps = NULL;
  drop_faults(c);
  for (trap *t = c->guards, *n; t; t = n) {
    n = t->next;
    uc_mem_unmap(c->uc, t->va, 0x1000);
    free(t);
  }
  c->guards = NULL;
  forget_blocks(c);
  free(c->blocks);
  c->blocks = NULL;
  c->blocks_cap = c->nblocks = 0;
  if (c->xfer) uc_context_free(c->xfer);
  c->xfer = NULL;
  rebuild_code(c);
  if (c->block_hook) uc_hook_del(c->uc, c->block_hook);
  if (c->in_hook) uc_hook_del(c->uc, c->in_hook);
  if (c->out_hook) uc_hook_del(c->uc, c->out_hook);
  if (c->count_hook) uc_hook_del(c->uc, c->count_hook);
  uc_hook_del(c->uc, c->intr_hook);
  uc_hook_del(c->uc, c->badmem_hook);
  uc_hook_del(c->uc, c->badinsn_hook);
  if (c->phys) phys_unregister(c->cpu);
  c->phys = 0;
  c->uc = NULL; /* the ctx itself leaks a few bytes: the external may outlive the engine */
  return NULL;
}

/* arm(ctx, limit: bigint, skipPc: bigint | -1n): starts a slice */
static napi_value js_arm(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint64_t limit, skip;
  if (!get_args(env, info, 3, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || !get_u64(env, argv[1], &limit) || !get_u64(env, argv[2], &skip)) return NULL;
  c->counter = 0;
  c->limit = limit;
  c->stop_kind = STOP_NONE;
  c->pending = 0;
  c->stop_id = -1;
  c->skip_pc = skip;
  c->skip_armed = skip != UINT64_MAX;
  c->last_pc = UINT64_MAX;
  clear_exception(c);
  return NULL;
}

/* requestStop(ctx): stop before the next instruction (from a port hook) */
static napi_value js_request_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c) return NULL;
  /* From a port hook: let the IN/OUT complete, stop before the next instruction. */
  if (!c->stop_kind && !c->pending) {
    c->stop_counter = c->counter;
    c->pending = STOP_REQUEST;
  }
  return NULL;
}

/* counter(ctx) -> number of instruction-hook calls in this slice (the current instruction included) */
static napi_value js_counter(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c) return NULL;
  return make_u64(env, c->counter);
}

/* A BigUint64Array argument of at least n elements: its data, or NULL (and a TypeError). */
static uint64_t *u64_array(napi_env env, napi_value v, size_t n) {
  napi_typedarray_type type;
  size_t length;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok || type != napi_biguint64_array || length < n) {
    napi_throw_type_error(env, "EMU_ARGS", "expected a BigUint64Array");
    return NULL;
  }
  return data;
}

/* The engine's RIP, RFLAGS and CR2 into out[0..2] (zeros without an engine). */
static void read_rip_flags_cr2(ctx *c, uint64_t *out) {
  out[0] = out[1] = out[2] = 0;
  if (!c->uc) return;
  uc_reg_read(c->uc, UC_X86_REG_RIP, &out[0]);
  uc_reg_read(c->uc, UC_X86_REG_RFLAGS, &out[1]);
  uc_reg_read(c->uc, UC_X86_REG_CR2, &out[2]);
}

/*
 * result(ctx, out: BigUint64Array(14)): how the last run stopped, and where the engine is, without
 * making an object or a BigInt per field (it is read after every slice):
 *   [kind, id, access, size, intno, pc, addr, counterAtStop, value, counter, lastPc, rip, rflags, cr2]
 */
static napi_value js_result(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  uint64_t *out = c ? u64_array(env, argv[1], 14) : NULL;
  if (!out) return NULL;
  out[0] = (uint64_t)(int64_t)c->stop_kind;
  out[1] = (uint64_t)(int64_t)c->stop_id;
  out[2] = (uint64_t)(int64_t)c->stop_access;
  out[3] = (uint64_t)(int64_t)c->stop_size;
  out[4] = c->intno;
  out[5] = c->stop_pc;
  out[6] = c->stop_addr;
  out[7] = c->stop_counter;
  out[8] = (uint64_t)c->stop_value;
  out[9] = c->counter;
  out[10] = c->last_pc;
  read_rip_flags_cr2(c, &out[11]);
  return NULL;
}

/*
 * spin(ctx, state: BigUint64Array(23), write: boolean): the spin detector (see "Spin detection")
 * from `state` into the engine before a slice (write), or back into `state` after it, returning
 * the number of snapshots the slice took (spinLog):
 *   [on, base, prevEnd, prevPc, pc, snapAt, until, regs[16]]
 * With a fast engine, the exact engine's context holds it (runFast moves it).
 */
static napi_value js_spin(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  bool write = false;
  if (!get_args(env, info, 3, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  uint64_t *st = c ? u64_array(env, argv[1], 23) : NULL;
  if (!st) return NULL;
  napi_get_value_bool(env, argv[2], &write);
  if (write) {
    /* (it reads the general registers in the CPU state: off where enable_features found none) */
    c->spin_on = st[0] != 0 && c->env != 0;
    c->spin_base = st[1];
    c->spin_prev_end = st[2];
    c->spin_prev_pc = st[3];
    c->spin_pc = st[4];
    c->spin_snap_at = st[5];
    c->spin_until = st[6];
    memcpy(c->spin_regs, &st[7], sizeof c->spin_regs);
    c->spin_nlog = 0;
  } else {
    st[0] = (uint64_t)c->spin_on;
    st[1] = c->spin_base;
    st[2] = c->spin_prev_end;
    st[3] = c->spin_prev_pc;
    st[4] = c->spin_pc;
    st[5] = c->spin_snap_at;
    st[6] = c->spin_until;
    memcpy(&st[7], c->spin_regs, sizeof c->spin_regs);
  }
  napi_value r;
  napi_create_uint32(env, write ? 0 : c->spin_nlog, &r);
  return r;
}

/*
 * spinLog(ctx, out: BigUint64Array, at: number, seq: bigint) -> count: the snapshots the last
 * slice took, in order, into out[at...], each [seq, pc, snapAt after it, regs[16]]: `seq` plus the
 * position in the quantum (the instruction before which it was taken). `out` must have room for
 * SPIN_LOG of them from `at` (machine.ts keeps them by seq: made here, no BigInt is made per
 * snapshot in JavaScript).
 */
static napi_value js_spin_log(napi_env env, napi_callback_info info) {
  napi_value argv[4], r;
  uint32_t at;
  uint64_t seq;
  if (!get_args(env, info, 4, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || napi_get_value_uint32(env, argv[2], &at) != napi_ok || !get_u64(env, argv[3], &seq)) {
    if (c) napi_throw_type_error(env, "EMU_ARGS", "spinLog(ctx, out, at, seq): bad arguments");
    return NULL;
  }
  uint64_t *out = u64_array(env, argv[1], (size_t)at + SPIN_LOG * SPIN_LOG_WORDS);
  if (!out) return NULL;
  out += at;
  memcpy(out, c->spin_log, c->spin_nlog * sizeof c->spin_log[0]);
  for (unsigned i = 0; i < c->spin_nlog; i++) out[i * SPIN_LOG_WORDS] += seq;
  napi_create_uint32(env, c->spin_nlog, &r);
  return r;
}

/*
 * insnEnd(ctx, pc: bigint) -> bigint: the end (pc + length) of the instruction at virtual pc as
 * the vCPU would decode it now (its code size, its page tables); pc itself when it cannot be read.
 */
static napi_value js_insn_end(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint64_t pc;
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_live_ctx(env, argv[0]);
  if (!c || !get_u64(env, argv[1], &pc)) return NULL;
  unsigned char code[15];
  int mode = code_mode(c);
  uint64_t end = pc;
  size_t n = sizeof code;
  /* the instruction may end before a page that is not mapped */
  while (n && !read_code(c, pc, code, n)) n--;
  if (n) {
    if (!cs_handles[mode]) {
      static const cs_mode modes[3] = {CS_MODE_16, CS_MODE_32, CS_MODE_64};
      if (cs_open(CS_ARCH_X86, modes[mode], &cs_handles[mode]) != CS_ERR_OK) return make_u64(env, end);
    }
    cs_insn *in = NULL;
    if (cs_disasm(cs_handles[mode], code, n, pc, 1, &in) == 1) end = pc + in->size;
    if (in) cs_free(in, 1);
  }
  return make_u64(env, end);
}

/* state(ctx, out: BigUint64Array(3)): the engine's RIP, RFLAGS and CR2, in one call (a slice's start) */
static napi_value js_state(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_live_ctx(env, argv[0]);
  uint64_t *out = c ? u64_array(env, argv[1], 3) : NULL;
  if (!out) return NULL;
  read_rip_flags_cr2(c, out);
  return NULL;
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t id, bits;
  uint64_t begin, end;
  uc_err err = UC_ERR_OK;
  if (!get_args(env, info, 5, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || napi_get_value_int32(env, argv[1], &id) != napi_ok || !get_u64(env, argv[2], &begin) ||
      !get_u64(env, argv[3], &end) || napi_get_value_int32(env, argv[4], &bits) != napi_ok)
    return NULL;
  /* a read/write watchpoint maps trap pages in the engine */
  if ((bits & (W_READ | W_WRITE)) && !get_live_ctx(env, argv[0])) return NULL;
  if (end < begin) {
    napi_throw_range_error(env, "EMU_ARGS", "a watchpoint's end is before its begin");
    return NULL;
  }
  point *p = calloc(1, sizeof *p);
  p->c = c;
  p->id = id;
  p->bits = bits;
  p->begin = begin;
  p->end = end;
  /* Code points cost nothing in Unicorn: the counting hook, already called for every
     instruction, tests them (a ranged UC_HOOK_CODE each made every instruction walk the hook
     list: 10 of them took a guest from 100 to 40 M insn/s). Data points make trap pages. */
  if (bits & (W_READ | W_WRITE)) {
    uint64_t first = begin & ~0xfffull, last = end & ~0xfffull;
    if ((last - first) / 0x1000 >= 4096) {
      free(p);
      napi_throw_range_error(env, "EMU_ARGS", "a read/write watchpoint may cover at most 4096 pages (16 MiB)");
      return NULL;
    }
    for (uint64_t pg = first;; pg += 0x1000) {
      err = trap_ref(c, pg);
      if (err != UC_ERR_OK) {
        for (uint64_t q = first; q != pg; q += 0x1000) trap_unref(c, q);
        free(p);
        return throw_uc(env, "making a watched page trap its accesses", err);
      }
      if (pg == last) break;
    }
  }
  p->next = c->points;
  if (c->points) c->points->prev = p;
  c->points = p;
  point **bucket = &c->byid[(uint32_t)id % ID_BUCKETS];
  p->hnext = *bucket;
  *bucket = p;
  points_changed(c);
  return NULL;
}

static void unref_pages(ctx *c, point *p) {
  if (!(p->bits & (W_READ | W_WRITE))) return;
  for (uint64_t pg = p->begin & ~0xfffull;; pg += 0x1000) {
    trap_unref(c, pg);
    if (pg == (p->end & ~0xfffull)) break;
  }
}

/* remove(ctx, id) -> bool */
static napi_value js_remove(napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  int32_t id;
  int found = 0;
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || napi_get_value_int32(env, argv[1], &id) != napi_ok) return NULL;
  for (point **pp = &c->byid[(uint32_t)id % ID_BUCKETS]; *pp;) {
    point *p = *pp;
    if (p->id == id) {
      unref_pages(c, p);
      *pp = p->hnext;
      if (p->prev) p->prev->next = p->next;
      else c->points = p->next;
      if (p->next) p->next->prev = p->prev;
      free(p);
      found = 1;
    } else {
      pp = &p->hnext;
    }
  }
  if (found) points_changed(c);
  napi_get_boolean(env, found, &r);
  return r;
}

/*
 * Moves the vCPU's registers from one engine to the other. The receiver's TLB is kept unless the
 * sender dropped entries meanwhile (sync_tlb, after each transfer).
 */
static int transfer(ctx *from, ctx *to, uc_context *buf) {
  return uc_context_save(from->uc, buf) == UC_ERR_OK && uc_context_restore(to->uc, buf) == UC_ERR_OK;
}

/* Instructions of the fast engine's current block before pc: -2 when pc is not inside it, -1
   when pc is not an instruction boundary of it. */
static long before_in_block(ctx *f, uint64_t pc) {
  if (!f->block_size || pc < f->block_pc || pc >= f->block_pc + f->block_size) return -2;
  int exact;
  long k = decode_block(f, f->block_pc, (uint32_t)f->block_size, code_mode(f), pc, &exact, NULL);
  return k < 0 ? -1 : k;
}

static napi_value throw_between(napi_env env) {
  napi_throw_error(env, "EMU_FAST", "internal error: the fast engine stopped between instruction boundaries");
  return NULL;
}

/*
 * Unicorn 2.0.1 sets CR2 to -2 when it probes a code page (no fault reaches the guest; see
 * machine.ts). After a run on either engine (`by`: the one that ran) the engine `uc` now holding
 * the vCPU gets back the guest's CR2 as it was (`cr2`), unless the run stopped at a #PF; returns
 * the guest's CR2 from here on.
 */
static uint64_t keep_guest_cr2(uc_engine *uc, const ctx *by, uint64_t cr2) {
  uint64_t now = 0;
  uc_reg_read(uc, UC_X86_REG_CR2, &now);
  if (now != 0xfffffffffffffffeull || (by->stop_kind == STOP_INTERRUPT && by->intno == 14)) return now;
  uc_reg_write(uc, UC_X86_REG_CR2, &cr2);
  return cr2;
}

/*
 * runFast(fast, exact, limit: bigint, skipPc: bigint | -1n) -> uc_err: one slice, as arm() and
 * uc_emu_start on the exact engine would run it (same stops, same counter, same result()), with
 * the fast engine doing the stretches where nothing can stop. The exact engine holds the state
 * before and after.
 */
static napi_value js_run_fast(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint64_t limit, skip, done = 0, rip = 0, frip = 0;
  uc_err err = UC_ERR_OK;
  if (!get_args(env, info, 4, argv)) return NULL;
  ctx *f = get_ctx(env, argv[0]);
  ctx *e = f ? get_ctx(env, argv[1]) : NULL;
  if (!e || !get_u64(env, argv[2], &limit) || !get_u64(env, argv[3], &skip)) return NULL;
  if (!f->fast || e->fast || !f->uc || !e->uc) {
    napi_throw_type_error(env, "EMU_ARGS", "runFast takes a fast engine's context, then an exact engine's");
    return NULL;
  }
  if (!f->xfer && uc_context_alloc(f->uc, &f->xfer) != UC_ERR_OK) return throw_uc(env, "allocating a CPU context", UC_ERR_NOMEM);
  e->counter = 0;
  e->limit = limit;
  e->stop_kind = STOP_NONE;
  e->pending = 0;
  e->stop_id = -1;
  e->skip_pc = skip;
  e->skip_armed = skip != UINT64_MAX;
  e->last_pc = UINT64_MAX;
  for (;;) {
    uint64_t cr2 = 0;
    uc_reg_read(e->uc, UC_X86_REG_RIP, &rip);
    uc_reg_read(e->uc, UC_X86_REG_CR2, &cr2);
    if (!transfer(e, f, f->xfer)) return throw_uc(env, "moving the vCPU to the fast engine", UC_ERR_EXCEPTION);
    sync_tlb(e, f);
    f->counter = done;
    f->limit = limit;
    f->stop_kind = STOP_NONE;
    f->pending = 0;
    f->block_pc = f->block_size = 0;
    f->handoff_n = 0;
    f->io_ran = 0;
    clear_exception(f);
    if (f->sink) f->sink->ran(f->sink->ud, done);
    spin_copy(e, f);
    uc_err ferr = uc_emu_start(f->uc, rip, UINT64_MAX, 0, 0);
    spin_copy(f, e);
    drop_faults(f);
    if (!transfer(f, e, f->xfer)) return throw_uc(env, "moving the vCPU back to the exact engine", UC_ERR_EXCEPTION);
    sync_tlb(f, e);
    cr2 = keep_guest_cr2(e->uc, f, cr2);
    if (f->io_ran) {
      napi_throw_error(env, "EMU_FAST", "internal error: port I/O ran in the fast engine (its block cache missed an IN/OUT)");
      return NULL;
    }
    uc_reg_read(f->uc, UC_X86_REG_RIP, &frip);
    if (f->stop_kind != STOP_HANDOFF) {
      /* the fast engine ended the slice: report it as the exact engine would have */
      e->counter = f->counter;
      e->stop_kind = f->stop_kind;
      e->stop_pc = f->stop_pc;
      e->stop_counter = f->stop_counter;
      e->intno = f->intno;
      if (f->stop_kind == STOP_LIMIT || f->stop_kind == STOP_SPIN) e->stop_counter = e->counter = f->counter + 1; /* the next instruction did not run */
      if (f->stop_kind == STOP_INTERRUPT) {
        /* a fault inside a block counted whole: count up to the faulting instruction, as begun */
        long k = before_in_block(f, frip);
        if (k == -1) return throw_between(env);
        if (k >= 0) e->stop_counter = e->counter = f->block_base + (uint64_t)k + 1;
      }
      err = ferr;
      break;
    }
    done = f->counter;
    /* undone inside a block that was counted whole: count up to the undone instruction */
    long k = before_in_block(f, frip);
    if (k == -1) return throw_between(env);
    /* the instruction at frip was met by the fast engine (its block's start, or inside it): the
       exact engine runs it as one reached by falling through */
    if (k >= 0) {
      done = f->block_base + (uint64_t)k;
      e->spin_prev_end = frip;
    }
    uint64_t n = f->handoff_n ? f->handoff_n : 1;
    e->counter = done;
    e->limit = done + n < limit ? done + n : limit;
    e->stop_kind = STOP_NONE;
    e->pending = 0;
    e->last_pc = UINT64_MAX;
    clear_exception(e);
    if (f->sink) f->sink->ran(f->sink->ud, done);
    err = uc_emu_start(e->uc, frip, UINT64_MAX, 0, 0);
    e->limit = limit;
    /* the same for the exact engine's own probes (its first block of a page, a hand-over at the limit) */
    keep_guest_cr2(e->uc, e, cr2);
    if (e->stop_kind == STOP_LIMIT && e->counter - 1 < limit) {
      done = e->counter - 1;
      e->stop_kind = STOP_NONE;
      continue;
    }
    break;
  }
  napi_value r;
  napi_create_int32(env, (int32_t)err, &r);
  return r;
}

/*
 * guard(ctx, begin, size): device registers (MMIO) at guest-physical [begin, begin + size), which
 * the exact engine maps with its device callbacks. Every engine notes them (they are not open
 * bus). A fast engine maps them as pages whose every access aborts the instruction and hands it
 * to the exact engine, so that device accesses happen there, at their exact instruction.
 */
static napi_value js_guard(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint64_t b, n;
  if (!get_args(env, info, 3, argv)) return NULL;
  ctx *c = get_live_ctx(env, argv[0]);
  if (!c || !get_u64(env, argv[1], &b) || !get_u64(env, argv[2], &n)) return NULL;
  if (c->ndev == 8) {
    napi_throw_range_error(env, "EMU_ARGS", "guard: at most 8 device ranges per engine");
    return NULL;
  }
  c->dev[c->ndev][0] = b;
  c->dev[c->ndev++][1] = b + n;
  if (!c->fast) return NULL;
  for (uint64_t pg = b & ~0xfffull; pg < b + n; pg += 0x1000) {
    trap *t = calloc(1, sizeof *t);
    if (!t) return throw_uc(env, "guarding device registers", UC_ERR_NOMEM);
    t->c = c;
    t->va = pg;
    t->fault = 1;
    uc_err err = uc_mmio_map(c->uc, pg, 0x1000, trap_read, t, trap_write, t);
    if (err != UC_ERR_OK) {
      free(t);
      return throw_uc(env, "guarding device registers", err);
    }
    t->next = c->guards;
    c->guards = t;
  }
  return NULL;
}

/*
 * recordTo(fastCtx, sink: bigint | null): a recorder's emu_block_sink (native/common/block-sink.h)
 * hears of every block this fast engine runs from now on; null disconnects it. Refused when the
 * sink is of another version or this build's CPU state does not have the segment layout block()
 * reads the CS base from.
 */
static napi_value js_record_to(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  napi_valuetype t;
  uint64_t addr = 0;
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_live_ctx(env, argv[0]);
  if (!c) return NULL;
  if (!c->fast) {
    napi_throw_type_error(env, "EMU_ARGS", "recordTo takes a fast engine's context");
    return NULL;
  }
  CHECK(napi_typeof(env, argv[1], &t));
  if (t == napi_null || t == napi_undefined) {
    c->sink = NULL;
    return NULL;
  }
  if (!get_u64(env, argv[1], &addr) || !addr) {
    napi_throw_type_error(env, "EMU_ARGS", "recordTo(ctx, sink): the sink is a recorder's address (bigint) or null");
    return NULL;
  }
  emu_block_sink *sink = (emu_block_sink *)(uintptr_t)addr;
  if (sink->version != EMU_BLOCK_SINK_VERSION) {
    napi_throw_error(env, "EMU_FAST", "recordTo: the recorder's block sink is of another version (rebuild both addons: node scripts/setup.mjs)");
    return NULL;
  }
  /* the segment layout, checked through FS's base (CS's cannot be written alone) */
  uint64_t saved = 0, mark = 0x6462672d66730000ull, seen = 0;
  uc_reg_read(c->uc, UC_X86_REG_FS_BASE, &saved);
  uc_reg_write(c->uc, UC_X86_REG_FS_BASE, &mark);
  safe_read((void *)(uintptr_t)(c->env + ENV_SEGS + R_FS * SEG_SIZE + SEG_BASE), &seen, 8);
  uc_reg_write(c->uc, UC_X86_REG_FS_BASE, &saved);
  if (seen != mark) {
    napi_throw_error(env, "EMU_FAST", "recordTo: this Unicorn build's CPU state has another segment layout: recording runs on the exact engine");
    return NULL;
  }
  c->sink = sink;
  return NULL;
}

/*
 * guardValue(ctx, addr, size, value): a guarded device register at guest-physical `addr` that
 * reads as `value` until the next guardValue (a local APIC's ID, which a kernel reads at every
 * lock it takes): a fast engine answers such a read itself instead of handing it over. The caller
 * gives the new value whenever the device's register changes. Nothing to do for an exact engine.
 */
static napi_value js_guard_value(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint64_t a, n, v;
  if (!get_args(env, info, 4, argv)) return NULL;
  ctx *c = get_live_ctx(env, argv[0]);
  if (!c || !get_u64(env, argv[1], &a) || !get_u64(env, argv[2], &n) || !get_u64(env, argv[3], &v)) return NULL;
  if (!c->fast) return NULL;
  for (trap *t = c->guards; t; t = t->next) {
    if (t->va != (a & ~0xfffull)) continue;
    t->const_off = (uint32_t)(a & 0xfff);
    t->const_size = (uint32_t)n;
    t->const_value = v;
    t->has_const = n >= 1 && n <= 8 && (a & 0xfff) + n <= 0x1000;
    return NULL;
  }
  napi_throw_range_error(env, "EMU_ARGS", "guardValue: no guarded device page there");
  return NULL;
}

/* invalidate(ctx, begin, end): drop translated code of [begin, end) (after a debugger write) */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint64_t b, e;
  if (!get_args(env, info, 3, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  /* a destroyed context has no engine, hence no translations to drop */
  if (c && c->uc && get_u64(env, argv[1], &b) && get_u64(env, argv[2], &e)) {
    invalidate(c, b, e);
    if (c->fast) forget_blocks(c);
  }
  return NULL;
}

/* waitInterrupt(ctx, on): an interrupt waits for IF: the next slices end where the guest opens
   it (irq_open); cleared when that happens or by waitInterrupt(ctx, false) */
static napi_value js_wait_interrupt(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bool on = false;
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || napi_get_value_bool(env, argv[1], &on) != napi_ok) return NULL;
  c->irq_wait = on;
  return NULL;
}

/* flushTlb(ctx): drop the engine's TLB entries (after CR0/CR3/CR4/EFER or a whole state were
   written from outside: uc_reg_write and uc_context_restore leave the entries as they were) */
static napi_value js_flush_tlb(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (c && c->uc && c->phys) {
    phys_flush(c->cpu);
    c->tlb_gen++;
  }
  return NULL;
}

/* physical(ctx) -> string | null: null when the engine's TLB entries lead to guest-physical
   addresses, else why not */
static napi_value js_physical(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  const char *why = NULL;
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c) return NULL;
  if (!c->phys) {
    const char *w = NULL;
    if (!phys_install(&phys_hooks, &w)) why = w ? w : "the TLB hooks are not installed";
    else if (!c->uc) why = "the engine is closed";
    else why = "the engine's CPUState was not found";
  }
  if (!why) {
    napi_get_null(env, &r);
    return r;
  }
  napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &r);
  return r;
}

/*
 * releaseRam(buf): give the kernel back the pages of a guest RAM buffer that is done with
 * (a closed replay), keeping the mapping: the pages read as zeros until written again. A replay's
 * RAM lives in a SharedArrayBuffer, which V8 does not count as external memory (see
 * src/targets/emulator/guest-ram.ts), so no GC hurries to free a dead one: this returns its RSS
 * at once, and the address range goes when the buffer is collected.
 */
static napi_value js_release_ram(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t argc = 1;
  void *p;
  size_t n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_buffer_info(env, argv[0], &p, &n) != napi_ok) {
    napi_throw_type_error(env, "EMU_ARGS", "releaseRam(buffer)");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
  uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)(page - 1);
  /* only whole pages inside the buffer; the partial ones at its ends are left as they are */
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"destroy", NULL, js_destroy, NULL, NULL, NULL, napi_default, NULL},
      {"arm", NULL, js_arm, NULL, NULL, NULL, napi_default, NULL},
      {"requestStop", NULL, js_request_stop, NULL, NULL, NULL, napi_default, NULL},
      {"counter", NULL, js_counter, NULL, NULL, NULL, napi_default, NULL},
      {"result", NULL, js_result, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
      {"remove", NULL, js_remove, NULL, NULL, NULL, napi_default, NULL},
      {"invalidate", NULL, js_invalidate, NULL, NULL, NULL, napi_default, NULL},
      {"runFast", NULL, js_run_fast, NULL, NULL, NULL, napi_default, NULL},
      {"guard", NULL, js_guard, NULL, NULL, NULL, napi_default, NULL},
      {"recordTo", NULL, js_record_to, NULL, NULL, NULL, napi_default, NULL},
      {"flushTlb", NULL, js_flush_tlb, NULL, NULL, NULL, napi_default, NULL},
      {"guardValue", NULL, js_guard_value, NULL, NULL, NULL, napi_default, NULL},
      {"waitInterrupt", NULL, js_wait_interrupt, NULL, NULL, NULL, napi_default, NULL},
      {"physical", NULL, js_physical, NULL, NULL, NULL, napi_default, NULL},
      {"releaseRam", NULL, js_release_ram, NULL, NULL, NULL, napi_default, NULL},
      {"allocRam", NULL, js_alloc_ram, NULL, NULL, NULL, napi_default, NULL},
      {"state", NULL, js_state, NULL, NULL, NULL, napi_default, NULL},
      {"spin", NULL, js_spin, NULL, NULL, NULL, napi_default, NULL},
      {"spinLog", NULL, js_spin_log, NULL, NULL, NULL, napi_default, NULL},
      {"insnEnd", NULL, js_insn_end, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
