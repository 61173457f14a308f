/**
 * A Linux process core as a read-only target: cores written by gdb's `gcore` and by the kernel
 * (which have no section headers; nothing here needs them).
 *
 *   notes      NT_PRSTATUS per thread (registers), NT_PRPSINFO (command, pid, state), NT_AUXV,
 *              NT_FILE (which file each mapping came from), NT_SIGINFO (why it died)
 *   PT_LOAD    memory: file bytes up to p_filesz; beyond that, the mapped file's bytes when the
 *              mapping is file-backed (code pages a core leaves out), else zeros
 *   modules    the executable (`exe`, else its NT_FILE path) and every loaded library, found as gdb
 *              finds it: the dynamic linker's name for it (r_debug -> link_map l_name), then its
 *              NT_FILE path, each under `sysroot` (gdb's `set sysroot`), then its base name in each
 *              `solibSearchPath` directory; the vDSO from the core's own memory
 *
 * Nothing is read until asked for: opening costs the ELF header, the program headers, the notes,
 * and the headers of each mapped ELF. Symbol tables are built when first looked at, CFI when the
 * unwinder first needs it, memory page by page.
 *
 * A file the core names but that cannot be read (a missing library, the wrong --exe) is not
 * fatal: it becomes a one-line entry of `warnings` and the rest keeps working.
 */

import type { Registers } from '../../arch/arch.js';
import { X86_64 } from '../../arch/x86-64.js';
import { BufferByteSource, FileByteSource, type ByteSource } from '../../common/byte-source.js';
import { DbgError, errors } from '../../common/errors.js';
import { hex, hexAddr } from '../../common/format.js';
import { ElfFile, ET_CORE, ET_DYN, type ProgramHeader } from '../../symbols/elf-file.js';
import { SymbolSpace } from '../../symbols/symbol-space.js';
import { checkDirectory, libraryCandidates, readLinkMap, type LinkMap, type LinkMapEntry } from './process-core-solibs.js';
import { lazyElfModule } from '../unwind.js';
import type { Capabilities, Mapping, ProcessImage, StopStatus, Target, ThreadInfo } from '../target.js';
import {
  AT_ENTRY,
  AT_SYSINFO_EHDR,
  NT_AUXV,
  NT_FILE,
  NT_FPREGSET,
  NT_X86_XSTATE,
  parseFxsave,
  parseXstate,
  NT_PRPSINFO,
  NT_PRSTATUS,
  NT_SIGINFO,
  parseAuxv,
  parseFileNote,
  parsePrpsinfo,
  parsePrstatus,
  parseSiginfo,
  signalName,
  type FileMapping,
  type Prpsinfo,
  type Prstatus,
  type Siginfo,
} from './core-notes.js';

export interface ProcessCoreOptions {
  /** The executable, when NT_FILE's path is wrong or absent (gdb's second argument). */
  readonly exe?: string;
  /** Prefix for every path the core names, like gdb's `set sysroot`. */
  readonly sysroot?: string;
  /** Directories where a library is looked for by its base name, like gdb's `set solib-search-path`. */
  readonly solibSearchPath?: readonly string[];
}

/** One thread: its NT_PRSTATUS, numbered in note order from 1 as gdb numbers them. */
interface CoreThread {
  readonly info: ThreadInfo;
  readonly prstatus: Prstatus;
  /** x87/SSE (NT_FPREGSET) and AVX (NT_X86_XSTATE, which supersedes it) from the notes after NT_PRSTATUS. */
  fp?: Registers;
  xstate?: boolean;
}

/**
 * A range of the process's memory: a PT_LOAD of the core (`phdr`), or a file-backed mapping that
 * NT_FILE lists but no PT_LOAD covers (gcore leaves unmodified code out entirely), whose bytes
 * only the mapped file has.
 */
interface Segment {
  readonly phdr?: ProgramHeader;
  readonly start: bigint;
  readonly end: bigint;
  readonly perms: string;
  /** The NT_FILE entry that covers the segment's start. */
  readonly file?: FileMapping;
}

