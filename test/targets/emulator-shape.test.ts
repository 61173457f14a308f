/**
 * Closing a machine, or walking page tables, must not change the shape (V8's map) of objects that
 * every machine has: code V8 optimised for one machine's objects is thrown away when it meets
 * another shape. The GDB server's rehearsal (src/gdbserver/rehearsal.ts) compiles the step path
 * on a scratch machine, closes it, and the user's first steps then ran from the interpreter again
 * (`node --trace-deopt`: a wrong map in the page walk; every function depending on the engine's
 * handle field thrown away at the scratch's close).
 *
 * A walker's shape is compared with V8's own %HaveSameMap, in a node of its own with natives
 * syntax, on the compiled modules (dist/, which the tests' global setup builds).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { Machine } from '../../src/targets/emulator/machine.js';
import { UnicornEngine } from '../../src/targets/emulator/unicorn.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = (rel: string): string => pathToFileURL(join(root, 'dist', rel)).href;

/** Runs `body` (an ES module, natives syntax allowed) and returns what it printed as JSON. */
function natives(body: string): Record<string, boolean> {
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', body], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node --allow-natives-syntax failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, boolean>;
}

/** An object's own fields, each as it is (the same value or the same object). */
function fields(o: object): Map<string, unknown> {
  return new Map(Object.entries(o));
}

describe('shapes shared by every machine', () => {
  it('closing an engine or a machine writes none of its fields', () => {
    // A field written again (a handle set to undefined, a `closed` flag set) is what made V8 drop
    // its assumptions about that field for every engine; the closed state is a typed array's element.
    const engine = new UnicornEngine('x86-64');
    const machine = new Machine({ ramBytes: 2 << 20, cpus: 1 });
    const engineBefore = fields(engine);
    const machineBefore = fields(machine);
    engine.close();
    machine.close();
    for (const [k, v] of fields(engine)) expect(v, k).toBe(engineBefore.get(k));
    for (const [k, v] of fields(machine)) expect(v, k).toBe(machineBefore.get(k));
  });

  it('a page walk through tables above 2 GiB leaves its walker the shape of a fresh one', () => {
    // PML4 at 0x80000000 -> PDPT at 0x80001000 -> a 1 GiB page: table addresses that are not
    // small integers, as a number[] holding them would have turned into an array of doubles.
    const out = natives(`
      import { X86_64Paging } from '${dist('src/arch/x86-64-paging.js')}';
      const entries = new Map([[0x80000000n, 0x80001000n | 0x7n], [0x80001000n, 0x40000000n | 0x87n]]);
      const read = (addr) => entries.get(addr) ?? 0n;
      const walked = new X86_64Paging(read);
      const fresh = new X86_64Paging(read);
      const w = walked.translate(0x80000000n, 0x12345n);
      console.log(JSON.stringify({ translated: w.phys === 0x40012345n, walker: %HaveSameMap(walked, fresh), seen: %HaveSameMap(walked.seen, fresh.seen) }));
    `);
    expect(out).toEqual({ translated: true, walker: true, seen: true });
  });
});

describe('closed engines and machines', () => {
  it('refuse work with a state error, and close twice quietly', () => {
    const engine = new UnicornEngine('x86-64');
    engine.close();
    engine.close();
    expect(() => engine.readReg(0)).toThrow(DbgError);
    expect(() => engine.readReg(0)).toThrow('the emulator engine is closed');
    engine.stop(); // a stop after close does nothing

    const machine = new Machine({ ramBytes: 2 << 20, cpus: 1 });
    machine.close();
    machine.close();
    expect(() => machine.start({ vcpu: 0, count: 1 })).toThrow('the machine is closed');
  });
});
