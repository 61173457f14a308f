import { emuHooks, type HookCtx } from './emu-hooks.js';
import { UC, UnicornEngine } from './unicorn.js';

/**
 * A fast engine (native/emu/emu.c, "Fast engine") over guest RAM at `ramBase`: one per vCPU of a
 * live machine (machine.ts) and of a replay (replay-machine.ts), unless DBG_EMU_EXACT=1 (every
 * slice on the exact engine alone: the reference the fast engine is tested against). Says why
 * not when this Unicorn build cannot have one.
 */
export function makeFastEngine(ram: Buffer, ramBase = 0n, cpuModel: number = UC.CPU_X86_SKYLAKE_SERVER): { engine: UnicornEngine; hooks: HookCtx } | { off: string } {
  if (process.env.DBG_EMU_EXACT === '1') return { off: 'DBG_EMU_EXACT=1 asks for the exact engine alone' };
  const engine = new UnicornEngine('x86-64', cpuModel);
  try {
    engine.mapHost(ramBase, ram);
    return { engine, hooks: emuHooks().create(engine.address, ram, true, true) };
  } catch (e) {
    // this Unicorn build lacks what the fast engine needs (emu.c says which): exact only
    engine.close();
    return { off: (e as Error).message };
  }
}
