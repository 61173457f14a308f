import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding dbg's package.json, found from wherever the calling code runs: an ES
 * module in dist/src/..., the CommonJS bundle in dist/ (where import.meta.url is empty and
 * __dirname is set), or the TypeScript source under a test runner. Native addons (native/NAME)
 * and compiled workers (dist/...) are found from it.
 */
export function checkoutRoot(): string {
  // The module's own URL first: `node -e` gives even an ES module's code a global __dirname of
  // '.' (the eval's). Absolute: Worker() takes no other relative path.
  const url = (import.meta as { url?: string }).url;
  let dir = resolve(url ? dirname(fileURLToPath(url)) : __dirname);
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
