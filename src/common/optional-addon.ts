import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkoutRoot } from './checkout-root.js';

/**
 * native/NAME's addon (native/NAME/build/Release/NAME.node), or null when it is not built or does
 * not load (built for another Node ABI, a library missing): the caller then does the work in
 * JavaScript. Callers keep what it returns: this finds and loads it each time.
 */
export function optionalAddon<T>(name: string): T | null {
  const root = checkoutRoot();
  const path = join(root, 'native', name, 'build', 'Release', `${name}.node`);
  if (!existsSync(path)) return null;
  try {
    return createRequire(join(root, 'package.json'))(path) as T;
  } catch {
    return null;
  }
}
