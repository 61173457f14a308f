/**
 * A port read's stored detail is made without an object (trace-db-writer.ts, portInDetail, which
 * TraceWriter.addPortIn stores): it must be the JSON that storedInput makes of the same detail,
 * since readers parse it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { portInDetail, storedInput } from '../../src/store/trace-db-writer.js';

describe('portInDetail', () => {
  it("is storedInput's JSON of { port, size, value }", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(1, 2, 4), fc.integer({ min: 0, max: 0xffff_ffff }), (port, size, value) => {
        const want = storedInput({ seq: 1n, vcpu: 0, kind: 'port-in', detail: { port, size, value } })[3];
        expect(portInDetail(port, size, value)).toBe(want);
        expect(JSON.parse(portInDetail(port, size, value))).toEqual({ port, size, value });
      }),
      { numRuns: 500 },
    );
  });
});
