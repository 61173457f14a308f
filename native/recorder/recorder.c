/*
 * dbg's native execution recorder: Unicorn code and memory-write hooks in C.
 *
 * JS hands over uc_engine pointers (BigInt, from koffi) and the host address of guest RAM; the
 * hooks encode every executed instruction and every guest memory write into per-chunk buffers,
 * and `cut()` hands one finished chunk to JS, which stores it (src/store/) on the trace writer's
 * thread, where `encodeRows()` encodes its memory rows (2. below). No JS runs per
 * instruction: measured here, JS hooks top out near 7 M insn/s, C hooks near 76 M/s.
 *
 * A chunk is self-contained (decodable without its neighbours). It yields:
 *
 * 1. The pc stream, 4-bit nibbles, low nibble first:
 *      s (1..15)            next instruction follows the previous one (pc = prev pc + prev size);
 *                           s is its size
 *      0 s (s 1..15)        a jump to where the last jump from the same pc went (prediction
 *                           cache, 4096 entries, reset per chunk); s is the size
 *      0 0 s  zz...         a jump elsewhere: s is the size, then zigzag(pc - expected) in nibbles
 *                           of 3 value bits, bit 3 = more follows (least significant group first)
 *      0 0 0 1 v            control: vCPU v (0..15) runs from here on (each vCPU has its own
 *                           "expected pc")
 *    Typical code costs 0.5 B per sequential instruction and 1 B per predicted jump.
 *
 * 2. Memory rows, per 64-byte physical line written in the chunk (sorted by line; a line with
 *    more than PART_BYTES of records gets several consecutive rows, "parts", each with its own
 *    images and mask, each decodable alone):
 *      +0   u64  line number (physical address >> 6)
 *      +8   u32  n = byte length of the row blob that follows
 *      +12  u64  mask: bit i set = byte i of the line was written in this row
 *      +20  blob:
 *             64 B   the line's contents before this row's first write
 *             64 B   the line's contents after this row's last write
 *             then records in execution order:
 *               varint ((seq - previous record's seq, or - chunk first seq) << 1 | host write)
 *               u8     offset in line (bits 0-5) | log2(len) (bits 6-7)      (len 1, 2, 4 or 8)
 *               len 1: the new byte; len 2, 4, 8: u8 changed (bit i: byte i differs from the
 *               line before the write), then the new bytes that differ, in order (schema 6;
 *               schema 5 and older: all len new bytes)
 *    Old bytes of a write are the line's state just before it (the 64 B image + earlier records),
 *    so they are not stored twice.
 *
 * 3. Register checkpoints, uc_context images (Unicorn's full CPU state) at slice starts, slice
 *    ends and every K instructions inside a slice (taken in the code hook, before the
 *    instruction):
 *      u64 seq | u8 vcpu | u8 flags (1 = full image, 2 = slice end) | u32 n | n B
 *    The first checkpoint of each vCPU in a chunk is a full image; later ones are
 *    RLE(image XOR that full image): pairs of varint zero-run, varint literal-run + literals.
 *
 * Seq: the global count of executed instructions. Unicorn re-runs an instruction cancelled by
 * uc_emu_stop() in a code hook; endSlice(executed) drops the one uncounted re-run.
 *
 * What recording costs (issue 10; 12-07 00:07 UTC, load 8 on 2 cores; CPU seconds of the
 * guest's thread for 5·10^7 instructions recorded from the fast engine, medians of 3, scratch
 * builds without the write hook or with an empty one):
 *
 *                          unrecorded  block sink only  + write hook, empty  everything  writer's thread
 *   sample kernel             0.50         0.50              0.88              1.27          0.85
 *   store loop (1 store/13)   0.33         0.43              0.57              0.67          0.88
 *
 * So Unicorn's slow path for stores once any UC_HOOK_MEM_WRITE exists (every store leaves the
 * inline TLB path: store helper, memory_mapping's region search, the hook call) costs 1.7x on
 * its own, more than issue 10's 1.5x for the kernel: a recorder that keeps a per-write hook
 * cannot meet it. The pc stream and checkpoints (the block sink) cost ~0-30%; this file's
 * write callback ~26 ns a store (callgrind: ~250 instructions a store, ~230 a block for the
 * sink). The writer's thread (rows encoded, SQLite: B-tree inserts, the WAL written and
 * checkpointed into the file) uses more CPU than the guest's on the store loop.
 */
#define _GNU_SOURCE /* SCHED_BATCH */
#include <node_api.h>
#include "../common/napi-args.h"
#include "decode.h"
#include "records.h"
#include "seen.h"
#include "../common/block-sink.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <unicorn/unicorn.h>

#define MAX_VCPU 16
/* each vCPU's exact engine, and its fast engine when it records from one */
#define MAX_ENG (2 * MAX_VCPU)
#define JCACHE 4096
/* A line's records in one chunk are cut into rows of about this many bytes, so that a lookup
   reads a small blob even for a line written thousands of times per chunk, and a row (128 bytes
   of images, these records and one more of at most 15) stays within SQLite's local payload of
   ~2000 bytes on a trace's 8 KiB pages (src/store/schema.ts): no overflow page per row. */
#define PART_BYTES 1800

typedef struct {
  uint8_t *p;
  size_t len, cap;
} Bytes;

