/** A command session on a target whose run() returns the output lines (for tests). */
import type { Output } from '../../src/mdb/dcmd.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import type { Target } from '../../src/targets/target.js';

export function session(t: Target): { run(line: string): Promise<string[]> } {
  const s = new Session(t, builtinModules);
  return {
    async run(line) {
      const lines: string[] = [];
      const out: Output = { jsonMode: false, line: (x) => lines.push(x), json: (v) => lines.push(JSON.stringify(v)), warn: () => {} };
      await s.execute(line, out);
      return lines;
    },
  };
}
