/**
 * A kernel crash dump opened as a target: kdump ELF vmcores (/proc/vmcore, makedumpfile's ELF
 * output) and QEMU `dump-guest-memory` files, with or without `-p` (paging).
 *
 * Memory model. Physical memory is what the PT_LOADs' p_paddr say (KernelPhysMap). Every virtual
 * read goes through the x86-64 page tables (X86_64Paging) of the thread's CPU:
 *   - a QEMU dump gives each CPU's CR0/CR3/CR4 in its QEMU note: paging on -> walk from CR3;
 *     paging off (a CPU parked by the firmware in 32-bit mode) -> virtual = physical;
 *   - a kdump has no CR3: the walk starts at swapper_pg_dir, whose physical address comes from a
 *     PT_LOAD covering its virtual address, or, as crash does, from
 *     SYMBOL(swapper_pg_dir) - __START_KERNEL_map + NUMBER(phys_base);
 *   - with neither, virtual reads use the PT_LOADs' p_vaddr as gdb does (QEMU 7.2's paging dump
 *     writes the identity map as 0xffff000000000000: such non-canonical vaddrs are read with
 *     bits 63..48 cleared), and say so when that fails.
 * PT_LOAD p_vaddr is never trusted when page tables are available: QEMU 7.2's paging dump clamps
 * p_filesz and leaves data out, which the page walk over p_paddr reads correctly. A kernel address
 * missing from a user-mode CR3 (KPTI) is walked again from the kernel PGD beside it.
 *
 * Symbols: `--symbols vmlinux` (or any kernel ELF), biased by VMCOREINFO's KERNELOFFSET, or, when
 * the dump has none, by the KASLR slide at which the file's linux_banner is found in the dump. A
 * symbol file that contradicts the dump (BUILD-ID, OSRELEASE against the file's linux_banner, or
 * another banner at the link address) is refused with both values in the message. Without a
 * symbol file, the kernel's own kallsyms (Linux 6.0+, located by VMCOREINFO) and VMCOREINFO's
 * SYMBOL() lines name things.
 *
 * Why it stopped: Linux's panic_cpu, else a CPU with panic() (or the kdump path) among its first
 * frames, else the kernel log's last "Kernel panic - not syncing" record and the CPU it names; the
 * message from the kernel's `panic_msg` string when it keeps one, else from that log record.
 * What Linux means by these lives in src/os/linux/, reached through `linux` (a LinuxPort).
 */

import { basename } from 'node:path';
import { X86_64 } from '../../arch/x86-64.js';
import type { Registers } from '../../arch/arch.js';
import { cr3Root, X86_64Paging, type Walk } from '../../arch/x86-64-paging.js';
import { FileByteSource, type ByteSource } from '../../common/byte-source.js';
import { hex, hexAddr } from '../../common/format.js';
import { DbgError, errors } from '../../common/errors.js';
import { ElfFile, ET_CORE, ET_REL, PT_LOAD, STT_OBJECT, type ElfSymbol } from '../../symbols/elf-file.js';
import { placedObject } from '../../symbols/elf-relocate.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import { SymbolTable, type Sym, type SymbolMatch } from '../../symbols/symbol-table.js';
import { symbolTableFor } from '../../symbols/compact-symbol-table.js';
import type {
  CpuDescriptors,
  Capabilities,
  Mapping,
  PhysAddr,
  PhysicalMemory,
  StopStatus,
  Target,
  ThreadInfo,
  Translation,
  VirtAddr,
} from '../target.js';
import { hasKallsyms, readKallsyms } from '../../os/linux/kallsyms.js';
import { bannerRelease, findKaslrSlide, START_KERNEL_MAP } from '../../os/linux/kaslr.js';
import { orcFromElf, orcFromMemory, orcOfModules, type OrcTable } from '../../os/linux/orc.js';
import { PANIC_FUNCTIONS, panicCpu, panicFromLog } from '../../os/linux/panic.js';
import type { LinuxPort } from '../../os/linux/port.js';
import { readPrintkLog, type PrintkRecord } from '../../os/linux/printk.js';
import { linuxTasks } from '../../os/linux/tasks.js';
import { KERNEL_TYPE_HOMES } from '../../os/linux/type-homes.js';
import { ModuleFiles } from '../../os/linux/module-files.js';
import { disagreements, kernelNamesFirst, koModinfo, koSectionBases, linuxModules, moduleKallsyms, placeKoSymbols, type LinuxModule } from '../../os/linux/modules.js';
import { TypeSpace } from '../../types/type-space.js';
import { ObjectSpace } from '../../types/typed-object.js';
import { elfModule, unwind } from '../unwind.js';
import { KernelPhysMap } from './kernel-phys-map.js';
import { NT_PRSTATUS, parsePrstatus } from './core-notes.js';
import { parseQemuCpuState, Vmcoreinfo, type QemuCpuState } from './kernel-notes.js';

const MASK64 = (1n << 64n) - 1n;
/** x86-64's MODULES_END (arch/x86/include/asm/pgtable_64_types.h): the module area's top. */
const MODULES_END = 0xffffffffff000000n;

/** True when `elf` is a kernel crash dump (kdump ELF vmcore or QEMU dump-guest-memory). */
export function isKernelDump(elf: ElfFile): boolean {
  if (elf.header.type !== ET_CORE) return false;
  try {
    const notes = elf.notes();
    if (notes.some((n) => n.name === 'VMCOREINFO' || n.name === 'QEMU')) return true;
    // A process core always has NT_PRPSINFO (3), NT_AUXV (6) or NT_FILE; a kernel dump has none.
    const processNotes = new Set([3, 6, 0x46494c45]);
    return notes.some((n) => n.name === 'CORE' && n.type === NT_PRSTATUS) && !notes.some((n) => n.name === 'CORE' && processNotes.has(n.type));
  } catch {
    return false;
  }
}

export interface KernelDumpOptions {
  /** Symbol files: the kernel (vmlinux) first. */
  readonly symbols?: readonly string[];
  /** The dump's bytes as an ELF vmcore, when the file is another format (kdump-compressed). */
  readonly source?: ByteSource;
  /** What `::status` calls the dump's format, when not an ELF vmcore. */
  readonly format?: string;
  /**
   * Where the modules' .ko files are (searched recursively); default: the distribution's trees
   * for the dump's release (src/os/linux/module-files.ts). Needs a vmlinux among `symbols`.
   */
  readonly modules?: string;
}

interface Cpu {
  readonly index: number;
  readonly pid: number;
  readonly prstatus?: Registers;
  readonly qemu?: QemuCpuState;
}

/** How a CPU turns virtual addresses into physical ones. */
type AddressMode =
  | { readonly kind: 'paging'; readonly root: PhysAddr; readonly levels: 4 | 5; readonly from: string }
  | { readonly kind: 'identity'; readonly why: string }
  | { readonly kind: 'segments'; readonly why: string } // PT_LOAD p_vaddr, as gdb reads cores
  | { readonly kind: 'none'; readonly why: string };

