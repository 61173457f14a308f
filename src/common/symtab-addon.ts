/**
 * native/symtab's addon: the passes over a whole ELF64 symbol table that CompactSymbolTable makes
 * once per table, in C (native/symtab/symtab.c says what each returns). Optional: without it the
 * table makes them in JavaScript, with the same answers.
 */

import { optionalAddon } from './optional-addon.js';

export interface SymtabAddon {
  /** The first entry of `raw` whose st_name is at or past `stringsLength` (0 aside), or -1. */
  badName(raw: Uint8Array, stringsLength: number): number;
  /**
   * CompactSymbolTable's address index: the kept entries by address, then rank, then entry
   * number, their addresses' words, and the [start, end) runs of one address and rank that
   * SymbolTable orders by name (the caller does).
   */
  order(raw: Uint8Array, strings: Uint8Array, biasHi: number, biasLo: number): { order: Uint32Array; hi: Uint32Array; lo: Uint32Array; runs: Uint32Array };
  /**
   * `length` bytes of the file `fd` from `offset`, mapped read-only instead of read (unmapped when
   * the Buffer is collected), or null when they cannot be. The range must lie inside the file.
   */
  map(fd: number, offset: number, length: number): Buffer | null;
}

let addon: SymtabAddon | null | undefined;

/** native/symtab's addon, or null when it is not built (setup builds it: scripts/setup.d/26-symtab.mjs). */
export function symtabAddon(): SymtabAddon | null {
  if (addon === undefined) addon = optionalAddon<SymtabAddon>('symtab'); // else the JavaScript passes
  return addon;
}
