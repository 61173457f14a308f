/**
 * native/kdump's addon: whole-buffer decoders over the system's libdeflate, liblzo2, libsnappy
 * and libzstd. Its first users were kdump-compressed pages (src/targets/kdump/decompress.ts);
 * compressed ELF sections (src/symbols/dwarf/dwarf-sections.ts) use the same entry point, which
 * decodes at about twice node:zlib's speed. Optional: without it, callers decode in JavaScript.
 */

import { optionalAddon } from './optional-addon.js';

/** The addon's flags for each compression (a kdump page descriptor's bits). */
export const KDUMP_FLAG = { zlib: 0x1, lzo: 0x2, snappy: 0x4, zstd: 0x20 } as const;

export interface KdumpAddon {
  /**
   * `length` bytes of `src` decoded into `dst`, which they must fill exactly (flag 0: stored as
   * is). undefined when they did, else why not ("zstd: Unknown frame descriptor").
   */
  decode(flag: number, src: Buffer, length: number, dst: Buffer): string | undefined;
  /** pread + decode; flag 0: a stored page. A failed read's message starts "read: ". */
  readDecode(fd: number, offset: number, length: number, flag: number, dst: Buffer): string | undefined;
  versions(): string;
}

let addon: KdumpAddon | null | undefined;

/** native/kdump's addon, or null when it is not built (setup builds it: scripts/setup.d/22-kdump.mjs). */
export function kdumpAddon(): KdumpAddon | null {
  if (addon === undefined) addon = optionalAddon<KdumpAddon>('kdump'); // else the JavaScript decoders
  return addon;
}