export class KernelDumpTarget implements Target {
  readonly kind = 'kernel-dump';
  readonly arch = X86_64;
  readonly symbols = new SymbolSpace();
  readonly caps: Capabilities;
  /** Things about the dump that a user should know (truncation, overlaps, guesses made). */
  readonly warnings: string[] = [];
  readonly vmcoreinfo?: Vmcoreinfo;
  /** 'qemu' when the dump has QEMU CPU-state notes, else 'kdump'. */
  readonly flavour: 'qemu' | 'kdump';
  readonly phys: KernelPhysMap;
  readonly paging: X86_64Paging;
  /** The kernel's symbol file, for CFI unwinding (.eh_frame / .debug_frame). */
  kernelElf?: ElfFile;
  private readonly cpus: Cpu[];
  private readonly symbolElves: ElfFile[] = [];
  /** The KASLR slide found by looking for linux_banner, when VMCOREINFO does not give one. */
  private detectedOffset?: bigint;
  /** What panic() found; false once looked for in vain. */
  private panicCache?: { readonly message: string; thread: number; how: string } | false;
  private logCache?: PrintkRecord[];
  private linuxCache?: LinuxPort;
  /** The kernel's ORC tables (null: it has none, or they could not be read). */
  private orcCache?: OrcTable | null;
  private moduleOrcCache?: OrcTable[];
  private readonly loadedModules: (LinuxModule & { readonly symbols: string })[] = [];
  /** Tasks given a thread of their own (ADDR::task, ::stacks): registers from their saved context. */
  private readonly taskThreads = new Map<number, { task: bigint; regs: Registers; name: string; tid: number; listed: boolean }>();
  private readonly modes = new Map<number, AddressMode>();
  private kernelRootCache?: { root?: PhysAddr; from: string };
  private mappingCache?: Mapping[];
  private closed = false;
  private format?: string;

  private constructor(
    readonly name: string,
    readonly path: string,
    private readonly elf: ElfFile,
  ) {
    const h = elf.header;
    if (h.type !== ET_CORE) throw errors.badInput(`${path}: not a core file (ELF type ${h.type}, expected ET_CORE 4)`);
    if (h.machine !== X86_64.elfMachine || h.class !== 64) {
      throw errors.badInput(`${path}: kernel dumps of machine ${h.machine} (ELF${h.class}) are not supported; dbg reads x86-64 (EM_X86_64 62, ELF64)`);
    }
    const notes = elf.notes();
    const prs = notes.filter((n) => n.name === 'CORE' && n.type === NT_PRSTATUS);
    const qemus = notes.filter((n) => n.name === 'QEMU');
    const vmci = notes.find((n) => n.name === 'VMCOREINFO');
    if (vmci) this.vmcoreinfo = new Vmcoreinfo(vmci.desc.toString('latin1').replace(/\0+$/, ''), path);
    this.flavour = qemus.length > 0 ? 'qemu' : 'kdump';
    if (qemus.length > 0 && prs.length > 0 && qemus.length !== prs.length) {
      this.warnings.push(`${prs.length} NT_PRSTATUS notes but ${qemus.length} QEMU CPU notes; paired in order`);
    }
    const n = Math.max(prs.length, qemus.length);
    this.cpus = [];
    for (let i = 0; i < n; i++) {
      const p = prs[i] ? parsePrstatus(prs[i]!.desc, X86_64, `${path}: NT_PRSTATUS note at offset 0x${prs[i]!.offset.toString(16)}`) : undefined;
      const q = qemus[i] ? parseQemuCpuState(qemus[i]!.desc, path, qemus[i]!.offset) : undefined;
      this.cpus.push({ index: i, pid: p?.pid ?? i + 1, prstatus: p?.registers, qemu: q });
    }
    const pageSize = this.vmcoreinfo?.pageSize;
    if (pageSize !== undefined && pageSize !== 4096) {
      this.warnings.push(`VMCOREINFO PAGESIZE=${pageSize}, but x86-64 pages are 4096 bytes; using 4096`);
    }
    this.phys = new KernelPhysMap(elf.source, elf.programHeaders(), this.flavour === 'kdump', name);
    this.warnings.push(...this.phys.warnings);
    const sme = this.vmcoreinfo?.number('sme_mask');
    this.paging = new X86_64Paging((a) => this.phys.readU64(a), { clearMask: sme && sme > 0n ? sme : undefined, tablePage: (p) => this.phys.tablePage(p) });
    const physical: PhysicalMemory = {
      readPhysical: (addr, length) => this.readPhysical(addr, length),
      translate: (addr, thread) => this.translate(addr, thread),
      physicalRanges: () => this.phys.regions(),
    };
    this.caps = { physical };
  }

  static open(path: string, opts: KernelDumpOptions = {}): KernelDumpTarget {
    // Small cache pages: page walks and structure reads jump all over a multi-GiB file.
    const src = opts.source ?? FileByteSource.open(path, { pageBytes: 4096, cachePages: 4096 });
    let elf: ElfFile;
    try {
      elf = new ElfFile(src);
    } catch (e) {
      src.close();
      throw e;
    }
    let t: KernelDumpTarget | undefined;
    try {
      t = new KernelDumpTarget(`kernel dump "${basename(path)}"`, path, elf);
      t.format = opts.format;
      const files = opts.symbols ?? [];
      files.forEach((f, i) => t!.loadSymbols(f, i === 0));
      if (files.length === 0 && t.vmcoreinfo) {
        if (hasKallsyms(t.vmcoreinfo)) t.loadKallsyms();
        t.loadVmcoreinfoSymbols();
      }
      t.deferModules(opts.modules);
      return t;
    } catch (e) {
      if (t) t.close();
      else elf.close();
      throw e;
    }
  }

  // --- symbols ----------------------------------------------------------------------------------

  /** KERNELOFFSET (KASLR slide) from VMCOREINFO, or 0. */
  get kernelOffset(): bigint {
    return this.vmcoreinfo?.kernelOffset ?? this.detectedOffset ?? 0n;
  }

