#define _GNU_SOURCE
/*
 * Guest-physical TLB entries and fast stores for Unicorn 2.0.1: see phys.h for the contract.
 *
 * libunicorn.so.2 exports QEMU's internals and calls them between its own files through its PLT,
 * so the calls can be taken by rewriting their GOT slots (found through the library's dynamic
 * relocations, R_X86_64_JUMP_SLOT by symbol name; the slots are read-only after relocation
 * (RELRO), so they are made writable for the store and read-only again):
 *
 *   slot (_x86_64)                  caller in libunicorn (x86)              what dbg does
 *   tlb_set_page_with_attrs         x86_cpu_tlb_fill (the page walk)        the owner's address
 *   tlb_flush, tlb_flush_page,      CR0/CR3/CR4 loads, INVLPG, unmaps       tell the owner
 *   tlb_flush_by_mmuidx,
 *   tlb_flush_page_by_mmuidx
 *   tlb_protect_code                a page gets its first translated code   note the page
 *   tlb_unprotect_code              a page lost its last translated code    forget it
 *   tb_invalidate_phys_page_fast    a store to a page noted for code        the other engines too
 *
 * Stores. Unicorn 2.0.1 has no dirty-memory tracking (cpu_physical_memory_is_clean() is always
 * true), so every TLB entry of writable RAM is TLB_NOTDIRTY and every guest store takes the slow
 * path, where a page-collection tree is allocated and freed to look for code to invalidate: most
 * of a kernel's run time. dbg clears TLB_NOTDIRTY on the entries of RAM pages that no engine over
 * the same RAM has translated code from, and drops those engines' TLBs when a page gets code. A
 * store to a page with code still takes the slow path, where QEMU invalidates the writer's own
 * translations of the bytes; dbg invalidates them in the other engines over that RAM too (the
 * vCPU's other engine, the other vCPUs), which Unicorn's separate instances would otherwise run
 * stale. The TLB entry is found as TCG's code finds it: CPUTLBDescFast f[NB_MMU_MODES] just below
 * CPUX86State (CPUNegativeOffsetState), located once and checked against the entry just set.
 *
 * The slots are process-wide: every engine of the process goes through them, including engines
 * nobody registered (theirs are passed on unchanged). Engines live in several threads (vitest
 * workers), so the registry is locked; each thread keeps the last engine it looked up.
 */
#include "phys.h"
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

typedef void (*set_page_fn)(void *cpu, uint64_t vaddr, uint64_t paddr, uint32_t attrs, int prot, int mmu_idx, uint64_t size);
typedef void (*flush_fn)(void *cpu);
typedef void (*flush_page_fn)(void *cpu, uint64_t addr);
typedef void (*flush_idx_fn)(void *cpu, uint16_t idxmap);
typedef void (*flush_page_idx_fn)(void *cpu, uint64_t addr, uint16_t idxmap);
typedef void (*protect_fn)(void *uc, uint64_t ram_addr);
typedef void (*inval_fast_fn)(void *uc, void *pages, uint64_t start, int len, uintptr_t retaddr);

static set_page_fn real_set_page;
static flush_fn real_flush;
static flush_page_fn real_flush_page;
static flush_idx_fn real_flush_idx;
static flush_page_idx_fn real_flush_page_idx;
static protect_fn real_protect, real_unprotect;
static inval_fast_fn real_inval_fast;
static void *(*mapping_at)(void *uc, uint64_t addr);               /* memory_mapping */
static void *(*ram_ptr)(void *uc, void *block, uint64_t ram_addr);  /* qemu_map_ram_ptr */
static uint64_t (*ram_addr_of)(void *uc, void *host);              /* qemu_ram_addr_from_host */
static void (*invalidate_range)(void *uc, uint64_t start, uint64_t end); /* tb_invalidate_phys_range */
static const phys_ops *owner_ops;

/* ---- the registry ----------------------------------------------------------------------------- */

/* Engines over the same guest RAM share which of its pages hold translated code. */
typedef struct space {
  unsigned char *ram;
  uint64_t pages;
  uint8_t *count; /* per page: how many engines over this RAM have translated code from it */
  int refs;
} space;

