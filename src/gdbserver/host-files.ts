/**
 * gdb's host I/O (vFile) and qXfer:exec-file, read-only: what `gdb -ex 'target remote :PORT'` with
 * no file of its own needs to find the executable or kernel and its libraries.
 *
 * Safe by default: a client may open only the files the target itself names (the files its
 * modules were loaded from: executable, libraries, kernel symbol file), by that path or by the
 * path the target recorded (a library found under --sysroot is asked for by its path in the core).
 * A live process's own /proc files that gdb reads as it would from gdbserver (its maps, for the
 * vDSO's range and gcore; cmdline, status, stat for `info proc`) open too, but not its environ or mem.
 * Any other path is refused with EACCES unless the user started dbg with --gdb-allow-host-io; even
 * then nothing is ever written, and only regular files open.
 *
 * Replies (gdb's File-I/O): `F<result>[,<errno>][;<binary data>]`, errno numbers from gdb's
 * fileio.h (not the host's).
 */

import { closeSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Target } from '../targets/target.js';

/** gdb's File-I/O errno values. */
export const FILEIO = { EPERM: 1, ENOENT: 2, EBADF: 9, EACCES: 13, EINVAL: 22, EMFILE: 24, ENOSYS: 88 } as const;

/** Open files one client may hold, so a client cannot exhaust dbg's descriptors. */
const MAX_OPEN = 32;

export class HostFiles {
  private readonly open = new Map<number, { fd: number; path: string }>();
  private nextFd = 1;

  constructor(
    private readonly target: Target,
    private readonly allowAny: boolean,
  ) {}

  /** The path gdb should load as the program: the first module's file (executable or kernel). */
  execFile(): string | undefined {
    const path = this.target.symbols.modules[0]?.path;
    return path === undefined ? undefined : resolvePath(path);
  }

  /** `vFile:open`: only O_RDONLY (flags 0); the file to serve for `path`, or an errno. */
  openFile(path: string, flags: number): string {
    if ((flags & 3) !== 0) return fileError(FILEIO.EACCES); // read-only, whatever the flag
    if (this.open.size >= MAX_OPEN) return fileError(FILEIO.EMFILE);
    const file = this.resolve(path);
    if (file === undefined) return fileError(FILEIO.EACCES);
    let fd: number;
    try {
      if (!statSync(file).isFile()) return fileError(FILEIO.EACCES);
      fd = openSync(file, 'r');
    } catch (e) {
      return fileError((e as NodeJS.ErrnoException).code === 'ENOENT' ? FILEIO.ENOENT : FILEIO.EACCES);
    }
    const handle = this.nextFd++;
    this.open.set(handle, { fd, path: file });
    return `F${handle.toString(16)}`;
  }

  /** `vFile:pread`: `F<count>;<bytes>` as a latin1 string (the framing escapes it). */
  pread(handle: number, count: number, offset: number): string {
    const f = this.open.get(handle);
    if (!f) return fileError(FILEIO.EBADF);
    const buf = Buffer.alloc(count);
    let n: number;
    try {
      n = readSync(f.fd, buf, 0, count, offset);
    } catch {
      return fileError(FILEIO.EINVAL);
    }
    return `F${n.toString(16)};${buf.subarray(0, n).toString('latin1')}`;
  }

  /** `vFile:fstat`: gdb's struct stat, 64 big-endian bytes (see gdb's "struct stat" in File-I/O). */
  fstat(handle: number): string {
    const f = this.open.get(handle);
    if (!f) return fileError(FILEIO.EBADF);
    const st = fstatSync(f.fd);
    const b = Buffer.alloc(64);
    b.writeUInt32BE(Number(st.dev) >>> 0, 0);
    b.writeUInt32BE(Number(st.ino) >>> 0, 4);
    b.writeUInt32BE(st.mode >>> 0, 8);
    b.writeUInt32BE(st.nlink >>> 0, 12);
    b.writeUInt32BE(st.uid >>> 0, 16);
    b.writeUInt32BE(st.gid >>> 0, 20);
    b.writeUInt32BE(Number(st.rdev) >>> 0, 24);
    b.writeBigUInt64BE(BigInt(st.size), 28);
    b.writeBigUInt64BE(BigInt(st.blksize), 36);
    b.writeBigUInt64BE(BigInt(st.blocks), 44);
    b.writeUInt32BE(Math.floor(st.atimeMs / 1000) >>> 0, 52);
    b.writeUInt32BE(Math.floor(st.mtimeMs / 1000) >>> 0, 56);
    b.writeUInt32BE(Math.floor(st.ctimeMs / 1000) >>> 0, 60);
    return `F${b.length.toString(16)};${b.toString('latin1')}`;
  }

  close(handle: number): string {
    const f = this.open.get(handle);
    if (!f) return fileError(FILEIO.EBADF);
    this.open.delete(handle);
    closeSync(f.fd);
    return 'F0';
  }

  /** Close everything this client opened (it left). */
  closeAll(): void {
    for (const f of this.open.values()) closeSync(f.fd);
    this.open.clear();
  }

  /**
   * The host file that `path` names: a module's file, asked for by its own path or by the path
   * the target recorded for it (the module's path ends with it: found under a sysroot); any
   * regular file only with --gdb-allow-host-io.
   */
  private resolve(path: string): string | undefined {
    if (!path.startsWith('/') || path.includes('\0')) return undefined;
    const pid = this.target.caps.processControl?.pid;
    if (pid !== undefined && new RegExp(`^/proc/${pid}/(task/\\d+/)?(maps|smaps|cmdline|status|stat|comm|auxv)$`).test(path)) return path;
    for (const m of this.target.symbols.modules) {
      const file = resolvePath(m.path); // a module given on the command line may be relative
      if (file === path || file.endsWith(path)) return file;
      try {
        if (realpathSync(file) === path) return file;
      } catch {
        // the module's file is gone: it cannot be served
      }
    }
    return this.allowAny ? path : undefined;
  }
}

function fileError(errno: number): string {
  return `F-1,${errno.toString(16)}`;
}