  private loadSymbols(file: string, isKernel: boolean): void {
    const elf = ElfFile.open(file);
    try {
      if (elf.header.type === ET_CORE) throw errors.badInput(`--symbols ${file}: this is a core file, not a kernel ELF`);
      if (elf.header.machine !== X86_64.elfMachine) {
        throw errors.badInput(`--symbols ${file}: ELF machine ${elf.header.machine} does not match the dump's x86-64 (62)`);
      }
      // linux_banner by the compact table's name lookup: a vmlinux has ~200k symbols, not read here.
      // With VMCOREINFO's KERNELOFFSET the table is made once, at that bias; without it the slide
      // may come from the banner itself, so the banner is found in a table at the link addresses.
      const known = isKernel ? this.vmcoreinfo?.kernelOffset : 0n;
      let table = known !== undefined ? symbolTableFor(basename(file), elf, known) : undefined;
      if (isKernel) {
        const banner = (table ?? symbolTableFor(basename(file), elf, 0n)).lookup('linux_banner');
        this.checkKernelMatches(elf, file, banner && known !== undefined ? { ...banner, addr: banner.addr - known } : banner);
      }
      const bias = isKernel ? this.kernelOffset : 0n;
      table ??= symbolTableFor(basename(file), elf, bias);
      if (table.empty) this.warnings.push(`--symbols ${file}: no symbol table (stripped?)`);
      let mod = elfModule(basename(file), file, elf, table, bias);
      // Linux links its per-CPU segment (.data..percpu) at 0: its symbols are offsets into each
      // CPU's area, and must not stretch the image's range down to 0 (heap and stack addresses
      // would read as __per_cpu_end+0xffff...).
      const image = isKernel ? elf.loadSegments().filter((p) => p.memsz > 0n && p.vaddr >= START_KERNEL_MAP) : [];
      if (image.length > 0) {
        const lo = image.reduce((m, p) => (p.vaddr < m ? p.vaddr : m), MASK64);
        const hi = image.reduce((m, p) => (p.vaddr + p.memsz > m ? p.vaddr + p.memsz : m), 0n);
        mod = { ...mod, start: lo + bias, end: hi + bias };
      }
      if (isKernel) mod = { ...mod, typeHomes: KERNEL_TYPE_HOMES };
      this.symbols.add(mod);
      this.symbolElves.push(elf);
      if (isKernel) this.kernelElf = elf;
      this.modes.clear();
      this.linuxCache = undefined;
      this.orcCache = undefined;
      this.moduleOrcCache = undefined;
      this.kernelRootCache = undefined;
      this.mappingCache = undefined;
    } catch (e) {
      elf.close();
      throw e;
    }
  }

  /**
   * Without a symbol file, the kernel's own kallsyms (located by VMCOREINFO) name things. Read on
   * first use, so opening stays as cheap as the headers.
   */
  private loadKallsyms(): void {
    const table = new LazySymbolTable('kallsyms', () => {
      try {
        return readKallsyms(this.linux);
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        this.warnings.push(`kallsyms could not be read: ${e.message}`);
        return [];
      }
    });
    this.symbols.add({ name: 'kallsyms', path: this.path, table });
  }

  /**
   * The kernel modules' symbols, loaded on first use (SymbolSpace.defer): a name vmlinux lacks, an
   * address above the kernel image, ::modules. Walking the module list reads struct module's type
   * and every module's kallsyms, and placing a .ko reads it: work a stack of the kernel's own
   * functions does not need. `dir` is checked now.
   */
  private deferModules(dir: string | undefined): void {
    if (!this.kernelElf) {
      if (dir !== undefined) throw errors.badInput(`--modules ${dir}: the module list is read with the kernel's types; give --symbols vmlinux too`);
      return;
    }
    if (this.linux.symbol('modules') === undefined) {
      if (dir !== undefined) this.warnings.push(`--modules ${dir}: the kernel has no modules list (built without CONFIG_MODULES?)`);
      return;
    }
    const release = this.vmcoreinfo?.osrelease ?? bannerRelease(this.linuxBanner() ?? '');
    const files = ModuleFiles.find(dir, release);
    // x86-64 maps modules between the kernel image's end (at most 1 GiB above __START_KERNEL_map)
    // and MODULES_END; the fixmap and vsyscall page above hold none.
    const kernel = this.symbols.modules.find((m) => m.elf === this.kernelElf);
    this.symbols.defer(kernel?.end ?? START_KERNEL_MAP, MODULES_END, () => this.loadModules(files, dir, release));
  }

  /**
   * Each loaded kernel module's symbols, at the addresses it was loaded at: from its .ko (in `dir`,
   * then the distribution's trees for the dump's release) with each section placed where the
   * module's kallsyms say it was loaded, else from the module's kallsyms in memory. A .ko that is
   * not the loaded module (built for another release, or from other sources) is left out with a
   * warning.
   */
  private loadModules(files: ModuleFiles, dir: string | undefined, release: string | undefined): void {
    const port = this.linux;
    const warn = (m: string) => this.warnings.push(m);
    let mods: LinuxModule[];
    try {
      mods = [...linuxModules(port, warn)];
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      warn(`the module list could not be read: ${e.message}`);
      return;
    }
    const missing: string[] = [];
    for (const mod of mods) {
      let kallsyms: ElfSymbol[] = [];
      try {
        kallsyms = moduleKallsyms(port, mod);
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        warn(`${e.message}; names come from its .ko only`);
      }
      const ko = files.ko(mod.name);
      const fromKo = ko ? this.koSymbols(ko, mod, kallsyms, release) : undefined;
      const placed = fromKo?.symbols;
      if (!ko && dir !== undefined) missing.push(files.compressedKo(mod.name) ? `${mod.name} (${files.compressedKo(mod.name)} is compressed: decompress it)` : mod.name);
      const syms = placed ?? kallsyms;
      const lo = mod.ranges.reduce((m, r) => (r.base < m ? r.base : m), MASK64);
      const hi = mod.ranges.reduce((m, r) => (r.base + r.size > m ? r.base + r.size : m), 0n);
      this.symbols.add({
        name: mod.name,
        path: placed ? ko! : `${this.path} (kallsyms of module ${mod.name})`,
        table: new SymbolTable(mod.name, kernelNamesFirst(syms)),
        ...(mod.ranges.length > 0 ? { start: lo, end: hi } : {}),
        ...(fromKo?.dwarf ? { elf: fromKo.dwarf, bias: 0n } : {}),
      });
      this.loadedModules.push({ ...mod, symbols: placed ? ko! : syms.length > 0 ? 'kallsyms' : 'none' });
    }
    if (missing.length > 0) {
      warn(`--modules ${dir}: no .ko for ${missing.length} of ${mods.length} modules (${missing.join(', ')}); their names come from their kallsyms`);
    }
  }

