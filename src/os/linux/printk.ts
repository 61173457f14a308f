/**
 * The Linux kernel log (dmesg) of a dump, read from the lockless printk ring buffer (Linux 5.10+)
 * as makedumpfile --dump-dmesg and drgn do. The layout comes from the dump's VMCOREINFO (no vmlinux
 * needed) or, without it, from vmlinux's types; a record's level and flags only from the types
 * (VMCOREINFO does not describe them).
 *
 *   prb                       -> struct printk_ringbuffer *prb (SYMBOL(prb), or vmlinux's prb)
 *   printk_ringbuffer         { desc_ring: prb_desc_ring, text_data_ring: prb_data_ring, ... }
 *   prb_desc_ring             { count_bits: u32, descs: prb_desc *, infos: printk_info *,
 *                               head_id: ulong, tail_id: ulong }
 *   prb_desc                  { state_var: ulong (state in bits 63..62, id below),
 *                               text_blk_lpos: { begin: ulong, next: ulong } }
 *   printk_info               { seq: u64, ts_nsec: u64, text_len: u16, facility: u8,
 *                               flags: 5 bits, level: 3 bits, caller_id: u32 }
 *   prb_data_ring             { size_bits: u32, data: char *, head_lpos, tail_lpos }
 *
 * A record's text lives in the data ring at DATA_INDEX(begin), after the record's id (one ulong);
 * a record that wraps starts at index 0 instead. A missing offset is reported by name; a ring that
 * becomes unreadable part-way gives the records before it and says where it stopped.
 */

import { DbgError, errors } from '../../common/errors.js';
import { followPath } from '../../types/print-value.js';
import { sizeOf } from '../../types/type.js';
import type { ObjectSpace } from '../../types/typed-object.js';
import type { LinuxPort } from './port.js';

export interface PrintkRecord {
  readonly seq: bigint;
  /** Nanoseconds since boot. */
  readonly tsNsec: bigint;
  readonly text: string;
  /** 0 (emerg) .. 7 (debug), when vmlinux's types say where it is. */
  readonly level?: number;
  readonly facility?: number;
  /** LOG_NEWLINE 2, LOG_CONT 8. */
  readonly flags?: number;
}

export const LEVEL_NAMES = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'] as const;

const STATE_COMMITTED = 1n;
const STATE_FINALIZED = 2n;
const ID_MASK = (1n << 62n) - 1n;

type Bits = { readonly at: bigint; readonly shift: number; readonly bits: number };

/** Offsets and sizes by VMCOREINFO names (`printk_info.seq`), from VMCOREINFO or vmlinux's types. */
interface Layout {
  offset(name: string): bigint;
  size(name: string): bigint;
  /** A bit field of printk_info (level, flags) or a byte (facility); undefined without types. */
  field(name: string): Bits | undefined;
  readonly from: string;
}

function vmcoreinfoLayout(port: LinuxPort, levels: boolean): Layout | undefined {
  const vi = port.vmcoreinfo;
  if (!vi || vi.get('OFFSET(printk_ringbuffer.desc_ring)') === undefined) return undefined;
  const objects = levels ? typesIfAny(port) : undefined;
  const need = (kind: 'OFFSET' | 'SIZE', name: string): bigint => {
    const v = vi.get(`${kind}(${name})`);
    if (v === undefined || !/^\d+$/.test(v)) {
      throw errors.notFound(`VMCOREINFO has no ${kind}(${name}): the kernel predates the lockless printk ring buffer (Linux 5.10) or does not describe it`);
    }
    return BigInt(v);
  };
  return {
    offset: (n) => need('OFFSET', n),
    size: (n) => need('SIZE', n),
    field: (n) => (objects ? typeField(objects, n) : undefined),
    from: 'VMCOREINFO',
  };
}

function typesIfAny(port: LinuxPort): ObjectSpace | undefined {
  const o = port.objects();
  return o?.types.find('struct printk_ringbuffer') ? o : undefined;
}

function typeField(o: ObjectSpace, name: string): Bits | undefined {
  const [struct, member] = name.split('.') as [string, string];
  const t = o.types.find(`struct ${struct}`);
  if (!t) return undefined;
  try {
    const r = followPath(t, 0n, member, undefined);
    return { at: r.addr, shift: r.bitShift, bits: r.bitSize ?? (sizeOf(r.type) ?? 1) * 8 };
  } catch {
    return undefined;
  }
}

function typesLayout(o: ObjectSpace): Layout {
  const offset = (name: string): bigint => {
    const [struct, member] = name.split('.') as [string, string];
    try {
      return followPath(o.types.get(`struct ${struct}`), 0n, member, undefined).addr;
    } catch (e) {
      if (e instanceof DbgError) throw errors.notFound(`vmlinux's struct ${struct} has no member ${member}: not the printk ring buffer dbg reads (Linux 5.10+)`);
      throw e;
    }
  };
  const size = (name: string): bigint => BigInt(sizeOf(o.types.get(`struct ${name}`)) ?? 0);
  return { offset, size, field: (n) => typeField(o, n), from: "vmlinux's types" };
}

/**
 * The records, oldest first. `levels`: also read each record's level, facility and flags, which
 * takes vmlinux's types when VMCOREINFO lays the ring out (finding them in a vmlinux's DWARF costs
 * seconds, so only when asked). `onProblem`: a ring cut short gives the records before the cut
 * and a message, instead of an error.
 */