typedef struct entry {
  void *owner;
  phys_engine e;
  uint64_t base; /* the ram_addr of e.ram in this engine (UINT64_MAX: unknown) */
  uint8_t *mine; /* per page of the space: this engine has translated code from it */
  space *sp;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry **table;
static size_t used, cap;
static space **spaces;
static size_t nspaces;
static volatile uint64_t epoch = 1; /* bumped at every change: per-thread caches start over */
static __thread entry *last_cpu, *last_uc;
static __thread int quiet; /* flushes of our own: not the engine's doing, owners are not told */
static __thread uint64_t last_cpu_epoch, last_uc_epoch;

static space *space_for(unsigned char *ram, uint64_t size) {
  for (size_t i = 0; i < nspaces; i++)
    if (spaces[i]->ram == ram) {
      spaces[i]->refs++;
      return spaces[i];
    }
  space **n = realloc(spaces, (nspaces + 1) * sizeof *n);
  if (!n) return NULL;
  spaces = n;
  space *sp = calloc(1, sizeof *sp);
  if (!sp) return NULL;
  sp->ram = ram;
  sp->pages = size >> 12;
  sp->count = calloc(sp->pages, 1);
  if (!sp->count) {
    free(sp);
    return NULL;
  }
  sp->refs = 1;
  spaces[nspaces++] = sp;
  return sp;
}

static void space_drop(entry *en) {
  space *sp = en->sp;
  if (!sp) return;
  for (uint64_t pg = 0; en->mine && pg < sp->pages; pg++)
    if (en->mine[pg] && sp->count[pg]) sp->count[pg]--;
  en->sp = NULL;
  if (--sp->refs) return;
  for (size_t i = 0; i < nspaces; i++)
    if (spaces[i] == sp) spaces[i] = spaces[--nspaces];
  free(sp->count);
  free(sp);
}

void phys_register(const phys_engine *e, void *owner) {
  if (!e->cpu || !e->uc) return;
  entry *en = calloc(1, sizeof *en);
  if (!en) return;
  en->owner = owner;
  en->e = *e;
  /* RAM is the engine's first RAM block, mapped before any marker: its host address is its own */
  en->base = ram_addr_of && e->ram ? ram_addr_of(e->uc, e->ram) : UINT64_MAX;
  pthread_mutex_lock(&lock);
  if (e->ram && e->ram_size >= 0x1000) {
    en->sp = space_for(e->ram, e->ram_size);
    en->mine = en->sp ? calloc(en->sp->pages, 1) : NULL;
    if (!en->mine) space_drop(en);
  }
  entry **t = used == cap ? realloc(table, (cap ? 2 * cap : 16) * sizeof *t) : table;
  if (t) {
    if (used == cap) cap = cap ? 2 * cap : 16;
    table = t;
    table[used++] = en;
  } else {
    space_drop(en);
    free(en->mine);
    free(en);
  }
  __atomic_add_fetch(&epoch, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&lock);
}

void phys_unregister(void *cpu) {
  if (!cpu) return;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < used; i++) {
    entry *en = table[i];
    if (en->e.cpu != cpu) continue;
    space_drop(en);
    free(en->mine);
    free(en);
    table[i] = table[--used];
    break;
  }
  __atomic_add_fetch(&epoch, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&lock);
}

/* The entry of the engine whose CPUState (by_uc: uc_struct) is `key`, or NULL. A thread only
   meets its own engines, and an entry lives until its engine is destroyed. */
static entry *find(void *key, int by_uc) {
  uint64_t now = __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
  entry **cache = by_uc ? &last_uc : &last_cpu;
  uint64_t *seen = by_uc ? &last_uc_epoch : &last_cpu_epoch;
  if (*seen == now && *cache && (by_uc ? (*cache)->e.uc : (*cache)->e.cpu) == key) return *cache;
  entry *found = NULL;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < used && !found; i++)
    if ((by_uc ? table[i]->e.uc : table[i]->e.cpu) == key) found = table[i];
  now = epoch;
  pthread_mutex_unlock(&lock);
  *cache = found;
  *seen = now;
  return found;
}

/* ---- TLB entries ------------------------------------------------------------------------------ */

#define PAGE_MASK_ (~(uint64_t)0xfff)
#define TLB_NOTDIRTY_ (1u << 10) /* TARGET_PAGE_BITS_MIN - 2 */
#define NB_MMU_MODES_ 3          /* target/i386/cpu.h: MMU_KSMAP_IDX, MMU_USER_IDX, MMU_KNOSMAP_IDX */

typedef struct tlb_entry {
  uint64_t addr_read, addr_write, addr_code;
  uintptr_t addend;
} tlb_entry;

typedef struct tlb_fast {
  uintptr_t mask; /* (entries - 1) << CPU_TLB_ENTRY_BITS (5) */
  tlb_entry *table;
} tlb_fast;

static long fast_off;   /* env - fast_off = CPUTLBDescFast f[0]; 0 unknown, -1 not found */

