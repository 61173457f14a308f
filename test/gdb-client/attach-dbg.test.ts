/**
 * dbg attaching to dbg: `dbg live --record --gdb` serves the QEMU sample kernel booted in the
 * emulator, and `dbg attach` debugs it through RSP, including reverse execution (the server
 * offers ReverseStep+ and ReverseContinue+: bs and bc).
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuSample } from '../helpers/repo.js';
import { dbg, freePort, runDbg, stop } from './attach-helpers.js';

const kernel = qemuSample('kernel.elf');
let dir: string;
let server: ChildProcess | undefined;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-attach-dbg-'));
  port = await freePort();
  // With -e and no terminal, the server serves until a signal once the script ran.
  server = spawn(process.execPath, [dbg, 'live', '--emulate', kernel, '-q', '--record', join(dir, 'k.trace'), '--gdb', `127.0.0.1:${port}`, '-e', '::status'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((done, fail) => {
    let text = '';
    server!.stderr!.on('data', (b: Buffer) => {
      text += b.toString();
      if (text.includes('serving gdb on')) done();
    });
    server!.once('exit', () => fail(new Error(`dbg live ended: ${text}`)));
  });
}, 60_000);

afterAll(async () => {
  await stop(server);
  rmSync(dir, { recursive: true, force: true });
});

describe("dbg attach to dbg's own GDB server", () => {
  it('breakpoint, ::stack, then reverse step and reverse continue through bs/bc', async () => {
    const r = await runDbg(['attach', '--gdb', String(port), '--symbols', kernel, '-e', '::status; kmain::bp; :c; ::stack; <rsp>X; ::rstep; <rsp-<X=D; ::rcont']);
    expect(r.stderr).toBe('');
    const out = r.stdout;
    expect(out).toMatch(/^stub offers: PacketSize=80000, QStartNoAckMode, qXfer:features:read, vContSupported, ReverseStep, ReverseContinue, swbreak, hwbreak; vCont: cs$/m);
    expect(out).toMatch(/^status: stopped at 0x0000000000200020 mb1_entry on thread 1, as the stub was when dbg attached$/m);
    expect(out).toContain('stopped: breakpoint 1 at 0xffffffffc0001711 kmain on thread 1\n0xffffffffc0001711 kmain\n0xffffffffc0001015 kstart+0x15\n');
    // One instruction back: the call that entered kmain, its return address not pushed yet (rsp 8 higher).
    expect(out).toMatch(/^back: kstart\+0x10 \(0xffffffffc0001010\) on thread 1: step\n +8 +\n/m);
    expect(out).toContain('back: mb1_entry (0x200020) on thread 1: start of the recorded history\n');
    expect(r.code).toBe(0);
  }, 60_000);

  it('positions in a stub\'s history are refused in one line (::seek)', async () => {
    const r = await runDbg(['attach', '--gdb', String(port), '-e', '::seek 0']);
    expect(r.stderr).toBe(`dbg: positions in the recorded history (the stub runs backwards with bs/bc but names no points in time) is not supported by gdb stub 127.0.0.1:${port}\n`);
    expect(r.code).toBe(1);
  }, 60_000);
});