static void b_reserve(Bytes *b, size_t n) {
  if (b->len + n <= b->cap) return;
  size_t c = b->cap ? b->cap : 65536;
  while (c < b->len + n) c *= 2;
  b->p = realloc(b->p, c);
  b->cap = c;
}
static inline void b_put(Bytes *b, const void *d, size_t n) {
  b_reserve(b, n);
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static inline void b_u8(Bytes *b, uint8_t v) { b_put(b, &v, 1); }
static inline void b_varint(Bytes *b, uint64_t v) {
  while (v >= 0x80) {
    b_u8(b, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  b_u8(b, (uint8_t)v);
}

typedef struct Rec Rec;

typedef struct Eng Eng;

struct Eng {
  Rec *rec;
  uc_engine *uc;
  int vcpu;
  int attached;
  uc_hook hcode, hmem;
  int has_hmem; /* hmem was added: the engine records guest writes (attach's `writes`) */
  int has_hcode; /* hcode was added: the engine records its pcs (not in a lazy recording) */
  uint64_t expected, prev_pc;
  /* The image of the engine's last checkpoint, and a buffer for the next (checkpoint swaps them). */
  uc_context *ctx, *ctx_next;
  /* That checkpoint's delta against its vCPU's key, while the key is the same (last_ok). */
  uint8_t *last;
  size_t last_len, last_cap;
  int last_ok;
  /* soft TLB for virtual -> physical of written addresses */
  int paging; /* 0 none, 2 two-level, 3 PAE, 4 long mode */
  int pse;    /* CR4.PSE: two-level paging honours 4 MiB pages */
  uint64_t cr3;
  uint64_t tlb_v[64], tlb_p[64];
  /* A fast engine (see "Recording from the fast engine"): the exact engine of its vCPU, whose
     pc-stream state (expected, prev_pc) both share, and the sink emu.c calls. */
  Eng *twin;
  emu_block_sink sink;
  /* An exact engine whose vCPU records from a fast engine too: it runs only the hand-overs, mostly
     code it has not translated yet, and Unicorn 2.0.1 leaves CR2 = -2 in the CPU after probing a
     code page to translate it (machine.ts puts the guest's value back after the slice): no
     checkpoint inside its slices, where that -2 would be taken for the guest's CR2. */
  int has_fast;
  /* A fast engine's CR3 was read in the block running now: QEMU ends a translated block after
     every instruction that loads CR3, so one read per block serves all of its writes. */
  int cr3_fresh;
};

typedef struct {
  uint64_t line;
  uint32_t nbytes; /* output bytes of the row blob */
  uint32_t out;    /* write offset while filling */
  uint32_t prev;   /* seq offset of the previous record while sizing and filling */
  uint32_t base;   /* offset of the row blob in cut()'s output */
  uint64_t mask;   /* bit i: byte i of the line was written in this chunk */
  uint64_t born;   /* 1 + the seq of the host write (with `old`) that opened the line, else 0 */
  uint8_t init[64];
  uint8_t cur[64]; /* the line now (init + this chunk's writes so far) */
} Line;

typedef struct {
  uint32_t slot;
  uint32_t seqoff;
  uint64_t data;
  uint8_t off, len, host, pending; /* the physical address is the slot's line and off */
} LogRec;

struct Rec {
  Eng eng[MAX_ENG];
  int neng;
  uint64_t seq;         /* seq of the next instruction */
  uint64_t cur_seq;     /* seq of the instruction being executed */
  uint64_t chunk_first; /* first seq of the open chunk */
  uint64_t slice_start;
  /* pc stream */
  Bytes pcs;
  int half;
  int cur_vcpu;
  uint64_t jcache[JCACHE];
  struct {
    int valid;
    size_t len;
    int half;
    uint8_t lastbyte;
    int vcpu;
    int eng;
    uint64_t expected, prev_pc;
    int jslot;
    uint64_t jold;
    size_t nlog;
    size_t nuntrans;
  } undo;
  /* memory */
  uint8_t *ram;
  uint64_t ram_base, ram_size;
  Line *lines;
  uint32_t nlines, caplines;
  uint32_t *htab;
  uint32_t hcap;
  /* the line written last and its slot: a stack's pushes, a loop's stores hit it again */
  uint64_t last_line;
  uint32_t last_slot;
  LogRec *log;
  size_t nlog, caplog;
  size_t npending;
  /* checkpoints */
  uint32_t ckpt_every;
  uint64_t last_ckpt_seq;
  size_t ctx_size;
  Bytes ckpts;
  /* guest writes whose virtual address the page walk could not translate (see hook_mem) */
  Bytes untrans;
  uint8_t *key[MAX_VCPU];
  int have_key[MAX_VCPU];
  /* the fast engine's last block (see sink_block): what it told, and the state before it */
  struct {
    int valid;
    uint64_t seq, pc, cs_base;
    const uint8_t *lens;
    uint32_t n;
    const uint64_t *eip;
    uint32_t hint_i;  /* the instruction the last write came from, and its offset in the block */
    uint64_t hint_off;
    size_t len;
    int half;
    uint8_t lastbyte;
    int vcpu;
    uint64_t expected, prev_pc;
    int jslot;
    uint64_t jold;
    size_t nlog, nuntrans;
    Eng *x; /* the vCPU's exact engine */
  } blk;
  /* what went wrong in a hook (reported by endSlice): the history cannot be trusted from there */
  char broken[200];
  Bytes tmp;
  uint64_t stop_at;   /* runSlice(): stop before this seq (0 = no limit) */
  /* attach's `writes`: -1 before the first attach, 1 when guest and host writes make memory rows,
     0 when none do (a lazy-rows recording: the written pages' images stand for them) */
  int rows;
  /* dirtyTrack: the userfaultfd write-protecting the tracked range, /proc/self/pagemap, the
     range, and dirtyPages' output kept from one call to the next */
  int uffd, pagemap;
  uint64_t dirty_at, dirty_len;
  uint32_t *dirty;
  size_t dirty_cap;
  /* dirtyCount's last look listed every page written (it ended under its bound): dirty[0..listed)
     is that list, until the next scan (dirtyTakeListed) */
  long listed;
};

/* ---- physical memory ------------------------------------------------------------------- */

static void phys_read(Rec *r, Eng *e, uint64_t pa, void *dst, size_t n) {
  if (r->ram && pa >= r->ram_base && pa + n <= r->ram_base + r->ram_size) {
    memcpy(dst, r->ram + (pa - r->ram_base), n);
    return;
  }
  if (!e->uc || uc_mem_read(e->uc, pa, dst, n) != UC_ERR_OK) memset(dst, 0, n);
}

static uint64_t phys_u64(Rec *r, Eng *e, uint64_t pa) {
  uint64_t v;
  phys_read(r, e, pa, &v, 8);
  return v;
}

static void eng_mode(Eng *e) {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  uc_reg_read(e->uc, UC_X86_REG_CR0, &cr0);
  uc_reg_read(e->uc, UC_X86_REG_CR3, &cr3);
  uc_reg_read(e->uc, UC_X86_REG_CR4, &cr4);
  uc_x86_msr msr = {0xC0000080u, 0};
  if (uc_reg_read(e->uc, UC_X86_REG_MSR, &msr) == UC_ERR_OK) efer = msr.value;
  int paging = !(cr0 & 0x80000000u) ? 0 : (efer & 0x400) ? 4 : (cr4 & 0x20) ? 3 : 2;
  if (paging != e->paging || cr3 != e->cr3) memset(e->tlb_v, 0xff, sizeof e->tlb_v);
  e->paging = paging;
  e->pse = (cr4 & 0x10) != 0;
  e->cr3 = cr3;
}

/* No translation: an address no physical address can be (x86-64 physical addresses are below 2^52). */
#define WALK_FAIL (~0ull)

/*
 * Physical address of virtual `va` through the guest's page tables, as the CPU walks them (the
 * same rules as src/arch/x86-64-paging.ts: 1 GiB and 2 MiB pages in long mode and PAE, 4 MiB
 * pages in two-level paging only with CR4.PSE); WALK_FAIL when an entry is not present.
 */
static uint64_t walk(Rec *r, Eng *e, uint64_t va) {
  const uint64_t M = 0x000ffffffffff000ull;
  uint64_t ent;
  if (e->paging == 4) {
    /* Reserved bits fault as the CPU (and Unicorn) fault: PS in a PML4E, a large page's frame
       bits below its size (bit 12 is PAT). */
    ent = phys_u64(r, e, (e->cr3 & M) + ((va >> 39) & 511) * 8);
    if (!(ent & 1) || (ent & 0x80)) return WALK_FAIL;
    ent = phys_u64(r, e, (ent & M) + ((va >> 30) & 511) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    if (ent & 0x80) return (ent & 0x3fffe000ull) ? WALK_FAIL : (ent & M & ~0x3fffffffull) | (va & 0x3fffffffull);
    ent = phys_u64(r, e, (ent & M) + ((va >> 21) & 511) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    if (ent & 0x80) return (ent & 0x1fe000ull) ? WALK_FAIL : (ent & M & ~0x1fffffull) | (va & 0x1fffffull);
    ent = phys_u64(r, e, (ent & M) + ((va >> 12) & 511) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    return (ent & M) | (va & 0xfff);
  }
  if (e->paging == 3) {
    ent = phys_u64(r, e, (e->cr3 & 0xffffffe0u) + ((va >> 30) & 3) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    ent = phys_u64(r, e, (ent & M) + ((va >> 21) & 511) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    if (ent & 0x80) return (ent & M & ~0x1fffffull) | (va & 0x1fffffull);
    ent = phys_u64(r, e, (ent & M) + ((va >> 12) & 511) * 8);
    if (!(ent & 1)) return WALK_FAIL;
    return (ent & M) | (va & 0xfff);
  }
  /* 32-bit two-level paging */
  uint32_t e32;
  phys_read(r, e, (e->cr3 & 0xfffff000u) + ((va >> 22) & 1023) * 4, &e32, 4);
  if (!(e32 & 1)) return WALK_FAIL;
  if ((e32 & 0x80) && e->pse) return (e32 & 0xffc00000u) | (va & 0x3fffff);
  phys_read(r, e, (e32 & 0xfffff000u) + ((va >> 12) & 1023) * 4, &e32, 4);
  if (!(e32 & 1)) return WALK_FAIL;
  return (e32 & 0xfffff000u) | (va & 0xfff);
}

static inline uint64_t translate(Rec *r, Eng *e, uint64_t va) {
  if (!e->paging) {
    /* Paging may have been turned on inside this slice (a kernel entering long mode): an
       address outside RAM makes us look again. */
    if (!r->ram || va - r->ram_base < r->ram_size) return va;
    eng_mode(e);
    if (!e->paging) return va;
  }
  if (!e->cr3_fresh) {
    uint64_t cr3 = 0;
    uc_reg_read(e->uc, UC_X86_REG_CR3, &cr3);
    if (cr3 != e->cr3) {
      e->cr3 = cr3;
      memset(e->tlb_v, 0xff, sizeof e->tlb_v);
    }
    e->cr3_fresh = e->twin != NULL;
  }
  uint64_t vp = va >> 12;
  unsigned i = vp & 63;
  if (e->tlb_v[i] != vp) {
    uint64_t pa = walk(r, e, vp << 12);
    if (pa == WALK_FAIL) return WALK_FAIL; /* not cached: the guest may map it next */
    e->tlb_v[i] = vp;
    e->tlb_p[i] = pa >> 12;
  }
  return (e->tlb_p[i] << 12) | (va & 0xfff);
}

/* ---- memory log -------------------------------------------------------------------------- */

static inline uint32_t hash_line(uint64_t line, uint32_t cap) {
  return (uint32_t)((line * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static void grow_htab(Rec *r) {
  uint32_t cap = r->hcap ? r->hcap * 2 : 4096;
  free(r->htab);
  r->htab = calloc(cap, 4);
  r->hcap = cap;
  for (uint32_t s = 0; s < r->nlines; s++) {
    uint32_t h = hash_line(r->lines[s].line, cap);
    while (r->htab[h]) h = (h + 1) & (cap - 1);
    r->htab[h] = s + 1;
  }
}

static uint32_t line_slot(Rec *r, Eng *e, uint64_t line) {
  if (line == r->last_line) return r->last_slot;
  if ((r->nlines + 1) * 2 > r->hcap) grow_htab(r);
  uint32_t h = hash_line(line, r->hcap);
  for (;;) {
    uint32_t s = r->htab[h];
    if (!s) break;
    if (r->lines[s - 1].line == line) {
      r->last_line = line;
      r->last_slot = s - 1;
      return s - 1;
    }
    h = (h + 1) & (r->hcap - 1);
  }
  if (r->nlines == r->caplines) {
    r->caplines = r->caplines ? r->caplines * 2 : 1024;
    r->lines = realloc(r->lines, sizeof(Line) * r->caplines);
  }
  uint32_t s = r->nlines++;
  Line *L = &r->lines[s];
  L->line = line;
  L->nbytes = 128;
  L->prev = 0;
  L->mask = 0;
  L->born = 0;
  /* A line past RAM (a write to a device's registers) starts as zeros: reading a device's
     registers here would be a read the guest did not make, which the live machine records as an
     input of the guest's ('mmio-read') and a replay has no value for. */
  uint64_t pa = line << 6;
  if (r->ram && (pa < r->ram_base || pa + 64 > r->ram_base + r->ram_size)) memset(L->init, 0, 64);
  else phys_read(r, e, pa, L->init, 64);
  memcpy(L->cur, L->init, 64);
  r->htab[h] = s + 1;
  r->last_line = line;
  r->last_slot = s;
  return s;
}

/*
 * Write logs cut() hands to the trace writer's thread and encodeRows() gives back: a log's pages
 * stay mapped from one chunk to the next (a fresh 5 MB log a chunk costs the guest's thread more
 * in page faults than encoding its rows did).
 */
#define LOG_POOL 8
static pthread_mutex_t log_pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
  LogRec *p;
  size_t cap;
} log_pool[LOG_POOL];
static int log_pool_n;

static void log_give_back(LogRec *p, size_t cap) {
  pthread_mutex_lock(&log_pool_mu);
  if (p && log_pool_n < LOG_POOL) {
    log_pool[log_pool_n].p = p;
    log_pool[log_pool_n++].cap = cap;
    p = NULL;
  }
  pthread_mutex_unlock(&log_pool_mu);
  free(p);
}

static LogRec *log_take(size_t *cap) {
  LogRec *p = NULL;
  *cap = 0;
  pthread_mutex_lock(&log_pool_mu);
  if (log_pool_n > 0) {
    p = log_pool[--log_pool_n].p;
    *cap = log_pool[log_pool_n].cap;
  }
  pthread_mutex_unlock(&log_pool_mu);
  return p;
}

static void log_piece(Rec *r, uint32_t slot, uint64_t pa, int n, uint64_t data, int pending, int host, uint64_t seq) {
  if (r->nlog == r->caplog) {
    r->caplog = r->caplog ? r->caplog * 2 : 65536;
    r->log = realloc(r->log, sizeof(LogRec) * r->caplog);
  }
  LogRec *w = &r->log[r->nlog++];
  w->slot = slot;
  w->seqoff = (uint32_t)(seq - r->chunk_first);
  w->data = data;
  w->off = pa & 63;
  w->len = (uint8_t)n;
  w->host = (uint8_t)host;
  w->pending = (uint8_t)pending;
  uint8_t *at = r->lines[slot].cur + (pa & 63);
  /* copies of a constant size (a call to memcpy for a few bytes: 26 instructions a write) */
  if (pending) r->npending++;
  else if (n == 8) memcpy(at, &data, 8);
  else if (n == 4) memcpy(at, &data, 4);
  else if (n == 2) memcpy(at, &data, 2);
  else *at = (uint8_t)data;
  r->lines[slot].mask |= (n == 8 ? 0xffull : ((1ull << n) - 1)) << (pa & 63);
}

/* A write of n (1..8) bytes inside one line, as pieces of 8, 4, 2 or 1 bytes. */
static void log_write(Rec *r, Eng *e, uint64_t pa, int n, uint64_t data, int pending, int host, uint64_t seq) {
  uint32_t slot = line_slot(r, e, pa >> 6);
  while (n > 0) {
    int k = n >= 8 ? 8 : n >= 4 ? 4 : n >= 2 ? 2 : 1;
    log_piece(r, slot, pa, k, data, pending, host, seq);
    pa += k;
    n -= k;
    data = k == 8 ? 0 : data >> (8 * k);
  }
}

static void resolve_pending(Rec *r) {
  Eng *e = &r->eng[0];
  for (size_t i = r->nlog; i-- > 0 && r->npending;) {
    LogRec *w = &r->log[i];
    if (!w->pending) continue;
    phys_read(r, e, (r->lines[w->slot].line << 6) | w->off, &w->data, w->len);
    memcpy(r->lines[w->slot].cur + w->off, &w->data, w->len);
    w->pending = 0;
    r->npending--;
  }
  r->npending = 0;
}

/* ---- pc stream ----------------------------------------------------------------------------- */

static inline void nib(Rec *r, unsigned v) {
  if (r->half) {
    r->pcs.p[r->pcs.len - 1] |= (uint8_t)(v << 4);
    r->half = 0;
  } else {
    b_reserve(&r->pcs, 1);
    r->pcs.p[r->pcs.len++] = (uint8_t)v;
    r->half = 1;
  }
}

static inline void nib_varint(Rec *r, uint64_t v) {
  while (v >= 8) {
    nib(r, (unsigned)(v & 7) | 8);
    v >>= 3;
  }
  nib(r, (unsigned)v);
}

static void checkpoint(Rec *r, Eng *e, uint64_t seq, int flags);

/*
 * One instruction into the pc stream (e: the exact engine whose expected pc it follows). A jump
 * cache slot it replaced is left in *jslot / *jold, for taking the instruction back.
 */
static inline void emit_pc(Rec *r, Eng *e, uint64_t addr, uint32_t size, int *jslot, uint64_t *jold) {
  if (e->vcpu != r->cur_vcpu) {
    nib(r, 0);
    nib(r, 0);
    nib(r, 0);
    nib(r, 1);
    nib(r, (unsigned)e->vcpu & 15);
    r->cur_vcpu = e->vcpu;
  }
  if (addr == e->expected) {
    nib(r, size & 15);
  } else {
    unsigned j = (unsigned)((e->prev_pc * 0x9E3779B97F4A7C15ull) >> 52) & (JCACHE - 1);
    if (r->jcache[j] == addr) {
      nib(r, 0);
      nib(r, size & 15);
    } else {
      *jslot = (int)j;
      *jold = r->jcache[j];
      r->jcache[j] = addr;
      int64_t d = (int64_t)(addr - e->expected);
      nib(r, 0);
      nib(r, 0);
      nib(r, size & 15);
      nib_varint(r, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
    }
  }
  e->prev_pc = addr;
  e->expected = addr + size;
}

static void hook_code(uc_engine *uc, uint64_t addr, uint32_t size, void *ud) {
  Eng *e = ud;
  Rec *r = e->rec;
  if (r->stop_at && r->seq >= r->stop_at) {
    /* Not executed: Unicorn runs this instruction again on the next start. */
    uc_emu_stop(uc);
    return;
  }
  if (r->npending) resolve_pending(r);
  r->blk.valid = 0;
  r->undo.valid = 1;
  r->undo.len = r->pcs.len;
  r->undo.half = r->half;
  r->undo.lastbyte = r->pcs.len ? r->pcs.p[r->pcs.len - 1] : 0;
  r->undo.vcpu = r->cur_vcpu;
  r->undo.eng = (int)(e - r->eng);
  r->undo.expected = e->expected;
  r->undo.prev_pc = e->prev_pc;
  r->undo.jslot = -1;
  r->undo.nlog = r->nlog;
  r->undo.nuntrans = r->untrans.len;
  emit_pc(r, e, addr, size, &r->undo.jslot, &r->undo.jold);
  r->cur_seq = r->seq++;
  if (r->ckpt_every && !e->has_fast && r->cur_seq - r->last_ckpt_seq >= r->ckpt_every) checkpoint(r, e, r->cur_seq, 0);
}

/* A guest write of `size` bytes at virtual `addr` by instruction r->cur_seq on engine e. */
static void mem_write(Rec *r, Eng *e, uint64_t addr, int size, int64_t value) {
  /* Most writes are one piece of 1, 2, 4 or 8 bytes inside one line of RAM: logged at once
     (callgrind, store-loop guest: the general path below took 85 instructions a write more). */
  if ((size == 4 || size == 8 || size == 2 || size == 1) && (addr & 63) + (uint64_t)size <= 64 && r->ram) {
    uint64_t pa = translate(r, e, addr);
    if (pa != WALK_FAIL && pa - r->ram_base < r->ram_size && pa - r->ram_base + (uint64_t)size <= r->ram_size) {
      log_piece(r, line_slot(r, e, pa >> 6), pa, size, (uint64_t)value, 0, 0, r->cur_seq);
      return;
    }
  }
  int pending = size > 8;
  for (int done = 0; done < size;) {
    uint64_t va = addr + (uint64_t)done;
    uint64_t pa = translate(r, e, va);
    int n = size - done;
    if (n > 8) n = 8;
    if ((int)(4096 - (va & 4095)) < n) n = (int)(4096 - (va & 4095));
    if (pa == WALK_FAIL) {
      /* Unicorn wrote through a translation the tables no longer give (a stale TLB entry) or
         from tables outside RAM: kept as such, never under the virtual address as if physical.
         u64 seq | u64 virtual address | u8 vcpu | u8 length | 8 B the bytes (0 when > 8) */
      uint8_t rec[26];
      uint64_t data = pending ? 0 : ((uint64_t)value >> (8 * done));
      memcpy(rec, &r->cur_seq, 8);
      memcpy(rec + 8, &va, 8);
      rec[16] = (uint8_t)e->vcpu;
      rec[17] = (uint8_t)(pending ? 0 : n);
      memcpy(rec + 18, &data, 8);
      b_put(&r->untrans, rec, 26);
      done += n;
      continue;
    }
    if ((int)(64 - (pa & 63)) < n) n = (int)(64 - (pa & 63));
    if (e->twin && r->ram && !(pa >= r->ram_base && pa + (uint64_t)n <= r->ram_base + r->ram_size)) {
      /* A fast engine's write outside guest RAM (device registers, a stand-in for unmapped
         memory) never happens there: emu.c aborts it and the exact engine runs it, where
         hook_mem records it. Nothing to log, and the line must not be read here: reading a
         fast engine's guarded page (uc_mem_read) aborts the guest instruction from inside this
         hook, which QEMU then restores at the last device access's pc, not this one's. */
      done += n;
      continue;
    }
    uint64_t data = pending ? 0 : ((uint64_t)value >> (8 * done));
    log_write(r, e, pa, n, data, pending, 0, r->cur_seq);
    done += n;
  }
}

static void hook_mem(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
  Eng *e = ud;
  mem_write(e->rec, e, addr, size, value);
}

/* ---- recording from the fast engine ---------------------------------------------------------- */
/*
 * A vCPU with a fast engine (native/emu/emu.c) is recorded block by block: emu.c tells each block
 * it lets run (native/common/block-sink.h), whose instructions go into the pc stream at once, and
 * the write hook on the fast engine finds the storing instruction from eip, which Unicorn syncs
 * before every instruction that stores while a memory hook exists. The stream, the memory rows
 * and the checkpoints are the same as the exact engine's hooks make (no in-slice checkpoints in
 * the fast stretches: a slice starts and ends with one, and slices are at most a quantum).
 * Where emu.c hands over to the exact engine (breakpoints, watchpoints, port I/O, faults), the
 * recorder's hooks on the exact engine record as ever.
 */

static void fail(Rec *r, const char *msg) {
  if (!r->broken[0]) snprintf(r->broken, sizeof r->broken, "%s", msg);
}

/* The seq of the fast engine's instruction at linear address pc, in the current block. */
static int fast_insn_seq(Rec *r, uint64_t pc, uint64_t *seq) {
  uint64_t off = pc - r->blk.pc;
  uint32_t i = 0;
  uint64_t o = 0;
  if (off >= r->blk.hint_off) {
    i = r->blk.hint_i;
    o = r->blk.hint_off;
  }
  const uint8_t *lens = r->blk.lens;
  for (uint32_t n = r->blk.n; o < off; o += lens[i++] & SINK_LEN)
    if (i >= n) return 0;
  /* the instruction eip names must be one that stores: else eip was stale (see emu.c, plain_store) */
  if (o != off || i >= r->blk.n || !(r->blk.lens[i] & SINK_STORES)) return 0;
  r->blk.hint_i = i;
  r->blk.hint_off = o;
  *seq = r->blk.seq + i;
  return 1;
}

static void hook_mem_fast(uc_engine *uc, uc_mem_type type, uint64_t addr, int size, int64_t value, void *ud) {
  Eng *f = ud;
  Rec *r = f->rec;
  /* A wide write's bytes are read once its instruction completed: any later store comes here
     first, and RAM holds the wide write's bytes until that store. */
  if (r->npending) resolve_pending(r);
  uint64_t seq;
  if (!r->blk.valid || !fast_insn_seq(r, *r->blk.eip + r->blk.cs_base, &seq)) {
    char msg[200];
    snprintf(msg, sizeof msg, "a write at 0x%llx from eip 0x%llx (CS base 0x%llx) on vCPU %d, outside the block the fast engine runs (0x%llx)",
             (unsigned long long)addr, r->blk.valid ? (unsigned long long)*r->blk.eip : 0ull, (unsigned long long)r->blk.cs_base,
             r->cur_vcpu, (unsigned long long)r->blk.pc);
    fail(r, msg);
    return;
  }
  r->cur_seq = seq;
  mem_write(r, f, addr, size, value);
}

/* The first n instructions of a block at pc into the pc stream (x: the vCPU's exact engine). */
static void emit_block(Rec *r, Eng *x, uint64_t pc, const uint8_t *lens, uint32_t n, int *jslot, uint64_t *jold) {
  if (!n) return;
  emit_pc(r, x, pc, lens[0] & SINK_LEN, jslot, jold);
  /* The rest are sequential: their sizes, two nibbles a byte, eight sizes at a time (callgrind
     over the store-loop guest, a 13-instruction block: 217 instructions here two sizes at a
     time, 157 eight at a time; the sample kernel's first 10^7: 16% fewer with two at a time
     than with a nib() call each). */
  uint64_t total = lens[0] & SINK_LEN;
  uint32_t i = 1;
  b_reserve(&r->pcs, n / 2 + 1);
  uint8_t *p = r->pcs.p + r->pcs.len;
  if (r->half && i < n) {
    unsigned l = lens[i++] & SINK_LEN;
    p[-1] |= (uint8_t)(l << 4);
    total += l;
    r->half = 0;
  }
  for (; i + 8 <= n; i += 8) {
    /* v | v >> 4 puts size 2k+1 in the high half of byte 2k; bytes 0, 2, 4, 6 then gathered */
    uint64_t v;
    memcpy(&v, lens + i, 8);
    v &= 0x0f0f0f0f0f0f0f0full;
    total += (v * 0x0101010101010101ull) >> 56;
    uint64_t y = (v | (v >> 4)) & 0x00ff00ff00ff00ffull;
    y = (y | (y >> 8)) & 0x0000ffff0000ffffull;
    uint32_t w = (uint32_t)(y | (y >> 16));
    memcpy(p, &w, 4);
    p += 4;
  }
  for (; i + 1 < n; i += 2) {
    unsigned a = lens[i] & SINK_LEN, b = lens[i + 1] & SINK_LEN;
    *p++ = (uint8_t)(a | b << 4);
    total += a + b;
  }
  if (i < n) {
    unsigned a = lens[i] & SINK_LEN;
    *p++ = (uint8_t)a;
    total += a;
    r->half = 1;
  }
  r->pcs.len = (size_t)(p - r->pcs.p);
  x->prev_pc = pc + total - (lens[n - 1] & SINK_LEN);
  x->expected = pc + total;
  r->seq += n;
}

static void sink_block(void *ud, uint64_t pc, uint64_t cs_base, const uint8_t *lens, uint32_t n, const uint64_t *eip) {
  Eng *f = ud;
  Rec *r = f->rec;
  Eng *x = f->twin;
  if (r->npending) resolve_pending(r);
  f->cr3_fresh = 0;
  r->undo.valid = 0;
  r->blk.valid = 1;
  r->blk.seq = r->seq;
  r->blk.pc = pc;
  r->blk.cs_base = cs_base;
  r->blk.lens = lens;
  r->blk.n = n;
  r->blk.eip = eip;
  r->blk.hint_i = 0;
  r->blk.hint_off = 0;
  r->blk.len = r->pcs.len;
  r->blk.half = r->half;
  r->blk.lastbyte = r->pcs.len ? r->pcs.p[r->pcs.len - 1] : 0;
  r->blk.vcpu = r->cur_vcpu;
  r->blk.expected = x->expected;
  r->blk.prev_pc = x->prev_pc;
  r->blk.jslot = -1;
  r->blk.nlog = r->nlog;
  r->blk.nuntrans = r->untrans.len;
  r->blk.x = x;
  emit_block(r, x, pc, lens, n, &r->blk.jslot, &r->blk.jold);
}

/*
 * The history back to `target` (the seq of the next instruction) from a little past it: the
 * exact engine's hook call for an instruction that did not run, or the part of the fast engine's
 * last block that did not. 0 when that is not what lies between.
 */
static int rewind_to(Rec *r, uint64_t target) {
  if (r->seq == target) return 1;
  if (r->seq == target + 1 && r->undo.valid) {
    Eng *ue = &r->eng[r->undo.eng];
    r->pcs.len = r->undo.len;
    r->half = r->undo.half;
    if (r->pcs.len) r->pcs.p[r->pcs.len - 1] = r->undo.lastbyte;
    r->cur_vcpu = r->undo.vcpu;
    ue->expected = r->undo.expected;
    ue->prev_pc = r->undo.prev_pc;
    if (r->undo.jslot >= 0) r->jcache[r->undo.jslot] = r->undo.jold;
    /* The instruction's own writes go; host writes made after it stay (an exception it raised,
     * delivered as the slice ended: its frame), now at the position the instruction did not
     * leave, as a re-execution that stops before the instruction logs them. */
    uint32_t after = (uint32_t)(r->seq - r->chunk_first);
    size_t keep = r->undo.nlog;
    for (size_t q = r->undo.nlog; q < r->nlog; q++) {
      LogRec w = r->log[q];
      if (!w.host) {
        if (w.pending) r->npending--;
        continue;
      }
      if (w.seqoff == after) w.seqoff = after - 1;
      Line *L = &r->lines[w.slot];
      if (L->born == r->seq + 1) L->born = r->seq;
      r->log[keep++] = w;
    }
    r->nlog = keep;
    r->untrans.len = r->undo.nuntrans;
    r->seq--;
    r->undo.valid = 0;
    return 1;
  }
  if (!r->blk.valid || target < r->blk.seq || r->seq != r->blk.seq + r->blk.n) return 0;
  /* the block ran up to `target`: its first k instructions again, and their writes only */
  Eng *x = r->blk.x;
  r->pcs.len = r->blk.len;
  r->half = r->blk.half;
  if (r->pcs.len) r->pcs.p[r->pcs.len - 1] = r->blk.lastbyte;
  r->cur_vcpu = r->blk.vcpu;
  x->expected = r->blk.expected;
  x->prev_pc = r->blk.prev_pc;
  if (r->blk.jslot >= 0) r->jcache[r->blk.jslot] = r->blk.jold;
  r->seq = r->blk.seq;
  uint32_t keep = (uint32_t)(target - r->chunk_first);
  size_t w = r->blk.nlog;
  while (w < r->nlog && r->log[w].seqoff < keep) w++;
  for (size_t q = w; q < r->nlog; q++)
    if (r->log[q].pending) r->npending--;
  r->nlog = w;
  size_t u = r->blk.nuntrans;
  for (uint64_t useq; u + 26 <= r->untrans.len; u += 26) {
    memcpy(&useq, r->untrans.p + u, 8);
    if (useq >= target) break;
  }
  r->untrans.len = u;
  int jslot = -1;
  uint64_t jold;
  emit_block(r, x, r->blk.pc, r->blk.lens, (uint32_t)(target - r->blk.seq), &jslot, &jold);
  r->blk.valid = 0;
  return 1;
}

static void sink_ran(void *ud, uint64_t done) {
  Eng *f = ud;
  Rec *r = f->rec;
  if (!rewind_to(r, r->slice_start + done)) {
    char msg[160];
    snprintf(msg, sizeof msg, "the fast engine ran %llu instructions of the slice, the recorder saw %llu",
             (unsigned long long)done, (unsigned long long)(r->seq - r->slice_start));
    fail(r, msg);
  }
  if (r->npending) resolve_pending(r);
  eng_mode(f);
  f->cr3_fresh = 0;
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* A checkpoint record into the chunk's: seq, vCPU, flags, length, then the image or its delta. */
static void put_ckpt(Rec *r, uint64_t seq, int vcpu, int flags, const uint8_t *data, size_t len) {
  uint8_t hdr[CKPT_RECORD_HEAD];
  uint32_t n = (uint32_t)len;
  memcpy(hdr, &seq, 8);
  hdr[8] = (uint8_t)vcpu;
  hdr[9] = (uint8_t)flags;
  memcpy(hdr + 10, &n, 4);
  b_put(&r->ckpts, hdr, CKPT_RECORD_HEAD);
  b_put(&r->ckpts, data, len);
}

static void checkpoint(Rec *r, Eng *e, uint64_t seq, int flags) {
  int v = e->vcpu & (MAX_VCPU - 1);
  /* the image into the spare buffer, which becomes the last one: the previous stays to compare */
  uc_context *prev = e->ctx;
  uc_context_save(e->uc, e->ctx_next);
  e->ctx = e->ctx_next;
  e->ctx_next = prev;
  const uint8_t *raw = (const uint8_t *)e->ctx;
  size_t n = r->ctx_size;
  r->last_ckpt_seq = seq;
  if (!r->have_key[v]) {
    memcpy(r->key[v], raw, n);
    r->have_key[v] = 1;
    e->last_ok = 0;
    put_ckpt(r, seq, e->vcpu, flags | 1, raw, n);
    return;
  }
  /* A slice's start is mostly where its vCPU's last slice ended, untouched (no interrupt came
     between): the same image, so the same delta, without encoding it again (one memcmp against
     the last image instead of the block compares and byte loops against the key: a recorded
     2-vCPU xv6 boot takes ~37,000 checkpoints). */
  if (e->last_ok && memcmp(raw, (const uint8_t *)prev, n) == 0) {
    put_ckpt(r, seq, e->vcpu, flags, e->last, e->last_len);
    return;
  }
  r->tmp.len = 0;
  const uint8_t *k = r->key[v];
  size_t i = 0;
  while (i < n) {
    size_t z = i;
    /* most of an image equals its key: skip it 256 bytes at a time (glibc's vectorised memcmp),
       then a word at a time (byte by byte, the two checkpoints of every slice took 5x the
       instructions, callgrind over the sample kernel; a word at a time, the word loop was 90%
       of a checkpoint's ~0.8 us, a slice's two of them ~2.5 us in a recorded xv6 boot) */
    while (z + 256 <= n && memcmp(raw + z, k + z, 256) == 0) z += 256;
    for (uint64_t a, b; z + 8 <= n; z += 8) {
      memcpy(&a, raw + z, 8);
      memcpy(&b, k + z, 8);
      if (a != b) break;
    }
    while (z < n && raw[z] == k[z]) z++;
    size_t l = z;
    while (l < n && (raw[l] != k[l] || (l + 1 < n && raw[l + 1] != k[l + 1]) || (l + 2 < n && raw[l + 2] != k[l + 2]))) l++;
    b_varint(&r->tmp, z - i);
    b_varint(&r->tmp, l - z);
    b_reserve(&r->tmp, l - z);
    for (size_t q = z; q < l; q++) r->tmp.p[r->tmp.len++] = raw[q] ^ k[q];
    i = l;
  }
  put_ckpt(r, seq, e->vcpu, flags, r->tmp.p, r->tmp.len);
  if (r->tmp.len > e->last_cap) {
    uint8_t *grown = realloc(e->last, r->tmp.len);
    if (!grown) {
      e->last_ok = 0;
      return;
    }
    e->last = grown;
    e->last_cap = r->tmp.len;
  }
  if (r->tmp.len) memcpy(e->last, r->tmp.p, r->tmp.len);
  e->last_len = r->tmp.len;
  e->last_ok = 1;
}

/* ---- N-API glue ----------------------------------------------------------------------------- */

#define CALL(x)                                                                       \
  do {                                                                                \
    if ((x) != napi_ok) {                                                             \
      napi_throw_error(env, NULL, "recorder: N-API call failed: " #x);                \
      return NULL;                                                                    \
    }                                                                                 \
  } while (0)

static napi_value throw_err(napi_env env, const char *msg) {
  napi_throw_error(env, "ERR_RECORDER", msg);
  return NULL;
}

static void dirty_stop(Rec *r);

static void rec_free(napi_env env, void *data, void *hint) {
  Rec *r = data;
  dirty_stop(r);
  free(r->dirty);
  /* Engines may be closed by now: hooks are removed by detach(), never here. */
  for (int i = 0; i < r->neng; i++) {
    if (r->eng[i].ctx) uc_context_free(r->eng[i].ctx);
    if (r->eng[i].ctx_next) uc_context_free(r->eng[i].ctx_next);
    free(r->eng[i].last);
  }
  for (int i = 0; i < MAX_VCPU; i++) free(r->key[i]);
  free(r->pcs.p);
  free(r->ckpts.p);
  free(r->untrans.p);
  free(r->tmp.p);
  free(r->lines);
  free(r->htab);
  free(r->log);
  free(r);
}

static Rec *get_rec(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "recorder: expected a recorder handle");
    return NULL;
  }
  return p;
}

static void reset_chunk(Rec *r) {
  r->chunk_first = r->seq;
  r->pcs.len = 0;
  r->half = 0;
  r->cur_vcpu = -1;
  memset(r->jcache, 0xff, sizeof r->jcache);
  for (int i = 0; i < r->neng; i++) r->eng[i].expected = r->eng[i].prev_pc = ~0ull;
  for (uint32_t s = 0; s < r->nlines; s++) {
    uint32_t h = hash_line(r->lines[s].line, r->hcap);
    while (r->htab[h]) {
      r->htab[h] = 0;
      h = (h + 1) & (r->hcap - 1);
    }
  }
  r->nlines = 0;
  r->last_line = ~0ull;
  r->nlog = 0;
  r->npending = 0;
  r->ckpts.len = 0;
  r->untrans.len = 0;
  memset(r->have_key, 0, sizeof r->have_key);
  for (int i = 0; i < r->neng; i++) r->eng[i].last_ok = 0; /* their deltas were against the old keys */
  r->undo.valid = 0;
  r->blk.valid = 0;
}

/* create(checkpointEvery) -> handle */
static napi_value fn_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t every = 0;
  if (argc >= 1) napi_get_value_uint32(env, argv[0], &every);
  Rec *r = calloc(1, sizeof(Rec));
  r->ckpt_every = every;
  r->rows = -1;
  r->uffd = r->pagemap = -1;
  r->listed = -1;
  reset_chunk(r);
  napi_value h;
  CALL(napi_create_external(env, r, rec_free, NULL, &h));
  return h;
}

/* setRam(h, hostAddr, physBase, size) */
static napi_value fn_set_ram(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  uint64_t host, base, size;
  if (argc < 4 || !get_u64(env, argv[1], &host) || !get_u64(env, argv[2], &base) || !get_u64(env, argv[3], &size))
    return throw_err(env, "setRam(handle, hostAddr, physBase, size): bad arguments");
  r->ram = (uint8_t *)(uintptr_t)host;
  r->ram_base = base;
  r->ram_size = size;
  return NULL;
}

/* setRamBuffer(h, buffer, physBase): guest RAM is this Node Buffer (kept alive by the caller). */
static napi_value fn_set_ram_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  void *data;
  size_t len;
  uint64_t base;
  if (!r || argc < 3 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || !get_u64(env, argv[2], &base))
    return throw_err(env, "setRamBuffer(handle, buffer, physBase): bad arguments");
  r->ram = data;
  r->ram_base = base;
  r->ram_size = len;
  return NULL;
}

/*
 * Make hook changes take effect on code already translated. UC_CTL_TB_FLUSH costs 0.1-5 s with
 * Unicorn 2.0.1 here (measured), so when paging is off (virtual = physical, e.g. before the guest
 * boots) only RAM's translations are dropped with UC_CTL_TB_REMOVE_CACHE (0.13 ms for 16 MiB).
 */
static void flush_tb(Rec *r, Eng *e) {
  eng_mode(e);
  if (!e->paging && r->ram && r->ram_size)
    uc_ctl(e->uc, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), r->ram_base, r->ram_base + r->ram_size);
  else
    uc_ctl(e->uc, UC_CTL_WRITE(UC_CTL_TB_FLUSH, 0));
}

static Eng *find_eng(Rec *r, uint64_t ucp) {
  for (int i = 0; i < r->neng; i++)
    if ((uint64_t)(uintptr_t)r->eng[i].uc == ucp) return &r->eng[i];
  return NULL;
}

/*
 * The `writes` argument of attach and attachFast (default true): whether the recorder's engines
 * record guest writes (a write hook) and hostWrite() records host writes, into memory rows. One
 * recorder records all of its engines one way. False, no UC_HOOK_MEM_WRITE is added: Unicorn
 * keeps stores on its inline fast path (the hook alone costs the sample kernel 1.7x, above) and
 * the written pages' images (dirtyPages) stand for the rows.
 */
static bool writes_arg(napi_env env, Rec *r, napi_value *argv, size_t argc, size_t at, const char *who) {
  bool writes = true;
  if (argc > at) {
    napi_valuetype t;
    napi_typeof(env, argv[at], &t);
    if (t != napi_undefined && napi_get_value_bool(env, argv[at], &writes) != napi_ok) {
      char msg[120];
      snprintf(msg, sizeof msg, "%s: `writes` must be a boolean", who);
      throw_err(env, msg);
      return false;
    }
  }
  if (r->rows >= 0 && r->rows != (int)writes) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s: this recorder's engines %s guest writes: all of them must", who, r->rows ? "record" : "do not record");
    throw_err(env, msg);
    return false;
  }
  r->rows = writes;
  return true;
}

/*
 * attach(h, ucAddr, vcpu, flush = true, writes = true): flush = drop translations made before the
 * hooks existed; writes: see writes_arg
 */
static napi_value fn_attach(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  uint64_t ucp;
  uint32_t vcpu = 0;
  if (argc < 3 || !get_u64(env, argv[1], &ucp) || napi_get_value_uint32(env, argv[2], &vcpu) != napi_ok)
    return throw_err(env, "attach(handle, ucAddr, vcpu): bad arguments");
  if (vcpu >= MAX_VCPU) return throw_err(env, "attach: at most 16 vCPUs can be recorded");
  if (!writes_arg(env, r, argv, argc, 4, "attach")) return NULL;
  uc_engine *uc = (uc_engine *)(uintptr_t)ucp;
  Eng *e = NULL;
  for (int i = 0; i < r->neng; i++)
    if (r->eng[i].uc == uc) e = &r->eng[i];
  if (!e) {
    if (r->neng == MAX_ENG) return throw_err(env, "attach: too many engines");
    uc_context *a = NULL, *b = NULL;
    if (uc_context_alloc(uc, &a) != UC_ERR_OK || uc_context_alloc(uc, &b) != UC_ERR_OK) {
      if (a) uc_context_free(a);
      return throw_err(env, "attach: uc_context_alloc failed");
    }
    e = &r->eng[r->neng++];
    memset(e, 0, sizeof *e);
    e->rec = r;
    e->uc = uc;
    e->expected = e->prev_pc = ~0ull;
    e->ctx = a;
    e->ctx_next = b;
    size_t n = uc_context_size(uc);
    if (!r->ctx_size) r->ctx_size = n;
    for (int i = 0; i < MAX_VCPU; i++)
      if (!r->key[i]) r->key[i] = malloc(n);
  }
  e->vcpu = (int)vcpu;
  if (!e->attached) {
    /* A lazy recording (writes false) keeps neither pcs nor writes: no hook at all, the engine
       runs as unrecorded; the slices' checkpoints and instruction counts come from
       beginSlice/endSlice, and a reader makes the rest by re-executing (chunk-indexer.ts). */
    if (r->rows && uc_hook_add(uc, &e->hcode, UC_HOOK_CODE, (void *)hook_code, e, 1, 0) != UC_ERR_OK)
      return throw_err(env, "attach: uc_hook_add(UC_HOOK_CODE) failed");
    if (r->rows && uc_hook_add(uc, &e->hmem, UC_HOOK_MEM_WRITE, (void *)hook_mem, e, 1, 0) != UC_ERR_OK)
      return throw_err(env, "attach: uc_hook_add(UC_HOOK_MEM_WRITE) failed");
    e->has_hmem = r->rows;
    e->has_hcode = r->rows;
    e->attached = 1;
    bool flush = true;
    if (argc >= 4) napi_get_value_bool(env, argv[3], &flush);
    if (flush && r->rows) flush_tb(r, e);
  }
  memset(e->tlb_v, 0xff, sizeof e->tlb_v);
  return NULL;
}

/*
 * attachFast(h, exactUc, fastUc, flush = true, writes = true) -> bigint: records the vCPU of the
 * attached exact engine `exactUc` from its fast engine too (see "recording from the fast engine"):
 * a write hook on the fast engine (none when `writes` is false: see writes_arg), and the address
 * of the emu_block_sink to connect with emu.c's recordTo. The sink lives as long as the recorder:
 * disconnect it (recordTo null) before detach.
 */
static napi_value fn_attach_fast(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t xp, fp;
  if (!r || argc < 3 || !get_u64(env, argv[1], &xp) || !get_u64(env, argv[2], &fp))
    return throw_err(env, "attachFast(handle, exactUc, fastUc, flush?): bad arguments");
  Eng *x = find_eng(r, xp);
  if (!x || x->twin) return throw_err(env, "attachFast: the exact engine is not attached");
  if (!writes_arg(env, r, argv, argc, 4, "attachFast")) return NULL;
  uc_engine *uc = (uc_engine *)(uintptr_t)fp;
  Eng *f = find_eng(r, fp);
  if (!f) {
    if (r->neng == MAX_ENG) return throw_err(env, "attachFast: too many engines");
    f = &r->eng[r->neng++];
    memset(f, 0, sizeof *f);
    f->rec = r;
    f->uc = uc;
    f->expected = f->prev_pc = ~0ull;
  }
  if (f->twin != x && f->twin) return throw_err(env, "attachFast: that fast engine records another vCPU");
  f->twin = x;
  f->vcpu = x->vcpu;
  x->has_fast = 1;
  f->sink.version = EMU_BLOCK_SINK_VERSION;
  f->sink.ud = f;
  f->sink.block = sink_block;
  f->sink.ran = sink_ran;
  if (!f->attached) {
    if (r->rows && uc_hook_add(uc, &f->hmem, UC_HOOK_MEM_WRITE, (void *)hook_mem_fast, f, 1, 0) != UC_ERR_OK)
      return throw_err(env, "attachFast: uc_hook_add(UC_HOOK_MEM_WRITE) failed");
    f->has_hmem = r->rows;
    f->attached = 1;
    /* code translated before the hook neither calls it nor syncs eip before its stores */
    bool flush = r->rows;
    if (r->rows && argc >= 4) napi_get_value_bool(env, argv[3], &flush);
    if (flush) flush_tb(r, f);
  }
  memset(f->tlb_v, 0xff, sizeof f->tlb_v);
  napi_value out;
  CALL(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)&f->sink, &out));
  return out;
}

/* detach(h, ucAddr) */
static napi_value fn_detach(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t ucp;
  if (!r || argc < 2 || !get_u64(env, argv[1], &ucp)) return throw_err(env, "detach(handle, ucAddr): bad arguments");
  Eng *e = find_eng(r, ucp);
  if (e && e->attached) {
    /* No translation flush: code translated with the hooks keeps calling Unicorn's hook
       dispatcher, which skips deleted hooks (a flush can cost seconds, see flush_tb). */
    if (!e->twin) {
      if (e->has_hcode) uc_hook_del(e->uc, e->hcode);
      e->has_hcode = 0;
    } else e->twin->has_fast = 0;
    if (e->has_hmem) uc_hook_del(e->uc, e->hmem);
    e->has_hmem = 0;
    e->attached = 0;
  }
  return NULL;
}

/* beginSlice(h, ucAddr): a slice of this engine starts; takes a checkpoint at the current seq. */
static napi_value fn_begin_slice(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t ucp;
  if (!r || argc < 2 || !get_u64(env, argv[1], &ucp)) return throw_err(env, "beginSlice(handle, ucAddr): bad arguments");
  Eng *e = find_eng(r, ucp);
  if (!e) return throw_err(env, "beginSlice: engine not attached");
  eng_mode(e);
  r->listed = -1; /* the guest runs: a look's list is stale */
  r->slice_start = r->seq;
  r->undo.valid = 0;
  r->blk.valid = 0; /* its lens may be gone (emu.c drops its blocks after a debugger write) */
  checkpoint(r, e, r->seq, 0);
  return NULL;
}

/*
 * endSlice(h, ucAddr, executed): the slice ran `executed` instructions (Unicorn's count). A code
 * hook that fired for an instruction that did not complete (uc_emu_stop) is taken back.
 * Takes a slice-end checkpoint. Returns the seq of the next instruction.
 */
static napi_value fn_end_slice(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t ucp, executed;
  if (!r || argc < 3 || !get_u64(env, argv[1], &ucp) || !get_u64(env, argv[2], &executed))
    return throw_err(env, "endSlice(handle, ucAddr, executed): bad arguments");
  Eng *e = find_eng(r, ucp);
  if (!e) return throw_err(env, "endSlice: engine not attached");
  if (!r->rows) {
    /* no hook counted them (a lazy recording): the machine's count is the history's */
    r->seq = r->slice_start + executed;
    checkpoint(r, e, r->seq, 2);
    napi_value out;
    CALL(napi_create_bigint_uint64(env, r->seq, &out));
    return out;
  }
  uint64_t counted = r->seq - r->slice_start;
  if (r->broken[0]) {
    char msg[260];
    snprintf(msg, sizeof msg, "endSlice: the recording went wrong in this slice: %s", r->broken);
    return throw_err(env, msg);
  }
  if (executed > counted || !rewind_to(r, r->slice_start + executed)) {
    char msg[160];
    snprintf(msg, sizeof msg, "endSlice: the hooks saw %llu instructions but the slice executed %llu",
             (unsigned long long)counted, (unsigned long long)executed);
    return throw_err(env, msg);
  }
  if (r->npending) resolve_pending(r);
  checkpoint(r, e, r->seq, 2);
  napi_value out;
  CALL(napi_create_bigint_uint64(env, r->seq, &out));
  return out;
}

static napi_value make_buffer(napi_env env, const void *p, size_t n);

/*
 * hostWrite(h, physAddr, bytes, old?): the host (device model, interrupt delivery, debugger)
 * writes guest RAM. When the bytes are already in RAM, `old` gives what they replaced, so that
 * the line's state before the chunk's first write is right.
 */
static napi_value fn_host_write(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t pa;
  void *data, *old = NULL;
  size_t len, oldlen = 0;
  if (!r || argc < 3 || !get_u64(env, argv[1], &pa) || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok)
    return throw_err(env, "hostWrite(handle, physAddr, buffer, old?): bad arguments");
  r->listed = -1; /* RAM is written: a look's list is stale */
  if (argc >= 4) {
    napi_valuetype t;
    napi_typeof(env, argv[3], &t);
    if (t != napi_undefined && t != napi_null && (napi_get_buffer_info(env, argv[3], &old, &oldlen) != napi_ok || oldlen != len))
      return throw_err(env, "hostWrite: `old` must be a buffer as long as the data");
  }
  if (!r->neng) return throw_err(env, "hostWrite: no engine attached");
  /* a lazy-rows recording: the written pages' images hold host writes too */
  if (!r->rows) return NULL;
  const uint8_t *d = data, *o = old;
  for (size_t done = 0; done < len;) {
    uint64_t a = pa + done;
    size_t n = len - done;
    if (n > 8) n = 8;
    if (64 - (a & 63) < n) n = 64 - (a & 63);
    if (o) {
      uint32_t before = r->nlines;
      uint32_t slot = line_slot(r, &r->eng[0], a >> 6);
      Line *L = &r->lines[slot];
      if (r->nlines > before) L->born = r->seq + 1;
      if (L->born == r->seq + 1) {
        /* A line this host event opened: RAM already held all of the event's new bytes when the
         * line was read (an interrupt frame is five writes to one line), so every byte the chunk
         * has not written yet gets its old value back in the initial image. */
        for (size_t i = 0; i < n; i++) {
          unsigned b = (unsigned)((a & 63) + i);
          if (L->mask & (1ull << b)) continue;
          L->init[b] = o[done + i];
          L->cur[b] = o[done + i];
        }
      }
    }
    uint64_t v = 0;
    memcpy(&v, d + done, n);
    log_write(r, &r->eng[0], a, (int)n, v, 0, 1, r->seq);
    done += n;
  }
  return NULL;
}

/* The slot of a line written in the open chunk, or UINT32_MAX (line_slot without making one). */
static uint32_t written_slot(const Rec *r, uint64_t line) {
  if (!r->hcap) return UINT32_MAX;
  for (uint32_t h = hash_line(line, r->hcap); r->htab[h]; h = (h + 1) & (r->hcap - 1))
    if (r->lines[r->htab[h] - 1].line == line) return r->htab[h] - 1;
  return UINT32_MAX;
}

/* lineNow(h, line) -> Buffer | null: the 64 bytes of a line written in the open chunk, as they are now */
static napi_value fn_line_now(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t line;
  if (!r || argc < 2 || !get_u64(env, argv[1], &line)) return throw_err(env, "lineNow(handle, line): bad arguments");
  if (r->npending) resolve_pending(r);
  uint32_t s = written_slot(r, line);
  if (s != UINT32_MAX) return make_buffer(env, r->lines[s].cur, 64);
  napi_value out;
  CALL(napi_get_null(env, &out));
  return out;
}

/* checkpointNow(h, ucAddr, flags = 2): a checkpoint between slices (2 = the vCPU is not running). */
static napi_value fn_checkpoint_now(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t ucp;
  uint32_t flags = 2;
  if (!r || argc < 2 || !get_u64(env, argv[1], &ucp)) return throw_err(env, "checkpointNow(handle, ucAddr, flags): bad arguments");
  if (argc >= 3) napi_get_value_uint32(env, argv[2], &flags);
  Eng *e = find_eng(r, ucp);
  if (!e) return throw_err(env, "checkpointNow: engine not attached");
  /* inside a slice of a lazy recording no hook counts: the machine says where it is */
  uint64_t at = r->seq;
  if (argc >= 4 && !get_u64(env, argv[3], &at)) return throw_err(env, "checkpointNow: `seq` must be a bigint");
  uint64_t keep = r->last_ckpt_seq;
  checkpoint(r, e, at, (int)(flags & 2));
  r->last_ckpt_seq = keep;
  return NULL;
}

/*
 * findPcs(pcs, count, targets: BigUint64Array, below) -> Float64Array: offsets i < below in the
 * chunk whose pc is one of `targets`.
 */
static napi_value fn_decode_pcs(napi_env env, napi_callback_info info);
static napi_value fn_find_pcs(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4) return throw_err(env, "findPcs(buffer, count, targets, below): bad arguments");
  napi_value dec = fn_decode_pcs(env, info);
  if (!dec) return NULL;
  napi_value pcv;
  CALL(napi_get_named_property(env, dec, "pc", &pcv));
  napi_typedarray_type t;
  size_t n, tn;
  void *pd, *td;
  CALL(napi_get_typedarray_info(env, pcv, &t, &n, &pd, NULL, NULL));
  CALL(napi_get_typedarray_info(env, argv[2], &t, &tn, &td, NULL, NULL));
  if (t != napi_biguint64_array) return throw_err(env, "findPcs: targets must be a BigUint64Array");
  double below;
  CALL(napi_get_value_double(env, argv[3], &below));
  const uint64_t *pc = pd, *tg = td;
  size_t lim = !(below > 0) ? 0 : below < (double)n ? (size_t)below : n, hits = 0;
  for (size_t i = 0; i < lim; i++)
    for (size_t k = 0; k < tn; k++)
      if (pc[i] == tg[k]) {
        hits++;
        break;
      }
  napi_value ab, out;
  void *od;
  CALL(napi_create_arraybuffer(env, hits * 8, &od, &ab));
  double *o = od;
  hits = 0;
  for (size_t i = 0; i < lim; i++)
    for (size_t k = 0; k < tn; k++)
      if (pc[i] == tg[k]) {
        o[hits++] = (double)i;
        break;
      }
  CALL(napi_create_typedarray(env, napi_float64_array, hits, ab, 0, &out));
  return out;
}

static napi_value make_buffer(napi_env env, const void *p, size_t n) {
  napi_value b;
  void *dst;
  if (napi_create_buffer_copy(env, n, p, &dst, &b) != napi_ok) return NULL;
  return b;
}

/* A line written in the chunk as encode_rows() reads it: its number and its contents before the chunk. */
typedef struct {
  uint64_t line;
  uint8_t init[64];
} LineImage;

typedef struct {
  uint64_t line;
  uint32_t slot;
} SlotKey;

static int cmp_slot_key(const void *a, const void *b) {
  uint64_t x = ((const SlotKey *)a)->line, y = ((const SlotKey *)b)->line;
  return x < y ? -1 : x > y;
}

/*
 * The memory rows of one chunk (the layout at the top of this file) from its lines and its write
 * log, into `out`. No state of a recorder: the trace writer's thread runs it (encodeRows) while
 * the guest's thread records the next chunk. Returns 0 when the log names a line or a write that
 * cannot be (a slot past the lines, a write past the line's end).
 */
/*
 * The most bytes encode_rows() writes for a chunk of `nlines` lines and `nlog` records: a record
 * takes at most 15 (a 5-byte varint of a seq offset below 2^32, offset, changed, 8 bytes), a row
 * 148 more (header and images), and a line's parts after its first hold PART_BYTES of records.
 */
static size_t rows_bound(uint64_t nlines, uint64_t nlog) {
  uint64_t recs = nlog * 15;
  return (size_t)(nlines * 148 + recs + (recs / PART_BYTES + 1) * 148);
}

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_free(void *p) { free(p); }
static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_free); }

/* At least n bytes of this thread's scratch memory (freed when the thread ends); NULL when out of memory. */
static void *thread_scratch(size_t n) {
  pthread_once(&scratch_once, scratch_init);
  size_t *s = pthread_getspecific(scratch_key);
  if (s && s[0] >= n) return s + 2;
  size_t cap = n + n / 4 + 4096;
  free(s);
  s = malloc(cap + 16);
  pthread_setspecific(scratch_key, s);
  if (!s) return NULL;
  s[0] = cap;
  return s + 2;
}

static int encode_rows(Bytes *out, const LineImage *lines, uint32_t nlines, const LogRec *log, size_t nlog) {
  out->len = 0;
  for (size_t i = 0; i < nlog; i++)
    if (log[i].slot >= nlines || (log[i].len != 1 && log[i].len != 2 && log[i].len != 4 && log[i].len != 8) || log[i].off + log[i].len > 64) return 0;
  /* Room for the worst case at once: growing by doubling copied the rows once or twice per
     chunk. */
  b_reserve(out, rows_bound(nlines, nlog));
  /* the sort's arrays: the thread's own, kept from one chunk to the next (fresh ones cost the
     writer's thread a page fault every 4 KiB) */
  uint8_t *scratch = thread_scratch(sizeof(SlotKey) * (nlines + 1) + 12 * ((size_t)nlines + 1) + 4 * (nlog + 1));
  if (!scratch) return 0;
  SlotKey *order = (SlotKey *)scratch;
  for (uint32_t s = 0; s < nlines; s++) order[s] = (SlotKey){lines[s].line, s};
  qsort(order, nlines, sizeof(SlotKey), cmp_slot_key);
  /* each line's records in execution order: a counting sort of the log by line */
  uint32_t *first = (uint32_t *)(order + nlines + 1);
  uint32_t *cursor = first + nlines + 1;
  uint32_t *idx = cursor + nlines + 1;
  memset(first, 0, 4 * ((size_t)nlines + 1));
  for (size_t i = 0; i < nlog; i++) first[log[i].slot + 1]++;
  for (uint32_t s = 1; s <= nlines; s++) first[s] += first[s - 1];
  memcpy(cursor, first, sizeof(uint32_t) * (nlines + 1));
  for (size_t i = 0; i < nlog; i++) idx[cursor[log[i].slot]++] = (uint32_t)i;
  for (uint32_t oi = 0; oi < nlines; oi++) {
    uint32_t s = order[oi].slot;
    const LineImage *L = &lines[s];
    uint8_t state[64];
    memcpy(state, L->init, 64);
    uint32_t k = first[s], kend = first[s + 1];
    do {
      /* one row (part) of at most PART_BYTES of records: its own initial and final image */
      size_t hdr = out->len;
      b_reserve(out, 20 + 128);
      out->len += 20 + 128;
      memcpy(out->p + hdr + 20, state, 64);
      uint64_t mask = 0;
      uint32_t prev = 0;
      size_t recs = 0;
      while (k < kend && recs < PART_BYTES) {
        const LogRec *w = &log[idx[k++]];
        uint8_t enc[24];
        int n = 0;
        uint64_t v = ((uint64_t)(w->seqoff - prev) << 1) | w->host;
        prev = w->seqoff;
        while (v >= 0x80) {
          enc[n++] = (uint8_t)(v | 0x80);
          v >>= 7;
        }
        enc[n++] = (uint8_t)v;
        enc[n++] = (uint8_t)(w->off | ((w->len == 1 ? 0 : w->len == 2 ? 1 : w->len == 4 ? 2 : 3) << 6));
        /* the bytes that differ from the line before the write (most writes change a few) */
        const uint8_t *nb = (const uint8_t *)&w->data;
        if (w->len == 1) {
          enc[n++] = nb[0];
        } else {
          size_t at = n++;
          uint8_t changed = 0;
          for (int i = 0; i < w->len; i++)
            if (nb[i] != state[w->off + i]) {
              changed |= (uint8_t)(1u << i);
              enc[n++] = nb[i];
            }
          enc[at] = changed;
        }
        b_put(out, enc, n);
        recs += n;
        memcpy(state + w->off, &w->data, w->len);
        mask |= (w->len == 8 ? 0xffull : ((1ull << w->len) - 1)) << w->off;
      }
      uint8_t *h = out->p + hdr;
      uint32_t blob = (uint32_t)(out->len - hdr - 20);
      memcpy(h, &L->line, 8);
      memcpy(h + 8, &blob, 4);
      memcpy(h + 12, &mask, 8);
      memcpy(h + 20 + 64, state, 64);
    } while (k < kend);
  }
  return 1;
}

/*
 * lineRows(h, line, cursor) -> Buffer: the writes to `line` logged in the open chunk that
 * `cursor` has not given yet, as encodeRows() encodes a chunk's (rows of that line alone, its
 * image before them the first row's): a query that needs a few writes of one line reads them
 * while the chunk is still being driven (src/targets/replay/chunk-indexer.ts), and decodes each
 * once. Between slices only. Empty when the line has no more. The cursor (LINE_CURSOR_BYTES, all
 * zero from the chunk's start) says where the last call left off, and is moved on:
 *
 *   offset  bytes
 *   0       8      log position read to
 *   8       8      the line's records read up to there
 *   16      8      the line's writes given so far
 *   24      64     the line after the records read
 *
 * so that a drive paused every few thousand instructions reads each log record once, not once a
 * pause. A cursor of another drive of the chunk (its log positions are not this one's) comes with
 * its first 16 bytes zeroed: that drive's log is read from its start, the writes given skipped.
 */
#define LINE_CURSOR_BYTES 88
static napi_value fn_line_rows(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t line;
  uint8_t *cur;
  size_t curlen;
  if (!r || argc < 3 || !get_u64(env, argv[1], &line) || napi_get_buffer_info(env, argv[2], (void **)&cur, &curlen) != napi_ok || curlen != LINE_CURSOR_BYTES)
    return throw_err(env, "lineRows(handle, line, cursor): bad arguments");
  if (r->npending) resolve_pending(r);
  uint32_t slot = written_slot(r, line);
  if (slot == UINT32_MAX) return make_buffer(env, "", 0);
  uint64_t pos, read, given;
  memcpy(&pos, cur, 8);
  memcpy(&read, cur + 8, 8);
  memcpy(&given, cur + 16, 8);
  if (pos > r->nlog || read > given) return throw_err(env, "lineRows: the cursor does not fit the chunk's log (a cursor of another drive must come with its position zeroed)");
  /* the line's image where the cursor is (slot 0 of one line) */
  LineImage li;
  li.line = line;
  memcpy(li.init, pos == 0 && read == 0 ? r->lines[slot].init : cur + 24, 64);
  /* the records given already (another drive's) skipped, into the image */
  size_t from = (size_t)pos;
  for (; from < r->nlog && read < given; from++) {
    const LogRec *w = &r->log[from];
    if (w->slot != slot) continue;
    memcpy(li.init + w->off, &w->data, w->len);
    read++;
  }
  size_t n = 0;
  for (size_t i = from; i < r->nlog; i++)
    if (r->log[i].slot == slot) n++;
  uint8_t after[64];
  memcpy(after, li.init, 64);
  LogRec *mine = n ? malloc(sizeof(LogRec) * n) : NULL;
  if (n && !mine) return throw_err(env, "lineRows: out of memory");
  size_t k = 0;
  for (size_t i = from; i < r->nlog; i++) {
    const LogRec *w = &r->log[i];
    if (w->slot != slot) continue;
    memcpy(after + w->off, &w->data, w->len);
    mine[k] = *w;
    mine[k++].slot = 0;
  }
  Bytes o = {NULL, 0, 0};
  int ok = n == 0 || encode_rows(&o, &li, 1, mine, n);
  free(mine);
  if (!ok) {
    free(o.p);
    return throw_err(env, "lineRows: the log names a write that cannot be");
  }
  pos = r->nlog;
  read += n;
  given += n;
  memcpy(cur, &pos, 8);
  memcpy(cur + 8, &read, 8);
  memcpy(cur + 16, &given, 8);
  memcpy(cur + 24, after, 64);
  napi_value out = make_buffer(env, o.p ? o.p : (uint8_t *)"", o.len);
  free(o.p);
  return out;
}

/*
 * cut(h) -> { first: bigint, count: number, pcs: Buffer, lineImages: Buffer, log: bigint,
 *             logCap: number, lines: number, writes: number, ckpts: Buffer, untranslated: Buffer }
 * and opens the next chunk. lineImages (LineImage array) and log (the address of the recorder's
 * LogRec array of `writes` records, which moves to the caller) are the chunk's memory writes
 * before encoding: encodeRows() makes the memory rows of them, on any thread.
 */
static napi_value fn_cut(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  if (r->npending) resolve_pending(r);
  napi_value out, v;
  void *dst;
  CALL(napi_create_object(env, &out));
  CALL(napi_create_bigint_uint64(env, r->chunk_first, &v));
  CALL(napi_set_named_property(env, out, "first", v));
  CALL(napi_create_double(env, (double)(r->seq - r->chunk_first), &v));
  CALL(napi_set_named_property(env, out, "count", v));
  v = make_buffer(env, r->pcs.p ? r->pcs.p : (uint8_t *)"", r->pcs.len);
  CALL(napi_set_named_property(env, out, "pcs", v));
  CALL(napi_create_buffer(env, sizeof(LineImage) * r->nlines, &dst, &v));
  for (uint32_t s = 0; s < r->nlines; s++) {
    LineImage *li = (LineImage *)dst + s;
    li->line = r->lines[s].line;
    memcpy(li->init, r->lines[s].init, 64);
  }
  CALL(napi_set_named_property(env, out, "lineImages", v));
  /* the log itself moves to the caller (encodeRows() gives it back), the recorder takes a pooled one */
  CALL(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)r->log, &v));
  CALL(napi_set_named_property(env, out, "log", v));
  CALL(napi_create_double(env, (double)r->caplog, &v));
  CALL(napi_set_named_property(env, out, "logCap", v));
  r->log = log_take(&r->caplog);
  CALL(napi_create_double(env, (double)r->nlines, &v));
  CALL(napi_set_named_property(env, out, "lines", v));
  CALL(napi_create_double(env, (double)r->nlog, &v));
  CALL(napi_set_named_property(env, out, "writes", v));
  v = make_buffer(env, r->ckpts.p ? r->ckpts.p : (uint8_t *)"", r->ckpts.len);
  CALL(napi_set_named_property(env, out, "ckpts", v));
  v = make_buffer(env, r->untrans.p ? r->untrans.p : (uint8_t *)"", r->untrans.len);
  CALL(napi_set_named_property(env, out, "untranslated", v));
  reset_chunk(r);
  return out;
}

