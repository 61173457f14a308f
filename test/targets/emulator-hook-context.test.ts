/**
 * A hook context of native/emu after destroy() (Machine.close): it has no engine any more, so
 * calls that would reach Unicorn through it say so or do nothing, never call Unicorn on a NULL
 * engine (which killed the process with SIGSEGV).
 */
import { describe, expect, it } from 'vitest';
import { emuHooks, WATCH_WRITE } from '../../src/targets/emulator/emu-hooks.js';
import { UnicornEngine } from '../../src/targets/emulator/unicorn.js';

describe('a destroyed emulator hook context', () => {
  it('drops no translations, refuses a read/write watchpoint, and keeps breakpoints a no-op', () => {
    const addon = emuHooks();
    const e = new UnicornEngine('x86-64');
    const ram = Buffer.alloc(1 << 20);
    e.mapHost(0n, ram);
    const h = addon.create(e.address, ram);
    addon.add(h, 1, 0x1000n, 0x1007n, WATCH_WRITE);
    addon.destroy(h);
    e.close();
    expect(() => addon.invalidate(h, 0x1000n, 0x2000n)).not.toThrow();
    expect(() => addon.add(h, 2, 0x2000n, 0x2007n, WATCH_WRITE)).toThrow(/destroyed/);
    expect(() => addon.add(h, 3, 0x3000n, 0x3000n, 0)).not.toThrow();
    expect(addon.remove(h, 3)).toBe(true);
    expect(addon.remove(h, 1)).toBe(false);
    addon.destroy(h);
  });
});
