/** A command session on an emulator target whose run() returns the output lines (for tests). */
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import type { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';

export function session(t: EmulatorTarget): { run(line: string): Promise<string[]> } {
  const s = new Session(t, builtinModules);
  return {
    async run(line) {
      const lines: string[] = [];
      await s.execute(line, { jsonMode: false, line: (x) => lines.push(x), json: (v) => lines.push(JSON.stringify(v)), warn: () => {} } as never);
      return lines;
    },
  };
}
