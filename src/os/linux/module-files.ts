/**
 * Where the .ko files of a kernel's modules are on this machine: `--modules DIR` first, then the
 * trees a distribution installs for release R, in this order:
 *
 *   /usr/lib/debug/lib/modules/R/   Debian's linux-image-*-dbg: the .ko files with their DWARF
 *   /lib/modules/R/                 the installed kernel's modules (symbol tables, no DWARF)
 *
 * A tree is indexed once (file names only, recursively; symbolic links are not followed) by
 * module name: the kernel names a module after its file with '-' turned into '_'
 * (snd-hda-intel.ko is snd_hda_intel). Compressed modules (.ko.xz, .ko.zst, .ko.gz) are noted so
 * that a message can name them, and not read.
 */

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DbgError } from '../../common/errors.js';

const MAX_FILES = 200_000;

export class ModuleFiles {
  private readonly byName = new Map<string, string>();
  private readonly compressed = new Map<string, string>();

  private constructor(readonly dirs: readonly string[]) {
    let files = 0;
    for (const d of dirs) {
      const walk = (dir: string) => {
        let entries;
        try {
          entries = readdirSync(dir, { withFileTypes: true });
        } catch {
          return; // an unreadable subdirectory: its modules are not found, the rest are
        }
        for (const e of entries) {
          if (++files > MAX_FILES) throw new DbgError('bad-input', `module directory ${d}: more than ${MAX_FILES} entries; give the directory of one kernel's modules`);
          const p = join(dir, e.name);
          if (e.isDirectory()) walk(p);
          else if (!e.isFile()) continue;
          else if (e.name.endsWith('.ko')) {
            const name = moduleName(e.name.slice(0, -3));
            if (!this.byName.has(name)) this.byName.set(name, p);
          } else {
            const m = /^(.*)\.ko\.(xz|zst|gz)$/.exec(e.name);
            if (m && !this.compressed.has(moduleName(m[1]!))) this.compressed.set(moduleName(m[1]!), p);
          }
        }
      };
      walk(d);
    }
  }

  /**
   * The files of `dir` (--modules: it must be a directory), then of the distribution's trees for
   * `release` that exist.
   */
  static find(dir: string | undefined, release: string | undefined): ModuleFiles {
    if (dir !== undefined) {
      let isDir: boolean;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        throw new DbgError('not-found', `--modules ${dir}: no such directory`);
      }
      if (!isDir) throw new DbgError('bad-input', `--modules ${dir}: not a directory (give the directory that holds the .ko files)`);
    }
    const given = dir !== undefined ? [dir] : [];
    if (!release || release.includes('/') || release.startsWith('.')) return new ModuleFiles(given);
    const trees = [join('/usr/lib/debug/lib/modules', release), join('/lib/modules', release)].filter((d) => {
      try {
        return statSync(d).isDirectory();
      } catch {
        return false;
      }
    });
    return new ModuleFiles([...given, ...trees]);
  }

  /** The .ko of module `name`, or undefined. */
  ko(name: string): string | undefined {
    return this.byName.get(moduleName(name));
  }

  /** A compressed .ko of module `name` that dbg does not read, for a message. */
  compressedKo(name: string): string | undefined {
    return this.compressed.get(moduleName(name));
  }

  get size(): number {
    return this.byName.size;
  }
}

function moduleName(file: string): string {
  return file.replace(/-/g, '_');
}