/*
 * encodeRows(lineImages: Buffer, log: bigint, writes: number, logCap: number, into?: Buffer)
 * -> Buffer | number: the memory rows of a chunk cut() returned; gives its log back (call it
 * once for each cut, also for a chunk that is not stored). With `into` at least rowsBound(lines,
 * writes) long, the rows go there and their length is returned.
 */
static napi_value fn_encode_rows(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *lp;
  size_t ln;
  uint64_t logp = 0, nlog = 0, cap = 0;
  if (argc < 4 || napi_get_buffer_info(env, argv[0], &lp, &ln) != napi_ok || !get_u64(env, argv[1], &logp) || !get_u64(env, argv[2], &nlog) ||
      !get_u64(env, argv[3], &cap) || nlog > cap || ln % sizeof(LineImage) || ln / sizeof(LineImage) >= UINT32_MAX) {
    napi_throw_type_error(env, NULL, "encodeRows(lineImages, log, writes, logCap, into?): what cut() returned");
    return NULL;
  }
  void *into = NULL;
  size_t into_len = 0;
  if (argc >= 5) {
    napi_valuetype t;
    napi_typeof(env, argv[4], &t);
    if (t != napi_undefined && napi_get_buffer_info(env, argv[4], &into, &into_len) != napi_ok) {
      napi_throw_type_error(env, NULL, "encodeRows: `into` must be a Buffer");
      return NULL;
    }
  }
  LogRec *log = (LogRec *)(uintptr_t)logp;
  /* a copy only when the buffer is not aligned for the struct (cut()'s own are) */
  LineImage *lines = (uintptr_t)lp % 8 ? memcpy(malloc(ln + 1), lp, ln) : lp;
  /* into the caller's buffer when it holds the bound (no copy of a chunk's megabytes, and pages
     that stay mapped from one chunk to the next) */
  int mine = !into || into_len < rows_bound(ln / sizeof(LineImage), nlog);
  Bytes o = {mine ? NULL : into, 0, mine ? 0 : into_len};
  int ok = encode_rows(&o, lines, (uint32_t)(ln / sizeof(LineImage)), log, (size_t)nlog);
  if (lines != lp) free(lines);
  log_give_back(log, (size_t)cap);
  if (!ok) {
    if (mine) free(o.p);
    napi_throw_range_error(env, NULL, "encodeRows: the log names a line or a write that cannot be");
    return NULL;
  }
  napi_value b;
  if (!mine) CALL(napi_create_double(env, (double)o.len, &b));
  else {
    b = make_buffer(env, o.p ? o.p : (uint8_t *)"", o.len);
    free(o.p);
  }
  return b;
}

