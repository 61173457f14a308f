import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { DbgError } from './errors.js';

/**
 * Random access to the bytes of a file without reading the whole of it.
 *
 * Every reader of dumps and ELF files goes through a ByteSource: opening a multi-GiB core costs
 * what its headers cost. Reads are positional (pread) through a small LRU cache of aligned pages,
 * so the many small reads of a page-table walk or a symbol-table scan do not each reach the kernel.
 *
 * Offsets and lengths are numbers: files above 2^53 bytes are not a concern.
 */
export interface ByteSource {
  /** A name for messages: the file's path as the user gave it. */
  readonly name: string;
  readonly size: number;
  /**
   * The `length` bytes at `offset`. Throws DbgError('corrupt') when the range runs past the end:
   * a reader that asks for bytes a header promised has found a truncated or lying file.
   */
  read(offset: number, length: number): Buffer;
  /** Like read, but returns only the bytes that exist (possibly fewer, possibly none). */
  readUpTo(offset: number, length: number): Buffer;
  /**
   * Reads `length` bytes at `offset` straight into `target` at `at`, past any cache (for large
   * or scattered reads that a page cache would only churn). Optional; throws as read does.
   */
  readInto?(offset: number, target: Buffer, at: number, length: number): void;
  close(): void;
}

const PAGE = 64 * 1024;
const CACHE_PAGES = 256; // 16 MiB at most

/**
 * Cache geometry. The default (64 KiB pages) suits mostly sequential readers; a reader that jumps
 * around a large file (a kernel dump's page walks and random structure reads) does better with
 * small pages, e.g. { pageBytes: 4096, cachePages: 4096 }.
 */
export interface ByteSourceOptions {
  readonly pageBytes?: number;
  readonly cachePages?: number;
}

export class FileByteSource implements ByteSource {
  readonly size: number;
  private fd: number | undefined;
  private readonly cache = new Map<number, Buffer>();
  private readonly pageBytes: number;
  private readonly cachePages: number;

  private constructor(
    readonly name: string,
    fd: number,
    opts: ByteSourceOptions = {},
  ) {
    this.fd = fd;
    this.size = fstatSync(fd).size;
    this.pageBytes = opts.pageBytes ?? PAGE;
    this.cachePages = opts.cachePages ?? CACHE_PAGES;
  }

  static open(path: string, opts?: ByteSourceOptions): FileByteSource {
    let fd: number;
    try {
      // Non-blocking: opening a FIFO (named in a dump or a trace) must not wait for a writer.
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message;
      throw new DbgError(err.code === 'ENOENT' ? 'not-found' : 'io', `cannot open "${path}": ${why}`);
    }
    try {
      const st = fstatSync(fd);
      if (st.isDirectory()) throw new DbgError('bad-input', `cannot open "${path}": it is a directory`);
      // Positional reads need a file with a size: a FIFO, socket or device has none.
      if (!st.isFile()) throw new DbgError('bad-input', `cannot open "${path}": it is ${st.isFIFO() ? 'a FIFO' : st.isSocket() ? 'a socket' : 'a device'}, not a regular file`);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return new FileByteSource(path, fd, opts);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DbgError(
        'corrupt',
        `${this.name}: read of ${length} bytes at file offset 0x${offset.toString(16)} runs past the end of the file (size 0x${this.size.toString(16)}); the file is truncated or a header lies`,
      );
    }
    return this.readUpTo(offset, length);
  }

  readUpTo(offset: number, length: number): Buffer {
    if (offset < 0 || offset >= this.size || length <= 0) return Buffer.alloc(0);
    const end = Math.min(this.size, offset + length);
    const firstPage = Math.floor(offset / this.pageBytes);
    const lastPage = Math.floor((end - 1) / this.pageBytes);
    if (firstPage === lastPage) {
      const page = this.page(firstPage);
      const start = offset - firstPage * this.pageBytes;
      return page.subarray(start, start + (end - offset));
    }
    if (end - offset > this.pageBytes * 4) return this.direct(offset, end - offset);
    const out = Buffer.allocUnsafe(end - offset);
    let pos = offset;
    while (pos < end) {
      const p = Math.floor(pos / this.pageBytes);
      const page = this.page(p);
      const start = pos - p * this.pageBytes;
      const n = Math.min(page.length - start, end - pos);
      page.copy(out, pos - offset, start, start + n);
      pos += n;
    }
    return out;
  }

  readInto(offset: number, target: Buffer, at: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size || at + length > target.length) {
      throw new DbgError('corrupt', `${this.name}: read of ${length} bytes at file offset 0x${offset.toString(16)} runs past the end of the file (size 0x${this.size.toString(16)}); the file is truncated or a header lies`);
    }
    if (this.fd === undefined) throw new DbgError('io', `${this.name}: read after close`);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, target, at + done, length - done, offset + done);
      if (n <= 0) throw new DbgError('io', `${this.name}: file ended at offset 0x${(offset + done).toString(16)} while reading`);
      done += n;
    }
  }

  /**
   * The open file descriptor, for native code that reads the file itself (positional reads only;
   * it stays owned by this source and is closed with it). Undefined once closed.
   */
  descriptor(): number | undefined {
    return this.fd;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.cache.clear();
  }

  private page(index: number): Buffer {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index);
      this.cache.set(index, hit);
      return hit;
    }
    const start = index * this.pageBytes;
    const buf = this.direct(start, Math.min(this.pageBytes, this.size - start));
    this.cache.set(index, buf);
    if (this.cache.size > this.cachePages) this.cache.delete(this.cache.keys().next().value as number);
    return buf;
  }

  private direct(offset: number, length: number): Buffer {
    if (this.fd === undefined) throw new DbgError('state', `${this.name} is closed`);
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return done === length ? buf : buf.subarray(0, done);
  }
}

/** A ByteSource over bytes already in memory (hand-built ELF images in tests, decompressed blobs). */
export class BufferByteSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly name: string,
    private readonly buf: Buffer,
  ) {
    this.size = buf.length;
  }
  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new DbgError(
        'corrupt',
        `${this.name}: read of ${length} bytes at file offset 0x${offset.toString(16)} runs past the end of the file (size 0x${this.size.toString(16)}); the file is truncated or a header lies`,
      );
    }
    return this.buf.subarray(offset, offset + length);
  }
  readUpTo(offset: number, length: number): Buffer {
    if (offset < 0 || offset >= this.size || length <= 0) return Buffer.alloc(0);
    return this.buf.subarray(offset, Math.min(this.size, offset + length));
  }
  close(): void {}
}