static size_t peek(const void *addr, void *buf, size_t len) {
  struct iovec local = {buf, len}, remote = {(void *)addr, len};
  ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  return n < 0 ? 0 : (size_t)n;
}

static int plausible(const tlb_fast *f) {
  uintptr_t n = (f->mask >> 5) + 1;
  return (f->mask & 31) == 0 && n >= 16 && n <= (1u << 22) && (n & (n - 1)) == 0 && f->table && ((uintptr_t)f->table & 15) == 0;
}

/* Finds f[] below env: the entry tlb_set_page just wrote for (mmu_idx, vaddr) must be there. */
static void locate_fast(void *env, int mmu_idx, uint64_t vaddr) {
  for (long off = 16 * NB_MMU_MODES_; off <= 512; off += 16) {
    tlb_fast f[NB_MMU_MODES_];
    tlb_entry te;
    if (peek((char *)env - off, f, sizeof f) != sizeof f) continue;
    int ok = 1;
    for (int i = 0; i < NB_MMU_MODES_ && ok; i++) ok = plausible(&f[i]);
    if (!ok) continue;
    tlb_entry *at = f[mmu_idx].table + ((vaddr >> 12) & (f[mmu_idx].mask >> 5));
    if (peek(at, &te, sizeof te) != sizeof te) continue;
    uint64_t page = vaddr & PAGE_MASK_;
    if ((te.addr_read & PAGE_MASK_) == page || (te.addr_code & PAGE_MASK_) == page || (te.addr_write & PAGE_MASK_) == page) {
      fast_off = off;
      return;
    }
  }
  fast_off = -1;
}

/* The entry just set for a RAM page that holds no translated code: stores may take the fast path. */
static void fast_stores(entry *en, uint64_t vaddr, int mmu_idx) {
  if (!en->sp || mmu_idx < 0 || mmu_idx >= NB_MMU_MODES_) return;
  if (!fast_off) locate_fast(en->e.env, mmu_idx, vaddr);
  if (fast_off < 0) return;
  tlb_fast *f = (tlb_fast *)((char *)en->e.env - fast_off) + mmu_idx;
  tlb_entry *te = f->table + ((vaddr >> 12) & (f->mask >> 5));
  uint64_t page = vaddr & PAGE_MASK_;
  if (te->addr_write != (page | TLB_NOTDIRTY_)) return; /* not writable, MMIO, another page... */
  uintptr_t host = (uintptr_t)page + te->addend;
  uintptr_t ram = (uintptr_t)en->sp->ram;
  if (host < ram || (host - ram) >> 12 >= en->sp->pages) return;
  if (__atomic_load_n(&en->sp->count[(host - ram) >> 12], __ATOMIC_RELAXED)) return;
  te->addr_write = page;
}

unsigned char *phys_store_host(void *env, int mmu_idx, uint64_t vaddr, unsigned size) {
  if (fast_off <= 0 || mmu_idx < 0 || mmu_idx >= NB_MMU_MODES_ || !size || (vaddr & 0xfff) + size > 0x1000) return NULL;
  tlb_fast *f = (tlb_fast *)((char *)env - fast_off) + mmu_idx;
  tlb_entry *te = f->table + ((vaddr >> 12) & (f->mask >> 5));
  /* TCG compares the page (and the alignment bits, 0 for x86) with addr_write: any flag fails */
  if (te->addr_write != (vaddr & PAGE_MASK_)) return NULL;
  return (unsigned char *)(uintptr_t)(vaddr + te->addend);
}

/* ---- the replacements ------------------------------------------------------------------------- */

static void my_set_page(void *cpu, uint64_t vaddr, uint64_t paddr, uint32_t attrs, int prot, int mmu_idx, uint64_t size) {
  entry *en = find(cpu, 0);
  if (en) paddr = owner_ops->translate(en->owner, vaddr, paddr);
  real_set_page(cpu, vaddr, paddr, attrs, prot, mmu_idx, size);
  if (en) fast_stores(en, vaddr, mmu_idx);
}

static void told(void *cpu) {
  if (quiet) return;
  entry *en = find(cpu, 0);
  if (en) owner_ops->flushed(en->owner);
}

static void my_flush(void *cpu) {
  real_flush(cpu);
  told(cpu);
}

static void my_flush_page(void *cpu, uint64_t addr) {
  real_flush_page(cpu, addr);
  told(cpu);
}

static void my_flush_idx(void *cpu, uint16_t idxmap) {
  real_flush_idx(cpu, idxmap);
  told(cpu);
}

