#define _GNU_SOURCE
/*
 * Guest-physical TLB entries for Unicorn 2.0.1: see phys.h for the contract.
 *
 * libunicorn.so.2 exports QEMU's internals and calls them between its own files through its PLT,
 * so the calls can be taken by rewriting their GOT slots (found through the library's dynamic
 * relocations, R_X86_64_JUMP_SLOT by symbol name; the slots are read-only after relocation
 * (RELRO), so they are made writable for the store and read-only again):
 *
 *   slot                               caller in libunicorn (x86)            what dbg does
 *   tlb_set_page_with_attrs_x86_64     x86_cpu_tlb_fill (the page walk)      the owner's address
 *   tlb_flush_x86_64                   CR0/CR3/CR4 loads, reset              tell the owner
 *   tlb_flush_page_x86_64              INVLPG, memory unmaps                 tell the owner
 *   tlb_flush_by_mmuidx_x86_64 and     (other paths that drop entries)       tell the owner
 *   tlb_flush_page_by_mmuidx_x86_64
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
#include <unistd.h>

typedef void (*set_page_fn)(void *cpu, uint64_t vaddr, uint64_t paddr, uint32_t attrs, int prot, int mmu_idx, uint64_t size);
typedef void (*flush_fn)(void *cpu);
typedef void (*flush_page_fn)(void *cpu, uint64_t addr);
typedef void (*flush_idx_fn)(void *cpu, uint16_t idxmap);
typedef void (*flush_page_idx_fn)(void *cpu, uint64_t addr, uint16_t idxmap);

static set_page_fn real_set_page;
static flush_fn real_flush;
static flush_page_fn real_flush_page;
static flush_idx_fn real_flush_idx;
static flush_page_idx_fn real_flush_page_idx;
static const phys_ops *owner_ops;
static void *(*mapping_at)(void *uc, uint64_t addr); /* Unicorn's memory_mapping */

/* ---- the registry: CPUState -> owner ---------------------------------------------------------- */

typedef struct entry {
  void *cpu, *owner;
} entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static entry *table;
static size_t used, cap;
static volatile uint64_t epoch = 1; /* bumped at every change: per-thread caches start over */
static __thread entry last;
static __thread uint64_t last_epoch;

void phys_register(void *cpu, void *owner) {
  if (!cpu) return;
  pthread_mutex_lock(&lock);
  size_t i = 0;
  while (i < used && table[i].cpu != cpu) i++;
  if (owner) {
    if (i == used) {
      if (used == cap) {
        size_t n = cap ? 2 * cap : 16;
        entry *t = realloc(table, n * sizeof *t);
        if (!t) {
          pthread_mutex_unlock(&lock);
          return;
        }
        table = t;
        cap = n;
      }
      used++;
    }
    table[i].cpu = cpu;
    table[i].owner = owner;
  } else if (i < used) {
    table[i] = table[--used];
  }
  __atomic_add_fetch(&epoch, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&lock);
}

static void *owner_of(void *cpu) {
  uint64_t now = __atomic_load_n(&epoch, __ATOMIC_ACQUIRE);
  if (last_epoch == now && last.cpu == cpu) return last.owner;
  void *owner = NULL;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < used; i++)
    if (table[i].cpu == cpu) owner = table[i].owner;
  now = epoch;
  pthread_mutex_unlock(&lock);
  last.cpu = cpu;
  last.owner = owner;
  last_epoch = now;
  return owner;
}

/* ---- the replacements ------------------------------------------------------------------------- */

static void my_set_page(void *cpu, uint64_t vaddr, uint64_t paddr, uint32_t attrs, int prot, int mmu_idx, uint64_t size) {
  void *o = owner_of(cpu);
  if (o) paddr = owner_ops->translate(o, vaddr, paddr);
  real_set_page(cpu, vaddr, paddr, attrs, prot, mmu_idx, size);
}

static void told(void *cpu) {
  void *o = owner_of(cpu);
  if (o) owner_ops->flushed(o);
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

void phys_flush(void *cpu) {
  if (real_flush && cpu) real_flush(cpu);
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
  int found_lib;
} search;

static int visit(struct dl_phdr_info *info, size_t size, void *data) {
  search *s = data;
  (void)size;
  if (!info->dlpi_name || !strstr(info->dlpi_name, "libunicorn.so")) return 0;
  s->found_lib = 1;
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
  };
  const int n = (int)(sizeof w / sizeof w[0]);
  void *lib = dlopen("libunicorn.so.2", RTLD_NOW | RTLD_NOLOAD);
  if (!lib) {
    install_why = "libunicorn.so.2 is not loaded";
    return;
  }
  search s = {w, n, 0};
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
  if (!mapping_at) {
    install_why = "libunicorn.so.2 does not export memory_mapping (not the Unicorn 2.0.1 build dbg knows)";
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
