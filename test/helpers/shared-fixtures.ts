import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * A file of the shared fixtures (real artifacts made by QEMU and gcc), which live beside the
 * checkout in ../shared/fixtures. DBG_SHARED_FIXTURES overrides the location.
 */
export function fixturePath(rel: string): string {
  const base = process.env.DBG_SHARED_FIXTURES ?? join(repoRoot, '..', 'shared', 'fixtures');
  const p = join(base, rel);
  if (!existsSync(p)) throw new Error(`shared fixture ${rel} not found under ${base} (set DBG_SHARED_FIXTURES)`);
  return p;
}
