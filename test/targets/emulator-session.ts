/** A command session on a target whose run() returns the output lines (for tests). */
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import type { Target } from '../../src/targets/target.js';

export function session(t: Target): { run(line: string): Promise<string[]> } {
  const s = new Session(t, builtinModules);
  return {
    async run(line) {
      const lines: string[] = [];
      await s.execute(line, { jsonMode: false, line: (x) => lines.push(x), json: (v) => lines.push(JSON.stringify(v)), warn: () => {} } as never);
      return lines;
    },
  };
}
