/**
 * The recorder addon's calls on replay engines (native/recorder): feedPorts keeps each engine's
 * port values its own while other engines are fed and forgotten in any order (a ReplayMachine
 * re-feeds its engines while another one closes), and contextRestore refuses a checkpoint image
 * whose uc_context header does not fit the engine instead of letting Unicorn copy past it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { nativeRecorder } from '../../src/store/native-recorder.js';
import { UnicornEngine, X86_REG } from '../../src/targets/emulator/unicorn.js';

const n = nativeRecorder();
const open: UnicornEngine[] = [];

/** An engine whose RAM holds `in al, dx` at 0x100. */
function engine(): UnicornEngine {
  const e = new UnicornEngine('x86-64');
  const ram = Buffer.alloc(0x1000);
  ram[0x100] = 0xec;
  e.mapHost(0n, ram);
  open.push(e);
  (e as unknown as { keep: Buffer }).keep = ram;
  return e;
}

/** Runs the IN once from the start and returns what it read. */
function readPort(e: UnicornEngine): bigint {
  e.writeReg(X86_REG.RAX, 0n);
  expect(n.run(e.address, 0x100n, 1)).toBe(0);
  return e.readReg(X86_REG.RAX) & 0xffn;
}

afterEach(() => {
  for (const e of open) {
    n.unfeedPorts(e.address);
    e.close();
  }
  open.length = 0;
});

describe('feedPorts', () => {
  it("keeps each engine's values when other engines are forgotten before it and it is fed again", () => {
    const [a, b, c, d] = [engine(), engine(), engine(), engine()];
    [a, b, c, d].forEach((e, i) => n.feedPorts(e.address, Uint32Array.of(0x11 + i)));
    n.unfeedPorts(a.address);
    n.unfeedPorts(b.address);
    n.feedPorts(c.address, Uint32Array.of(0x42));
    n.feedPorts(d.address, Uint32Array.of(0x43));
    // a new engine takes a freed place in the table: the others' values stay theirs
    const e = engine();
    n.feedPorts(e.address, Uint32Array.of(0x44));
    expect(readPort(c)).toBe(0x42n);
    expect(readPort(d)).toBe(0x43n);
    expect(readPort(e)).toBe(0x44n);
  });

  it('takes an empty list (IN then reads 0)', () => {
    const a = engine();
    n.feedPorts(a.address, new Uint32Array(0));
    expect(readPort(a)).toBe(0n);
  });
});

describe('contextRestore', () => {
  it('loads an image of the same engine kind, and refuses one whose header claims another size', () => {
    const a = engine();
    a.writeReg(X86_REG.RBX, 0x1234n);
    const img = n.contextSave(a.address);
    a.writeReg(X86_REG.RBX, 0n);
    n.contextRestore(a.address, img);
    expect(a.readReg(X86_REG.RBX)).toBe(0x1234n);
    const bad = Buffer.from(img);
    bad.writeBigUInt64LE(bad.readBigUInt64LE(0) + 4096n, 0);
    a.writeReg(X86_REG.RBX, 7n);
    expect(() => n.contextRestore(a.address, bad)).toThrow(/header does not match/);
    expect(a.readReg(X86_REG.RBX)).toBe(7n);
  });
});