/* rowsBound(lines, writes) -> number: the most bytes encodeRows() makes of such a chunk */
static napi_value fn_rows_bound(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t lines, writes;
  if (argc < 2 || !get_u64(env, argv[0], &lines) || !get_u64(env, argv[1], &writes) || lines >= UINT32_MAX || writes >= (1ull << 40))
    return throw_err(env, "rowsBound(lines, writes): bad arguments");
  napi_value out;
  CALL(napi_create_double(env, (double)rows_bound(lines, writes), &out));
  return out;
}

/* seq(h) -> bigint: seq of the next instruction */
static napi_value fn_seq(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  napi_value out;
  CALL(napi_create_bigint_uint64(env, r->seq, &out));
  return out;
}

/* lastStep(h) -> [pc: bigint, vcpu] | null: the open chunk's last instruction (null when it has none) */
static napi_value fn_last_step(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  napi_value out, v;
  for (int i = 0; i < r->neng; i++) {
    Eng *e = &r->eng[i];
    if (e->twin || e->vcpu != r->cur_vcpu || r->seq == r->chunk_first || e->prev_pc == ~0ull) continue;
    CALL(napi_create_array_with_length(env, 2, &out));
    CALL(napi_create_bigint_uint64(env, e->prev_pc, &v));
    CALL(napi_set_element(env, out, 0, v));
    CALL(napi_create_uint32(env, (uint32_t)e->vcpu, &v));
    CALL(napi_set_element(env, out, 1, v));
    return out;
  }
  CALL(napi_get_null(env, &out));
  return out;
}

