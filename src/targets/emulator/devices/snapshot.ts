/**
 * A device's state copied for the machine's marks (Machine.keepDeviceMarks: every slice start of a
 * recorded machine, so that `::discard` can put the devices back): numbers, bigints, booleans,
 * strings, arrays, typed arrays, Buffers and plain objects of those, copied deeply. structuredClone
 * did the same at ~15 us a device (a serialisation round trip), 0.7 s of a recorded xv6 boot's
 * 4.4 s and a third of the sample kernel's recording time.
 */
export function snapshot<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (ArrayBuffer.isView(v)) return (v as unknown as Uint8Array).slice() as T;
  if (Array.isArray(v)) return v.map(snapshot) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = snapshot((v as Record<string, unknown>)[k]);
  return out as T;
}

