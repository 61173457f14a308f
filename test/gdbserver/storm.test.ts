// A packet storm against a live emulated guest: what one client can make dbg do with hostile or
// merely enormous input must stay bounded in time and memory, and the server must go on serving.
import { describe, expect, it } from 'vitest';
import { decodePayload, encodePacket, PacketCodec } from '../../src/gdbserver/packet-codec.js';
import { liveSampleServer } from './live-sample-server.js';
import { RspClient } from './rsp-client.js';

describe('GDB server under a packet storm', () => {
  const live = liveSampleServer();

  it('a run-length bomb is measured before it is expanded: refused at once, nothing allocated', () => {
    // "X0,1:A" then 200,000 times "*~" (each: 97 more 'A'): 400 KB sent, 19 MB once expanded.
    const bomb = Buffer.concat([Buffer.from('X0,1:A'), Buffer.from('*~'.repeat(200_000))]);
    const t0 = performance.now();
    expect(decodePayload(bomb, 0x80000)).toBeUndefined();
    const raw = Buffer.concat([Buffer.from('$'), bomb, Buffer.from('#00')]);
    expect(new PacketCodec(0x80000).feed(raw)).toEqual([{ kind: 'oversized', length: 6 + 200_000 * 97 }]);
    expect(performance.now() - t0).toBeLessThan(5000); // was 29 s and +470 MB expanding it
  });

  it('answers the bomb over TCP with an error, fast, and keeps serving', async () => {
    const c = await RspClient.open(live.server.port);
    try {
      const bomb = Buffer.concat([Buffer.from('$X0,1:A'), Buffer.from('*~'.repeat(200_000)), Buffer.from('#00')]);
      const rssBefore = process.memoryUsage().rss;
      const t0 = performance.now();
      c.raw(bomb);
      expect(await c.reply()).toBe('E01');
      expect(performance.now() - t0).toBeLessThan(5000);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 << 20);
      expect(live.logs.some((l) => l.includes(`packet of ${6 + 200_000 * 97} bytes is longer than PacketSize 0x80000: refused`))).toBe(true);
      expect(await c.ask('?')).toMatch(/^T05thread:1;/);
    } finally {
      c.close();
      await live.server.idle();
    }
  });

  it('20,000 pipelined Z0 are answered in linear time; the guest still stops at the one it reaches', async () => {
    const c = await RspClient.open(live.server.port);
    try {
      const kmain = live.target.symbols.find('kmain')!.addr;
      const n = 20_000;
      const packets: Buffer[] = [];
      // every other address of a far page, then kmain itself
      for (let i = 0; i < n; i++) packets.push(encodePacket(`Z0,${(0xffffffffc1000000n + BigInt(i * 2)).toString(16)},1`));
      packets.push(encodePacket(`Z0,${kmain.toString(16)},1`));
      const t0 = performance.now();
      c.raw(Buffer.concat(packets));
      for (let i = 0; i <= n; i++) expect(await c.reply(20_000)).toBe('OK');
      const took = performance.now() - t0;
      expect(took).toBeLessThan(20_000); // quadratic took minutes; linear takes ~1 s on a quiet machine
      expect(await c.ask('vCont;c', [])).toMatch(new RegExp(`^T05thread:1;.*10:${Buffer.from(kmain.toString(16).padStart(16, '0'), 'hex').reverse().toString('hex')};`));
    } finally {
      c.close();
      await live.server.idle();
    }
    // the client's 20,001 breakpoints left with it: the next client runs to the guest's panic
    const next = await RspClient.open(live.server.port);
    try {
      next.send('vCont;c');
      const stop = await next.reply(30_000);
      expect(stop).toMatch(/^T02thread:1;/); // the halt after the panic (reported as QEMU users see it), no breakpoint
      expect(live.target.caps.breakpoints).toBeDefined();
    } finally {
      next.close();
      await live.server.idle();
    }
  }, 90_000);
});