/* setSeq(h, seq): start numbering at seq (appending to an existing history); opens a new chunk. */
static napi_value fn_set_seq(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t s;
  if (!r || argc < 2 || !get_u64(env, argv[1], &s)) return throw_err(env, "setSeq(handle, seq): bad arguments");
  r->seq = s;
  reset_chunk(r);
  return NULL;
}

/* ---- dirty pages ----------------------------------------------------------------------------- */
/*
 * A lazy-rows recording (src/store/emulator-recorder.ts) hooks no guest write: at each chunk cut
 * it stores the images of the RAM pages written during the chunk, and the kernel says which those
 * are. The RAM is registered with a userfaultfd in write-protect mode, asynchronous
 * (UFFD_FEATURE_WP_ASYNC, Linux 6.7): the first write to a protected page faults, and the kernel
 * itself lifts the protection (no thread of ours handles it) and the page reads as written; one
 * PAGEMAP_SCAN ioctl on /proc/self/pagemap then lists the written pages and protects them again,
 * atomically. Guest stores (Unicorn writes RAM in place: uc_mem_map_ptr), host writes and JS
 * writes are all seen. Pages the process never touched are left unprotected: protecting them
 * (UFFDIO_WRITEPROTECT over the range, or WP_UNPOPULATED) gives every 2 MiB of it page tables of
 * its own, and a guest's first write to each 4 KiB page then costs two faults instead of one
 * transparent huge page per 2 MiB (xv6's boot fills 224 MiB: 114,000 faults, ~0.3 s). A page the
 * process populates reads as written until a scan protects it, so the scan after a first write
 * lists it (with THP, the 512 pages of a fresh huge page: the recorder drops those still zero,
 * pack_pages); only populated (present or swapped) pages are protected by the scans.
 *
 * Measured (12-07 14:20 UTC, Linux 6.18, load 1-1.6 on 2 cores): a first write to a protected
 * page ~1.1 us (2.1 us when it splits a huge page), a scan of 64 MiB with 4096 pages written
 * 0.2 ms. 5*10^7 instructions of the sample kernel (nobug), wall clock against the same run
 * unrecorded, alternating 10^7-instruction stretches: lazy rows 1.8-2.2x, eager 3.8-4.7x; the
 * store loop (a store every 13 instructions) 1.65-1.96x and 2.8x. The tracking is ~1.5% of the
 * lazy run's perf samples (the scan, the faults); lazy recording costs the block sink (emu.c's
 * on_block_slow, emit_block and sink_block: ~21% of the samples, on_block 8% unrecorded), the
 * cuts and inputs in JS (~0.1 s of 0.35 s) and the writer's thread (deflate, SQLite) on the same
 * cores.
 */

