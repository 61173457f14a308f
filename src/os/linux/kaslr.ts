/**
 * The KASLR slide of a dump without VMCOREINFO's KERNELOFFSET, found as crash's `--kaslr auto`
 * does: vmlinux's linux_banner sits at its link address plus the slide, a multiple of 2 MiB below
 * 1 GiB (512 probes at most).
 */

export { START_KERNEL_MAP } from './port.js';

export type SlideSearch =
  | { readonly kind: 'found'; readonly offset: bigint }
  /** Another kernel's banner where this one's should be: the vmlinux is not the dumped kernel's. */
  | { readonly kind: 'other-banner'; readonly offset: bigint; readonly text: string }
  | { readonly kind: 'nowhere' };

/** `read` returns undefined where the dump has no memory. */
export function findKaslrSlide(read: (addr: bigint, n: number) => Buffer | undefined, linkAddr: bigint, banner: string): SlideSearch {
  const probe = Math.min(banner.length, 64);
  const want = banner.slice(0, probe);
  let other: bigint | undefined;
  for (let off = 0n; off < 1n << 30n; off += 2n << 20n) {
    const got = read(linkAddr + off, probe)?.toString('latin1');
    if (got === undefined) continue;
    if (got === want) return { kind: 'found', offset: off };
    if (other === undefined && (off === 0n || got.startsWith('Linux version '))) other = off;
  }
  if (other !== undefined) {
    const text = read(linkAddr + other, 160)?.toString('latin1') ?? '';
    return { kind: 'other-banner', offset: other, text: text.split('\0')[0]!.split('\n')[0]!.replace(/[^\x20-\x7e]/g, '.') };
  }
  return { kind: 'nowhere' };
}

/** `Linux version 6.1.0-57-cloud-amd64 (...)` -> `6.1.0-57-cloud-amd64`. */
export function bannerRelease(banner: string): string | undefined {
  return /^Linux version (\S+)/.exec(banner)?.[1];
}
