/**
 * Where two RAM images differ, except in the accessed and dirty bits (5, 6) of present 8-byte
 * entries: Unicorn's page walks set them without a memory hook, so the recorder never sees them
 * (a known gap of the recording; a guest that reads them back would diverge in replay).
 * At most `max` places, as "phys 0x...: live, replayed".
 */
export function ramDiff(live: Buffer, replay: Buffer, max = 8): string[] {
  const out: string[] = [];
  if (live.length !== replay.length) return [`sizes differ: ${live.length} live, ${replay.length} replayed`];
  for (let page = 0; page < live.length && out.length < max; page += 4096) {
    if (live.subarray(page, page + 4096).equals(replay.subarray(page, page + 4096))) continue;
    for (let off = page; off < page + 4096 && out.length < max; off += 8) {
      const a = live.readBigUInt64LE(off);
      const b = replay.readBigUInt64LE(off);
      if (a !== b && !((a & 1n) === 1n && ((a ^ b) & ~0x60n) === 0n)) out.push(`phys 0x${off.toString(16)}: 0x${a.toString(16)} live, 0x${b.toString(16)} replayed`);
    }
  }
  return out;
}