/* What this build's headers may lack (values from the kernel's uapi linux/userfaultfd.h and linux/fs.h). */
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
  uint64_t start, end, categories;
};
struct pm_scan_arg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#ifndef PAGE_IS_WRITTEN
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#endif
#ifndef PM_SCAN_WP_MATCHING
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#define DIRTY_PAGE 4096u

static void dirty_stop(Rec *r) {
  if (r->uffd >= 0) {
    struct uffdio_range range = {r->dirty_at, r->dirty_len};
    /* the RAM may be unmapped by now: then there is nothing to unregister */
    ioctl(r->uffd, UFFDIO_UNREGISTER, &range);
    close(r->uffd);
  }
  if (r->pagemap >= 0) close(r->pagemap);
  r->uffd = r->pagemap = -1;
  r->dirty_len = 0;
  r->listed = -1;
}

static long dirty_scan(Rec *r, bool protect, uint64_t at_most);

/* Start tracking writes to [at, at + len): NULL, or why not (into `why`). */
static const char *dirty_start(Rec *r, uint64_t at, uint64_t len, char *why, size_t n) {
  dirty_stop(r);
  if (!len || at % DIRTY_PAGE || len % DIRTY_PAGE) return "the RAM is not whole 4 KiB pages on page boundaries";
  int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  /* a kernel before 5.11 knows no UFFD_USER_MODE_ONLY (and needs the privilege without it) */
  if (fd < 0 && errno == EINVAL) fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    snprintf(why, n, "userfaultfd: %s", strerror(errno));
    return why;
  }
  struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
  if (ioctl(fd, UFFDIO_API, &api) < 0) {
    /* an older kernel refuses features it does not know */
    snprintf(why, n, errno == EINVAL ? "kernel lacks UFFD_FEATURE_WP_ASYNC" : "UFFDIO_API: %s", strerror(errno));
    close(fd);
    return why;
  }
  struct uffdio_register reg = {.range = {at, len}, .mode = UFFDIO_REGISTER_MODE_WP};
  if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
    snprintf(why, n, "UFFDIO_REGISTER: %s (the RAM must be private anonymous memory)", strerror(errno));
    close(fd);
    return why;
  }
  int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pm < 0) {
    snprintf(why, n, "/proc/self/pagemap: %s", strerror(errno));
    ioctl(fd, UFFDIO_UNREGISTER, &reg.range);
    close(fd);
    return why;
  }
  r->uffd = fd;
  r->pagemap = pm;
  r->dirty_at = at;
  r->dirty_len = len;
  /* the pages populated now protected (a scan: the pages it lists are the RAM as it starts) */
  if (dirty_scan(r, true, 0) < 0) {
    snprintf(why, n, "PAGEMAP_SCAN: %s", strerror(errno));
    dirty_stop(r);
    return why;
  }
  return NULL;
}

/*
 * The written pages (ascending indexes into the range) into r->dirty: their count, or -1 (errno).
 * `protect`: protected again in the same scan; else left as they are, and the scan stops once it
 * has found more than `at_most` pages (dirtyCount's look, which must not protect what the guest
 * goes on writing: a page protected mid-chunk costs a second fault, and a huge page being filled
 * is split and then faults once per 4 KiB page).
 */
static long dirty_scan(Rec *r, bool protect, uint64_t at_most) {
  r->listed = -1;
  struct page_region vec[256];
  struct pm_scan_arg a = {
      .size = sizeof a,
      .flags = protect ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
      .max_pages = protect ? 0 : at_most + 1,
      .start = r->dirty_at,
      .end = r->dirty_at + r->dirty_len,
      .vec = (uint64_t)(uintptr_t)vec,
      .vec_len = sizeof vec / sizeof vec[0],
      /* written and not the zero page (a read of a page never touched maps it: a write to it
         then faults anyway, and populates the page unprotected) */
      .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PFNZERO,
      .category_inverted = PAGE_IS_PFNZERO,
      /* never-populated pages read as written too: left alone (see above) */
      .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
      .return_mask = PAGE_IS_WRITTEN,
  };
  size_t count = 0;
  for (;;) {
    long got = ioctl(r->pagemap, PAGEMAP_SCAN, &a);
    if (got < 0) return -1;
    for (long i = 0; i < got; i++) {
      size_t pages = (size_t)((vec[i].end - vec[i].start) / DIRTY_PAGE);
      if (count + pages > r->dirty_cap) {
        size_t cap = r->dirty_cap ? r->dirty_cap : 1024;
        while (cap < count + pages) cap *= 2;
        uint32_t *d = realloc(r->dirty, cap * 4);
        if (!d) {
          errno = ENOMEM;
          return -1;
        }
        r->dirty = d;
        r->dirty_cap = cap;
      }
      uint32_t first = (uint32_t)((vec[i].start - r->dirty_at) / DIRTY_PAGE);
      for (size_t k = 0; k < pages; k++) r->dirty[count++] = first + (uint32_t)k;
    }
    /* the scan stops early when the vector is full: on from where it stopped */
    if (a.walk_end >= a.end || (!protect && count > at_most)) {
      r->listed = !protect && count <= at_most ? (long)count : -1;
      return (long)count;
    }
    if (a.walk_end <= a.start) {
      errno = EIO;
      return -1;
    }
    a.start = a.walk_end;
  }
}

