import { existsSync } from 'node:fs';

// `npm test` runs scripts/setup.mjs first; this only makes a bare `npx vitest` fail clearly.
export default function setup(): void {
  if (!existsSync(new URL('../dist/.built', import.meta.url))) {
    throw new Error('dbg is not built: run `npm test` (or `node scripts/setup.mjs`) first');
  }
}
