/**
 * Where the .ko files of a kernel's modules are on this machine: `--modules DIR` first, then the
 * trees a distribution installs for release R, in this order:
 *
 *   /usr/lib/debug/lib/modules/R/   Debian's linux-image-*-dbg: the .ko files with their DWARF
 *   /lib/modules/R/                 the installed kernel's modules (symbol tables, no DWARF)
 *
 * The distribution's trees are found through /lib/modules/R/modules.dep (`kernel/…/name.ko: deps`,
 * the same relative path in both trees): one 100 KB read instead of a walk of two thousand files.
 * DIR, or a tree without modules.dep, is walked once (file names only, recursively; symbolic links
 * are not followed). Nothing is read before the first lookup.
 *
 * The kernel names a module after its file with '-' turned into '_' (snd-hda-intel.ko is
 * snd_hda_intel). Compressed modules (.ko.xz, .ko.zst, .ko.gz) are noted so that a message can
 * name them, and not read.
 */

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DbgError } from '../../common/errors.js';

const MAX_FILES = 200_000;
const DEBUG_TREE = '/usr/lib/debug/lib/modules';
const MODULES_TREE = '/lib/modules';

export class ModuleFiles {
  private index?: { byName: Map<string, string>; compressed: Map<string, string>; dep: Map<string, string> };

  private constructor(
    /** --modules DIR, walked. */
    private readonly given: string | undefined,
    /** The distribution's trees for the dump's release that exist, debug tree first. */
    private readonly trees: readonly string[],
  ) {}

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
    const safe = release !== undefined && release !== '' && !release.includes('/') && !release.startsWith('.');
    const trees = safe ? [join(DEBUG_TREE, release), join(MODULES_TREE, release)].filter(isDirectory) : [];
    return new ModuleFiles(dir, trees);
  }

  /** The .ko of module `name`, or undefined. */
  ko(name: string): string | undefined {
    const f = this.files();
    const n = moduleName(name);
    const found = f.byName.get(n);
    if (found) return found;
    // modules.dep's path, from the first tree that has the file (the debug tree before the other)
    const rel = f.dep.get(n);
    return rel === undefined ? undefined : this.trees.map((t) => join(t, rel)).find((p) => existsSync(p));
  }

  /** A compressed .ko of module `name` that dbg does not read, for a message. */
  compressedKo(name: string): string | undefined {
    return this.files().compressed.get(moduleName(name));
  }

  private files(): { byName: Map<string, string>; compressed: Map<string, string>; dep: Map<string, string> } {
    if (this.index) return this.index;
    const byName = new Map<string, string>();
    const compressed = new Map<string, string>();
    const dep = new Map<string, string>();
    const note = (file: string, path: string) => {
      if (file.endsWith('.ko')) {
        const name = moduleName(file.slice(0, -3));
        if (!byName.has(name)) byName.set(name, path);
        return;
      }
      const m = /^(.*)\.ko\.(xz|zst|gz)$/.exec(file);
      if (m && !compressed.has(moduleName(m[1]!))) compressed.set(moduleName(m[1]!), path);
    };
    if (this.given !== undefined) walk(this.given, note);
    const depFile = this.trees.map((t) => join(t, 'modules.dep')).find((p) => existsSync(p));
    if (depFile) {
      for (const line of readFileSync(depFile, 'latin1').split('\n')) {
        const rel = line.slice(0, line.indexOf(':'));
        if (!rel || rel.startsWith('/') || rel.includes('..')) continue;
        const file = rel.slice(rel.lastIndexOf('/') + 1);
        if (file.endsWith('.ko')) {
          const name = moduleName(file.slice(0, -3));
          if (!dep.has(name)) dep.set(name, rel);
        } else note(file, join(this.trees.find((t) => t.startsWith(MODULES_TREE)) ?? this.trees[0]!, rel));
      }
    } else for (const t of this.trees) walk(t, note);
    return (this.index = { byName, compressed, dep });
  }
}

/** Every regular file under `root` (recursively), as (file name, path). */
function walk(root: string, each: (file: string, path: string) => void): void {
  let files = 0;
  const visit = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // an unreadable subdirectory: its modules are not found, the rest are
    }
    for (const e of entries) {
      if (++files > MAX_FILES) throw new DbgError('bad-input', `module directory ${root}: more than ${MAX_FILES} entries; give the directory of one kernel's modules`);
      const p = join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) each(e.name, p);
    }
  };
  visit(root);
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function moduleName(file: string): string {
  return file.replace(/-/g, '_');
}