  /**
   * The symbols of `ko` placed for `mod`, and, when it has DWARF, the .ko as loaded (its debug
   * sections relocated to where the module's sections sit: file:line in module frames); undefined
   * (with a warning) when it is not that module. DWARF that cannot be relocated costs a warning and
   * the source view only.
   */
  private koSymbols(ko: string, mod: LinuxModule, kallsyms: readonly ElfSymbol[], release: string | undefined): { symbols: ElfSymbol[]; dwarf?: ElfFile } | undefined {
    const warn = (m: string) => {
      this.warnings.push(`${ko}: ${m}; the names of module ${mod.name} come from its kallsyms`);
      return undefined;
    };
    let elf: ElfFile;
    try {
      elf = ElfFile.open(ko);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      return warn(e.message);
    }
    try {
      if (elf.header.type !== ET_REL || elf.header.machine !== X86_64.elfMachine) return warn(`not an x86-64 kernel module (ELF type ${elf.header.type}, machine ${elf.header.machine})`);
      const info = koModinfo(elf);
      if (release && info.release && info.release !== release) return warn(`built for Linux ${info.release}, but the dump runs ${release}`);
      if (info.name && info.name !== mod.name) return warn(`module ${info.name}, not ${mod.name}`);
      // kallsyms names that occur once: a static function of the same name in two files would mislead
      const unique = new Map<string, bigint>();
      const twice = new Set<string>();
      for (const k of kallsyms) {
        if (unique.has(k.name)) twice.add(k.name);
        unique.set(k.name, k.value);
      }
      for (const n of twice) unique.delete(n);
      const bases = koSectionBases(elf, unique);
      const placed = placeKoSymbols(elf, mod, bases);
      const bad = disagreements(placed, unique);
      if (bad.length > 0) {
        const [n, a, b] = bad[0]!;
        const count = bad.length === 1 ? '1 symbol disagrees' : `${bad.length} symbols disagree`;
        return warn(`not the loaded module: ${n} would be at ${hexAddr(a)}, the module's kallsyms have it at ${hexAddr(b)} (${count})`);
      }
      if (placed.length === 0) return warn('none of its sections is where the kernel loaded the module');
      if (!elf.section('.debug_info')) return { symbols: placed };
      try {
        const dwarf = placedObject(elf, bases);
        this.symbolElves.push(dwarf);
        return { symbols: placed, dwarf };
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        this.warnings.push(`${e.message}: the DWARF of module ${mod.name} cannot be placed, its frames show no file:line`);
        return { symbols: placed };
      }
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      return warn(e.message);
    } finally {
      elf.close();
    }
  }

  /** The kernel's loaded modules (read now, if not yet), and where their names came from. */
  get kernelModules(): readonly (LinuxModule & { readonly symbols: string })[] {
    this.symbols.loadDeferred();
    return this.loadedModules;
  }

  private loadVmcoreinfoSymbols(): void {
    const syms: ElfSymbol[] = [];
    for (const key of this.vmcoreinfo!.entries.keys()) {
      const m = /^SYMBOL\((.+)\)$/.exec(key);
      if (!m) continue;
      const value = this.vmcoreinfo!.symbol(m[1]!)!;
      syms.push({ name: m[1]!, value, size: 0n, type: STT_OBJECT, bind: 1, shndx: 1 });
    }
    if (syms.length > 0) this.symbols.add({ name: 'vmcoreinfo', path: this.path, table: new SymbolTable('vmcoreinfo', syms) });
  }

  /**
   * Refuse a kernel symbol file that is not the dumped kernel: BUILD-ID, OSRELEASE against the
   * file's linux_banner, or (without VMCOREINFO) linux_banner's bytes in the dump.
   */
  private checkKernelMatches(elf: ElfFile, file: string, banner: Sym | undefined): void {
    const mismatch = (what: string) =>
      errors.badInput(`--symbols ${file} does not match ${this.name}: ${what}. Give the vmlinux of the kernel that was dumped`);
    const vi = this.vmcoreinfo;
    const fileId = elf.buildId();
    if (vi?.buildId && fileId && !fileId.startsWith(vi.buildId) && !vi.buildId.startsWith(fileId)) {
      throw mismatch(`the dump's BUILD-ID is ${vi.buildId}, the file's is ${fileId}`);
    }
    if (!banner) {
      this.compareReadOnlyData(elf, mismatch);
      return;
    }
    const len = Math.min(Number(banner.size) || 256, 512);
    const bytes = elf.readLoaded(banner.addr, len);
    if (!bytes) return;
    const text = bytes.toString('latin1').split('\0')[0]!;
    const release = bannerRelease(text);
    if (vi?.osrelease && release && release !== vi.osrelease) {
      throw mismatch(`the dump's OSRELEASE is ${vi.osrelease}, the file's linux_banner says ${release}`);
    }
    if (vi?.kernelOffset === undefined) this.findKernelOffset(banner.addr, text, mismatch);
  }

  /**
   * A kernel without linux_banner (not Linux): compare the first bytes of its .rodata and of each
   * read-only PT_LOAD with the dump's, where the dump maps them. Other bytes are a mismatch; a
   * file none of whose read-only data the dump maps gets a warning.
   */
  private compareReadOnlyData(elf: ElfFile, mismatch: (what: string) => DbgError): void {
    const cpu = this.threads().find((t) => this.addressMode(t.index).kind !== 'none');
    if (!cpu) return;
    const places: { addr: bigint; size: number; what: string }[] = [];
    const rodata = elf.sections().find((x) => x.name === '.rodata' && x.size > 0 && x.type !== 8 && (x.flags & 2n) !== 0n);
    if (rodata) places.push({ addr: rodata.addr, size: rodata.size, what: '.rodata' });
    for (const p of elf.loadSegments()) if (p.filesz > 0 && (p.flags & 2) === 0) places.push({ addr: p.vaddr, size: p.filesz, what: `PT_LOAD ${p.index}` });
    let compared = 0;
    for (const place of places) {
      const len = Math.min(64, place.size);
      const want = elf.readLoaded(place.addr, len);
      if (!want) continue;
      const at = place.addr + this.kernelOffset;
      let got: Buffer;
      try {
        got = this.readVirtual(at, len, cpu.index);
      } catch {
        continue;
      }
      compared++;
      if (!got.equals(want)) {
        let i = 0;
        while (got[i] === want[i]) i++;
        const byte = (b: Buffer) => `0x${b[i]!.toString(16).padStart(2, '0')}`;
        throw mismatch(`its ${place.what} at 0x${at.toString(16)} differs from the dump's (first at +0x${i.toString(16)}: ${byte(want)} in the file, ${byte(got)} in the dump)`);
      }
    }
    if (places.length > 0 && compared === 0) this.warnings.push('the dump maps none of the read-only data of the symbol file: the symbols may not match');
  }

  /**
   * Without VMCOREINFO's KERNELOFFSET (a QEMU dump of a guest without the vmcoreinfo device), find
   * the KASLR slide as crash's `--kaslr auto` does: linux_banner sits at its link address plus the
   * slide, a multiple of 2 MiB below 1 GiB. Tried through the page tables of the first CPU with
   * paging; 512 translations at most. A banner readable at slide 0 with other text is a mismatch.
   */
  private findKernelOffset(linkAddr: bigint, text: string, mismatch: (what: string) => DbgError): void {
    if (linkAddr < START_KERNEL_MAP || text.length === 0) return;
    const cpu = this.threads().find((t) => this.addressMode(t.index).kind === 'paging');
    if (!cpu) return;
    const read = (a: bigint, n: number) => {
      try {
        return this.readVirtual(a, n, cpu.index);
      } catch {
        return undefined;
      }
    };
    const r = findKaslrSlide(read, linkAddr, text);
    if (r.kind === 'found') {
      if (r.offset !== 0n) {
        this.detectedOffset = r.offset;
        this.warnings.push(`no KERNELOFFSET in the dump: found linux_banner at KASLR offset 0x${r.offset.toString(16)}, and applied it to the symbols`);
      }
    } else if (r.kind === 'other-banner') {
      const at = r.offset === 0n ? '' : ` (at KASLR offset 0x${r.offset.toString(16)})`;
      throw mismatch(`linux_banner in the dump${at} reads "${r.text}", the file has "${text.split('\n')[0]}"`);
    } else {
      this.warnings.push(`linux_banner of the symbol file is nowhere in the dump (tried every KASLR offset): the symbols may not match`);
    }
  }

