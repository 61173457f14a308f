/**
 * Compressed inputs. dbg reads dumps, kernels and traces in place (positional reads, nothing
 * copied), which a compressed stream does not allow; instead of reading `vmcore.xz` as raw bytes it
 * names the compression and the command that undoes it.
 */

import { DbgError } from './errors.js';

const FORMATS: readonly { name: string; magic: readonly number[]; tool: string; ext: RegExp }[] = [
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], tool: 'xz -dk', ext: /\.xz$/ },
  { name: 'gzip', magic: [0x1f, 0x8b], tool: 'gzip -dk', ext: /\.gz$/ },
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd], tool: 'zstd -d', ext: /\.zst$/ },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68], tool: 'bzip2 -dk', ext: /\.bz2$/ },
];

/** The compression whose magic `head` (the file's first bytes) starts with, if any. */
export function compressionOf(head: Buffer): (typeof FORMATS)[number] | undefined {
  return FORMATS.find((f) => head.length >= f.magic.length && f.magic.every((b, i) => head[i] === b));
}

/**
 * A one-line refusal for a compressed file, or undefined: `"vmcore.xz" is xz-compressed; dbg reads
 * files uncompressed: xz -dk vmcore.xz, then dbg open vmcore`.
 */
export function compressedInput(path: string, head: Buffer, then: (plain: string) => string): DbgError | undefined {
  const f = compressionOf(head);
  if (!f) return undefined;
  const plain = f.ext.test(path) ? path.replace(f.ext, '') : `${path}.out`;
  const undo = f.ext.test(path) ? `${f.tool} ${path}` : `${f.tool.split(' ')[0]} -dc ${path} > ${plain}`;
  return new DbgError('bad-input', `"${path}" is ${f.name}-compressed; dbg reads files uncompressed: ${undo}, then ${then(plain)}`);
}
