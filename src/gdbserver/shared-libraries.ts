/**
 * qXfer:libraries-svr4:read — the dynamic linker's list of loaded objects, as gdbserver sends it,
 * so gdb loads each shared library's symbols and CFI at its run-time address without walking the
 * process's memory itself (which fails over a remote link without an auxiliary vector).
 *
 * The list comes from the guest's own memory: `_r_debug` (exported by ld.so) points to the chain
 * of struct link_map (glibc's <link.h>, LP64):
 *
 *   offset  field
 *   0       l_addr   load bias
 *   8       l_name   char * (absolute path; "" for the main program)
 *   16      l_ld     address of the object's .dynamic
 *   24      l_next
 *
 * and r_debug is { int r_version; struct link_map *r_map at offset 8; ... }.
 */

import type { Target } from '../targets/target.js';
import { readPointer } from '../targets/target.js';

const MAX_OBJECTS = 4096;

/** The XML document, or undefined when the target has no `_r_debug` (a kernel, a static program). */
export function librariesSvr4(target: Target): string | undefined {
  if (target.arch.pointerBytes !== 8) return undefined;
  const rdebug = target.symbols.find('_r_debug');
  if (!rdebug) return undefined;
  const items: string[] = [];
  let main = 0n;
  try {
    let lm = readPointer(target, rdebug.addr + 8n);
    for (let n = 0; lm !== 0n && n < MAX_OBJECTS; n++) {
      const lAddr = readPointer(target, lm);
      const name = readCString(target, readPointer(target, lm + 8n));
      const lLd = readPointer(target, lm + 16n);
      if (n === 0 && name === '') main = lm;
      else if (name !== '') {
        items.push(`<library name="${xmlEscape(name)}" lmid="0x0" lm="0x${lm.toString(16)}" l_addr="0x${lAddr.toString(16)}" l_ld="0x${lLd.toString(16)}"/>`);
      }
      lm = readPointer(target, lm + 24n);
    }
  } catch {
    return undefined; // r_debug not set up yet (the dynamic linker has not run): gdb copes alone
  }
  return `<library-list-svr4 version="1.0" main-lm="0x${main.toString(16)}">${items.join('')}</library-list-svr4>`;
}

/**
 * The NUL-terminated string at `addr` (at most 4 KiB), read 64 bytes at a time; where a 64-byte
 * read runs past the end of a mapping, byte by byte up to that end, so a name that ends just
 * before an unmapped page comes out whole.
 */
export function readCString(target: Target, addr: bigint): string {
  if (addr === 0n) return '';
  const parts: Buffer[] = [];
  let off = 0n;
  while (off < 4096n) {
    let chunk: Buffer;
    try {
      chunk = target.readVirtual(addr + off, 64);
    } catch {
      try {
        chunk = target.readVirtual(addr + off, 1);
      } catch {
        break; // the end of the mapping: the string is what was read
      }
    }
    const z = chunk.indexOf(0);
    if (z >= 0) {
      parts.push(chunk.subarray(0, z));
      break;
    }
    parts.push(chunk);
    off += BigInt(chunk.length);
  }
  return Buffer.concat(parts).toString('utf8');
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}