export function readPrintkLog(port: LinuxPort, onProblem?: (text: string) => void, opts: { levels?: boolean } = {}): PrintkRecord[] {
  let layout = vmcoreinfoLayout(port, opts.levels ?? false);
  if (!layout) {
    const o = typesIfAny(port);
    if (o) layout = typesLayout(o);
  }
  if (!layout) {
    if (port.vmcoreinfo?.symbol('prb') !== undefined) {
      throw errors.notFound('VMCOREINFO has no OFFSET(printk_ringbuffer.desc_ring): the kernel predates the lockless printk ring buffer (Linux 5.10) or does not describe it');
    }
    throw errors.notFound(`${port.name} has no VMCOREINFO note and no vmlinux types (--symbols vmlinux): the kernel log's layout is unknown`);
  }
  const prbVar = port.vmcoreinfo?.symbol('prb') ?? port.symbol('prb');
  if (prbVar === undefined) throw errors.notFound(`${layout.from} locates no prb: the kernel predates the lockless printk ring buffer (Linux 5.10)`);
  const u64 = (a: bigint) => port.read(a, 8).readBigUInt64LE(0);
  const u32 = (a: bigint) => BigInt(port.read(a, 4).readUInt32LE(0));
  const off = layout.offset;

  const prb = u64(prbVar);
  const descRing = prb + off('printk_ringbuffer.desc_ring');
  const textRing = prb + off('printk_ringbuffer.text_data_ring');
  const countBits = u32(descRing + off('prb_desc_ring.count_bits'));
  const descs = u64(descRing + off('prb_desc_ring.descs'));
  const infos = u64(descRing + off('prb_desc_ring.infos'));
  const headId = u64(descRing + off('prb_desc_ring.head_id')) & ID_MASK;
  const tailId = u64(descRing + off('prb_desc_ring.tail_id')) & ID_MASK;
  const sizeBits = u32(textRing + off('prb_data_ring.size_bits'));
  const data = u64(textRing + off('prb_data_ring.data'));
  if (countBits > 30n || sizeBits > 40n) {
    throw errors.corrupt(port.name, `printk ring buffer at 0x${prb.toString(16)} claims 2^${countBits} records and 2^${sizeBits} bytes of text: not a ring buffer`);
  }
  const count = 1n << countBits;
  const dataSize = 1n << sizeBits;
  const descSize = layout.size('prb_desc');
  const infoSize = layout.size('printk_info');
  const offState = off('prb_desc.state_var');
  const offLpos = off('prb_desc.text_blk_lpos');
  const offBegin = off('prb_data_blk_lpos.begin');
  const offNext = off('prb_data_blk_lpos.next');
  const offSeq = off('printk_info.seq');
  const offTs = off('printk_info.ts_nsec');
  const offLen = off('printk_info.text_len');
  const level = layout.field('printk_info.level');
  const flags = layout.field('printk_info.flags');
  const facility = layout.field('printk_info.facility');
  const bits = (info: Buffer, f: Bits | undefined): number | undefined => {
    if (!f || f.at >= BigInt(info.length)) return undefined;
    return (info[Number(f.at)]! >> f.shift) & ((1 << Math.min(f.bits, 8)) - 1);
  };

  const out: PrintkRecord[] = [];
  let id = tailId;
  for (let n = 0n; n < count; n++) {
    const index = id & (count - 1n);
    try {
      const desc = descs + index * descSize;
      const sv = u64(desc + offState);
      const state = sv >> 62n;
      if ((sv & ID_MASK) === id && (state === STATE_COMMITTED || state === STATE_FINALIZED)) {
        const begin = u64(desc + offLpos + offBegin);
        const next = u64(desc + offLpos + offNext);
        const infoAt = infos + index * infoSize;
        const info = port.read(infoAt, Number(infoSize));
        const textLen = info.readUInt16LE(Number(offLen));
        let text = '';
        if (begin !== next && textLen > 0) {
          const wrapsB = begin >> sizeBits;
          const wrapsN = next >> sizeBits;
          let start = begin & (dataSize - 1n);
          let size = (next & (dataSize - 1n)) - start;
          if (wrapsB !== wrapsN) {
            start = 0n; // the block did not fit before the end: it starts at the beginning
            size = next & (dataSize - 1n);
          }
          if (size > 8n) {
            const len = Math.min(textLen, Number(size) - 8);
            text = port.read(data + start + 8n, len).toString('utf8');
          }
        }
        out.push({
          seq: info.readBigUInt64LE(Number(offSeq)),
          tsNsec: info.readBigUInt64LE(Number(offTs)),
          text,
          level: bits(info, level),
          flags: bits(info, flags),
          facility: bits(info, facility),
        });
      }
    } catch (e) {
      if (!(e instanceof DbgError) || !onProblem) throw e;
      onProblem(`the printk ring buffer is cut short at record id ${id} (after ${out.length} records): ${e.message}`);
      return out;
    }
    if (id === headId) break;
    id = (id + 1n) & ID_MASK;
  }
  return out;
}

/** `[    3.016303] text`, as dmesg prints a record. */
export function formatPrintk(r: PrintkRecord): string {
  const sec = r.tsNsec / 1_000_000_000n;
  const usec = (r.tsNsec % 1_000_000_000n) / 1000n;
  return `[${sec.toString().padStart(5)}.${usec.toString().padStart(6, '0')}] ${r.text}`;
}
