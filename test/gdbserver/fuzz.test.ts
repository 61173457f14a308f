// Random and malformed input must never stop the server: after each storm a fresh client still
// gets correct answers. The generator is seeded, so a failure replays exactly (DBG_FUZZ_SEED).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { encodePacket } from '../../src/gdbserver/packet-codec.js';
import { FakeTarget } from './fake-target.js';
import { RspClient } from './rsp-client.js';

const seed = Number(process.env.DBG_FUZZ_SEED ?? 0x5eed);

/** xorshift32: small, seeded, good enough to vary inputs. */
function rng(s: number): () => number {
  let x = s || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

const prefixes = ['m', 'M', 'X', 'g', 'G', 'p', 'P', 'Z0,', 'z2,', 'Z4,', 'c', 's', 'C', 'S', 'vCont;', 'vCont?', 'H', 'Hg', 'Hc', 'T', 'q', 'qXfer:', 'qXfer:features:read:', 'qXfer:threads:read::', 'qRcmd,', 'qSupported:', 'qC', 'qfThreadInfo', 'qsThreadInfo', 'bs', 'bc', 'QStartNoAckMode', '?', 'v', 'Q', 'x', ''];
const alphabet = '0123456789abcdefABCDEF,:;=.-pxXzZ$#}*\x00\x03\xff';

let target: FakeTarget;
let server: GdbServerHandle;
const logs: string[] = [];

beforeAll(async () => {
  target = new FakeTarget({ execution: true, reverse: true, threads: 2, slice: 50 });
  server = await serveGdb(target, { execute: async (l, o) => o.line(l) }, { port: 0, log: (m) => logs.push(m) });
});

afterAll(async () => {
  await server.close();
});

async function healthy(): Promise<void> {
  await server.idle();
  const c = await RspClient.open(server.port);
  try {
    expect(await c.ask('qAttached')).toBe('1');
    expect(await c.ask('m401000,2')).toBe('9090');
    expect((await c.ask('?')).startsWith('T')).toBe(true);
  } finally {
    c.close();
    await server.idle();
  }
}

function randomPacket(r: () => number): Buffer {
  // D (detach) ends the session, so it is rare: most rounds should run to the end.
  const pre = r() < 0.003 ? 'D' : prefixes[Math.floor(r() * prefixes.length)]!;
  let body = pre;
  const n = Math.floor(r() ** 3 * 200);
  for (let i = 0; i < n; i++) body += alphabet[Math.floor(r() * alphabet.length)];
  const framed = encodePacket(Buffer.from(body, 'latin1'));
  const mode = r();
  if (mode < 0.1) framed[framed.length - 1] = 0x7a; // wrong checksum
  if (mode > 0.95) return framed.subarray(0, Math.floor(r() * framed.length)); // cut short
  return framed;
}

describe('fuzzing the GDB server', () => {
  it('survives random packets, wrong checksums and truncation, answering every complete packet', async () => {
    const r = rng(seed);
    let replies = 0;
    for (let round = 0; round < 6; round++) {
      const c = await RspClient.open(server.port);
      for (let i = 0; i < 150; i++) {
        const p = randomPacket(r);
        c.raw(p);
        if (r() < 0.05) c.raw('\x03');
        // A resume may run until interrupted: make sure it ends.
        if (/^\$(c|C|s|S|vCont;|bc|bs)/.test(p.toString('latin1'))) c.raw('\x03');
      }
      c.raw('\x03');
      c.send('qAttached');
      // Drain until our marker's answer arrives ("1"), proving the server kept going.
      let got = '';
      for (let k = 0; k < 2000 && got !== '1'; k++) {
        const e = await c.next(10_000);
        if (e === 'closed') break; // a random D or k ended the session: also fine
        if (e.kind === 'packet') {
          c.raw('+');
          got = e.payload.toString('latin1');
          replies++;
        }
      }
      c.close();
      await healthy();
    }
    expect(logs.filter((l) => l.startsWith('internal error'))).toEqual([]);
    // Most packets were answered (a random D ends a round early, and some were cut or mangled).
    expect(replies).toBeGreaterThan(60);
    expect(logs.filter((l) => l.startsWith('bad packet')).length).toBeGreaterThan(60);
    if (process.env.DBG_FUZZ_VERBOSE) console.log({ replies, logs: logs.length });
  });

  it('survives pure noise and binary garbage between packets', async () => {
    const r = rng(seed ^ 0xabcdef);
    const c = await RspClient.open(server.port);
    const junk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(r() * 256) & ~0x03 | (r() < 0.01 ? 0x24 : 0); // few '$', no 0x03
    c.raw(junk);
    c.raw('#00'); // end whatever packet the junk started
    c.close();
    await healthy();
  });

  it('survives a huge oversized packet streamed in pieces', async () => {
    const c = await RspClient.open(server.port);
    c.raw('$M600000,1:');
    for (let i = 0; i < 16; i++) c.raw(Buffer.alloc(64 * 1024, 0x30));
    c.raw('#00');
    expect(await c.reply()).toBe('E01');
    expect(await c.ask('qAttached')).toBe('1');
    c.close();
    await healthy();
  });

  it('survives clients vanishing mid-packet and mid-run, many times over', async () => {
    for (let i = 0; i < 10; i++) {
      const c = await RspClient.open(server.port);
      if (i % 2 === 0) {
        c.send('c');
        await c.next();
      } else {
        c.raw('$m401000,1');
      }
      c.close();
    }
    await healthy();
    expect(target.caps.execution!.running).toBe(false);
    expect(target.pointCount).toBe(0);
  });
});
