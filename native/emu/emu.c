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
 * the list); read/write watchpoints are ranged memory hooks (looked up by Unicorn at run time, by
 * code translated while a memory hook exists: the first one drops older code, see drop_fast_code).
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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicorn/unicorn.h>
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
};

enum watch_bits { W_READ = 1, W_WRITE = 2, W_EXEC = 4 };

typedef struct ctx ctx;

typedef struct point {
  ctx *c;
  int32_t id;
  int32_t bits; /* 0 for a breakpoint */
  uint64_t begin, end; /* inclusive */
  uc_hook hooks[2];
  int nhooks;
  struct point *next;
} point;

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
  /* code points (breakpoints, exec watchpoints), checked by on_count: a bitmap filter over the
     addresses of small ranges, and the bounds of the wide ones */
  point **code;
  int ncode;
  int wide;
  uint64_t wide_lo, wide_hi;
  uint64_t filter[512];
  unsigned char *ram; /* guest RAM (guest-physical 0 .. ram_size), shared by every vCPU */
  uint64_t ram_size;
  uint64_t aliases;   /* virtual ranges mapped so far (see alias_page) */
  /* Pages (virtual address >> 12) code has run from, so that code translated without memory hooks
     can be dropped when the first read/write watchpoint arrives (see drop_fast_code). A set with
     open addressing; slots hold page + 1 (0 = empty). */
  uint64_t last_page;
  uint64_t *pages;
  size_t npages, pages_cap;
  int nmem; /* points with a memory hook */
};

static void stop_now(ctx *c, int kind) {
  c->stop_kind = kind;
  uc_emu_stop(c->uc);
}

static void check_code(ctx *c, uint64_t addr, uint32_t size);
static inline uint32_t fhash(uint64_t a);