const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
const PAGE = 0x1000n;

export class ProcessCoreTarget implements Target {
  readonly kind = 'process-core';
  readonly arch = X86_64;
  readonly caps: Capabilities = {};
  readonly symbols = new SymbolSpace();
  /** One line per thing that could not be loaded; the target works without it. */
  readonly warnings: string[] = [];
  readonly name: string;

  /** NT_PRPSINFO, when the core has one. */
  readonly process?: Prpsinfo;
  /** NT_AUXV as type -> value. */
  readonly auxv: ReadonlyMap<bigint, bigint>;
  /** NT_FILE entries in note order. */
  readonly fileMappings: readonly FileMapping[];
  /** NT_SIGINFO of the first thread, when present. */
  readonly siginfo?: Siginfo;
  /** The dynamic linker's list of loaded objects (r_debug -> link_map), as far as it could be read. */
  readonly linkMap: LinkMap;

  private readonly threadList: CoreThread[] = [];
  private readonly segments: Segment[];
  private mappingList?: Mapping[];
  /** Mapped files opened for their bytes, by NT_FILE path; null when it could not be opened. */
  private readonly mappedFiles = new Map<string, ByteSource | null>();
  /** Every file this target opened (modules' ELFs), closed by close(). */
  private readonly opened: ElfFile[] = [];
  /** NT_FILE path of a module -> the file it was found as (--exe, the sysroot, the search path). */
  private readonly found = new Map<string, string>();

  private constructor(
    readonly path: string,
    private readonly core: ElfFile,
    readonly options: ProcessCoreOptions,
  ) {
    this.name = `core "${path}"`;
    checkDirectory('--sysroot', options.sysroot);
    for (const dir of options.solibSearchPath ?? []) checkDirectory('--solib-search-path', dir);
    const h = core.header;
    if (h.type !== ET_CORE) throw errors.badInput(`${path}: not a core file (ELF type ${h.type}, expected ET_CORE = 4)`);
    if (h.machine !== this.arch.elfMachine || h.class !== 64) {
      throw errors.unsupported(this.name, `a core of ELF machine ${h.machine} (class ${h.class})`);
    }
    this.checkSectionHeaders();

    let siginfo: Siginfo | undefined;
    let prpsinfo: Prpsinfo | undefined;
    let auxv = new Map<bigint, bigint>();
    let auxvBytes: Buffer | undefined;
    let files: FileMapping[] = [];
    const notes = core.notes();
    notes.forEach((n, i) => {
      const where = `${path}: note ${i} (type 0x${n.type.toString(16)}) at offset 0x${n.offset.toString(16)}`;
      // A thread's FP notes follow its NT_PRSTATUS (fs/binfmt_elf.c fill_thread_core_info).
      const last = this.threadList.at(-1);
      if (n.name === 'LINUX' && n.type === NT_X86_XSTATE && last) {
        last.fp = parseXstate(n.desc, where);
        last.xstate = true;
      }
      if (n.name === 'CORE' && n.type === NT_FPREGSET && last && !last.xstate) last.fp = parseFxsave(n.desc, where);
      if (n.name !== 'CORE') return;
      switch (n.type) {
        case NT_PRSTATUS: {
          const st = parsePrstatus(n.desc, this.arch, where);
          const index = this.threadList.length + 1;
          this.threadList.push({
            prstatus: st,
            info: { index, tid: st.pid, name: `LWP ${st.pid}`, state: st.cursig ? signalName(st.cursig) : 'stopped' },
          });
          break;
        }
        case NT_PRPSINFO:
          prpsinfo ??= parsePrpsinfo(n.desc, this.arch, where);
          break;
        case NT_AUXV:
          auxv = parseAuxv(n.desc, this.arch);
          auxvBytes ??= Buffer.from(n.desc);
          break;
        case NT_FILE:
          files = parseFileNote(n.desc, this.arch, where);
          break;
        case NT_SIGINFO:
          siginfo ??= parseSiginfo(n.desc, this.arch, where);
          break;
      }
    });
    if (this.threadList.length === 0) throw errors.corrupt(path, 'the core has no NT_PRSTATUS note, so no thread and no registers');
    if (prpsinfo) this.process = prpsinfo;
    if (siginfo) this.siginfo = siginfo;
    this.auxv = auxv;
    if (auxvBytes) {
      const bytes = auxvBytes;
      (this.caps as { process?: ProcessImage }).process = { auxv: () => bytes };
    }
    this.fileMappings = files;

    this.segments = this.buildSegments();
    this.checkTruncation();
    this.linkMap = readLinkMap((a, n) => this.readCore(a, n), this.auxv);
    if (this.linkMap.problem) this.warnings.push(this.linkMap.problem);
    this.loadModules();
  }