static void my_flush_page_idx(void *cpu, uint64_t addr, uint16_t idxmap) {
  real_flush_page_idx(cpu, addr, idxmap);
  told(cpu);
}

/* The page of the space that ram_addr is in this engine, or -1. */
static long page_of(entry *en, uint64_t ram_addr) {
  if (!en->sp) return -1;
  uintptr_t host = (uintptr_t)ram_ptr(en->e.uc, NULL, ram_addr);
  uintptr_t ram = (uintptr_t)en->sp->ram;
  if (host < ram || (host - ram) >> 12 >= en->sp->pages) return -1;
  return (long)((host - ram) >> 12);
}

static void my_protect(void *uc, uint64_t ram_addr) {
  real_protect(uc, ram_addr);
  entry *en = find(uc, 1);
  long pg = en ? page_of(en, ram_addr) : -1;
  if (pg < 0 || en->mine[pg]) return;
  en->mine[pg] = 1;
  if (en->sp->count[pg]++) return;
  /* the first code on this page: entries of every engine over this RAM that skip the store check
     must go (only the thread that runs these engines touches their tables) */
  void *cpus[64];
  size_t n = 0;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < used && n < 64; i++)
    if (table[i]->sp == en->sp) cpus[n++] = table[i]->e.cpu;
  pthread_mutex_unlock(&lock);
  quiet++;
  for (size_t i = 0; i < n; i++) real_flush(cpus[i]);
  quiet--;
}

static void my_unprotect(void *uc, uint64_t ram_addr) {
  real_unprotect(uc, ram_addr);
  entry *en = find(uc, 1);
  long pg = en ? page_of(en, ram_addr) : -1;
  if (pg < 0 || !en->mine[pg]) return;
  en->mine[pg] = 0;
  if (en->sp->count[pg]) en->sp->count[pg]--;
}

volatile uint64_t phys_code_epoch_now = 1;

static void my_inval_fast(void *uc, void *pages, uint64_t start, int len, uintptr_t retaddr) {
  __atomic_add_fetch(&phys_code_epoch_now, 1, __ATOMIC_RELAXED);
  entry *en = find(uc, 1);
  long pg = en ? page_of(en, start) : -1;
  /* before the writer's own: that one may not return (its current block was rewritten) */
  if (pg >= 0 && en->sp->count[pg] > en->mine[pg]) {
    uint64_t off = ((uint64_t)pg << 12) + (start & 0xfff);
    entry *others[64];
    size_t n = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < used && n < 64; i++)
      if (table[i] != en && table[i]->sp == en->sp && table[i]->mine[pg] && table[i]->base != UINT64_MAX) others[n++] = table[i];
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < n; i++) invalidate_range(others[i]->e.uc, others[i]->base + off, others[i]->base + off + (uint64_t)len);
  }
  real_inval_fast(uc, pages, start, len, retaddr);
}

void phys_flush(void *cpu) {
  if (!real_flush || !cpu) return;
  quiet++;
  real_flush(cpu);
  quiet--;
}

int phys_mapped(void *uc, uint64_t addr) { return mapping_at && mapping_at(uc, addr) != NULL; }

/* ---- finding the GOT slots -------------------------------------------------------------------- */

typedef struct want {
  const char *name;
  void *replacement;
  void **real;
  void **slot; /* found */
} want;

typedef struct search {
  want *w;
  int n;
} search;

static int visit(struct dl_phdr_info *info, size_t size, void *data) {
  search *s = data;
  (void)size;
  if (!info->dlpi_name || !strstr(info->dlpi_name, "libunicorn.so")) return 0;
  ElfW(Addr) base = info->dlpi_addr;
  const ElfW(Dyn) *dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) dyn = (const ElfW(Dyn) *)(base + info->dlpi_phdr[i].p_vaddr);
  if (!dyn) return 1;
  ElfW(Addr) jmprel = 0, symtab = 0, strtab = 0;
  size_t relsz = 0;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_JMPREL) jmprel = dyn->d_un.d_ptr;
    else if (dyn->d_tag == DT_PLTRELSZ) relsz = dyn->d_un.d_val;
    else if (dyn->d_tag == DT_SYMTAB) symtab = dyn->d_un.d_ptr;
    else if (dyn->d_tag == DT_STRTAB) strtab = dyn->d_un.d_ptr;
  }
  if (!jmprel || !symtab || !strtab) return 1;
  /* glibc relocates these in place on x86-64; an unrelocated one is an offset from the base */
  if (jmprel < base) jmprel += base;
  if (symtab < base) symtab += base;
  if (strtab < base) strtab += base;
  const ElfW(Rela) *rel = (const ElfW(Rela) *)jmprel;
  const ElfW(Sym) *sym = (const ElfW(Sym) *)symtab;
  const char *str = (const char *)strtab;
  for (size_t i = 0; i < relsz / sizeof *rel; i++) {
    if (ELF64_R_TYPE(rel[i].r_info) != R_X86_64_JUMP_SLOT) continue;
    const char *name = str + sym[ELF64_R_SYM(rel[i].r_info)].st_name;
    for (int k = 0; k < s->n; k++)
      if (!strcmp(name, s->w[k].name)) s->w[k].slot = (void **)(base + rel[i].r_offset);
  }
  return 1;
}

