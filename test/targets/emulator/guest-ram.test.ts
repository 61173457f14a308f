import { describe, expect, it } from 'vitest';
import { allocGuestRam, releaseGuestRam } from '../../../src/targets/emulator/guest-ram.js';

describe('guest RAM of a replay', () => {
  it('is zeroed memory outside V8 external-memory accounting, and a release gives whole pages back as zeros', () => {
    const ram = allocGuestRam(64 << 10);
    expect(ram.length).toBe(64 << 10);
    expect(ram.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(ram.every((b) => b === 0)).toBe(true);
    ram.fill(0xab);
    // a view that starts and ends inside pages: only the pages wholly inside it are released
    const view = ram.subarray(100, ram.length - 100);
    releaseGuestRam(view);
    expect(ram[100]).toBe(0xab);
    expect(ram[ram.length - 101]).toBe(0xab);
    // however the memory is aligned, the pages holding [32 KiB, 36 KiB) lie wholly inside the view
    const mid = 32 << 10;
    expect(ram.subarray(mid, mid + 4096).every((b) => b === 0)).toBe(true);
    ram[mid] = 1; // still mapped and writable
    expect(ram[mid]).toBe(1);
  });
});