  // --- address translation ----------------------------------------------------------------------

  private cpu(thread: number): Cpu {
    const c = this.cpus[thread - 1];
    if (!Number.isInteger(thread) || !c) {
      const have = this.cpus.length === 0 ? 'it has no CPU notes' : `threads are 1..${this.cpus.length}`;
      throw errors.badInput(`no thread ${thread} in ${this.name}: ${have}`);
    }
    return c;
  }

  /** The kernel page-table root (swapper_pg_dir's physical address), when it can be found. */
  kernelRoot(): { root?: PhysAddr; from: string } {
    if (this.kernelRootCache) return this.kernelRootCache;
    const vi = this.vmcoreinfo;
    let virt: bigint | undefined;
    let name = '';
    for (const s of ['swapper_pg_dir', 'init_top_pgt', 'init_level4_pgt']) {
      virt = vi?.symbol(s);
      if (virt !== undefined) {
        name = `VMCOREINFO SYMBOL(${s})`;
        break;
      }
    }
    if (virt === undefined) {
      for (const s of ['swapper_pg_dir', 'init_top_pgt', 'init_level4_pgt']) {
        const sym = this.symbols.findLoaded(s);
        if (sym) {
          virt = sym.addr;
          name = `symbol ${s}${this.kernelOffset ? ' + KERNELOFFSET' : ''}`;
          break;
        }
      }
    }
    if (virt === undefined) {
      return (this.kernelRootCache = { from: 'no CPU note has CR3, and neither VMCOREINFO nor the symbols give swapper_pg_dir' });
    }
    // The dump's own PT_LOADs may say where that virtual address lives (kdump maps the kernel text).
    for (const p of this.elf.loadSegments()) {
      if (p.vaddr !== p.paddr && virt >= p.vaddr && virt < p.vaddr + BigInt(p.filesz)) {
        const root = p.paddr + (virt - p.vaddr);
        return (this.kernelRootCache = { root, from: `${name} = 0x${virt.toString(16)} via PT_LOAD ${p.index} -> phys 0x${root.toString(16)}` });
      }
    }
    if (virt >= START_KERNEL_MAP) {
      const physBase = vi?.physBase;
      if (physBase === undefined) this.warnings.push('VMCOREINFO has no NUMBER(phys_base); assuming 0');
      const root = (virt - START_KERNEL_MAP + (physBase ?? 0n)) & MASK64;
      return (this.kernelRootCache = {
        root,
        from: `${name} = 0x${virt.toString(16)} - __START_KERNEL_map + phys_base ${hex(BigInt.asIntN(64, physBase ?? 0n))} = phys 0x${root.toString(16)}`,
      });
    }
    return (this.kernelRootCache = { from: `${name} = 0x${virt.toString(16)} is outside the kernel image map; cannot find its physical address` });
  }

  /** How `thread`'s CPU translates addresses (cached). */
  addressMode(thread: number): AddressMode {
    const hit = this.modes.get(thread);
    if (hit) return hit;
    if (this.taskThreads.has(thread)) return this.addressMode(this.kernelThread());
    const m = this.computeMode(this.cpu(thread));
    this.modes.set(thread, m);
    return m;
  }

  private computeMode(c: Cpu): AddressMode {
    const q = c.qemu;
    if (q) {
      const [cr0, , , cr3, cr4] = q.cr as [bigint, bigint, bigint, bigint, bigint];
      if ((cr0 & (1n << 31n)) === 0n) return { kind: 'identity', why: `CPU ${c.index} has paging off (CR0 0x${cr0.toString(16)}): virtual = physical` };
      // EFER is in neither note. An x86-64 CPU with PG and PAE is taken to be in long mode (a
      // 32-bit process in compatibility mode has CS.L clear but still 4-level tables); 32-bit
      // PAE kernels are not dbg's business.
      if ((cr4 & 0x20n) === 0n) {
        return { kind: 'none', why: `CPU ${c.index} uses 32-bit (non-PAE) paging (CR4 0x${cr4.toString(16)}), which dbg does not walk` };
      }
      const levels = (cr4 & 0x1000n) !== 0n ? 5 : 4;
      return { kind: 'paging', root: cr3Root(cr3), levels, from: `CPU ${c.index} CR3 0x${cr3.toString(16)}` };
    }
    const k = this.kernelRoot();
    if (k.root !== undefined) {
      const l5 = this.vmcoreinfo?.number('pgtable_l5_enabled') === 1n;
      return { kind: 'paging', root: k.root, levels: l5 ? 5 : 4, from: k.from };
    }
    if (this.elf.loadSegments().some((p) => p.vaddr !== p.paddr)) {
      return { kind: 'segments', why: `${k.from}; virtual addresses come from the PT_LOADs' p_vaddr` };
    }
    return { kind: 'none', why: k.from };
  }

  translate(addr: VirtAddr, thread = 1): Translation {
    const mode = this.modes.get(thread) ?? this.addressMode(thread);
    if (mode.kind === 'paging') return this.walkFor(mode, addr);
    addr &= MASK64;
    switch (mode.kind) {
      case 'identity':
        return { virt: addr, phys: addr, steps: [], writable: true, executable: true, fault: undefined };
      case 'segments': {
        const hit = this.segmentFor(addr);
        if (hit) return { virt: addr, phys: hit.phys, steps: [] };
        return { virt: addr, steps: [], fault: `no page tables (${mode.why}), and no PT_LOAD maps 0x${addr.toString(16)}` };
      }
      case 'none':
        return { virt: addr, steps: [], fault: `cannot translate: ${mode.why}` };
    }
  }

  /** PT_LOAD whose p_vaddr range (within p_filesz) holds `addr`: QEMU 7.2's 0xffff0000... quirk undone. */
  private segmentFor(addr: bigint): { phys: PhysAddr; end: bigint } | undefined {
    for (const p of this.elf.loadSegments()) {
      let v = p.vaddr;
      if (v >> 47n !== 0n && v >> 47n !== 0x1ffffn) v &= (1n << 48n) - 1n; // non-canonical: QEMU 7.2 OR'd 0xffff<<48 into it
      if (addr >= v && addr < v + BigInt(p.filesz)) return { phys: p.paddr + (addr - v), end: v + BigInt(p.filesz) };
    }
    return undefined;
  }

