/**
 * Loaded Linux kernel modules, read with vmlinux's types, and their symbols at the addresses the
 * kernel loaded them at: from the module's `.ko` when one is given (relocated section by section),
 * else from the module's own kallsyms in memory.
 *
 *   modules                     list_head of struct module.list
 *   struct module
 *     name[56], state           MODULE_STATE_LIVE 0, COMING 1 (its init runs), GOING 2, UNFORMED 3
 *     core_layout, init_layout  { base, size } (Linux 4.5-6.3); mem[MOD_TEXT..] since 6.4
 *     kallsyms ->               struct mod_kallsyms { Elf64_Sym *symtab; num_symtab; char *strtab;
 *                               char *typetab }: every symbol while init runs, the core ones after
 *
 *   Elf64_Sym in memory (24 bytes):
 *     +0 st_name u32 | +4 st_info u8 | +5 st_other u8 | +6 st_shndx u16 | +8 st_value | +16 st_size
 *   kallsyms values are run-time addresses already (the loader resolved them).
 *
 * Bad input: the module list is walked with listContainers (a cycle or an unreadable node
 * stops the walk with a message and the count so far); a symbol table whose counts lie gives
 * DbgError('corrupt') for that module only.
 */

import { DbgError } from '../../common/errors.js';
import { hex } from '../../common/format.js';
import { STT_FUNC, STT_NOTYPE, type ElfFile, type ElfSymbol } from '../../symbols/elf-file.js';
import type { TypedObject } from '../../types/typed-object.js';
import { needObjects, type LinuxPort } from './port.js';
import { listContainers, type OnStop } from './tasks.js';

export interface ModuleRange {
  /** core (text, data, rodata) or init (freed once the module's init returned). */
  readonly kind: 'core' | 'init';
  readonly base: bigint;
  readonly size: bigint;
}

export interface LinuxModule {
  /** The struct module's address. */
  readonly addr: bigint;
  readonly name: string;
  readonly state: 'live' | 'coming' | 'going' | 'unformed' | 'unknown';
  /** Its memory, non-empty ranges only. */
  readonly ranges: readonly ModuleRange[];
}

const STATES = ['live', 'coming', 'going', 'unformed'] as const;
const MAX_MODULE_SYMBOLS = 1_000_000;
const SHN_ABS = 0xfff1;
const SHF_ALLOC = 0x2n;

/** The modules on the kernel's `modules` list, in list order (the last loaded first). */
export function* linuxModules(port: LinuxPort, onStop: OnStop): Generator<LinuxModule> {
  const head = port.symbol('modules');
  if (head === undefined) return;
  const objects = needObjects(port, 'the module list', 'struct module');
  for (const a of listContainers(port, objects, head, 'struct module', 'list', onStop, false, 'the module list')) {
    try {
      yield readModule(objects.at(a, 'struct module'));
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      onStop(`the module at ${hex(a)}: ${e.message}`);
    }
  }
}

function readModule(m: TypedObject): LinuxModule {
  const ranges: ModuleRange[] = [];
  const add = (kind: ModuleRange['kind'], base: bigint, size: bigint) => {
    if (base !== 0n && size > 0n) ranges.push({ kind, base, size });
  };
  if (has(m, 'core_layout')) {
    add('core', m.member('core_layout.base').value(), m.member('core_layout.size').value());
    if (has(m, 'init_layout')) add('init', m.member('init_layout.base').value(), m.member('init_layout.size').value());
  } else {
    // Linux 6.4+: mem[MOD_TEXT, MOD_DATA, MOD_RODATA, MOD_RO_AFTER_INIT, MOD_INIT_TEXT, MOD_INIT_DATA, MOD_INIT_RODATA]
    for (let i = 0; i < 7; i++) add(i < 4 ? 'core' : 'init', m.member(`mem[${i}].base`).value(), m.member(`mem[${i}].size`).value());
  }
  const state = Number(m.member('state').value());
  return { addr: m.address, name: m.member('name').string(56), state: STATES[state] ?? 'unknown', ranges };
}

function has(o: TypedObject, member: string): boolean {
  try {
    o.member(member);
    return true;
  } catch {
    return false;
  }
}

/** Whether `addr` is in one of the module's ranges. */
export function moduleHolds(mod: LinuxModule, addr: bigint): boolean {
  return mod.ranges.some((r) => addr >= r.base && addr < r.base + r.size);
}

/**
 * The module's own symbols from its in-memory kallsyms (mod->kallsyms), as ElfSymbols whose
 * values are run-time addresses; only those inside the module's current ranges (a freed init
 * section's symbols name nothing any more). A count that lies or memory that cannot be read is
 * DbgError('corrupt' or the read's code) whose message starts with the module's name.
 */
export function moduleKallsyms(port: LinuxPort, mod: LinuxModule): ElfSymbol[] {
  try {
    return readModuleKallsyms(port, mod);
  } catch (e) {
    if (!(e instanceof DbgError)) throw e;
    throw new DbgError(e.code, `module ${mod.name} (struct module ${hex(mod.addr)}): its kallsyms: ${e.message}`);
  }
}