  /** Opens the core at `path`. Throws DbgError for a file that is not a readable x86-64 core. */
  static open(path: string, opts: ProcessCoreOptions = {}): ProcessCoreTarget {
    const core = ElfFile.open(path);
    try {
      return new ProcessCoreTarget(path, core, opts);
    } catch (e) {
      core.close();
      throw e;
    }
  }

  // --- threads, registers, status ---------------------------------------------------------------

  threads(): readonly ThreadInfo[] {
    return this.threadList.map((t) => t.info);
  }

  registers(thread: number): Registers {
    const t = this.thread(thread);
    return new Map([...t.prstatus.registers, ...(t.fp ?? [])]);
  }

  status(): StopStatus {
    const t = this.threadList[0]!;
    // As gdb: the signal is pr_cursig. gcore writes 0 there (and SIGSTOP in NT_SIGINFO, the
    // stop it caused itself), so a gcore core reports no signal.
    const signal = t.prstatus.cursig;
    const pc = t.prstatus.registers.get(this.arch.pc) ?? 0n;
    if (!signal) return { reason: { kind: 'none' }, thread: 1, pc };
    return { reason: { kind: 'signal', signal, name: signalName(signal) }, thread: 1, pc };
  }

  private thread(index: number): CoreThread {
    const t = this.threadList[index - 1];
    if (!t || !Number.isInteger(index)) {
      throw errors.badInput(`no thread ${index} in ${this.name}: threads are numbered 1 to ${this.threadList.length}`);
    }
    return t;
  }

  // --- memory ---------------------------------------------------------------------------------

  mappings(): readonly Mapping[] {
    this.mappingList ??= this.segments.map((s) => ({
      start: s.start,
      end: s.end,
      perms: s.phdr ? s.perms : this.filePerms(s),
      name: s.file?.path ?? this.specialName(s.start),
      ...(s.file ? { fileOffset: s.file.fileOffset + (s.start - s.file.start) } : {}),
      present: (s.phdr !== undefined && s.phdr.filesz > 0) || (s.file !== undefined && this.mappedFile(s.file.path) !== undefined),
    }));
    return this.mappingList;
  }

  /** Names the kernel gives anonymous mappings it made itself, as /proc/PID/maps shows them. */
  private specialName(start: bigint): string {
    if (start === this.auxv.get(AT_SYSINFO_EHDR)) return '[vdso]';
    if (start === 0xffffffffff600000n) return '[vsyscall]';
    return '';
  }

  /** Permissions of a range only NT_FILE knows: from the module ELF's PT_LOAD that maps it. */
  private filePerms(s: Segment): string {
    for (const m of this.symbols.modules) {
      if (!m.elf || m.start === undefined || m.end === undefined || s.start < m.start || s.start >= m.end) continue;
      const link = s.start - (m.bias ?? 0n);
      const p = m.elf.loadSegments().find((l) => link >= (l.vaddr & ~(PAGE - 1n)) && link < l.vaddr + l.memsz);
      if (p) return permsOf(p.flags);
    }
    return s.perms;
  }

