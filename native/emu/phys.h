/*
 * Guest-physical TLB entries for Unicorn 2.0.1 (see phys.c).
 *
 * Unicorn's x86 page walk (target/i386/excp_helper.c, handle_mmu_fault) computes the guest-physical
 * address of a virtual page and then throws it away ("identity map guest virtual address"): every
 * TLB entry leads virtual page V to Unicorn's address space at V. phys.c puts the physical address
 * back: it takes the library's one call to tlb_set_page_with_attrs (through its PLT) and asks the
 * owner of the engine which address the entry should lead to.
 *
 * It also lets guest stores to RAM without translated code take Unicorn's fast path, and keeps
 * the engines over one RAM coherent when a store rewrites code one of them translated.
 *
 * Contract: the owner's `translate` runs inside Unicorn's TLB fill (no Unicorn calls that run code
 * or change the memory map; uc_reg_read is fine) and returns the page-aligned address in the
 * engine's address space that virtual page `vaddr` must use: `paddr` (= vaddr) to keep Unicorn's
 * behaviour. `flushed` is called when the engine drops TLB entries on its own (CR3 load, INVLPG,
 * CR0/CR4 changes, its memory map changing).
 */
#ifndef DBG_EMU_PHYS_H
#define DBG_EMU_PHYS_H

#include <stdint.h>

typedef struct phys_ops {
  uint64_t (*translate)(void *owner, uint64_t vaddr, uint64_t paddr);
  void (*flushed)(void *owner);
} phys_ops;

/* Installs the TLB hooks once per process; 1 when they are in place, else 0 and *why says why. */
int phys_install(const phys_ops *ops, const char **why);

/* An engine: its CPUState, uc_struct, CPUX86State, and the guest RAM mapped first in it (the
   engines over one RAM buffer share which of its pages hold translated code). */
typedef struct phys_engine {
  void *cpu, *uc, *env;
  unsigned char *ram;
  uint64_t ram_size;
} phys_engine;

/* The engine belongs to `owner` until phys_unregister(cpu) (before the engine is closed). */
void phys_register(const phys_engine *e, void *owner);
void phys_unregister(void *cpu);

/* Whether anything is mapped at `addr` in the engine's own address space (Unicorn's memory_mapping,
   which its load and store helpers ask before they use a TLB entry). */
int phys_mapped(void *uc, uint64_t addr);

/* Drops every TLB entry of the engine whose CPUState is `cpu` (QEMU's tlb_flush); its owner is
   not told (`flushed` is for what the engine does by itself). */
void phys_flush(void *cpu);

/*
 * Where TCG's inline store path would write `size` bytes at virtual `vaddr` with TLB index
 * `mmu_idx`, for the engine whose CPUX86State is `env`: the host address when the engine's main
 * TLB table holds an entry for the page that lets the store through without a helper (writable
 * RAM, no flag: no translated code on the page, no MMIO, no trap page), else NULL (no entry yet,
 * or a store there takes the slow path). The bytes must lie in one page.
 */
unsigned char *phys_store_host(void *env, int mmu_idx, uint64_t vaddr, unsigned size);

/* Bumped whenever a store rewrites bytes some engine translated code from (any engine, any RAM):
   a cache of decoded blocks keyed by virtual pc looks at its bytes again only when this moved. */
extern volatile uint64_t phys_code_epoch_now;
static inline uint64_t phys_code_epoch(void) { return __atomic_load_n(&phys_code_epoch_now, __ATOMIC_RELAXED); }

#endif
