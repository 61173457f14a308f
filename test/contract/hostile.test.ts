// Hostile input to the control contract: random bytes (fast-check, bounded in time), a 1 MB
// command, unterminated commands, a byte at a time, thousands of BP=. The server never dies, holds
// no more than one command's worth of input, and answers every complete command exactly once.
import { join } from 'node:path';
import { createConnection, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveContract, type ContractServerHandle } from '../../src/contract/contract-server.js';
import { MAX_COMMAND } from '../../src/contract/grammar.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { openTarget } from '../../src/targets/open-target.js';
import type { Target } from '../../src/targets/target.js';
import { repoRoot } from '../helpers/repo.js';

/** One connection: write, and wait for N reply lines. */
class Conn {
  private text = '';
  private readonly waiting: { n: number; resolve: (l: string[]) => void }[] = [];
  private constructor(private readonly sock: Socket) {
    sock.on('data', (d) => {
      this.text += d.toString('latin1');
      this.check();
    });
    sock.on('error', () => undefined);
  }
  static async open(port: number): Promise<Conn> {
    const s = createConnection({ host: '127.0.0.1', port });
    await new Promise((r) => s.once('connect', r));
    return new Conn(s);
  }
  private lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
  private check(): void {
    const w = this.waiting[0];
    if (w && this.lines().length >= w.n) {
      this.waiting.shift();
      w.resolve(this.lines());
    }
  }
  write(d: string | Buffer): void {
    this.sock.write(d);
  }
  /** Resolves with all lines once there are n (rejects after ms). */
  replies(n: number, ms = 10_000): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.lines().length} of ${n} replies: ${this.text.slice(-300)}`)), ms);
      this.waiting.push({ n, resolve: (l) => (clearTimeout(t), resolve(l)) });
      this.check();
    });
  }
  close(): void {
    this.sock.destroy();
  }
}

const REPLY = /^(OK|V=dbg-contract\/1|ERR=[\x20-\x3a\x3c-\x7e]*|BP=\d+,PC=0x[0-9a-f]+,SYM=[\x20-\x3a\x3c-\x7e]*);$/;

function countSemicolons(chunks: Uint8Array[]): number {
  return chunks.reduce((n, c) => n + c.filter((b) => b === 0x3b).length, 0);
}

async function withServer(target: Target, body: (server: ContractServerHandle) => Promise<void>): Promise<void> {
  const server = await serveContract(target, { port: 0, session: new Session(target, builtinModules), log: () => undefined });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

describe('hostile input to the control contract', () => {
  let dump: Target;
  beforeAll(() => {
    dump = openTarget(join(repoRoot, 'dumps', 'vmcore.0'), { symbols: [join(repoRoot, 'dumps', 'kernel.elf')] });
  });
  afterAll(() => dump?.close());

  it('random bytes and command fragments, in random chunks: one well-formed reply per ";", the server lives on', async () => {
    // On a dump nothing runs and nothing detaches, so every ";" gets exactly one OK, ERR or V=.
    const token = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.constantFrom('V=?;', 'BP=kmain;', 'B=1;', 'C=1;', 'C=0;', 'c=true;', ';', ' \n', '=', 'BP=', 'X=1', '\x00', '%').map((s) => Buffer.from(s, 'latin1')),
    );
    const noDetach = (bs: Uint8Array[]): boolean => !/d\s*=\s*(1|true)\s*;/i.test(Buffer.concat(bs).toString('latin1'));
    await withServer(dump, async (server) => {
      await fc.assert(
        fc.asyncProperty(fc.array(token, { maxLength: 60 }).filter(noDetach), async (chunks) => {
          const c = await Conn.open(server.port);
          try {
            for (const ch of chunks) c.write(Buffer.from(ch));
            c.write(';V=?;'); // ends whatever the chunks left open, then asks
            const n = countSemicolons(chunks) + 2;
            const lines = await c.replies(n);
            expect(lines).toHaveLength(n);
            for (const l of lines) expect(l).toMatch(REPLY);
            expect(lines[n - 1]).toBe('V=dbg-contract/1;');
          } finally {
            c.close();
            await server.idle();
          }
        }),
        { numRuns: 150, interruptAfterTimeLimit: 20_000 },
      );
    });
  }, 60_000);

  it('a 1 MB command is answered once and dropped; 64 MB without a ";" are not held', async () => {
    await withServer(dump, async (server) => {
      const c = await Conn.open(server.port);
      c.write(Buffer.alloc(1 << 20, 0x41));
      c.write(';V=?;');
      expect(await c.replies(2)).toEqual([`ERR=command of ${(1 << 20) + 1} bytes is longer than ${MAX_COMMAND}: dropped;`, 'V=dbg-contract/1;']);
      const before = process.memoryUsage();
      const junk = Buffer.alloc(1 << 20, 0x42);
      for (let i = 0; i < 64; i++) c.write(junk);
      c.write(';V=?;');
      const lines = await c.replies(4, 30_000);
      expect(lines.slice(2)).toEqual([`ERR=command of ${64 * (1 << 20) + 1} bytes is longer than ${MAX_COMMAND}: dropped;`, 'V=dbg-contract/1;']);
      const after = process.memoryUsage();
      expect(after.heapUsed - before.heapUsed).toBeLessThan(32 << 20);
      c.close();
    });
  }, 60_000);

  it('an unterminated command then a close, and a command a byte at a time: the next client is served', async () => {
    await withServer(dump, async (server) => {
      const a = await Conn.open(server.port);
      a.write('BP=never_ends');
      a.close();
      await server.idle();
      const b = await Conn.open(server.port);
      for (const ch of 'V =\n?;') {
        b.write(ch);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(await b.replies(1)).toEqual(['V=dbg-contract/1;']);
      b.close();
    });
  });

  it('10,000 BP= in one write on a live guest: every one answered, one breakpoint per address', async () => {
    const target = EmulatorTarget.open(join(repoRoot, 'dumps', 'cxx-kernel.elf'), {});
    try {
      await withServer(target, async (server) => {
        const c = await Conn.open(server.port);
        const n = 10_000;
        c.write(Array.from({ length: n }, (_, i) => (i % 2 ? 'BP=Scheduler::tick;' : 'BP=nothing_here;')).join(''));
        c.write('V=?;');
        const lines = await c.replies(n + n / 2 + 1, 30_000);
        expect(lines.filter((l) => l === 'OK;')).toHaveLength(n / 2);
        expect(lines.filter((l) => l.startsWith('ERR=no symbol "nothing_here"'))).toHaveLength(n / 2);
        expect([...new Set(lines.filter((l) => l.startsWith('BP=')))]).toEqual([expect.stringMatching(/^BP=1,PC=0x[0-9a-f]+,SYM=Scheduler::tick\(\);$/)]);
        expect(lines[lines.length - 1]).toBe('V=dbg-contract/1;');
        c.close();
      });
    } finally {
      target.close();
    }
  }, 60_000);
});
