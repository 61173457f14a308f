/**
 * `::dump FILE` of a live process: an ELF core in the layout gdb's gcore writes, which gdb and
 * `dbg open` (ProcessCoreTarget) read.
 *
 *   0x0    ELF64 header (ET_CORE, EM_X86_64)
 *   0x40   program headers: PT_NOTE, then one PT_LOAD per mapping of /proc/PID/maps
 *   ...    notes: NT_PRPSINFO, then per thread NT_PRSTATUS + NT_FPREGSET (+ NT_X86_XSTATE),
 *          then NT_AUXV and NT_FILE (the mapped files, so that symbols are found)
 *   ...    each mapping's bytes, page-aligned; a mapping that cannot be read (no permissions,
 *          [vvar]) has p_filesz 0, as gcore leaves it
 *
 * NT_PRSTATUS (336 bytes on x86-64): pr_pid at 32, pr_ppid 36, pr_pgrp 40, pr_sid 44, pr_reg
 * (user_regs_struct, 27 words) at 112, pr_fpvalid at 328.
 */

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { DbgError } from '../../common/errors.js';
import type { ProcessTarget } from './process-target.js';
import { note } from '../elfcore/kernel-vmcore-writer.js';

const PAGE = 4096;
const NT_PRSTATUS = 1;
const NT_FPREGSET = 2;
const NT_PRPSINFO = 3;
const NT_AUXV = 6;
const NT_FILE = 0x46494c45;
const NT_X86_XSTATE = 0x202;
const PT_LOAD = 1;
const PT_NOTE = 4;
const SLICE = 1 << 20;

