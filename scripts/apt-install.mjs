// What the opt-in Linux scripts (setup-vmlinux.mjs, make-linux-dumps.mjs) install from Debian's
// archive: only the packages dpkg does not already have, through apt-get (as root, or through
// sudo), so that a fresh machine can run them and an equipped one is not touched.

import { spawnSync } from 'node:child_process';

const asRoot = process.getuid?.() === 0 ? [] : ['sudo'];

/** Whether dpkg has `pkg` installed. */
export function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Runs apt-get with `args`; on failure says so through `say` and exits 1. */
export function aptGet(args, say) {
  const cmd = [...asRoot, 'apt-get', ...args];
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) {
    say(`"${cmd.join(' ')}" failed (exit ${r.status ?? r.signal}); install ${args.filter((a) => !a.startsWith('-')).slice(1).join(' ')} by hand`);
    process.exit(1);
  }
}

/** Installs those of `pkgs` that are missing (one apt-get update first, when any is). */
export function aptInstall(pkgs, say) {
  const missing = pkgs.filter((p) => !installed(p));
  if (missing.length === 0) return;
  say(`installing ${missing.join(', ')}`);
  aptGet(['update', '-qq'], say);
  aptGet(['install', '-y', '-qq', ...missing], say);
}
