import { describe, expect, it } from 'vitest';
import { checksum, decodePayload, encodeHexPacket, encodePacket, PacketCodec } from '../../src/gdbserver/packet-codec.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('packet codec', () => {
  it('frames a packet with its checksum', () => {
    expect(encodePacket('OK').toString()).toBe('$OK#9a');
    expect(encodePacket('').toString()).toBe('$#00');
  });

  it('escapes $ # } * in replies and the decoder undoes it', () => {
    const framed = encodePacket(b('a$b#c}d*e'));
    expect(framed.toString('latin1')).toBe('$a}\x04b}\x03c}]d}\x0ae#' + checksum(framed.subarray(1, -3)).toString(16).padStart(2, '0'));
    const [ev] = new PacketCodec(100).feed(framed);
    expect(ev).toEqual({ kind: 'packet', payload: b('a$b#c}d*e'), checksumOk: true });
  });

  it('frames hex replies straight from the bytes, run-length encoded, and gdb\'s decoding gives the hex back', () => {
    const data = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37) & 0xff));
    expect(encodeHexPacket(data).equals(encodePacket(data.toString('hex')))).toBe(true); // no runs here
    expect(encodeHexPacket(Buffer.alloc(0)).toString()).toBe('$#00');
    expect(encodeHexPacket(Buffer.from([0xab]), 'm').toString()).toBe(encodePacket('mab').toString());
    // runs: 2 zero bytes = "0000" -> "0* " (3 repeats: ' ' = 32); 6 and 7 repeats never make # or $
    expect(encodeHexPacket(Buffer.alloc(2)).toString()).toBe('$0* #7a');
    for (let len = 0; len < 300; len++) {
      for (const fill of [0x00, 0x11, 0xab]) {
        const buf = Buffer.alloc(len, fill);
        if (len > 2) buf[len >> 1] = 0x5a;
        const framed = encodeHexPacket(buf);
        const [ev] = new PacketCodec(1 << 20).feed(framed);
        expect(ev).toEqual({ kind: 'packet', payload: Buffer.from(buf.toString('hex'), 'latin1'), checksumOk: true });
        const body = framed.subarray(1, -3).toString('latin1');
        expect(body).not.toMatch(/[#$]/);
      }
    }
    expect(encodeHexPacket(Buffer.alloc(4096)).length).toBeLessThan(300); // 8192 zeros
  });

  it('expands run-length encoding', () => {
    // '0* ' = '0' then 3 more ('space' is 32, 32 - 29 = 3)
    expect(decodePayload(b('0* 1'))?.toString()).toBe('00001');
    expect(decodePayload(b('x*"'))?.toString()).toBe('xxxxxx'); // '"' = 34 -> 5 more
  });

  it('reports acks, naks and the interrupt byte between packets, and skips noise', () => {
    const evs = new PacketCodec(100).feed(b('+-\x03garbage$g#67'));
    expect(evs.map((e) => e.kind)).toEqual(['ack', 'nak', 'interrupt', 'packet']);
  });

  it('flags a wrong checksum and a non-hex checksum', () => {
    const c = new PacketCodec(100);
    expect(c.feed(b('$g#00'))).toEqual([{ kind: 'packet', payload: b('g'), checksumOk: false }]);
    expect(c.feed(b('$g#zz'))).toEqual([{ kind: 'packet', payload: b('g'), checksumOk: false }]);
  });

  it('assembles a packet split across many reads', () => {
    const c = new PacketCodec(100);
    const evs = [...'$qSupported#37'].flatMap((ch) => c.feed(b(ch)));
    expect(evs).toEqual([{ kind: 'packet', payload: b('qSupported'), checksumOk: true }]);
  });

  it('drops an oversized packet whole and keeps decoding after it', () => {
    const c = new PacketCodec(8);
    const evs = c.feed(Buffer.concat([encodePacket('m' + '1'.repeat(50)), encodePacket('g')]));
    expect(evs).toEqual([
      { kind: 'oversized', length: 51 },
      { kind: 'packet', payload: b('g'), checksumOk: true },
    ]);
  });

  it('restarts on a $ inside a packet (the previous one was cut short)', () => {
    const evs = new PacketCodec(100).feed(b('$m10,$g#67'));
    expect(evs).toEqual([{ kind: 'packet', payload: b('g'), checksumOk: true }]);
  });
});