export function writeProcessCore(t: ProcessTarget, path: string): void {
  const maps = t.mappings().filter((m) => m.name !== '[vsyscall]');
  const status = readProc(t.pid, 'stat');
  const statFields = status.slice(status.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(statFields[1] ?? 0);
  const pgrp = Number(statFields[2] ?? 0);
  const sid = Number(statFields[3] ?? 0);

  const notes: Buffer[] = [];
  const ps = Buffer.alloc(136);
  ps[0] = 3; // TASK_STOPPED-ish, as gcore writes for a stopped process
  ps[1] = 't'.charCodeAt(0);
  ps.writeInt32LE(t.pid, 24);
  ps.writeInt32LE(ppid, 28);
  ps.writeInt32LE(pgrp, 32);
  ps.writeInt32LE(sid, 36);
  const comm = readProc(t.pid, 'comm').trim();
  ps.write(comm.slice(0, 15), 40, 'latin1');
  const cmdline = readProc(t.pid, 'cmdline').replace(/\0/g, ' ').trim();
  ps.write(cmdline.slice(0, 79), 56, 'latin1');
  notes.push(note('CORE', NT_PRPSINFO, ps));
  const threads = t.threads();
  // The thread that stopped first, as gcore puts the current thread first.
  const cur = t.status().thread;
  threads
    .slice()
    .sort((a, b) => (a.index === cur ? -1 : b.index === cur ? 1 : a.index - b.index))
    .forEach((th) => {
      const st = t.threadState(th.index);
      const pr = Buffer.alloc(336);
      pr.writeInt32LE(th.tid, 32);
      pr.writeInt32LE(ppid, 36);
      pr.writeInt32LE(pgrp, 40);
      pr.writeInt32LE(sid, 44);
      st.gp.copy(pr, 112);
      pr.writeInt32LE(1, 328);
      notes.push(note('CORE', NT_PRSTATUS, pr));
      notes.push(note('CORE', NT_FPREGSET, st.xsave.subarray(0, 512)));
      if (st.xsave.length > 512) notes.push(note('LINUX', NT_X86_XSTATE, st.xsave));
    });
  notes.push(note('CORE', NT_AUXV, t.auxv()));
  const files = maps.filter((m) => m.name.startsWith('/'));
  const strings = files.map((m) => Buffer.from(`${m.name}\0`, 'utf8'));
  const fileNote = Buffer.alloc(16 + files.length * 24 + strings.reduce((n, s) => n + s.length, 0));
  fileNote.writeBigUInt64LE(BigInt(files.length), 0);
  fileNote.writeBigUInt64LE(BigInt(PAGE), 8);
  files.forEach((m, i) => {
    fileNote.writeBigUInt64LE(m.start, 16 + i * 24);
    fileNote.writeBigUInt64LE(m.end, 24 + i * 24);
    fileNote.writeBigUInt64LE((m.fileOffset ?? 0n) / BigInt(PAGE), 32 + i * 24);
  });
  let so = 16 + files.length * 24;
  for (const s of strings) {
    s.copy(fileNote, so);
    so += s.length;
  }
  notes.push(note('CORE', NT_FILE, fileNote));
  const noteBytes = Buffer.concat(notes);

  const phnum = 1 + maps.length;
  const headerEnd = 64 + phnum * 56;
  let off = Math.ceil((headerEnd + noteBytes.length) / PAGE) * PAGE;
  const readable = maps.map((m) => m.perms[0] === 'r' && m.name !== '[vvar]' && m.name !== '[vvar_vclock]');
  const offsets = maps.map((m, i) => {
    const o = off;
    if (readable[i]) off += Number(m.end - m.start);
    return o;
  });

  const eh = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(eh, 0);
  eh.writeUInt16LE(4, 16); // ET_CORE
  eh.writeUInt16LE(62, 18); // EM_X86_64
  eh.writeUInt32LE(1, 20);
  eh.writeBigUInt64LE(64n, 32); // e_phoff
  eh.writeUInt16LE(64, 52);
  eh.writeUInt16LE(56, 54);
  eh.writeUInt16LE(phnum, 56);
  eh.writeUInt16LE(64, 58);
  const ph = Buffer.alloc(phnum * 56);
  ph.writeUInt32LE(PT_NOTE, 0);
  ph.writeBigUInt64LE(BigInt(headerEnd), 8);
  ph.writeBigUInt64LE(BigInt(noteBytes.length), 32);
  ph.writeBigUInt64LE(BigInt(noteBytes.length), 40);
  maps.forEach((m, i) => {
    const o = (i + 1) * 56;
    const flags = (m.perms[0] === 'r' ? 4 : 0) | (m.perms[1] === 'w' ? 2 : 0) | (m.perms[2] === 'x' ? 1 : 0);
    ph.writeUInt32LE(PT_LOAD, o);
    ph.writeUInt32LE(flags, o + 4);
    ph.writeBigUInt64LE(BigInt(offsets[i]!), o + 8);
    ph.writeBigUInt64LE(m.start, o + 16);
    ph.writeBigUInt64LE(readable[i] ? m.end - m.start : 0n, o + 32);
    ph.writeBigUInt64LE(m.end - m.start, o + 40);
    ph.writeBigUInt64LE(BigInt(PAGE), o + 48);
  });

  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw new DbgError('io', `::dump ${path}: ${(e as Error).message}`);
  }
  try {
    writeSync(fd, eh, 0, eh.length, 0);
    writeSync(fd, ph, 0, ph.length, 64);
    writeSync(fd, noteBytes, 0, noteBytes.length, headerEnd);
    maps.forEach((m, i) => {
      if (!readable[i]) return;
      const size = Number(m.end - m.start);
      for (let at = 0; at < size; at += SLICE) {
        const n = Math.min(SLICE, size - at);
        let bytes: Buffer;
        try {
          bytes = t.readVirtual(m.start + BigInt(at), n);
        } catch {
          bytes = readPages(t, m.start + BigInt(at), n);
        }
        writeSync(fd, bytes, 0, n, offsets[i]! + at);
      }
    });
  } finally {
    closeSync(fd);
  }
}

/** Page by page, zeros where a page cannot be read (a file mapping past the file's end). */
function readPages(t: ProcessTarget, addr: bigint, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let o = 0; o < n; o += PAGE) {
    try {
      t.readVirtual(addr + BigInt(o), Math.min(PAGE, n - o)).copy(out, o);
    } catch {
      // left zero
    }
  }
  return out;
}

function readProc(pid: number, what: string): string {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'latin1');
  } catch {
    return '';
  }
}