static void note_page(ctx *c, uint64_t page) {
  c->last_page = page;
  if (2 * (c->npages + 1) > c->pages_cap) {
    size_t cap = c->pages_cap ? 2 * c->pages_cap : 1024;
    uint64_t *n = calloc(cap, sizeof *n);
    if (!n) return;
    for (size_t i = 0; i < c->pages_cap; i++) {
      uint64_t k = c->pages[i];
      if (!k) continue;
      size_t j = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
      while (n[j]) j = (j + 1) & (cap - 1);
      n[j] = k;
    }
    free(c->pages);
    c->pages = n;
    c->pages_cap = cap;
  }
  uint64_t k = page + 1;
  size_t j = (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (c->pages_cap - 1);
  while (c->pages[j]) {
    if (c->pages[j] == k) return;
    j = (j + 1) & (c->pages_cap - 1);
  }
  c->pages[j] = k;
  c->npages++;
}

static void on_count(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  ctx *c = (ctx *)ud;
  (void)uc;
  ++c->counter;
  if ((addr >> 12) != c->last_page) note_page(c, addr >> 12);
  if (c->pending) {
    /* a watched access or a device request happened in the previous instruction, which has
       completed: stop before this one */
    int kind = c->pending;
    c->pending = 0;
    c->stop_pc = addr;
    stop_now(c, kind);
    return;
  }
  if (c->counter > c->limit) {
    if (!c->stop_kind) {
      c->stop_pc = addr;
      c->stop_counter = c->counter;
      stop_now(c, STOP_LIMIT);
    }
    return;
  }
  if (c->ncode) {
    uint32_t h = fhash(addr);
    if (((c->filter[h >> 6] >> (h & 63)) & 1) || (c->wide && addr >= c->wide_lo && addr <= c->wide_hi)) {
      check_code(c, addr, size);
      if (c->stop_kind) return;
    }
  }
  c->last_pc = addr;
}

#define FILTER_BITS 32768u
#define WIDE 64u /* ranges longer than this go to the wide bounds instead of the filter */
static inline uint32_t fhash(uint64_t a) { return (uint32_t)((a ^ (a >> 15) ^ (a >> 30)) & (FILTER_BITS - 1)); }

/* The instruction at addr may be a code point: find it and stop before the instruction runs. */
static void check_code(ctx *c, uint64_t addr, uint32_t size) {
  if (c->skip_armed && c->counter == 1 && addr == c->skip_pc) return;
  for (int i = 0; i < c->ncode; i++) {
    point *p = c->code[i];
    if (addr < p->begin || addr > p->end) continue;
    c->stop_id = p->id;
    c->stop_pc = addr;
    c->stop_addr = addr;
    c->stop_access = p->bits;
    c->stop_size = (int32_t)size;
    c->stop_counter = c->counter;
    stop_now(c, p->bits ? STOP_WATCH : STOP_BREAKPOINT);
    return;
  }
}

static void rebuild_code(ctx *c) {
  int n = 0;
  for (point *p = c->points; p; p = p->next)
    if (p->bits == 0 || (p->bits & W_EXEC)) n++;
  free(c->code);
  c->code = n ? malloc(n * sizeof *c->code) : NULL;
  memset(c->filter, 0, sizeof c->filter);
  c->wide = 0;
  c->wide_lo = UINT64_MAX;
  c->wide_hi = 0;
  n = 0;
  for (point *p = c->points; p; p = p->next) {
    if (!(p->bits == 0 || (p->bits & W_EXEC))) continue;
    c->code[n++] = p;
    if (p->end - p->begin < WIDE) {
      for (uint64_t a = p->begin;; a++) {
        uint32_t h = fhash(a);
        c->filter[h >> 6] |= 1ull << (h & 63);
        if (a == p->end) break;
      }
    } else {
      c->wide = 1;
      if (p->begin < c->wide_lo) c->wide_lo = p->begin;
      if (p->end > c->wide_hi) c->wide_hi = p->end;
    }
  }
  c->ncode = n;
}

static void on_mem(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
  point *p = (point *)ud;
  ctx *c = p->c;
  (void)uc;
  /* Unicorn matches the hook range on the first byte only: the range was widened by 7 bytes
     below, so check the real overlap here. */
  if (addr + (uint64_t)size <= p->begin || addr > p->end) return;
  if (c->stop_kind || c->pending) return;
  /* Stopping here would cancel the instruction after its store was done (a read-modify-write
     would run twice on resume): let it complete, and stop before the next one (on_count). */
  c->pending = STOP_WATCH;
  c->stop_id = p->id;
  c->stop_addr = addr;
  c->stop_size = size;
  c->stop_access = type == UC_MEM_WRITE ? W_WRITE : W_READ;
  c->stop_value = value;
  c->stop_counter = c->counter;
}

static void on_intr(uc_engine *uc, uint32_t intno, void *ud) {
  ctx *c = (ctx *)ud;
  uint64_t rip = 0;
  uc_reg_read(uc, UC_X86_REG_RIP, &rip);
  if (c->stop_kind) return;
  c->intno = intno;
  c->stop_pc = rip;
  c->stop_counter = c->counter;
  stop_now(c, STOP_INTERRUPT);
}

/*
 * Paging. Unicorn 2.0.1 walks the guest's page tables (faults, A/D bits) but then uses the virtual
 * address as the physical one ("identity map guest virtual address", excp_helper.c). So dbg maps
 * what the guest's page tables map: on the first access to an unmapped virtual page, walk the
 * tables (in RAM) and map that virtual range onto the same host RAM with uc_mem_map_ptr (a 2 MiB
 * or 1 GiB guest page at once when it fits, else the 4 KiB page). RAM itself is mapped at virtual
 * = physical. Limits: a virtual range below the end of RAM cannot alias other RAM, and an alias
 * stays when the guest later remaps that virtual page elsewhere.
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

static int alias_page(ctx *c, uint64_t va) {
  uint64_t pa, vbase, psize;
  if (!c->ram || !guest_walk(c, va, &pa, &vbase, &psize)) return 0;
  if (pa >= c->ram_size) return 0;
  uint64_t size = psize;
  if (pa + size > c->ram_size) size = (c->ram_size - pa) & ~0xfffull;
  if (size && vbase + size > vbase && uc_mem_map_ptr(c->uc, vbase, size, UC_PROT_ALL, c->ram + pa) == UC_ERR_OK) {
    c->aliases++;
    return 1;
  }
  /* the large page collides with something mapped already: map just this 4 KiB page */
  uint64_t v4 = va & ~0xfffull, p4 = pa + (v4 - vbase);
  if (p4 + 0x1000 > c->ram_size) return 0;
  if (uc_mem_map_ptr(c->uc, v4, 0x1000, UC_PROT_ALL, c->ram + p4) == UC_ERR_OK) {
    c->aliases++;
    return 1;
  }
  return 0;
}