  readVirtual(addr: bigint, length: number): Buffer {
    if (!Number.isSafeInteger(length) || length < 0) throw errors.badInput(`read length ${length} is not a byte count`);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const at = addr + BigInt(done);
      const seg = this.segmentAt(at);
      if (!seg || !this.readable(seg)) throw this.unmapped(addr, length, at, seg);
      const n = Math.min(length - done, Number(seg.end - at));
      this.fill(seg, at, n, out, done, addr, length);
      done += n;
    }
    return out;
  }

  /** Copies `n` bytes at `at` (all inside `seg`) into out[pos...]. */
  private fill(seg: Segment, at: bigint, n: number, out: Buffer, pos: number, addr: bigint, length: number): void {
    const rel = Number(at - seg.start);
    const p = seg.phdr;
    const inCore = p ? Math.max(0, Math.min(n, p.filesz - rel)) : 0;
    if (p && inCore > 0) {
      const fileAt = p.offset + rel;
      if (fileAt + inCore > this.core.source.size) {
        throw new DbgError(
          'corrupt',
          `read of ${length} bytes at ${hexAddr(addr)} failed: ${this.name} is truncated: PT_LOAD ${p.index} (${hexAddr(seg.start)}-${hexAddr(seg.end)}) needs file bytes up to ${hex(p.offset + p.filesz)}, but the file ends at ${hex(this.core.source.size)}`,
        );
      }
      this.core.source.read(fileAt, inCore).copy(out, pos);
    }
    if (inCore === n) return;
    // Past p_filesz: pages the core left out. File-backed ones come from the file; the rest are zeros.
    const from = at + BigInt(inCore);
    const want = n - inCore;
    if (!seg.file) return;
    const bytes = this.fileBytes(from, want);
    if (!bytes) {
      throw new DbgError(
        'unmapped',
        `read of ${length} bytes at ${hexAddr(addr)} failed: ${this.name} leaves out the file-backed page at ${hexAddr(from)} and "${this.localPath(seg.file.path)}" cannot be read${this.options.sysroot ? '' : ' (try --sysroot DIR or --exe FILE)'}`,
      );
    }
    bytes.copy(out, pos + inCore);
  }

  /** Bytes of the file mapped at `at`, from NT_FILE or a module's PT_LOADs; undefined when none. */
  private fileBytes(at: bigint, length: number): Buffer | undefined {
    const f = findCovering(this.fileMappings, at);
    if (f) {
      const src = this.mappedFile(f.path);
      if (src) return src.readUpTo(Number(f.fileOffset + (at - f.start)), Math.min(length, Number(f.end - at)));
      return undefined;
    }
    for (const m of this.symbols.modules) {
      if (!m.elf || m.start === undefined || m.end === undefined || at < m.start || at >= m.end) continue;
      return m.elf.readLoaded(at - (m.bias ?? 0n), length);
    }
    return undefined;
  }

  /** A segment the core records but gives no bytes for and marks inaccessible (a guard page). */
  private readable(seg: Segment): boolean {
    return !seg.phdr || seg.phdr.filesz > 0 || seg.phdr.flags !== 0;
  }

  private segmentAt(addr: bigint): Segment | undefined {
    const a = this.segments;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = a[mid]!;
      if (addr < s.start) hi = mid - 1;
      else if (addr >= s.end) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  private unmapped(addr: bigint, length: number, at: bigint, guard?: Segment): DbgError {
    const what = at === addr ? '' : `${hexAddr(at)} is `;
    if (guard) {
      return new DbgError(
        'unmapped',
        `read of ${length} bytes at ${hexAddr(addr)} failed: ${what}in an inaccessible mapping (${hex(guard.start)}-${hex(guard.end - 1n)}, no permissions, no bytes) of ${this.name}`,
      );
    }
    let nearest: Segment | undefined;
    let best = -1n;
    for (const s of this.segments) {
      const d = at < s.start ? s.start - at : at - (s.end - 1n);
      if (best < 0n || d < best) {
        best = d;
        nearest = s;
      }
    }
    const near = nearest ? ` (nearest ${hex(nearest.start)}-${hex(nearest.end - 1n)})` : ' (the core has no memory)';
    return new DbgError('unmapped', `read of ${length} bytes at ${hexAddr(addr)} failed: ${what}not mapped in ${this.name}${near}`);
  }

  private buildSegments(): Segment[] {
    const out: Segment[] = [];
    for (const p of this.core.loadSegments()) {
      if (p.memsz === 0n) continue;
      const file = findCovering(this.fileMappings, p.vaddr);
      out.push({ phdr: p, start: p.vaddr, end: p.vaddr + p.memsz, perms: permsOf(p.flags), ...(file ? { file } : {}) });
    }
    out.sort(byStart);
    for (let i = 1; i < out.length; i++) {
      if (out[i]!.start < out[i - 1]!.end) {
        throw errors.corrupt(this.path, `PT_LOAD ${out[i]!.phdr!.index} (${hexAddr(out[i]!.start)}) overlaps PT_LOAD ${out[i - 1]!.phdr!.index} (${hexAddr(out[i - 1]!.start)}-${hexAddr(out[i - 1]!.end)})`);
      }
    }
    // File-backed ranges no PT_LOAD covers: the parts of each NT_FILE entry between the loads.
    const extra: Segment[] = [];
    for (const f of this.fileMappings) {
      let at = f.start;
      for (const s of out) {
        if (s.end <= at) continue;
        if (s.start >= f.end) break;
        if (s.start > at) extra.push({ start: at, end: s.start, perms: 'r--', file: f });
        at = s.end;
        if (at >= f.end) break;
      }
      if (at < f.end) extra.push({ start: at, end: f.end, perms: 'r--', file: f });
    }
    return [...out, ...extra].sort(byStart);
  }

  private checkTruncation(): void {
    let need = 0;
    for (const s of this.segments) if (s.phdr) need = Math.max(need, s.phdr.offset + s.phdr.filesz);
    if (need > this.core.source.size) {
      this.warnings.push(
        `${this.name} is truncated: its PT_LOAD segments need ${hex(need)} bytes but the file has ${hex(this.core.source.size)}; memory past the cut cannot be read`,
      );
    }
  }

  /** Cores need no section headers; a table that lies is worth a warning, not a refusal. */
  private checkSectionHeaders(): void {
    const h = this.core.header;
    if (h.shoff === 0 || h.shnum === 0) return;
    const end = h.shoff + h.shnum * h.shentsize;
    if (end > this.core.source.size) {
      this.warnings.push(
        `${this.name}: section header table (${h.shnum} entries at offset ${hex(h.shoff)}) runs past the end of the file (size ${hex(this.core.source.size)}); ignored, a core does not need it`,
      );
    }
  }

  // --- mapped files and modules -----------------------------------------------------------------

  /** The file to read for NT_FILE path `p`: the module's file as found, else sysroot + p. */
  private localPath(p: string): string {
    const r = this.found.get(p);
    if (r) return r;
    const root = this.options.sysroot;
    return root ? root.replace(/\/+$/, '') + p : p;
  }

  private mappedFile(p: string): ByteSource | undefined {
    let src = this.mappedFiles.get(p);
    if (src === undefined) {
      const opened = this.opened.find((e) => e.name === this.localPath(p));
      if (opened) src = opened.source;
      else {
        try {
          src = FileByteSource.open(this.localPath(p));
        } catch (e) {
          if (!(e instanceof DbgError)) throw e;
          src = null;
        }
      }
      this.mappedFiles.set(p, src);
    }
    return src ?? undefined;
  }

  /**
   * One module per mapped ELF file, the executable first, as gdb orders them; then the libraries
   * the dynamic linker lists that NT_FILE does not (a core without the note). Bias = run-time
   * start of the file-offset-0 mapping minus the first PT_LOAD's page-aligned vaddr.
   */
  private loadModules(): void {
    const entry = this.auxv.get(AT_ENTRY);
    const byPath = new Map<string, FileMapping[]>();
    for (const f of this.fileMappings) {
      const list = byPath.get(f.path);
      if (list) list.push(f);
      else byPath.set(f.path, [f]);
    }
    let exePath: string | undefined;
    if (entry !== undefined) exePath = this.fileMappings.find((f) => entry >= f.start && entry < f.end)?.path;
    if (exePath === undefined && this.fileMappings.length > 0) exePath = this.fileMappings[0]!.path;

    // The dynamic linker's names, by the NT_FILE path of the mapping that holds each l_ld.
    const linkNames = new Map<string, string>();
    const unlisted: LinkMapEntry[] = [];
    this.linkMap.entries.forEach((e, i) => {
      if (i === 0 || e.name === '' || this.inVdso(e.dynamic)) return; // the executable; the vDSO
      const f = findCovering(this.fileMappings, e.dynamic);
      if (!f) unlisted.push(e);
      else if (f.path !== exePath) linkNames.set(f.path, e.name);
    });

    const order = [...byPath.keys()].sort((a, b) => (a === exePath ? -1 : b === exePath ? 1 : 0));
    for (const p of order) {
      const maps = byPath.get(p)!;
      const base = maps.find((f) => f.fileOffset === 0n)?.start ?? maps[0]!.start;
      // Data files (locale archives, mmapped inputs) are no modules; what the dynamic linker loaded is.
      if (p !== exePath && !linkNames.has(p) && !this.looksLikeElf(p, base, maps)) continue;
      const start = maps.reduce((m, f) => (f.start < m ? f.start : m), maps[0]!.start);
      const end = maps.reduce((m, f) => (f.end > m ? f.end : m), maps[0]!.end);
      this.addModule(p, linkNames.get(p), base, { start, end }, p === exePath);
    }
    if (this.fileMappings.length === 0 && this.options.exe) this.addExeWithoutFileNote(this.options.exe, entry);
    for (const e of unlisted) this.addModule(e.name, e.name, undefined, { bias: e.bias }, false);
    this.addVdso();
  }

  /** Whether `addr` lies in the vDSO's mapping (its link_map entry names no file). */
  private inVdso(addr: bigint): boolean {
    const at = this.auxv.get(AT_SYSINFO_EHDR);
    const seg = at ? this.segmentAt(at) : undefined;
    return seg !== undefined && addr >= seg.start && addr < seg.end;
  }

  /** Bytes the core itself holds at `addr` (no mapped file is read); throws DbgError where it has none. */
  private readCore(addr: bigint, length: number): Buffer {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const at = addr + BigInt(done);
      const seg = this.segmentAt(at);
      const rel = seg ? Number(at - seg.start) : 0;
      if (!seg?.phdr || rel >= seg.phdr.filesz) throw new DbgError('unmapped', `${hexAddr(at)} is not in ${this.name}`);
      const n = Math.min(length - done, seg.phdr.filesz - rel);
      if (seg.phdr.offset + rel + n > this.core.source.size) throw new DbgError('corrupt', `${hexAddr(at)} is past the end of the truncated ${this.name}`);
      this.core.source.read(seg.phdr.offset + rel, n).copy(out, done);
      done += n;
    }
    return out;
  }

  /**
   * Whether the file mapped at `base` is an ELF object: by the magic in the core's copy of its
   * first page (both gcore and the kernel dump it), else in the file, else by executable pages.
   */
  private looksLikeElf(p: string, base: bigint, maps: readonly FileMapping[]): boolean {
    const seg = this.segmentAt(base);
    if (seg?.phdr && seg.phdr.filesz >= 4 && seg.start === base) {
      const fileAt = seg.phdr.offset;
      return fileAt + 4 <= this.core.source.size && this.core.source.read(fileAt, 4).toString('latin1') === '\x7fELF';
    }
    const src = this.mappedFile(p);
    if (src) return src.readUpTo(0, 4).toString('latin1') === '\x7fELF';
    return maps.some((f) => this.segmentAt(f.start)?.phdr?.flags !== undefined && (this.segmentAt(f.start)!.phdr!.flags & PF_X) !== 0);
  }

  /** The files to try for the module the core names `corePath` (and the dynamic linker `linkName`). */
  private candidates(corePath: string, linkName: string | undefined, isExe: boolean): string[] {
    if (isExe && this.options.exe) return [this.options.exe];
    return libraryCandidates(linkName, corePath, this.options.sysroot, isExe ? [] : (this.options.solibSearchPath ?? []));
  }

  /**
   * Adds the module the core names `corePath`: the first candidate file that is an ELF file whose
   * build-id matches the core's copy of its headers (or, if none matches, the first ELF file, with
   * a warning). `base` is where its file offset 0 is mapped; `where` its run-time range, or (a
   * library only the link map names) its bias.
   */
  private addModule(corePath: string, linkName: string | undefined, base: bigint | undefined, where: { start: bigint; end: bigint } | { bias: bigint }, isExe: boolean): void {
    const what = isExe ? 'the executable' : 'library';
    const at = base !== undefined ? ` mapped at ${hexAddr(base)}` : '';
    const inCore = base !== undefined ? this.buildIdInCore(base) : undefined;
    const tried: { local: string; why: string }[] = [];
    let chosen: { elf: ElfFile; local: string; firstLoad: bigint; buildId?: string } | undefined;
    for (const local of this.candidates(corePath, linkName, isExe)) {
      let elf: ElfFile;
      let firstLoad: bigint;
      try {
        elf = ElfFile.open(local);
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        tried.push({ local, why: e.code === 'not-found' ? 'no such file' : withoutName(e.message, local) });
        continue;
      }
      try {
        const loads = elf.loadSegments();
        if (loads.length === 0) throw errors.corrupt(local, 'no PT_LOAD segment');
        firstLoad = loads[0]!.vaddr & ~(PAGE - 1n);
      } catch (e) {
        elf.close();
        if (!(e instanceof DbgError)) throw e;
        tried.push({ local, why: withoutName(e.message, local) });
        continue;
      }
      const buildId = elf.buildId();
      if (inCore && buildId && inCore !== buildId) {
        tried.push({ local, why: `build-id ${buildId}, not the core's ${inCore}` });
        if (chosen) elf.close();
        else chosen = { elf, local, firstLoad, buildId };
        continue;
      }
      if (chosen) chosen.elf.close();
      chosen = { elf, local, firstLoad };
      break;
    }
    const name = linkName ?? corePath;
    if (!chosen) {
      const hint = isExe ? (this.options.exe ? '' : '; try --exe FILE') : this.options.sysroot || this.options.solibSearchPath?.length ? '' : '; try --sysroot DIR or --solib-search-path DIRS';
      if (tried.length === 1) {
        const { local, why } = tried[0]!;
        const shown = local === corePath ? `"${local}"` : `"${local}" (for ${corePath})`;
        this.warnings.push(`cannot read symbols of ${what} ${shown}${at}: ${why}${hint}`);
      } else this.warnings.push(`cannot read symbols of ${what} "${name}"${at}: tried ${tried.map((t) => `"${t.local}" (${t.why})`).join(', ')}${hint}`);
      return;
    }
    const { elf, local, firstLoad } = chosen;
    if (chosen.buildId) {
      const shown = local === corePath ? `"${local}"` : `"${local}" (for ${name})`;
      this.warnings.push(`${what} ${shown} does not match the core: its build-id is ${chosen.buildId}, the core's copy has ${inCore}; its symbols and code may be wrong`);
    }
    this.opened.push(elf);
    this.found.set(corePath, local);
    const old = this.mappedFiles.get(corePath);
    if (old) old.close();
    this.mappedFiles.set(corePath, elf.source);
    let bias: bigint;
    let start: bigint;
    let end: bigint;
    if ('bias' in where) {
      bias = where.bias;
      const loads = elf.loadSegments();
      const last = loads[loads.length - 1]!;
      start = firstLoad + bias;
      end = last.vaddr + last.memsz + bias;
    } else {
      ({ start, end } = where);
      bias = elf.header.type === ET_DYN || base !== firstLoad ? base! - firstLoad : 0n;
    }
    this.addElfModule(elf, local, bias, start, end);
  }

  /**
   * The build-id of the ELF image whose first page the core holds at `base` (both gcore and the
   * kernel dump the page with the ELF and program headers), or undefined.
   */
  private buildIdInCore(base: bigint): string | undefined {
    const seg = this.segmentAt(base);
    if (!seg?.phdr || seg.start !== base || seg.phdr.filesz === 0) return undefined;
    try {
      const image = this.readVirtual(base, Math.min(seg.phdr.filesz, 0x4000));
      return new ElfFile(new BufferByteSource(`${this.path} at ${hexAddr(base)}`, image)).buildId();
    } catch (e) {
      if (e instanceof DbgError) return undefined;
      throw e;
    }
  }

  /** A module whose symbol table is built on first use; a broken table becomes a warning. */
  private addElfModule(elf: ElfFile, path: string, bias: bigint, start: bigint, end: bigint, name?: string): void {
    this.symbols.add(lazyElfModule(name ?? path.slice(path.lastIndexOf('/') + 1), path, elf, bias, start, end, this.warnings));
  }

  /** No NT_FILE (very old kernels): place --exe by AT_ENTRY. */
  private addExeWithoutFileNote(exe: string, entry: bigint | undefined): void {
    let elf: ElfFile;
    try {
      elf = ElfFile.open(exe);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      this.warnings.push(`cannot read symbols of the executable "${exe}": ${e.message}`);
      return;
    }
    this.opened.push(elf);
    const bias = entry !== undefined && elf.header.type === ET_DYN ? entry - elf.header.entry : 0n;
    const loads = elf.loadSegments();
    const start = (loads[0]?.vaddr ?? 0n) + bias;
    const last = loads[loads.length - 1];
    const end = last ? last.vaddr + last.memsz + bias : start;
    this.addElfModule(elf, exe, bias, start, end);
  }

  /** The vDSO is not a file: its ELF image is in the core's memory at AT_SYSINFO_EHDR. */
  private addVdso(): void {
    const at = this.auxv.get(AT_SYSINFO_EHDR);
    if (at === undefined || at === 0n) return;
    const seg = this.segmentAt(at);
    if (!seg?.phdr || seg.phdr.filesz === 0) return;
    try {
      const image = this.readVirtual(at, Number(seg.end - at));
      const elf = new ElfFile(new BufferByteSource('[vdso]', image));
      const first = elf.loadSegments()[0];
      const bias = at - ((first?.vaddr ?? 0n) & ~(PAGE - 1n));
      this.addElfModule(elf, '[vdso]', bias, at, seg.end, '[vdso]');
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      this.warnings.push(`cannot read symbols of the vDSO at ${hexAddr(at)}: ${e.message}`);
    }
  }

  close(): void {
    for (const e of this.opened) e.close();
    for (const s of this.mappedFiles.values()) s?.close();
    this.opened.length = 0;
    this.mappedFiles.clear();
    this.core.close();
  }
}

/** An error message about file `path` without the name the warning gives already. */
function withoutName(message: string, path: string): string {
  for (const prefix of [`cannot open "${path}": `, `${path}: `]) if (message.startsWith(prefix)) return message.slice(prefix.length);
  return message;
}

function permsOf(flags: number): string {
  return `${flags & PF_R ? 'r' : '-'}${flags & PF_W ? 'w' : '-'}${flags & PF_X ? 'x' : '-'}`;
}

function byStart(a: Segment, b: Segment): number {
  return a.start < b.start ? -1 : a.start > b.start ? 1 : 0;
}

/** The entry of `maps` whose [start, end) holds `addr`. */
function findCovering(maps: readonly FileMapping[], addr: bigint): FileMapping | undefined {
  return maps.find((f) => addr >= f.start && addr < f.end);
}
