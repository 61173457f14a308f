// Clients one after another on a live emulated guest: the next may connect the moment the previous
// detached or closed, and starts from a clean stop state (not the previous client's watchpoint).
import { describe, expect, it } from 'vitest';
import { liveSampleServer } from './live-sample-server.js';
import { RspClient } from './rsp-client.js';

describe('reconnecting to the GDB server', () => {
  const live = liveSampleServer();

  it('a client connects right after the previous detached (20 of 20) and its ? is not the previous stop', async () => {
    const jiffies = live.target.symbols.find('jiffies')!.addr;
    const first = await RspClient.open(live.server.port);
    expect(await first.ask(`Z3,${jiffies.toString(16)},8`)).toBe('OK');
    expect(await first.ask('vCont;c')).toMatch(new RegExp(`^T05rwatch:${jiffies.toString(16)};thread:1;`));
    expect(await first.ask('?')).toMatch(/^T05rwatch:/); // the same client still sees its own stop
    expect(await first.ask('D')).toBe('OK');
    let previous = first;
    for (let i = 0; i < 20; i++) {
      // connect before the previous connection is seen closed
      const c = await RspClient.open(live.server.port);
      const stop = await c.ask('?');
      expect(stop, `connection ${i + 1}: ${stop}`).toMatch(/^T05thread:1;/);
      expect(await c.ask('g')).toMatch(/^[0-9a-fx]+$/);
      if (i % 2 === 0) expect(await c.ask('D')).toBe('OK');
      else c.close(); // a client that just goes away
      previous.close();
      previous = c;
    }
    previous.close();
    expect(live.logs.filter((l) => l.startsWith('refused'))).toEqual([]);
  });

  it('a second client while one is attached is still refused, naming the one attached', async () => {
    const a = await RspClient.open(live.server.port);
    expect(await a.ask('?')).toMatch(/^T05/);
    const b = await RspClient.open(live.server.port);
    expect(await b.ask('?')).toMatch(/^E\.another debugger \(127\.0\.0\.1:\d+\) is attached to this dbg GDB server; only one at a time$/);
    a.close();
    b.close();
    await live.server.idle();
  });
});