function readModuleKallsyms(port: LinuxPort, mod: LinuxModule): ElfSymbol[] {
  const o = needObjects(port, 'module symbols', 'struct module');
  const m = o.at(mod.addr, 'struct module');
  if (!has(m, 'kallsyms')) return []; // a kernel built without CONFIG_KALLSYMS
  const ks = m.member('kallsyms').value();
  if (ks === 0n) return [];
  const k = o.at(ks, 'struct mod_kallsyms');
  const n = Number(k.member('num_symtab').value());
  if (n < 0 || n > MAX_MODULE_SYMBOLS) throw new DbgError('corrupt', `num_symtab says ${n} symbols; dbg reads at most ${MAX_MODULE_SYMBOLS}`);
  if (n === 0) return [];
  const symtab = port.read(k.member('symtab').value(), n * 24);
  const strtab = k.member('strtab').value();
  let maxName = 0;
  for (let i = 0; i < n; i++) maxName = Math.max(maxName, symtab.readUInt32LE(i * 24));
  if (maxName > 64 << 20) throw new DbgError('corrupt', `a name at offset ${maxName} of its string table; not a symbol table`);
  const strings = readUpTo(port, strtab, maxName + 256);
  const out: ElfSymbol[] = [];
  for (let i = 1; i < n; i++) {
    const at = i * 24;
    const nameAt = symtab.readUInt32LE(at);
    if (nameAt >= strings.length) continue;
    const end = strings.indexOf(0, nameAt);
    const name = strings.toString('latin1', nameAt, end < 0 ? strings.length : end);
    const info = symtab[at + 4]!;
    const shndx = symtab.readUInt16LE(at + 6);
    const value = symtab.readBigUInt64LE(at + 8);
    if (!name || shndx === 0 || shndx === SHN_ABS || !moduleHolds(mod, value)) continue;
    out.push({ name, value, size: symtab.readBigUInt64LE(at + 16), type: info & 0xf, bind: info >> 4, shndx });
  }
  return out;
}

/** Up to `length` bytes at `addr`: fewer when the memory ends (a string table's last page). */
function readUpTo(port: LinuxPort, addr: bigint, length: number): Buffer {
  try {
    return port.read(addr, length);
  } catch (e) {
    if (!(e instanceof DbgError)) throw e;
  }
  const parts: Buffer[] = [];
  let a = addr;
  let left = length;
  while (left > 0) {
    const n = Math.min(left, 4096 - Number(a & 0xfffn));
    try {
      parts.push(port.read(a, n));
    } catch (e) {
      if (!(e instanceof DbgError) || parts.length === 0) throw e;
      break;
    }
    a += BigInt(n);
    left -= n;
  }
  return Buffer.concat(parts);
}

/** What a .ko says about itself in .modinfo: vermagic's release and the module name. */
export function koModinfo(elf: ElfFile): { release?: string; name?: string } {
  const s = elf.section('.modinfo');
  if (!s) return {};
  const info: { release?: string; name?: string } = {};
  for (const kv of elf.sectionData(s).toString('latin1').split('\0')) {
    if (kv.startsWith('vermagic=')) info.release = kv.slice(9).split(' ')[0];
    else if (kv.startsWith('name=')) info.name = kv.slice(5);
  }
  return info;
}

/**
 * Where the kernel loaded each SHF_ALLOC section of the .ko: section index -> run-time address,
 * from a symbol of it that the module's kallsyms name (`kallsyms`: names that occur once ->
 * run-time address), as the loader placed the whole section. Sections kallsyms name nothing of
 * are left out.
 *
 * Why not mod->sect_attrs, as crash and drgn do: its type is defined in one compilation unit of
 * vmlinux (kernel/module/sysfs.c), and finding it costs a scan of the whole DWARF (0.6 s on a
 * Debian vmlinux), while kallsyms name every section that has symbols.
 */
export function koSectionBases(elf: ElfFile, kallsyms: ReadonlyMap<string, bigint>): Map<number, bigint> {
  const shdrs = elf.sections();
  const base = new Map<number, bigint>();
  for (const s of elf.symbols()) {
    if (base.has(s.shndx) || s.shndx === 0 || s.shndx >= shdrs.length || !s.name) continue;
    const run = kallsyms.get(s.name);
    if (run !== undefined && shdrs[s.shndx]!.flags & SHF_ALLOC) base.set(s.shndx, run - s.value);
  }
  return base;
}

/**
 * The .ko's symbols at their run-time addresses, each section at `bases` (koSectionBases); those
 * of sections not placed, or that land outside the module's memory (a freed init section's), are
 * left out.
 */
export function placeKoSymbols(elf: ElfFile, mod: LinuxModule, bases: ReadonlyMap<number, bigint>): ElfSymbol[] {
  const out: ElfSymbol[] = [];
  for (const s of elf.symbols()) {
    const b = bases.get(s.shndx);
    if (b === undefined || !s.name) continue;
    const value = b + s.value;
    if (!moduleHolds(mod, value)) continue;
    out.push({ ...s, value });
  }
  return out;
}

/**
 * Symbols of the .ko that the module's kallsyms place elsewhere: [name, .ko's address, kallsyms'].
 * A .ko built from other sources (or for another kernel) disagrees; the right one agrees on all.
 */
export function disagreements(placed: readonly ElfSymbol[], kallsyms: ReadonlyMap<string, bigint>): [string, bigint, bigint][] {
  const out: [string, bigint, bigint][] = [];
  for (const s of placed) {
    const k = kallsyms.get(s.name);
    if (k !== undefined && k !== s.value) out.push([s.name, s.value, k]);
  }
  return out;
}

/**
 * `syms` with module_init()'s and module_exit()'s aliases (init_module, cleanup_module) made
 * untyped where they share an address with the function they alias, so that an address is named
 * as the kernel names it in an oops (`dbg_oops_init+0xa`), while the aliases still look up by name.
 */
export function kernelNamesFirst(syms: readonly ElfSymbol[]): ElfSymbol[] {
  const funcs = new Set<bigint>();
  for (const s of syms) if (s.type === STT_FUNC && s.name !== 'init_module' && s.name !== 'cleanup_module') funcs.add(s.value);
  return syms.map((s) => ((s.name === 'init_module' || s.name === 'cleanup_module') && funcs.has(s.value) ? { ...s, type: STT_NOTYPE } : s));
}
