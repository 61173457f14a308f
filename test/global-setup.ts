import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// Tests run bin/dbg, which runs dist/ and the native addons: rebuild whatever is older than its
// sources (src/, commands/, bench/, the bundle script, native/, the sample kernel and dumps), so a
// test never runs an old build after an edit. `setup.mjs --build` skips system packages and npm ci
// and is quick when nothing changed.
export default function setup(): void {
  const script = fileURLToPath(new URL('../scripts/setup.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, '--quiet', '--build'], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`rebuilding dbg for the tests failed (node scripts/setup.mjs --quiet --build exited ${r.status ?? r.signal})`);
}