static int patch(void **slot, void *value) {
  long pg = sysconf(_SC_PAGESIZE);
  uintptr_t page = (uintptr_t)slot & ~(uintptr_t)(pg - 1);
  if (mprotect((void *)page, (size_t)pg, PROT_READ | PROT_WRITE)) return 0;
  __atomic_store_n(slot, value, __ATOMIC_SEQ_CST);
  mprotect((void *)page, (size_t)pg, PROT_READ);
  return 1;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int installed;
static const char *install_why = "not tried";
static const phys_ops *pending_ops;

static void install(void) {
  want w[] = {
      {"tlb_set_page_with_attrs_x86_64", (void *)my_set_page, (void **)&real_set_page, NULL},
      {"tlb_flush_x86_64", (void *)my_flush, (void **)&real_flush, NULL},
      {"tlb_flush_page_x86_64", (void *)my_flush_page, (void **)&real_flush_page, NULL},
      {"tlb_flush_by_mmuidx_x86_64", (void *)my_flush_idx, (void **)&real_flush_idx, NULL},
      {"tlb_flush_page_by_mmuidx_x86_64", (void *)my_flush_page_idx, (void **)&real_flush_page_idx, NULL},
      {"tlb_protect_code_x86_64", (void *)my_protect, (void **)&real_protect, NULL},
      {"tlb_unprotect_code_x86_64", (void *)my_unprotect, (void **)&real_unprotect, NULL},
      {"tb_invalidate_phys_page_fast_x86_64", (void *)my_inval_fast, (void **)&real_inval_fast, NULL},
  };
  const int n = (int)(sizeof w / sizeof w[0]);
  void *lib = dlopen("libunicorn.so.2", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) {
    install_why = "libunicorn.so.2 is not loaded";
    return;
  }
  search s = {w, n};
  dl_iterate_phdr(visit, &s);
  for (int k = 0; k < n; k++) {
    void *fn = dlsym(lib, w[k].name);
    /* BIND_NOW: each slot already holds the library's own function */
    if (!fn || !w[k].slot || *w[k].slot != fn) {
      install_why = "libunicorn.so.2 does not call QEMU's TLB functions through its PLT (not the Unicorn 2.0.1 build dbg knows)";
      return;
    }
    *w[k].real = fn;
  }
  mapping_at = (void *(*)(void *, uint64_t))dlsym(lib, "memory_mapping");
  ram_ptr = (void *(*)(void *, void *, uint64_t))dlsym(lib, "qemu_map_ram_ptr_x86_64");
  ram_addr_of = (uint64_t(*)(void *, void *))dlsym(lib, "qemu_ram_addr_from_host_x86_64");
  invalidate_range = (void (*)(void *, uint64_t, uint64_t))dlsym(lib, "tb_invalidate_phys_range_x86_64");
  if (!mapping_at || !ram_ptr || !ram_addr_of || !invalidate_range) {
    install_why = "libunicorn.so.2 does not export memory_mapping, qemu_map_ram_ptr, qemu_ram_addr_from_host and tb_invalidate_phys_range (not the Unicorn 2.0.1 build dbg knows)";
    return;
  }
  owner_ops = pending_ops;
  for (int k = 0; k < n; k++) {
    if (!patch(w[k].slot, w[k].replacement)) {
      /* put back the ones done: a half-hooked library would tell owners only part of the story */
      for (int j = 0; j < k; j++) patch(w[j].slot, *w[j].real);
      install_why = "cannot make libunicorn.so.2's GOT writable (mprotect refused)";
      return;
    }
  }
  installed = 1;
  install_why = NULL;
}

int phys_install(const phys_ops *ops, const char **why) {
  pending_ops = ops;
  pthread_once(&once, install);
  if (why) *why = install_why;
  return installed;
}
