import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding dbg's package.json, found from wherever the calling code runs: an ES
 * module in dist/src/..., the CommonJS bundle in dist/ (where import.meta.url is empty and
 * __dirname is set), or the TypeScript source under a test runner. Native addons (native/NAME)
 * and compiled workers (dist/...) are found from it.
 */
export function checkoutRoot(): string {
  let dir = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
