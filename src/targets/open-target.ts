/**
 * `dbg open FILE`: choose the target for a file by what it is, as mdb does.
 *
 *   --raw, or not ELF            -> FileTarget.raw   (bytes at offsets); but a compressed file or
 *                                   a dbg trace is refused with what to run instead
 *   kdump-compressed             -> KernelDumpTarget over a KdumpFile (makedumpfile, QEMU -z/-l/-s;
 *                                   diskdump or flattened)
 *   ELF core, kernel dump        -> KernelDumpTarget (kdump vmcore, QEMU dump-guest-memory)
 *   ELF core, anything else      -> ProcessCoreTarget (gcore, kernel-written process cores)
 *   other ELF (exec, .so, .o)    -> FileTarget.elf   (link-time addresses and the file's symbols,
 *                                                      as `mdb a.out` opens an executable)
 *
 * Options that the chosen target cannot use are refused rather than ignored, so a typo'd
 * invocation does not silently debug something else.
 */

import { FileByteSource } from '../common/byte-source.js';
import { compressedInput } from '../common/compressed.js';
import { errors } from '../common/errors.js';
import { ElfFile, ET_CORE, isElf } from '../symbols/elf-file.js';
import { ProcessCoreTarget } from './elfcore/process-core-target.js';
import { FileTarget } from './file/file-target.js';
import type { Target } from './target.js';
import { isKernelDump, KernelDumpTarget } from './elfcore/kernel-dump-target.js';
import { isKdumpCompressed, KdumpFile } from './kdump/kdump-file.js';
import type { PageDecoder } from './kdump/decompress.js';

export interface OpenOptions {
  readonly raw?: boolean;
  readonly exe?: string;
  readonly sysroot?: string;
  readonly solibSearchPath?: readonly string[];
  readonly symbols?: readonly string[];
  /** Where a kernel dump's modules (.ko files) are (KernelDumpOptions.modules). */
  readonly modules?: string;
  /** How a kdump-compressed dump's pages are decoded (default: native/kdump when built). */
  readonly kdumpDecoder?: PageDecoder;
}

export function openTarget(path: string, opts: OpenOptions = {}): Target {
  if (opts.raw) {
    refuse(opts, ['exe', 'sysroot', 'solibSearchPath', 'symbols', 'modules'], 'a raw file (--raw)');
    return FileTarget.raw(path);
  }
  const probe = FileByteSource.open(path);
  let elf: ElfFile | undefined;
  try {
    if (!isElf(probe)) {
      if (isKdumpCompressed(probe.readUpTo(0, 16))) {
        probe.close();
        refuse(opts, ['exe', 'sysroot'], `kernel dump "${path}" (use --symbols vmlinux)`);
        return openKdump(path, opts);
      }
      refuseNotADump(path, probe.readUpTo(0, 16));
      probe.close();
      refuse(opts, ['exe', 'sysroot', 'solibSearchPath', 'symbols', 'modules'], `"${path}", which is not an ELF file and opens as a raw file`);
      return FileTarget.raw(path);
    }
    elf = new ElfFile(probe);
  } catch (e) {
    probe.close();
    throw e;
  }
  if (elf.header.type === ET_CORE) {
    if (isKernelDump(elf)) {
      elf.close();
      refuse(opts, ['exe', 'sysroot', 'solibSearchPath'], `kernel dump "${path}" (use --symbols vmlinux)`);
      return KernelDumpTarget.open(path, { symbols: opts.symbols, modules: opts.modules });
    }
    elf.close();
    refuse(opts, ['symbols', 'modules'], `process core "${path}" (use --exe and --sysroot)`);
    return ProcessCoreTarget.open(path, { exe: opts.exe, sysroot: opts.sysroot, solibSearchPath: opts.solibSearchPath });
  }
  try {
    refuse(opts, ['exe', 'sysroot', 'solibSearchPath', 'symbols', 'modules'], `"${path}", an ELF ${elf.header.type === 2 ? 'executable' : 'object'} that opens as a file target`);
  } catch (e) {
    elf.close();
    throw e;
  }
  return FileTarget.elf(path, elf);
}

/** A kdump-compressed dump, read as the ELF vmcore it stands for, page by page. */
function openKdump(path: string, opts: OpenOptions): Target {
  const dump = KdumpFile.open(path, { decoder: opts.kdumpDecoder });
  let t: KernelDumpTarget;
  try {
    t = KernelDumpTarget.open(path, { symbols: opts.symbols, modules: opts.modules, source: dump.elfView(), format: dump.describe() });
  } catch (e) {
    dump.close();
    throw e;
  }
  t.warnings.push(...dump.warnings);
  return t;
}

function refuse(opts: OpenOptions, names: readonly (keyof OpenOptions)[], what: string): void {
  for (const n of names) {
    const v = opts[n];
    if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    throw errors.badInput(`--${n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} does not apply to ${what}`);
  }
}

/** A compressed file or a trace is not what `dbg open` reads: say what to run (--raw still opens it). */
function refuseNotADump(path: string, head: Buffer): void {
  const compressed = compressedInput(path, head, (plain) => `dbg open ${plain} (--raw opens the compressed bytes)`);
  if (compressed) throw compressed;
  if (head.toString('latin1') === 'SQLite format 3\0') throw errors.badInput(`"${path}" is a SQLite file, such as a trace dbg live records: open a trace with dbg replay ${path} (--raw opens the bytes)`);
}
