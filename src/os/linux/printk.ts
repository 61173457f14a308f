/**
 * The Linux kernel log (dmesg) of a dump, read the way makedumpfile --dump-dmesg does: from the
 * lockless printk ring buffer (Linux 5.10+), located and laid out entirely by VMCOREINFO, so no
 * vmlinux or DWARF is needed.
 *
 *   SYMBOL(prb)               -> struct printk_ringbuffer *prb
 *   printk_ringbuffer         { desc_ring: prb_desc_ring, text_data_ring: prb_data_ring, ... }
 *   prb_desc_ring             { count_bits: u32, descs: prb_desc *, infos: printk_info *,
 *                               head_id: ulong, tail_id: ulong }
 *   prb_desc                  { state_var: ulong (state in bits 63..62, id below),
 *                               text_blk_lpos: { begin: ulong, next: ulong } }
 *   printk_info               { seq: u64, ts_nsec: u64, text_len: u16, caller_id: u32 }
 *   prb_data_ring             { size_bits: u32, data: char *, head_lpos, tail_lpos }
 *
 * A record's text lives in the data ring at DATA_INDEX(begin), after the record's id (one ulong);
 * a record that wraps starts at index 0 instead. Every offset and size comes from OFFSET(...) and
 * SIZE(...) lines; a missing one is reported by name.
 */

import { errors } from '../../common/errors.js';
import type { Target } from '../target.js';
import type { Vmcoreinfo } from './kernel-notes.js';

export interface PrintkRecord {
  readonly seq: bigint;
  /** Nanoseconds since boot. */
  readonly tsNsec: bigint;
  readonly text: string;
}

const STATE_COMMITTED = 1n;
const STATE_FINALIZED = 2n;
const ID_MASK = (1n << 62n) - 1n;

export function readPrintkLog(target: Target, vi: Vmcoreinfo | undefined, thread?: number): PrintkRecord[] {
  if (!vi) throw errors.notFound(`${target.name} has no VMCOREINFO note: the kernel log's layout is unknown`);
  const need = (kind: 'OFFSET' | 'SIZE', name: string): bigint => {
    const v = vi.get(`${kind}(${name})`);
    if (v === undefined || !/^\d+$/.test(v)) {
      throw errors.notFound(`VMCOREINFO has no ${kind}(${name}): the kernel predates the lockless printk ring buffer (Linux 5.10) or does not describe it`);
    }
    return BigInt(v);
  };
  const prbVar = vi.symbol('prb');
  if (prbVar === undefined) throw errors.notFound('VMCOREINFO has no SYMBOL(prb): the kernel predates the lockless printk ring buffer (Linux 5.10)');
  const u64 = (a: bigint) => target.readVirtual(a, 8, thread).readBigUInt64LE(0);
  const u32 = (a: bigint) => BigInt(target.readVirtual(a, 4, thread).readUInt32LE(0));
  const u16 = (a: bigint) => target.readVirtual(a, 2, thread).readUInt16LE(0);

  const prb = u64(prbVar);
  const descRing = prb + need('OFFSET', 'printk_ringbuffer.desc_ring');
  const textRing = prb + need('OFFSET', 'printk_ringbuffer.text_data_ring');
  const countBits = u32(descRing + need('OFFSET', 'prb_desc_ring.count_bits'));
  const descs = u64(descRing + need('OFFSET', 'prb_desc_ring.descs'));
  const infos = u64(descRing + need('OFFSET', 'prb_desc_ring.infos'));
  const headId = u64(descRing + need('OFFSET', 'prb_desc_ring.head_id')) & ID_MASK;
  const tailId = u64(descRing + need('OFFSET', 'prb_desc_ring.tail_id')) & ID_MASK;
  const sizeBits = u32(textRing + need('OFFSET', 'prb_data_ring.size_bits'));
  const data = u64(textRing + need('OFFSET', 'prb_data_ring.data'));
  if (countBits > 30n || sizeBits > 40n) {
    throw errors.corrupt(target.name, `printk ring buffer at 0x${prb.toString(16)} claims 2^${countBits} records and 2^${sizeBits} bytes of text: not a ring buffer`);
  }
  const count = 1n << countBits;
  const dataSize = 1n << sizeBits;
  const descSize = need('SIZE', 'prb_desc');
  const infoSize = need('SIZE', 'printk_info');
  const offState = need('OFFSET', 'prb_desc.state_var');
  const offLpos = need('OFFSET', 'prb_desc.text_blk_lpos');
  const offBegin = need('OFFSET', 'prb_data_blk_lpos.begin');
  const offNext = need('OFFSET', 'prb_data_blk_lpos.next');
  const offSeq = need('OFFSET', 'printk_info.seq');
  const offTs = need('OFFSET', 'printk_info.ts_nsec');
  const offLen = need('OFFSET', 'printk_info.text_len');

  const out: PrintkRecord[] = [];
  let id = tailId;
  for (let n = 0n; n < count; n++) {
    const index = id & (count - 1n);
    const desc = descs + index * descSize;
    const sv = u64(desc + offState);
    const state = sv >> 62n;
    if ((sv & ID_MASK) === id && (state === STATE_COMMITTED || state === STATE_FINALIZED)) {
      const begin = u64(desc + offLpos + offBegin);
      const next = u64(desc + offLpos + offNext);
      const info = infos + index * infoSize;
      const textLen = u16(info + offLen);
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
          text = target.readVirtual(data + start + 8n, len, thread).toString('utf8');
        }
      }
      out.push({ seq: u64(info + offSeq), tsNsec: u64(info + offTs), text });
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