/* The recorder of a call whose one argument is its handle; NULL with the JS error thrown. */
static Rec *handle_only(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_err(env, "recorder: N-API call failed: napi_get_cb_info");
    return NULL;
  }
  return get_rec(env, argv[0]);
}

/*
 * dirtyTrack(h, ram: Buffer) -> string | undefined: start tracking writes to `ram` (the machine's
 * RAM, kept alive by the caller: private anonymous memory on 4 KiB boundaries, as emu.c's
 * allocRam makes it); undefined once tracking, else why it cannot (then record memory rows).
 * A second call tracks the new buffer instead.
 */
static napi_value fn_dirty_track(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  void *data;
  size_t len;
  if (!r) return NULL;
  if (argc < 2 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) return throw_err(env, "dirtyTrack(handle, ram: Buffer): bad arguments");
  char why[200];
  const char *no = dirty_start(r, (uint64_t)(uintptr_t)data, len, why, sizeof why);
  napi_value out;
  if (no) CALL(napi_create_string_utf8(env, no, NAPI_AUTO_LENGTH, &out));
  else CALL(napi_get_undefined(env, &out));
  return out;
}

/*
 * dirtyPages(h) -> Uint32Array: the indexes (byte offset / 4096) of the tracked pages written
 * since dirtyTrack or the last call, ascending; protected again in the same scan.
 */
/* Whether `r` tracks RAM; else the JS error thrown, naming the call `fn`. */
static bool tracking(napi_env env, Rec *r, const char *fn) {
  if (r->uffd >= 0) return true;
  char msg[120];
  snprintf(msg, sizeof msg, "%s: no RAM is tracked (dirtyTrack first)", fn);
  throw_err(env, msg);
  return false;
}

/* dirty_scan for the call `fn`: the count, or -1 with the JS error thrown. */
static long scan_for(napi_env env, Rec *r, const char *fn, bool protect, uint64_t at_most) {
  if (!tracking(env, r, fn)) return -1;
  long n = dirty_scan(r, protect, at_most);
  if (n < 0) {
    char msg[120];
    snprintf(msg, sizeof msg, "%s: PAGEMAP_SCAN: %s", fn, strerror(errno));
    throw_err(env, msg);
  }
  return n;
}

/* r->dirty[0..n) as a Uint32Array. */
static napi_value dirty_list(napi_env env, Rec *r, size_t n) {
  napi_value ab, out;
  void *d;
  CALL(napi_create_arraybuffer(env, n * 4, &d, &ab));
  if (n) memcpy(d, r->dirty, n * 4);
  CALL(napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &out));
  return out;
}

/* Pages [first, first + count) of the tracked range protected (or not): false with the JS error thrown, naming `fn`. */
static bool write_protect(napi_env env, Rec *r, const char *fn, uint64_t first, uint64_t count, bool protect) {
  struct uffdio_writeprotect wp = {.range = {r->dirty_at + first * DIRTY_PAGE, count * DIRTY_PAGE}, .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
  if (ioctl(r->uffd, UFFDIO_WRITEPROTECT, &wp) == 0) return true;
  char msg[120];
  snprintf(msg, sizeof msg, "%s: UFFDIO_WRITEPROTECT: %s", fn, strerror(errno));
  throw_err(env, msg);
  return false;
}

static napi_value fn_dirty_pages(napi_env env, napi_callback_info info) {
  Rec *r = handle_only(env, info);
  if (!r) return NULL;
  long n = scan_for(env, r, "dirtyPages", true, 0);
  return n < 0 ? NULL : dirty_list(env, r, (size_t)n);
}

/*
 * dirtyCount(h, atMost) -> number: how many tracked pages were written since dirtyTrack or the
 * last dirtyPages, counted up to atMost + 1 (the scan stops there); nothing is protected.
 */
static napi_value fn_dirty_count(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double at_most;
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  if (argc < 2 || napi_get_value_double(env, argv[1], &at_most) != napi_ok || !(at_most >= 0 && at_most <= 1e9))
    return throw_err(env, "dirtyCount(handle, atMost: number): bad arguments");
  long n = scan_for(env, r, "dirtyCount", false, (uint64_t)at_most);
  if (n < 0) return NULL;
  napi_value out;
  CALL(napi_create_double(env, (double)n, &out));
  return out;
}

/*
 * dirtyTakeListed(h) -> Uint32Array: what dirtyPages gives, right after a dirtyCount that listed
 * every page written (it ended under its bound, and nothing ran since): those pages, protected
 * again one run at a time instead of in a second walk of the whole range. Most chunks of a
 * recording are cut after such a look finds a few pages (FEW_PAGES in emulator-recorder.ts); a
 * walk of 512 MiB of RAM whose huge pages a boot split is ~150 us (xv6: ~60 of them a boot).
 * Such a page lies in no huge page written whole (a scan lists all 512 pages of one), so
 * protecting it splits none.
 */
static napi_value fn_dirty_take_listed(napi_env env, napi_callback_info info) {
  Rec *r = handle_only(env, info);
  if (!r) return NULL;
  if (!tracking(env, r, "dirtyTakeListed")) return NULL;
  if (r->listed < 0) return throw_err(env, "dirtyTakeListed: no dirtyCount listed every page written just before (use dirtyPages)");
  size_t n = (size_t)r->listed;
  r->listed = -1;
  for (size_t k = 0; k < n;) {
    size_t j = k + 1;
    while (j < n && r->dirty[j] == r->dirty[k] + (j - k)) j++;
    if (!write_protect(env, r, "dirtyTakeListed", r->dirty[k], j - k, true)) return NULL;
    k = j;
  }
  return dirty_list(env, r, n);
}

/*
 * dirtyRelease(h, at: Uint32Array, seen: Uint8Array) -> number: of the pages `at` (ascending
 * indexes, as dirtyPages listed them), those packPages left out as still zero for the first time
 * (SEEN_ZERO) are unprotected and marked SEEN_RELEASED; how many.
 *
 * A scan protects a transparent huge page whole, and a guest filling memory page by page (xv6's
 * kinit writes 57,000 pages in order) is cut mid-way through one at most chunk ends: its next
 * write splits the huge page and each of the pages it has yet to fill faults on its own (xv6's
 * recorded boot: ~30,000 faults). Those pages are still zero and have no image, so leaving them
 * unprotected loses nothing: the next scan lists them as written and packPages looks at them
 * again. Once only, so a page that stays zero is not listed by every scan.
 */
static napi_value fn_dirty_release(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  void *at, *seenp;
  size_t nat, nseen;
  napi_typedarray_type tat, tseen;
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  if (!r) return NULL;
  if (argc < 3 || napi_get_typedarray_info(env, argv[1], &tat, &nat, &at, NULL, NULL) != napi_ok || tat != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[2], &tseen, &nseen, &seenp, NULL, NULL) != napi_ok || tseen != napi_uint8_array)
    return throw_err(env, "dirtyRelease(handle, at: Uint32Array, seen: Uint8Array): bad arguments");
  if (!tracking(env, r, "dirtyRelease")) return NULL;
  const uint32_t *pages = at;
  uint8_t *seen = seenp;
  uint64_t tracked = r->dirty_len / DIRTY_PAGE;
  if (nseen < tracked) return throw_err(env, "dirtyRelease: `seen` has fewer bytes than the RAM has pages");
  double released = 0;
  for (size_t k = 0; k < nat;) {
    if (pages[k] >= tracked) return throw_err(env, "dirtyRelease: a page index lies outside the RAM");
    if (seen[pages[k]] != SEEN_ZERO) {
      k++;
      continue;
    }
    /* a run of consecutive pages, one ioctl */
    size_t j = k;
    while (j < nat && pages[j] - pages[k] == j - k && pages[j] < tracked && seen[pages[j]] == SEEN_ZERO) seen[pages[j++]] = SEEN_RELEASED;
    if (!write_protect(env, r, "dirtyRelease", pages[k], j - k, false)) return NULL;
    released += (double)(j - k);
    k = j;
  }
  CALL(napi_create_double(env, released, &out));
  return out;
}

/* dirtyStop(h): tracking ends (a recorder not tracking: nothing to do). */
static napi_value fn_dirty_stop(napi_env env, napi_callback_info info) {
  Rec *r = handle_only(env, info);
  if (!r) return NULL;
  dirty_stop(r);
  return NULL;
}

/* ---- decoding (for the store's readers) ------------------------------------------------------ */

/*
 * The (pcs: Buffer, count) both decoders open with: false, with the JS error thrown, when they are
 * not a buffer and a whole count the buffer can hold.
 */
static bool pcs_args(napi_env env, napi_value *argv, size_t argc, const char *usage, uint8_t **p, size_t *n, uint32_t *count) {
  double dcount;
  if (argc < 2 || napi_get_buffer_info(env, argv[0], (void **)p, n) != napi_ok ||
      napi_get_value_double(env, argv[1], &dcount) != napi_ok || !(dcount >= 0 && dcount <= 4294967295.0) ||
      dcount != (double)(uint32_t)dcount) {
    throw_err(env, usage);
    return false;
  }
  *count = (uint32_t)dcount;
  if (!pcs_count_fits(*n, *count)) {
    char msg[160];
    snprintf(msg, sizeof msg, "the pc stream of %zu bytes holds at most %zu instructions, not %u", *n, *n * 2, *count);
    throw_err(env, msg);
    return false;
  }
  return true;
}

/*
 * decodePcs(pcs: Buffer, count, lastOnly = false) -> { pc: BigUint64Array, vcpu: Uint8Array }
 * (lastOnly: both arrays hold only instruction count - 1, and nothing else is kept)
 */
static napi_value fn_decode_pcs(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *p;
  size_t n;
  uint32_t count;
  if (!pcs_args(env, argv, argc, "decodePcs(buffer, count): bad arguments", &p, &n, &count)) return NULL;
  bool only = false;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &only);
  size_t cells = only ? (count ? 1 : 0) : count;
  napi_value ab1, ab2, pcs, vcs;
  void *d1, *d2;
  CALL(napi_create_arraybuffer(env, cells * 8, &d1, &ab1));
  CALL(napi_create_arraybuffer(env, cells ? cells : 1, &d2, &ab2));
  if (pcs_decode(p, n, count, only, d1, d2) != DECODE_OK) return throw_err(env, "decodePcs: the pc stream is cut short or malformed");
  CALL(napi_create_typedarray(env, napi_biguint64_array, cells, ab1, 0, &pcs));
  CALL(napi_create_typedarray(env, napi_uint8_array, cells, ab2, 0, &vcs));
  napi_value out;
  CALL(napi_create_object(env, &out));
  CALL(napi_set_named_property(env, out, "pc", pcs));
  CALL(napi_set_named_property(env, out, "vcpu", vcs));
  return out;
}

/*
 * decodePcsInto(pcs: Buffer, count, pc: BigUint64Array, vcpu: Uint8Array) -> undefined: decodePcs
 * into arrays the caller owns and reuses (each holding at least `count` cells). A walk over a
 * whole history decodes every chunk once: fresh arrays per chunk cost it more in page faults and
 * garbage collection than the decoding itself.
 */
static napi_value fn_decode_pcs_into(napi_env env, napi_callback_info info) {
  static const char usage[] = "decodePcsInto(buffer, count, BigUint64Array, Uint8Array): bad arguments";
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *p;
  size_t n, pn, vn;
  uint32_t count;
  napi_typedarray_type pt, vt;
  void *pd, *vd;
  if (!pcs_args(env, argv, argc, usage, &p, &n, &count)) return NULL;
  if (argc < 4 || napi_get_typedarray_info(env, argv[2], &pt, &pn, &pd, NULL, NULL) != napi_ok || pt != napi_biguint64_array ||
      napi_get_typedarray_info(env, argv[3], &vt, &vn, &vd, NULL, NULL) != napi_ok || vt != napi_uint8_array)
    return throw_err(env, usage);
  if (pn < count || vn < count) return throw_err(env, "decodePcsInto: the arrays hold fewer cells than count");
  if (pcs_decode(p, n, count, 0, pd, vd) != DECODE_OK) return throw_err(env, "decodePcs: the pc stream is cut short or malformed");
  return NULL;
}

/* ckptDecode(key: Buffer, delta: Buffer) -> Buffer (the full image) */
static napi_value fn_ckpt_decode(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *k, *d;
  size_t kn, dn;
  if (argc < 2 || napi_get_buffer_info(env, argv[0], (void **)&k, &kn) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void **)&d, &dn) != napi_ok)
    return throw_err(env, "ckptDecode(key, delta): bad arguments");
  napi_value out;
  uint8_t *o;
  CALL(napi_create_buffer_copy(env, kn, k, (void **)&o, &out));
  if (ckpt_apply(o, kn, d, dn) != DECODE_OK) return throw_err(env, "ckptDecode: checkpoint delta is malformed");
  return out;
}