  // --- memory -----------------------------------------------------------------------------------

  readPhysical(addr: PhysAddr, length: number): Buffer {
    this.checkOpen();
    if (!Number.isInteger(length) || length < 0) throw errors.badInput(`read length ${length} is not a byte count`);
    return this.phys.read(addr, length);
  }

  readVirtual(addr: VirtAddr, length: number, thread = 1): Buffer {
    this.checkOpen();
    if (!Number.isInteger(length) || length < 0) throw errors.badInput(`read length ${length} is not a byte count`);
    addr &= MASK64;
    const mode = this.addressMode(thread);
    if (mode.kind === 'identity') return this.physRead(addr, length, addr, thread);
    if (mode.kind === 'none') {
      throw new DbgError('unmapped', `read of ${length} bytes at 0x${addr.toString(16)} failed: ${this.name} cannot translate virtual addresses: ${mode.why}. Physical reads still work (::pread, addr\\fmt)`);
    }
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const va = (addr + BigInt(done)) & MASK64;
      let phys: bigint;
      let room: number;
      if (mode.kind === 'segments') {
        const s = this.segmentFor(va);
        if (!s) throw new DbgError('unmapped', `read of ${length} bytes at 0x${addr.toString(16)} failed: 0x${va.toString(16)} is in no PT_LOAD of ${this.name} (${mode.why})`);
        phys = s.phys;
        room = Number(s.end - va);
      } else {
        const w = this.walkFor(mode, va);
        if (w.phys === undefined) throw this.walkError(w, addr, length, va, thread, mode.from);
        phys = w.phys;
        room = w.pageSize! - Number(va & BigInt(w.pageSize! - 1));
      }
      const n = Math.min(room, length - done);
      this.physRead(phys, n, va, thread).copy(out, done);
      done += n;
    }
    return out;
  }

  /**
   * A walk from the CPU's root. A kernel address that a user-mode CR3 lacks (KPTI: the user PGD
   * is the kernel PGD + 4 KiB and maps almost none of the kernel) is retried from the kernel PGD
   * next to it, then from swapper_pg_dir.
   */
  private walkFor(mode: Extract<AddressMode, { kind: 'paging' }>, va: bigint): Walk {
    const w = this.paging.translate(mode.root, va, mode.levels);
    if (w.phys !== undefined || va >> 63n === 0n || w.faultKind !== 'not-present') return w;
    const retry: bigint[] = [];
    if ((mode.root & 0x1000n) !== 0n) retry.push(mode.root & ~0x1000n);
    const k = this.kernelRoot().root;
    if (k !== undefined) retry.push(k);
    for (const root of retry) {
      if (root === mode.root) continue;
      const again = this.paging.translate(root, va, mode.levels);
      if (again.phys !== undefined) return again;
    }
    return w;
  }

  private physRead(phys: bigint, length: number, va: bigint, thread: number): Buffer {
    try {
      return this.phys.read(phys, length);
    } catch (e) {
      if (e instanceof DbgError && e.code === 'unmapped') {
        const how = va === phys ? 'with paging off, that is physical' : 'it translates to physical';
        const why = e.message.startsWith('page 0x') ? `, and ${e.message}` : `, which is not in ${this.name}`; // a kdump page left out
        throw new DbgError('unmapped', `read of ${length} bytes at 0x${va.toString(16)} (thread ${thread}) failed: ${how} 0x${phys.toString(16)}${why}`);
      }
      throw e;
    }
  }

  private walkError(w: Walk, addr: bigint, length: number, va: bigint, thread: number, from: string): DbgError {
    const code = w.faultKind === 'loop' || w.faultKind === 'reserved' ? 'corrupt' : 'unmapped';
    const at = va === addr ? '' : ` (at 0x${va.toString(16)})`;
    return new DbgError(code, `read of ${length} bytes at 0x${addr.toString(16)} failed${at}: not mapped for thread ${thread} (${from}): ${w.fault}`);
  }

  mappings(): readonly Mapping[] {
    if (this.mappingCache) return this.mappingCache;
    const mode = this.addressMode(1);
    const out: Mapping[] = [];
    if (mode.kind === 'paging') {
      this.enumerate(mode.root, mode.levels, out);
    } else if (mode.kind === 'segments') {
      for (const p of this.elf.loadSegments()) {
        if (p.filesz === 0) continue;
        let v = p.vaddr;
        if (v >> 47n !== 0n && v >> 47n !== 0x1ffffn) v &= (1n << 48n) - 1n;
        out.push({ start: v, end: v + BigInt(p.filesz), perms: 'rwx', name: `PT_LOAD ${p.index}`, fileOffset: BigInt(p.offset) });
      }
      out.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    } else if (mode.kind === 'identity') {
      for (const r of this.phys.regions()) out.push({ start: r.start, end: r.end, perms: 'rwx', name: 'physical' });
    }
    return (this.mappingCache = out);
  }

  /** Every present leaf of the tables at `root`, merged where virtual, physical and rights run on. */
  private enumerate(root: PhysAddr, levels: 4 | 5, out: Mapping[]): void {
    const shifts = levels === 5 ? [48n, 39n, 30n, 21n, 12n] : [39n, 30n, 21n, 12n];
    let budget = 4_000_000; // entries read, so that a hostile dump cannot make this run for ever
    let last: { start: bigint; end: bigint; phys: bigint; perms: string; name: string } | undefined;
    const flush = () => {
      if (last) out.push({ start: last.start, end: last.end, perms: last.perms, name: last.name });
      last = undefined;
    };
    const visit = (table: bigint, depth: number, base: bigint, w: boolean, x: boolean, seen: bigint[]) => {
      if (seen.includes(table)) return;
      let entries: Buffer;
      try {
        entries = this.phys.read(table, 4096);
      } catch {
        return;
      }
      const shift = shifts[depth]!;
      for (let i = 0; i < 512 && budget > 0; i++, budget--) {
        const e = entries.readBigUInt64LE(i * 8);
        if ((e & 1n) === 0n) continue;
        let va = base | (BigInt(i) << shift);
        if (depth === 0 && va >> 47n !== 0n) va |= ~((1n << 48n) - 1n) & MASK64; // sign-extend
        if (levels === 5 && depth === 0 && va >> 56n !== 0n) va |= ~((1n << 57n) - 1n) & MASK64;
        const ww = w && (e & 2n) !== 0n;
        const xx = x && e >> 63n === 0n;
        const leaf = depth === shifts.length - 1 || (depth >= shifts.length - 3 && (e & 0x80n) !== 0n);
        if (!leaf) {
          visit(e & 0x000ffffffffff000n, depth + 1, va, ww, xx, [...seen, table]);
          continue;
        }
        const size = 1n << shift;
        const phys = e & 0x000ffffffffff000n & ~(size - 1n);
        const perms = `r${ww ? 'w' : '-'}${xx ? 'x' : '-'}`;
        const name = size === 4096n ? '4K pages' : size === 2n << 20n ? '2M pages' : '1G pages';
        if (last && last.end === va && last.phys + (last.end - last.start) === phys && last.perms === perms && last.name === name) {
          last.end = va + size;
        } else {
          flush();
          last = { start: va, end: va + size, phys, perms, name };
        }
      }
    };
    visit(root, 0, 0n, true, true, []);
    flush();
    if (budget <= 0) this.warnings.push('page tables too large to list completely; mappings() is cut short');
  }

  // --- threads and registers --------------------------------------------------------------------

  threads(): readonly ThreadInfo[] {
    const cpus: ThreadInfo[] = this.cpus.map((c) => ({
      index: c.index + 1,
      tid: c.index,
      name: this.flavour === 'kdump' && c.pid > 0 ? `CPU ${c.index} (pid ${c.pid})` : `CPU ${c.index}`,
      state: 'stopped',
    }));
    for (const [index, t] of this.taskThreads) if (t.listed) cpus.push({ index, tid: t.tid, name: t.name, state: 'sleeping' });
    return cpus;
  }

  /** The first CPU that translates through page tables: how the kernel's own memory is read. */
  private kernelThread(): number {
    return (this.cpus.find((c) => this.addressMode(c.index + 1).kind === 'paging')?.index ?? 0) + 1;
  }

  /**
   * The thread that shows a Linux task: the CPU it runs on, else a thread of its own whose
   * registers are the context it was switched out with (listed in threads() when `listed`).
   */
  taskThread(task: bigint, listed: boolean): number {
    for (const [index, t] of this.taskThreads) {
      if (t.task !== task) continue;
      if (listed) t.listed = true;
      return index;
    }
    const tasks = linuxTasks(this.linux);
    const info = tasks.info(task);
    if (info.onCpu && info.cpu < this.cpus.length) return info.cpu + 1;
    const regs = tasks.savedContext(task);
    const index = this.cpus.length + this.taskThreads.size + 1;
    this.taskThreads.set(index, { task, regs, name: `pid ${info.pid} ${info.comm}`, tid: info.pid, listed });
    return index;
  }

  registers(thread: number): Registers {
    const task = this.taskThreads.get(thread);
    if (task) return new Map(task.regs);
    const c = this.cpu(thread);
    const r: Registers = new Map();
    const q = c.qemu;
    if (c.prstatus) for (const [k, v] of c.prstatus) if (k !== 'orig_rax' || this.flavour === 'kdump') r.set(k, v);
    if (q) {
      if (!c.prstatus) for (const [k, v] of q.regs) r.set(k, v);
      const seg = q.segments;
      for (const s of ['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const) if (!r.has(s)) r.set(s, BigInt(seg[s].selector));
      r.set('fs_base', seg.fs.base);
      r.set('gs_base', seg.gs.base);
      if (q.kernelGsBase !== undefined) r.set('k_gs_base', q.kernelGsBase);
      r.set('cr0', q.cr[0]!);
      r.set('cr2', q.cr[2]!);
      r.set('cr3', q.cr[3]!);
      r.set('cr4', q.cr[4]!);
      r.set('gdtr_base', seg.gdt.base);
      r.set('gdtr_limit', BigInt(seg.gdt.limit));
      r.set('idtr_base', seg.idt.base);
      r.set('idtr_limit', BigInt(seg.idt.limit));
    }
    return r;
  }

  /** The descriptor caches QEMU's note holds (a dump of another kind has none; a task's saved context neither). */
  descriptors(thread: number): CpuDescriptors | undefined {
    if (this.taskThreads.has(thread)) return undefined;
    const q = this.cpu(thread).qemu;
    return q ? { segments: q.segments } : undefined;
  }

  status(): StopStatus {
    const p = this.panic();
    if (p) {
      // the message (the kernel log's, often) is read only if someone looks at it
      const reason = {
        kind: 'panic' as const,
        get message() {
          return p.message;
        },
      };
      return { reason, thread: p.thread, pc: this.registers(p.thread).get('rip') ?? 0n };
    }
    const pc = this.cpus.length > 0 ? (this.registers(1).get('rip') ?? 0n) : 0n;
    return { reason: { kind: 'none' }, thread: 1, pc };
  }

  /** How status() found the panicking CPU: 'panic_cpu', 'frames of CPU N', 'the kernel log'. */
  panicSource(): string | undefined {
    return this.panic()?.how;
  }

  /**
   * The panicking CPU and why: Linux's panic_cpu, else a CPU with a panic function among its first
   * frames (the kdump crash notes' CPU stopped in __crash_kexec), else the CPU the kernel log's
   * panic record names. The message is panic_msg's, else the log's, else where the CPU stopped.
   */
  private panic(): { readonly message: string; thread: number; how: string } | undefined {
    if (this.panicCache !== undefined) return this.panicCache || undefined;
    this.panicCache = false;
    if (this.cpus.length === 0) return undefined;
    // The log is read only when asked for: most kernels keep panic_cpu, and a session that never
    // shows the message (::ps, ::stacks) does not pay for it.
    let fromLog: ReturnType<typeof panicFromLog> | null | undefined;
    const log = () => (fromLog === undefined ? (fromLog = panicFromLog(this.linuxLog()) ?? null) : fromLog) ?? undefined;
    let thread: number | undefined;
    let how = '';
    let where: string | undefined;
    const cpu = panicCpu(this.linux);
    if (cpu !== undefined) {
      thread = cpu + 1;
      how = 'panic_cpu';
    } else {
      const hit = this.cpuInPanic();
      const logged = hit ? undefined : log();
      if (hit) {
        thread = hit.thread;
        where = hit.fn;
        how = `frame ${hit.level} of CPU ${hit.thread - 1}`;
      } else if (logged) {
        thread = logged.cpu !== undefined && logged.cpu < this.cpus.length ? logged.cpu + 1 : 1;
        how = 'the kernel log';
      }
    }
    if (thread === undefined) return undefined;
    const on = thread - 1;
    let message: string | undefined;
    const text = () => (message ??= this.panicMessage() ?? log()?.message ?? (where ? `CPU ${on} is in ${where}()` : `CPU ${on} panicked (${how})`));
    return (this.panicCache = {
      thread,
      how,
      get message() {
        return text();
      },
    });
  }

  /** A CPU with a panic function at its pc, else among its first 16 frames. */
  private cpuInPanic(): { thread: number; level: number; fn: string } | undefined {
    const named = (pc: bigint) => {
      const r = this.symbols.resolve(pc);
      return r?.inside && PANIC_FUNCTIONS.test(r.sym.name) ? r.sym.name : undefined;
    };
    for (const c of this.cpus) {
      const fn = named(this.registers(c.index + 1).get('rip') ?? 0n);
      if (fn) return { thread: c.index + 1, level: 0, fn };
    }
    for (const c of this.cpus) {
      let frames;
      try {
        frames = unwind(this, c.index + 1, { maxFrames: 16 });
      } catch (e) {
        if (e instanceof DbgError) continue;
        throw e;
      }
      for (const f of frames.slice(1)) {
        const fn = named(f.pc - 1n);
        if (fn) return { thread: c.index + 1, level: f.level, fn };
      }
    }
    return undefined;
  }

  /** The kernel log, when it can be read (cached; [] when not). */
  private linuxLog(): PrintkRecord[] {
    if (this.logCache) return this.logCache;
    try {
      this.logCache = this.vmcoreinfo?.symbol('prb') !== undefined || this.kernelElf ? readPrintkLog(this.linux, () => {}) : [];
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      this.logCache = [];
    }
    return this.logCache;
  }

  /** A Linux kernel's frames by its ORC tables (from vmlinux, else from the image in the dump). */
  unwindStep(thread: number, regs: ReadonlyMap<string, bigint>, signal: boolean): ReturnType<OrcTable['step']> {
    const orc = this.orc();
    if (!orc) return undefined;
    const ip = regs.get('rip') ?? 0n;
    const table = orc.covers(ip) ? orc : this.moduleOrc().find((t) => t.covers(ip));
    return table?.step((a, n) => this.readVirtual(a, n, thread), regs, signal);
  }

  /** The loaded modules' ORC tables (with vmlinux's types; [] without them). */
  private moduleOrc(): OrcTable[] {
    if (this.moduleOrcCache) return this.moduleOrcCache;
    this.moduleOrcCache = [];
    if (!this.kernelElf) return this.moduleOrcCache;
    try {
      const release = this.vmcoreinfo?.osrelease ?? bannerRelease(this.linuxBanner() ?? '');
      this.moduleOrcCache = orcOfModules(this.linux, release, (m) => this.warnings.push(m));
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      this.warnings.push(`the modules' ORC tables could not be read: ${e.message}`);
    }
    return this.moduleOrcCache;
  }

  private orc(): OrcTable | undefined {
    if (this.orcCache !== undefined) return this.orcCache ?? undefined;
    this.orcCache = null;
    try {
      const release = this.vmcoreinfo?.osrelease ?? bannerRelease(this.linuxBanner() ?? '');
      const kernel = this.symbols.modules.find((m) => m.elf === this.kernelElf);
      const table = this.kernelElf ? orcFromElf(this.kernelElf, kernel?.bias ?? 0n, release) : orcFromMemory(this.linux, release);
      this.orcCache = table ?? null;
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      this.warnings.push(`the kernel's ORC tables could not be read: ${e.message}`);
    }
    return this.orcCache ?? undefined;
  }

  private linuxBanner(): string | undefined {
    const at = this.linux.symbol('linux_banner');
    if (at === undefined) return undefined;
    try {
      return this.readString(at, 256, this.kernelThread());
    } catch {
      return undefined;
    }
  }

  /** What src/os/linux reads through: the kernel's memory (its page tables), symbols and types. */
  get linux(): LinuxPort {
    if (this.linuxCache) return this.linuxCache;
    const read = (a: bigint, n: number) => this.readVirtual(a, n, this.kernelThread());
    let objects: ObjectSpace | null | undefined;
    return (this.linuxCache = {
      name: this.name,
      read,
      symbol: (name) => this.symbols.findLoaded(name)?.addr,
      linkValue: (name) => {
        const s = this.symbols.findLoaded(name);
        return s ? s.addr - (s.module.bias ?? 0n) : undefined;
      },
      vmcoreinfo: this.vmcoreinfo,
      cpus: this.cpus.length,
      objects: () => {
        if (objects === undefined) {
          objects = this.kernelElf ? new ObjectSpace(new TypeSpace(this.symbols), this.symbols, { read, littleEndian: true, symbolize: (a) => this.symbols.describe(a) }, 8) : null;
        }
        return objects ?? undefined;
      },
    });
  }

  /** The string `panic_msg` points to, when the kernel keeps one (the fixture kernel does). */
  panicMessage(): string | undefined {
    const s = this.symbols.findLoaded('panic_msg');
    if (!s) return undefined;
    try {
      const p = this.readVirtual(s.addr, 8).readBigUInt64LE(0);
      if (p === 0n) return undefined;
      return this.readString(p, 256);
    } catch {
      return undefined;
    }
  }

  /** A NUL-terminated string of at most `max` bytes, read page by page. */
  readString(addr: VirtAddr, max = 4096, thread = 1): string {
    let s = '';
    let a = addr;
    while (s.length < max) {
      const n = Math.min(max - s.length, 4096 - Number(a & 0xfffn));
      const b = this.readVirtual(a, n, thread);
      const z = b.indexOf(0);
      if (z >= 0) return s + b.toString('latin1', 0, z);
      s += b.toString('latin1');
      a += BigInt(n);
    }
    return s;
  }

  /** What `::status` shows about the dump itself. */
  describe(): string[] {
    const lines = [`${this.name}: ${this.format ?? (this.flavour === 'qemu' ? 'QEMU dump-guest-memory' : 'kdump ELF vmcore')}, ${this.cpus.length} CPU(s)`];
    const segs = this.elf.programHeaders().filter((p) => p.type === PT_LOAD);
    const ram = this.phys.regions().reduce((n, r) => n + (r.end - r.start), 0n);
    lines.push(`physical memory: ${segs.length} PT_LOADs, 0x${ram.toString(16)} bytes`);
    const vi = this.vmcoreinfo;
    if (vi) {
      lines.push(`VMCOREINFO: OSRELEASE=${vi.osrelease ?? '?'} PAGESIZE=${vi.pageSize ?? '?'} KERNELOFFSET=0x${this.kernelOffset.toString(16)}`);
    }
    for (const t of this.threads()) {
      const m = this.addressMode(t.index);
      lines.push(`${t.name}: ${m.kind === 'paging' ? `${m.levels}-level paging from ${m.from}` : m.why}`);
    }
    for (const w of this.warnings) lines.push(`warning: ${w}`);
    return lines;
  }

  private checkOpen(): void {
    if (this.closed) throw errors.state(`${this.name} is closed`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.elf.close();
    for (const e of this.symbolElves) e.close();
  }
}

/** A SymbolTable built the first time it is asked anything. */
class LazySymbolTable extends SymbolTable {
  private real?: SymbolTable;
  constructor(
    name: string,
    private readonly build: () => ElfSymbol[],
  ) {
    super(name, []);
  }
  private table(): SymbolTable {
    return (this.real ??= new SymbolTable(this.moduleName, this.build()));
  }
  override get size(): number {
    return this.table().size;
  }
  override lookup(name: string): Sym | undefined {
    return this.table().lookup(name);
  }
  override resolve(addr: bigint): SymbolMatch | undefined {
    return this.table().resolve(addr);
  }
  override all(): readonly Sym[] {
    return this.table().all();
  }
}