static bool on_badmem(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
  ctx *c = (ctx *)ud;
  (void)uc;
  (void)value;
  if ((type == UC_MEM_READ_UNMAPPED || type == UC_MEM_WRITE_UNMAPPED || type == UC_MEM_FETCH_UNMAPPED) && alias_page(c, addr)) {
    /* an access may straddle into a second page: that one faults (and aliases) on its own */
    return true;
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

static int patch_at(uint64_t q, size_t env_off, size_t feat_off, const uint64_t *mark, uint64_t edx1, uint64_t edx81) {
  uint64_t regs[16], w[7];
  if (safe_read((void *)(uintptr_t)(q + env_off), regs, sizeof regs) != sizeof regs || memcmp(regs, mark, sizeof regs)) return 0;
  if (safe_read((void *)(uintptr_t)(q + env_off + feat_off), w, sizeof w) != sizeof w) return 0;
  if (w[0] != edx1 || (w[6] & ~(CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB)) != (edx81 & ~(CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB))) return 0;
  uint64_t *live = (uint64_t *)(uintptr_t)(q + env_off + feat_off);
  live[6] |= CPUID_EXT2_SYSCALL | CPUID_EXT2_NX | CPUID_EXT2_PDPE1GB;
  return 1;
}

/* Returns 1 when the features were set, 0 when the layout was not recognised. */
static int enable_features(uc_engine *uc) {
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
    done = patch_at(ptrs[found_slot], (size_t)found_env, (size_t)found_feat, mark, edx1, edx81);
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
          if (patch_at(q, off, f - off, mark, edx1, edx81)) {
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
  free(buf);
  for (int i = 0; i < 16; i++) uc_reg_write(uc, gp_regs[i], &saved[i]);
  return done;
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

static napi_value make_u64(napi_env env, uint64_t v) {
  napi_value r;
  napi_create_bigint_uint64(env, v, &r);
  return r;
}

static napi_value make_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
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

/*
 * Unicorn decides at translation time whether a memory access may take its fast path (a TLB hit
 * that skips every memory hook): only when no UC_HOOK_MEM_READ/WRITE hook exists. So code
 * translated before the first read/write watchpoint never calls the watchpoint's hook on a TLB
 * hit (a read watchpoint set on a variable a hot loop reads would never fire). When the first
 * memory hook arrives, drop the translated code of every page code has run from (and of the
 * current pc: a block may have been translated and not run yet); it is translated again, with
 * the slow path, when it runs next. (A whole-cache flush costs seconds, see invalidate().)
 * Pages are dropped through the current address space: code run only under another CR3 and not
 * mapped by the current one is not reached.
 */
static void drop_fast_code(ctx *c) {
  uint64_t rip = 0;
  for (size_t i = 0; i < c->pages_cap; i++) {
    uint64_t k = c->pages[i];
    if (k) invalidate(c, (k - 1) << 12, ((k - 1) << 12) + 0x1000);
  }
  uc_reg_read(c->uc, UC_X86_REG_RIP, &rip);
  invalidate(c, rip & ~0xfffull, (rip & ~0xfffull) + 0x1000);
}

/* create(engineAddress: bigint, ram: Buffer[, counting = true]) -> ctx. `ram` must stay alive as long as the engine. */
static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[2], ext;
  uint64_t addr;
  uc_err err;
  void *ram;
  size_t ram_size;
  if (!get_args(env, info, 2, argv) || !get_u64(env, argv[0], &addr)) return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &ram, &ram_size));
  ctx *c = calloc(1, sizeof *c);
  c->uc = (uc_engine *)(uintptr_t)addr;
  c->ram = ram;
  c->ram_size = ram_size;
  c->limit = UINT64_MAX;
  c->last_page = UINT64_MAX;
  /* A third argument `false` leaves out the counting hook: only for measuring Unicorn's own
     speed (bench/emulator.ts); such an engine cannot run slices or stop at breakpoints exactly. */
  bool counting = true;
  size_t argc3 = 3;
  napi_value argv3[3];
  if (napi_get_cb_info(env, info, &argc3, argv3, NULL, NULL) == napi_ok && argc3 >= 3) napi_get_value_bool(env, argv3[2], &counting);
  if (counting) {
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
  if (!enable_features(c->uc)) {
    napi_throw_error(env, "EMU_FEATURES", "cannot enable NX and 1 GiB pages in this Unicorn build (CPU state layout not recognised)");
    return NULL;
  }
  CHECK(napi_create_external(env, c, NULL, NULL, &ext));
  return ext;
}

/* destroy(ctx): removes every hook (the engine must still be open) */
static napi_value js_destroy(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || !c->uc) return NULL;
  for (point *p = c->points, *n; p; p = n) {
    n = p->next;
    for (int i = 0; i < p->nhooks; i++) uc_hook_del(c->uc, p->hooks[i]);
    free(p);
  }
  c->points = NULL;
  c->nmem = 0;
  free(c->pages);
  c->pages = NULL;
  c->npages = c->pages_cap = 0;
  rebuild_code(c);
  if (c->count_hook) uc_hook_del(c->uc, c->count_hook);
  uc_hook_del(c->uc, c->intr_hook);
  uc_hook_del(c->uc, c->badmem_hook);
  uc_hook_del(c->uc, c->badinsn_hook);
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

/* result(ctx) -> [kind, id, access, size, intno, pc, addr, counterAtStop, value, counter, lastPc] */
static napi_value js_result(napi_env env, napi_callback_info info) {
  napi_value argv[1], arr;
  if (!get_args(env, info, 1, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c) return NULL;
  CHECK(napi_create_array_with_length(env, 11, &arr));
  napi_set_element(env, arr, 0, make_i32(env, c->stop_kind));
  napi_set_element(env, arr, 1, make_i32(env, c->stop_id));
  napi_set_element(env, arr, 2, make_i32(env, c->stop_access));
  napi_set_element(env, arr, 3, make_i32(env, c->stop_size));
  napi_set_element(env, arr, 4, make_i32(env, (int32_t)c->intno));
  napi_set_element(env, arr, 5, make_u64(env, c->stop_pc));
  napi_set_element(env, arr, 6, make_u64(env, c->stop_addr));
  napi_set_element(env, arr, 7, make_u64(env, c->stop_counter));
  napi_set_element(env, arr, 8, make_u64(env, (uint64_t)c->stop_value));
  napi_set_element(env, arr, 9, make_u64(env, c->counter));
  napi_set_element(env, arr, 10, make_u64(env, c->last_pc));
  return arr;
}

/* add(ctx, id, begin: bigint, end: bigint (inclusive), bits: 0 = breakpoint, else R|W|X) */
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
  point *p = calloc(1, sizeof *p);
  p->c = c;
  p->id = id;
  p->bits = bits;
  p->begin = begin;
  p->end = end;
  /* Code points cost nothing in Unicorn: the counting hook, already called for every
     instruction, tests them (a ranged UC_HOOK_CODE each made every instruction walk the hook
     list: 10 of them took a guest from 100 to 40 M insn/s). */
  uint64_t lo = begin >= 7 ? begin - 7 : 0;
  int memtype = ((bits & W_READ) ? UC_HOOK_MEM_READ : 0) | ((bits & W_WRITE) ? UC_HOOK_MEM_WRITE : 0);
  if (!err && memtype) {
    if (c->nmem == 0) drop_fast_code(c);
    err = uc_hook_add(c->uc, &p->hooks[p->nhooks++], memtype, (void *)on_mem, p, lo, end);
  }
  if (err) {
    for (int i = 0; i < p->nhooks - 1; i++) uc_hook_del(c->uc, p->hooks[i]);
    free(p);
    return throw_uc(env, "adding a breakpoint or watchpoint hook", err);
  }
  if (memtype) c->nmem++;
  p->next = c->points;
  c->points = p;
  rebuild_code(c);
  return NULL;
}

/* remove(ctx, id) -> bool */
static napi_value js_remove(napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  int32_t id;
  int found = 0;
  if (!get_args(env, info, 2, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (!c || napi_get_value_int32(env, argv[1], &id) != napi_ok) return NULL;
  for (point **pp = &c->points; *pp;) {
    point *p = *pp;
    if (p->id == id) {
      for (int i = 0; i < p->nhooks; i++) uc_hook_del(c->uc, p->hooks[i]);
      if (p->nhooks) c->nmem--;
      *pp = p->next;
      free(p);
      found = 1;
    } else {
      pp = &p->next;
    }
  }
  if (found) rebuild_code(c);
  napi_get_boolean(env, found, &r);
  return r;
}

/* invalidate(ctx, begin, end): drop translated code of [begin, end) (after a debugger write) */
static napi_value js_invalidate(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  uint64_t b, e;
  if (!get_args(env, info, 3, argv)) return NULL;
  ctx *c = get_ctx(env, argv[0]);
  if (c && get_u64(env, argv[1], &b) && get_u64(env, argv[2], &e)) invalidate(c, b, e);
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
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
