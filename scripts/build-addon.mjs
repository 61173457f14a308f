// Builds one of dbg's N-API addons (native/NAME) with npm's bundled node-gyp against the system
// Node headers, for the steps in scripts/setup.d. Idempotent: rebuilds only when a source of the
// addon or of native/common is newer than the built addon.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** node-gyp's entry script as npm bundles it, or undefined. */
export function nodeGyp() {
  const r = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  const candidates = [
    r.status === 0 ? join(r.stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') : '',
    join(dirname(dirname(process.execPath)), 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

/**
 * Builds `dir` (holding binding.gyp) unless `out` is newer than every .c, .h and .gyp file there
 * and in native/common. `what` names it in messages. Returns the exit status to end the step with.
 */
export function buildAddon({ dir, out, what, quiet }) {
  const common = join(dir, '..', 'common');
  const newest = Math.max(
    ...[dir, common].flatMap((d) => readdirSync(d).filter((f) => /\.(c|h|gyp)$/.test(f)).map((f) => statSync(join(d, f)).mtimeMs)),
  );
  if (existsSync(out) && statSync(out).mtimeMs >= newest) return 0;
  const gyp = nodeGyp();
  if (!gyp) {
    console.error(`setup: node-gyp (bundled with npm) not found; ${what} is not built`);
    return 1;
  }
  // Node's headers: the distribution's (/usr/include/node) or the ones beside this node binary.
  const nodeDir = [dirname(dirname(process.execPath)), '/usr'].find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
  if (!quiet) console.error(`setup: building ${what}`);
  const args = [gyp, 'rebuild', '--directory', dir, ...(quiet ? ['--loglevel=error'] : []), ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
  const r = spawnSync(process.execPath, args, { stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
  if (r.status !== 0) {
    console.error(`setup: building ${what} failed (exit ${r.status ?? r.signal})`);
    return 1;
  }
  return 0;
}
