import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { DbgError } from '../../common/errors.js';
import { ElfFile } from '../elf-file.js';

/**
 * Separate debug files, found as gdb finds them:
 *
 *   by build-id:      DIR/.build-id/ab/cdef....debug       (the NT_GNU_BUILD_ID note, hex: 2 + rest)
 *   by .gnu_debuglink: { NAME\0, pad to 4, u32 CRC-32 of the debug file }, looked for as
 *                     BINDIR/NAME, BINDIR/.debug/NAME, DIR/BINDIR/NAME
 *   DWZ supplement:   .gnu_debugaltlink { PATH\0, build-id bytes }: PATH (relative to the debug
 *                     file's directory), else DIR/.build-id/ab/cdef....debug
 *
 * DIR is each debug-file directory: /usr/lib/debug as gdb's default, or what
 * setDebugFileDirectories (the CLI's --debug-file-directory) or DBG_DEBUG_FILE_DIRECTORY
 * (colon-separated; empty for none) say. A candidate is taken only when it is a regular file whose
 * build-id (or CRC) matches, so a stale debug file is never paired with the wrong binary.
 */

let configured: readonly string[] | undefined;

/** Sets the debug-file directories (gdb's `set debug-file-directory`); undefined restores the default. */
export function setDebugFileDirectories(dirs: readonly string[] | undefined): void {
  configured = dirs;
}

export function debugFileDirectories(): readonly string[] {
  if (configured) return configured;
  const env = process.env.DBG_DEBUG_FILE_DIRECTORY;
  if (env !== undefined) return env.split(':').filter((d) => d !== '');
  return ['/usr/lib/debug'];
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function tryOpen(path: string, accept: (elf: ElfFile) => boolean): ElfFile | undefined {
  if (!isFile(path)) return undefined;
  let elf: ElfFile;
  try {
    elf = ElfFile.open(path);
  } catch (e) {
    if (e instanceof DbgError) return undefined;
    throw e;
  }
  if (accept(elf)) return elf;
  elf.close();
  return undefined;
}

function byBuildId(id: string): ElfFile | undefined {
  if (id.length < 4) return undefined;
  for (const dir of debugFileDirectories()) {
    const f = tryOpen(join(dir, '.build-id', id.slice(0, 2), `${id.slice(2)}.debug`), (e) => e.buildId() === id);
    if (f) return f;
  }
  return undefined;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (the zlib / IEEE polynomial), as .gnu_debuglink records it. */
export function crc32(b: Buffer): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The separate debug file of `elf`, or undefined when there is none to be found. */
export function findSeparateDebug(elf: ElfFile): ElfFile | undefined {
  const id = elf.buildId();
  const hit = id ? byBuildId(id) : undefined;
  if (hit) return hit;
  const sec = elf.section('.gnu_debuglink');
  if (!sec) return undefined;
  const data = elf.sectionData(sec);
  const end = data.indexOf(0);
  if (end <= 0) return undefined;
  const name = data.toString('utf8', 0, end);
  const crcAt = (end + 4) & ~3;
  if (crcAt + 4 > data.length || name.includes('/')) return undefined;
  const crc = elf.header.littleEndian ? data.readUInt32LE(crcAt) : data.readUInt32BE(crcAt);
  const bin = dirname(elf.name);
  const candidates = [join(bin, name), join(bin, '.debug', name), ...debugFileDirectories().map((d) => join(d, isAbsolute(bin) ? bin : join('/', bin), name))];
  for (const c of candidates) {
    if (c === elf.name) continue;
    const f = tryOpen(c, () => {
      try {
        return crc32(readFileSync(c)) === crc;
      } catch {
        return false;
      }
    });
    if (f) return f;
  }
  return undefined;
}

/** The DWZ supplementary file that `elf` (a debug file) names in .gnu_debugaltlink. */
export function findAltFile(elf: ElfFile): ElfFile | undefined {
  const sec = elf.section('.gnu_debugaltlink');
  if (!sec) return undefined;
  const data = elf.sectionData(sec);
  const end = data.indexOf(0);
  if (end <= 0) return undefined;
  const path = data.toString('utf8', 0, end);
  const id = data.subarray(end + 1).toString('hex');
  const accept = (e: ElfFile) => id === '' || e.buildId() === id;
  return tryOpen(isAbsolute(path) ? path : join(dirname(elf.name), path), accept) ?? (id ? byBuildId(id) : undefined);
}
