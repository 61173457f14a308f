/**
 * Typed arrays used as growable columns (device-marks.ts, call-walker.ts, trace-reader.ts): a
 * copy of `a` in an array of the same kind `length` elements long (a longer one: the rest zero).
 */
export function grown<A extends Uint8Array | Int32Array | Float64Array | BigUint64Array>(a: A, length: number): A {
  const b = new (a.constructor as new (n: number) => A)(length);
  b.set(a as never);
  return b;
}