/* contextRestore(ucAddr, image: Buffer): load a checkpoint image into an engine */
static napi_value fn_context_restore(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp;
  uint8_t *d;
  size_t dn;
  if (argc < 2 || !get_u64(env, argv[0], &ucp) || napi_get_buffer_info(env, argv[1], (void **)&d, &dn) != napi_ok)
    return throw_err(env, "contextRestore(ucAddr, image): bad arguments");
  uc_engine *uc = (uc_engine *)(uintptr_t)ucp;
  if (dn != uc_context_size(uc)) return throw_err(env, "contextRestore: image size does not match this Unicorn build");
  uc_context *c;
  if (uc_context_alloc(uc, &c) != UC_ERR_OK) return throw_err(env, "contextRestore: uc_context_alloc failed");
  /* An image is a whole uc_context, header included, and uc_context_restore copies as many bytes
     as the header's context_size says: a damaged or hostile trace with a larger one made it read
     past the image and write past the engine's CPU state (a heap overflow). The header's first
     16 bytes (Unicorn 2.0.1: context_size, mode, arch) are fixed for a build and engine mode:
     they must be this engine's own. */
  uc_context_save(uc, c);
  if (dn < 16 || memcmp(c, d, 16) != 0) {
    uc_context_free(c);
    return throw_err(env, "contextRestore: the image's header does not match this engine (a damaged checkpoint or another Unicorn build)");
  }
  memcpy(c, d, dn);
  uc_err err = uc_context_restore(uc, c);
  uc_context_free(c);
  if (err != UC_ERR_OK) return throw_err(env, "contextRestore: uc_context_restore failed");
  return NULL;
}

/* contextSave(ucAddr) -> Buffer */
static napi_value fn_context_save(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp;
  if (argc < 1 || !get_u64(env, argv[0], &ucp)) return throw_err(env, "contextSave(ucAddr): bad arguments");
  uc_engine *uc = (uc_engine *)(uintptr_t)ucp;
  uc_context *c;
  if (uc_context_alloc(uc, &c) != UC_ERR_OK) return throw_err(env, "contextSave: uc_context_alloc failed");
  uc_context_save(uc, c);
  napi_value out = make_buffer(env, c, uc_context_size(uc));
  uc_context_free(c);
  return out;
}

/*
 * buildInfo(ucAddr) -> { unicorn: "major.minor.patch", contextSize }: what a trace records about the
 * Unicorn build that made its checkpoints (uc_context images are raw copies of that build's CPU
 * state: another build cannot load them).
 */
static napi_value fn_build_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp;
  if (argc < 1 || !get_u64(env, argv[0], &ucp) || !ucp) return throw_err(env, "buildInfo(ucAddr): bad arguments");
  unsigned maj, min;
  unsigned v = uc_version(&maj, &min);
  char ver[48];
  snprintf(ver, sizeof ver, "%u.%u.%u", (v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255);
  napi_value out, x;
  CALL(napi_create_object(env, &out));
  CALL(napi_create_string_utf8(env, ver, NAPI_AUTO_LENGTH, &x));
  CALL(napi_set_named_property(env, out, "unicorn", x));
  CALL(napi_create_double(env, (double)uc_context_size((uc_engine *)(uintptr_t)ucp), &x));
  CALL(napi_set_named_property(env, out, "contextSize", x));
  return out;
}

/*
 * pageWalk(ram: Buffer, ramBase, cr0, cr3, cr4, efer, virt) -> bigint | null: the recorder's own
 * page walk over `ram` (no engine), for the test that holds it to src/arch/x86-64-paging.ts.
 */
static napi_value fn_page_walk(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *ram;
  size_t len;
  uint64_t base, cr0, cr3, cr4, efer, va;
  if (argc < 7 || napi_get_buffer_info(env, argv[0], &ram, &len) != napi_ok || !get_u64(env, argv[1], &base) || !get_u64(env, argv[2], &cr0) ||
      !get_u64(env, argv[3], &cr3) || !get_u64(env, argv[4], &cr4) || !get_u64(env, argv[5], &efer) || !get_u64(env, argv[6], &va))
    return throw_err(env, "pageWalk(ram, ramBase, cr0, cr3, cr4, efer, virt): bad arguments");
  Rec *r = calloc(1, sizeof(Rec));
  r->ram = ram;
  r->ram_base = base;
  r->ram_size = len;
  Eng *e = &r->eng[0];
  e->rec = r;
  e->cr3 = cr3;
  e->pse = (cr4 & 0x10) != 0;
  e->paging = !(cr0 & 0x80000000u) ? 0 : (efer & 0x400) ? 4 : (cr4 & 0x20) ? 3 : 2;
  uint64_t pa = e->paging ? walk(r, e, va) : va;
  free(r);
  napi_value out;
  if (pa == WALK_FAIL) CALL(napi_get_null(env, &out));
  else CALL(napi_create_bigint_uint64(env, pa, &out));
  return out;
}

/* run(ucAddr, begin, count) -> uc_err: uc_emu_start for exactly `count` instructions (0 = no limit). */
static napi_value fn_run(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp, begin, count;
  if (argc < 3 || !get_u64(env, argv[0], &ucp) || !get_u64(env, argv[1], &begin) || !get_u64(env, argv[2], &count))
    return throw_err(env, "run(ucAddr, begin, count): bad arguments");
  uc_err err = uc_emu_start((uc_engine *)(uintptr_t)ucp, begin, 0, 0, (size_t)count);
  napi_value out;
  CALL(napi_create_int32(env, (int32_t)err, &out));
  return out;
}

/*
 * runSlice(h, ucAddr, begin, count) -> uc_err: run exactly `count` instructions on a recorded
 * engine, stopping from the recorder's own code hook (no second counting hook: Unicorn's `count`
 * costs ~28% throughput). Calls beginSlice/endSlice itself.
 */
static napi_value fn_run_slice(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  Rec *r = get_rec(env, argv[0]);
  uint64_t ucp, begin, count;
  if (!r || argc < 4 || !get_u64(env, argv[1], &ucp) || !get_u64(env, argv[2], &begin) || !get_u64(env, argv[3], &count))
    return throw_err(env, "runSlice(handle, ucAddr, begin, count): bad arguments");
  Eng *e = find_eng(r, ucp);
  if (!e) return throw_err(env, "runSlice: engine not attached");
  eng_mode(e);
  r->slice_start = r->seq;
  r->undo.valid = 0;
  checkpoint(r, e, r->seq, 0);
  r->stop_at = r->seq + count;
  uc_err err = uc_emu_start(e->uc, begin, 0, 0, 0);
  r->stop_at = 0;
  if (r->npending) resolve_pending(r);
  checkpoint(r, e, r->seq, 2);
  napi_value out;
  CALL(napi_create_int32(env, (int32_t)err, &out));
  return out;
}

/* ---- port-read replay ---------------------------------------------------------------------- */

typedef struct {
  uc_engine *uc;
  uc_hook hh;
  uint32_t *vals;
  size_t n, pos;
} PortFeed;

/* Each feed is its own allocation, never moved: Unicorn keeps `f` as the IN hook's user data for
   as long as the hook exists. (Feeds used to be an array of structs, and unfeedPorts moved the
   last one into the freed slot: that engine's hook went on reading the old slot, whose `vals` the
   engine's next feedPorts freed, a heap use-after-free; a later new feed took the old slot over.) */
static PortFeed *feeds[64];
static int nfeeds;

static uint32_t feed_in(uc_engine *uc, uint32_t port, int size, void *ud) {
  PortFeed *f = ud;
  return f->pos < f->n ? f->vals[f->pos++] : 0;
}

/*
 * feedPorts(ucAddr, values: Uint32Array): IN instructions on this engine return these values in
 * order (then 0). The hook is added on the first call, which should come before the engine
 * translates any code (no flush is made).
 */
static napi_value fn_feed_ports(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp;
  napi_typedarray_type t;
  size_t n;
  void *d;
  if (argc < 2 || !get_u64(env, argv[0], &ucp) || napi_get_typedarray_info(env, argv[1], &t, &n, &d, NULL, NULL) != napi_ok || t != napi_uint32_array)
    return throw_err(env, "feedPorts(ucAddr, Uint32Array): bad arguments");
  uc_engine *uc = (uc_engine *)(uintptr_t)ucp;
  PortFeed *f = NULL;
  for (int i = 0; i < nfeeds; i++)
    if (feeds[i]->uc == uc) f = feeds[i];
  if (!f) {
    if (nfeeds == 64) return throw_err(env, "feedPorts: too many engines");
    f = calloc(1, sizeof *f);
    if (!f) return throw_err(env, "feedPorts: out of memory");
    f->uc = uc;
    if (uc_hook_add(uc, &f->hh, UC_HOOK_INSN, (void *)feed_in, f, 1, 0, UC_X86_INS_IN) != UC_ERR_OK) {
      free(f);
      return throw_err(env, "feedPorts: uc_hook_add(UC_HOOK_INSN, IN) failed");
    }
    feeds[nfeeds++] = f;
  }
  free(f->vals);
  f->vals = malloc((n ? n : 1) * 4);
  /* an empty Uint32Array may have no data pointer (NULL): memcpy's arguments must not be NULL */
  if (n) memcpy(f->vals, d, n * 4);
  f->n = n;
  f->pos = 0;
  return NULL;
}

/* unfeedPorts(ucAddr): forget the engine (before it is closed). */
static napi_value fn_unfeed_ports(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CALL(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t ucp;
  if (argc < 1 || !get_u64(env, argv[0], &ucp)) return throw_err(env, "unfeedPorts(ucAddr): bad arguments");
  for (int i = 0; i < nfeeds; i++)
    if ((uint64_t)(uintptr_t)feeds[i]->uc == ucp) {
      uc_hook_del(feeds[i]->uc, feeds[i]->hh);
      free(feeds[i]->vals);
      free(feeds[i]);
      feeds[i] = feeds[--nfeeds];
      break;
    }
  return NULL;
}

napi_value fn_nonzero_pages(napi_env env, napi_callback_info info); /* pages.c */
napi_value fn_deflate_raw(napi_env env, napi_callback_info info);       /* deflate.c */
napi_value fn_deflate_raw_bound(napi_env env, napi_callback_info info);
napi_value fn_pack_pages(napi_env env, napi_callback_info info);

/*
 * batchThread(): the calling thread (the trace writer's) as SCHED_BATCH: the same share of the CPU,
 * but no preemption of a running thread when it wakes. Handed a chunk, the writer's thread woke
 * and, on a busy machine, took the recording thread's core at once until the chunk was stored:
 * 0.6 ms a chunk of the guest's time inside postMessage, ~15% of a recording at load 4 on 2
 * cores. (Nice 10 did the same and starved the writer under load: the guest then waited for it.)
 * False where the scheduler refuses.
 */
static napi_value fn_batch_thread(napi_env env, napi_callback_info info) {
  (void)info;
  struct sched_param p = {.sched_priority = 0};
  napi_value out;
  CALL(napi_get_boolean(env, sched_setscheduler((pid_t)syscall(SYS_gettid), SCHED_BATCH, &p) == 0, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"batchThread", 0, fn_batch_thread, 0, 0, 0, napi_default, 0},
      {"nonZeroPages", 0, fn_nonzero_pages, 0, 0, 0, napi_default, 0},
      {"deflateRaw", 0, fn_deflate_raw, 0, 0, 0, napi_default, 0},
      {"deflateRawBound", 0, fn_deflate_raw_bound, 0, 0, 0, napi_default, 0},
      {"packPages", 0, fn_pack_pages, 0, 0, 0, napi_default, 0},
      {"create", 0, fn_create, 0, 0, 0, napi_default, 0},
      {"setRam", 0, fn_set_ram, 0, 0, 0, napi_default, 0},
      {"setRamBuffer", 0, fn_set_ram_buffer, 0, 0, 0, napi_default, 0},
      {"attach", 0, fn_attach, 0, 0, 0, napi_default, 0},
      {"attachFast", 0, fn_attach_fast, 0, 0, 0, napi_default, 0},
      {"detach", 0, fn_detach, 0, 0, 0, napi_default, 0},
      {"beginSlice", 0, fn_begin_slice, 0, 0, 0, napi_default, 0},
      {"endSlice", 0, fn_end_slice, 0, 0, 0, napi_default, 0},
      {"hostWrite", 0, fn_host_write, 0, 0, 0, napi_default, 0},
      {"lineNow", 0, fn_line_now, 0, 0, 0, napi_default, 0},
      {"lineRows", 0, fn_line_rows, 0, 0, 0, napi_default, 0},
      {"checkpointNow", 0, fn_checkpoint_now, 0, 0, 0, napi_default, 0},
      {"cut", 0, fn_cut, 0, 0, 0, napi_default, 0},
      {"encodeRows", 0, fn_encode_rows, 0, 0, 0, napi_default, 0},
      {"rowsBound", 0, fn_rows_bound, 0, 0, 0, napi_default, 0},
      {"seq", 0, fn_seq, 0, 0, 0, napi_default, 0},
      {"lastStep", 0, fn_last_step, 0, 0, 0, napi_default, 0},
      {"setSeq", 0, fn_set_seq, 0, 0, 0, napi_default, 0},
      {"decodePcs", 0, fn_decode_pcs, 0, 0, 0, napi_default, 0},
      {"decodePcsInto", 0, fn_decode_pcs_into, 0, 0, 0, napi_default, 0},
      {"findPcs", 0, fn_find_pcs, 0, 0, 0, napi_default, 0},
      {"ckptDecode", 0, fn_ckpt_decode, 0, 0, 0, napi_default, 0},
      {"contextRestore", 0, fn_context_restore, 0, 0, 0, napi_default, 0},
      {"contextSave", 0, fn_context_save, 0, 0, 0, napi_default, 0},
      {"run", 0, fn_run, 0, 0, 0, napi_default, 0},
      {"feedPorts", 0, fn_feed_ports, 0, 0, 0, napi_default, 0},
      {"unfeedPorts", 0, fn_unfeed_ports, 0, 0, 0, napi_default, 0},
      {"runSlice", 0, fn_run_slice, 0, 0, 0, napi_default, 0},
      {"buildInfo", 0, fn_build_info, 0, 0, 0, napi_default, 0},
      {"pageWalk", 0, fn_page_walk, 0, 0, 0, napi_default, 0},
      {"dirtyTrack", 0, fn_dirty_track, 0, 0, 0, napi_default, 0},
      {"dirtyPages", 0, fn_dirty_pages, 0, 0, 0, napi_default, 0},
      {"dirtyCount", 0, fn_dirty_count, 0, 0, 0, napi_default, 0},
      {"dirtyTakeListed", 0, fn_dirty_take_listed, 0, 0, 0, napi_default, 0},
      {"dirtyRelease", 0, fn_dirty_release, 0, 0, 0, napi_default, 0},
      {"dirtyStop", 0, fn_dirty_stop, 0, 0, 0, napi_default, 0},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
