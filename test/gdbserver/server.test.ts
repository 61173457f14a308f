import { afterEach, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import type { Output } from '../../src/mdb/dcmd.js';
import { CODE, DATA, FakeTarget, type FakeOptions } from './fake-target.js';
import { RspClient } from './rsp-client.js';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/repo.js';

let servers: GdbServerHandle[] = [];
let clients: RspClient[] = [];
let logs: string[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.close();
  servers = [];
  clients = [];
  logs = [];
});

const monitor = {
  async execute(line: string, out: Output): Promise<void> {
    if (line === 'fail') throw new Error('boom');
    out.line(`ran: ${line}`);
    out.line('second line');
  },
};

async function start(opts: FakeOptions = { execution: true }): Promise<{ target: FakeTarget; server: GdbServerHandle; c: RspClient }> {
  const target = new FakeTarget(opts);
  const server = await serveGdb(target, monitor, { port: 0, log: (m) => logs.push(m) });
  servers.push(server);
  const c = await connect(server.port);
  return { target, server, c };
}

async function connect(port: number): Promise<RspClient> {
  const c = await RspClient.open(port);
  clients.push(c);
  return c;
}

const hex = (s: string): string => Buffer.from(s).toString('hex');
const le64 = (v: bigint): string => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b.toString('hex');
};

describe('GDB server over TCP', () => {
  it('acks packets and derives qSupported from the target capabilities', async () => {
    const { c } = await start({ execution: true });
    c.send('qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386');
    expect(await c.next()).toEqual({ kind: 'ack' });
    expect(await c.reply()).toBe(
      'PacketSize=80000;QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;vContSupported+;multiprocess+;swbreak+;hwbreak+',
    );
    const core = await start({ execution: false });
    expect(await core.c.ask('qSupported:swbreak+')).toBe(
      'PacketSize=80000;QStartNoAckMode+;qXfer:features:read+;qXfer:threads:read+;vContSupported+',
    );
    const rev = await start({ execution: true, reverse: true });
    expect(await rev.c.ask('qSupported')).toContain(';ReverseStep+;ReverseContinue+');
  });

  it('serves target.xml in pieces with the features gdb validates', async () => {
    const { c } = await start();
    let xml = '';
    for (let off = 0; ; off += 0x100) {
      const r = await c.ask(`qXfer:features:read:target.xml:${off.toString(16)},100`);
      xml += r.slice(1);
      if (r[0] === 'l') break;
      expect(r[0]).toBe('m');
    }
    expect(xml).toMatch(/^<\?xml version="1.0"\?>/);
    expect(xml).toContain('<architecture>i386:x86-64</architecture>');
    for (const f of ['org.gnu.gdb.i386.core', 'org.gnu.gdb.i386.sse', 'org.gnu.gdb.i386.linux', 'org.gnu.gdb.i386.segments', 'org.dbg.x86.sys']) {
      expect(xml).toContain(`<feature name="${f}">`);
    }
    for (const r of ['rip', 'st7', 'fop', 'xmm15', 'mxcsr', 'orig_rax', 'fs_base', 'gs_base', 'cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer']) {
      expect(xml).toContain(`<reg name="${r}" `);
    }
    expect(await c.ask('qXfer:features:read:other.xml:0,100')).toBe('E01');
  });

  it('reads registers (x for what the target lacks) and memory; unreadable memory is E0e', async () => {
    const { c } = await start();
    const g = await c.ask('g');
    expect(g.slice(0, 16)).toBe(le64(3n)); // rax of thread 1
    expect(g.slice(16 * 16, 17 * 16)).toBe(le64(CODE)); // rip, regno 16
    expect(g).toContain('xxxxxxxxxxxxxxxxxxxx'); // st0: 10 unknown bytes
    expect(await c.ask('p10')).toBe(le64(CODE));
    expect(await c.ask('p18')).toBe('xxxxxxxxxxxxxxxxxxxx'); // st0
    expect(await c.ask('p3a')).toBe(le64(0x7f0000001000n)); // fs_base
    expect(await c.ask('p400')).toBe('E16');
    expect(await c.ask(`m${CODE.toString(16)},4`)).toBe('90909090');
    expect(await c.ask('m10,4')).toBe('E0e');
    // A read that runs past the end of a mapping is cut short at the first unreadable page.
    expect((await c.ask(`m${(DATA + 0x1ff0n).toString(16)},20`)).length).toBe(0x10 * 2);
    expect(await c.ask('mzz,4')).toBe('E01');
    expect(logs).toContain('bad packet "mzz,4": address "zz" is not hex');
  });

  it('reads ahead the next piece of a run of m requests on a dump, never on a target that can change', async () => {
    for (const execution of [false, true]) {
      const { c, target } = await start({ execution });
      target.code.fill(0x11, 0x10, 0x20);
      target.code.fill(0x22, 0x20, 0x30);
      let reads = 0;
      const orig = target.readVirtual.bind(target);
      target.readVirtual = (a: bigint, n: number) => {
        reads++;
        return orig(a, n);
      };
      expect(await c.ask('m401010,10')).toBe('11'.repeat(16));
      await new Promise((r) => setImmediate(r));
      expect(reads).toBe(execution ? 1 : 2); // the dump read 0x401020 ahead
      expect(await c.ask('m401020,10')).toBe('22'.repeat(16)); // served from the read-ahead
      await new Promise((r) => setImmediate(r));
      expect(reads).toBe(execution ? 2 : 3);
      // any other request drops the read-ahead: the next m reads again
      expect(await c.ask('qAttached')).toBe('1');
      expect(await c.ask('m401030,10')).toBe('90'.repeat(16));
      expect(reads).toBe(execution ? 3 : 5);
    }
  });

  it('writes memory (M and binary X) and registers (P, G)', async () => {
    const { c, target } = await start();
    expect(await c.ask(`M${DATA.toString(16)},2:abcd`)).toBe('OK');
    expect(await c.ask(Buffer.concat([Buffer.from(`X${(DATA + 2n).toString(16)},3:`), Buffer.from([0x23, 0x7d, 0x2a])]))).toBe('OK');
    expect([...target.data.subarray(0, 5)]).toEqual([0xab, 0xcd, 0x23, 0x7d, 0x2a]);
    // gdb 13 shows the text of E.TEXT for register writes and takes it as an error for memory
    expect(await c.ask('M10,1:00')).toMatch(/^E\.access of 1 bytes at 0x10 failed: /);
    expect(await c.ask(`P0=${le64(0x1234n)}`)).toBe('OK');
    expect(target.regs[0]!.get('rax')).toBe(0x1234n);
    expect(await c.ask('P0=12')).toBe('E16');
    const g = await c.ask('g');
    const g2 = le64(0x5678n) + g.slice(16).replace(/x/g, '0');
    expect(await c.ask('G' + g2)).toBe('OK');
    expect(target.regs[0]!.get('rax')).toBe(0x5678n);
    expect(await c.ask('G00')).toBe('E16');
    const core = await start({ execution: false });
    expect(await core.c.ask(`M${DATA.toString(16)},1:00`)).toBe('E.writing memory is not supported by fake target');
    expect(logs.at(-1)).toBe('writing memory is not supported by fake target');
    expect(await core.c.ask(`P0=${le64(1n)}`)).toBe('E.writing registers is not supported by fake target');
    // lldb asks for Exx;HEX-TEXT
    expect(await core.c.ask('QEnableErrorStrings')).toBe('OK');
    expect(await core.c.ask(`P0=${le64(1n)}`)).toBe(`E01;${hex('writing registers is not supported by fake target')}`);
    expect(await core.c.ask('m10,1')).toBe('E0e');
  });

  it('lists threads with names, selects them, and answers qC / T', async () => {
    const { c } = await start({ execution: true, threads: 3 });
    await c.ask('qSupported:multiprocess+');
    expect(await c.ask('qfThreadInfo')).toBe('mp1.1,p1.2,p1.3');
    expect(await c.ask('qsThreadInfo')).toBe('l');
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(
      'l<?xml version="1.0"?><threads><thread id="p1.1" core="0" name="cpu0"></thread><thread id="p1.2" core="1" name="cpu1"></thread><thread id="p1.3" core="2" name="cpu2"></thread></threads>',
    );
    expect(await c.ask('Hgp1.2')).toBe('OK');
    expect(await c.ask('qC')).toBe('QCp1.2');
    expect(await c.ask('p10')).toBe(le64(CODE + 0x80n));
    expect(await c.ask('Tp1.3')).toBe('OK');
    expect(await c.ask('Tp1.9')).toBe('E16');
    expect(await c.ask('Hgp1.9')).toBe('E16');
    expect(await c.ask('qAttached:1')).toBe('1');
  });

  it('steps and continues to breakpoints with stop replies that carry thread, fp, sp and pc', async () => {
    const { c } = await start({ execution: true });
    await c.ask('qSupported:multiprocess+;swbreak+;hwbreak+');
    expect(await c.ask('vCont?')).toBe('vCont;c;C;s;S');
    expect(await c.ask('?')).toBe(`T05thread:p1.1;06:${le64(0x7ffe0100n)};07:${le64(0x7ffe0000n)};10:${le64(CODE)};`);
    expect(await c.ask('vCont;s:p1.1')).toBe(`T05thread:p1.1;06:${le64(0x7ffe0100n)};07:${le64(0x7ffe0000n)};10:${le64(CODE + 1n)};`);
    expect(await c.ask(`Z0,${(CODE + 0x20n).toString(16)},1`)).toBe('OK');
    expect(await c.ask('vCont;c')).toMatch(new RegExp(`^T05swbreak:;thread:p1.1;.*10:${le64(CODE + 0x20n)};$`));
    expect(await c.ask(`z0,${(CODE + 0x20n).toString(16)},1`)).toBe('OK');
    expect(await c.ask(`Z1,${(CODE + 0x30n).toString(16)},1`)).toBe('OK');
    expect(await c.ask('c')).toMatch(/^T05hwbreak:;thread:p1.1;/);
    expect(await c.ask(`z1,${(CODE + 0x30n).toString(16)},1`)).toBe('OK');
    expect(await c.ask('s')).toMatch(new RegExp(`10:${le64(CODE + 0x31n)};$`));
  });

  it('sends every integer register and the segment bases at a stop that is not a step (gdb shows a frame with its arguments without a g), pc last', async () => {
    const { c } = await start({ execution: true });
    await c.ask('qSupported:multiprocess+;swbreak+');
    expect(await c.ask(`Z0,${(CODE + 0x20n).toString(16)},1`)).toBe('OK');
    const hit = await c.ask('vCont;c');
    // the fake target's registers: rax..r15 (thread 1: the name's length), eflags, cs, ss, fs_base
    const sent = [...hit.matchAll(/([0-9a-f]{2}):([0-9a-f]+);/g)].map(([, n, v]) => [Number.parseInt(n!, 16), v]);
    expect(sent.map(([n]) => n)).toEqual([0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 58, 6, 7, 16]);
    expect(sent[0]![1]).toBe(le64(3n)); // rax
    expect(sent[17]![1]).toBe(le64(0x7f0000001000n)); // fs_base
    expect(hit).toMatch(new RegExp(`^T05swbreak:;thread:p1.1;00:.*;06:${le64(0x7ffe0100n)};07:${le64(0x7ffe0000n)};10:${le64(CODE + 0x20n)};$`));
    expect(await c.ask('vCont;s:p1.1')).toBe(`T05thread:p1.1;06:${le64(0x7ffe0100n)};07:${le64(0x7ffe0000n)};10:${le64(CODE + 0x21n)};`);
  });

  it('makes qXfer:threads:read again when the target gives another thread list, reuses it when the same list comes back', async () => {
    const { c, target } = await start({ execution: true, threads: 1 });
    await c.ask('qSupported:multiprocess+');
    const same = [{ index: 1, tid: 100, name: 'cpu0', state: 'stopped' }];
    let list = same;
    target.threads = () => list;
    const doc = (name: string): string => `l<?xml version="1.0"?><threads><thread id="p1.1" core="0" name="${name}"></thread></threads>`;
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('cpu0'));
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('cpu0'));
    list = [{ ...same[0]!, name: 'renamed' }];
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('renamed'));
    list = same;
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('cpu0'));
    // the reply kept is the one for the part asked: another part is made for what it asks
    expect(await c.ask('qXfer:threads:read::0,10')).toBe(`m${doc('cpu0').slice(1, 1 + 0x10)}`);
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('cpu0'));
    // a client that negotiates again without multiprocess gets thread ids without the pid
    await c.ask('qSupported:swbreak+');
    expect(await c.ask('qXfer:threads:read::0,1000')).toBe(doc('cpu0').replace('p1.1', '1'));
  });

  it('parks removals until the guest runs, so gdb\'s remove-all/insert-all at each stop costs the target nothing', async () => {
    const { c, target } = await start({ execution: true });
    const bp = target.caps.breakpoints!;
    let calls = 0;
    for (const k of ['addBreakpoint', 'removeBreakpoint', 'addWatchpoint', 'removeWatchpoint'] as const) {
      const orig = bp[k].bind(bp) as (...a: unknown[]) => unknown;
      (bp as unknown as Record<string, unknown>)[k] = (...a: unknown[]) => {
        calls++;
        return orig(...a);
      };
    }
    await c.ask('Z0,401040,1');
    await c.ask('Z2,600000,8');
    expect(calls).toBe(2);
    for (let i = 0; i < 3; i++) {
      expect(await c.ask('z0,401040,1')).toBe('OK');
      expect(await c.ask('z2,600000,8')).toBe('OK');
      expect(await c.ask('Z0,401040,1')).toBe('OK');
      expect(await c.ask('Z2,600000,8')).toBe('OK');
    }
    expect(calls).toBe(2);
    // A removal is real by the time the guest runs: the breakpoint no longer stops it.
    await c.ask('z0,401040,1');
    expect(await c.ask('c')).toMatch(/^T05watch:600000;/); // pc 0x401000 writes DATA+0 at once
    expect(calls).toBe(3);
    expect(target.pointCount).toBe(1);
  });

  it('reports watch, rwatch and awatch stops with the data address', async () => {
    const { c } = await start({ execution: true });
    const addr = DATA + 5n; // written by the instruction at CODE + 0x50
    expect(await c.ask(`Z2,${addr.toString(16)},1`)).toBe('OK');
    expect(await c.ask('c')).toMatch(new RegExp(`^T05watch:${addr.toString(16)};thread:1;`));
    expect(await c.ask(`z2,${addr.toString(16)},1`)).toBe('OK');
    expect(await c.ask(`Z4,${addr.toString(16)},1`)).toBe('OK');
    expect(await c.ask('c')).toMatch(new RegExp(`^T05awatch:${addr.toString(16)};`));
  });

  it('runs reverse steps and continues, reporting replaylog:begin at the start of history', async () => {
    const { c } = await start({ execution: true, reverse: true });
    await c.ask('qSupported:multiprocess+;swbreak+');
    for (let i = 0; i < 3; i++) await c.ask('vCont;s:p1.1');
    expect(await c.ask('Hcp1.1')).toBe('OK');
    expect(await c.ask('bs')).toMatch(new RegExp(`10:${le64(CODE + 2n)};$`));
    expect(await c.ask('bc')).toMatch(new RegExp(`^T05replaylog:begin;thread:p1.1;.*10:${le64(CODE)};$`));
    expect(await c.ask('bs')).toMatch(/^T05replaylog:begin;/);
    // forward to a watchpoint, then back to the write that triggered it
    const addr = DATA + 5n;
    await c.ask(`Z2,${addr.toString(16)},1`);
    expect(await c.ask('c')).toMatch(/^T05watch:600005;/);
    await c.ask('c'); // runs on: wraps around the code and writes again
    expect(await c.ask('bc')).toMatch(new RegExp(`^T05watch:600005;thread:p1.1;.*10:${le64(CODE + 0x50n)};$`));
  });

  it('without the capability, reverse and resume stop where they were and say why; Z is accepted', async () => {
    const { c } = await start({ execution: false });
    const console: string[] = [];
    // a stop reply (signal 0), not an error: lldb drops the session on an error reply to a resume
    expect(await c.ask('bs', console)).toMatch(/^T00thread:1;06:/);
    expect(console).toEqual(['dbg: reverse execution is not supported by fake target\n']);
    expect(await c.ask('vCont;c', console)).toMatch(/^T00thread:1;06:/);
    expect(console[1]).toBe('dbg: fake target cannot run: execution control is not supported by this target\n');
    expect(await c.ask('vCont?')).toBe('');
    // nothing runs, so a point can never be hit: accepted, so that gdb's `continue` gets to say why
    expect(await c.ask('Z0,401000,1')).toBe('OK');
    expect(await c.ask('Z2,600000,4')).toBe('OK');
    expect(await c.ask('?')).toMatch(/^T0bthread:1;/); // the core's SIGSEGV
  });

  it('interrupts a running guest with the 0x03 byte', async () => {
    const { c } = await start({ execution: true });
    c.send('c');
    expect(await c.next()).toEqual({ kind: 'ack' });
    await new Promise((r) => setTimeout(r, 50));
    c.raw('\x03');
    expect(await c.reply()).toMatch(/^T02thread:1;/);
  });

  it('runs monitor commands through the session and returns their output as O packets', async () => {
    const { c } = await start();
    const console: string[] = [];
    expect(await c.ask('qRcmd,' + hex('::regs'), console)).toBe('OK');
    expect(console).toEqual(['ran: ::regs\n', 'second line\n']);
    const errs: string[] = [];
    expect(await c.ask('qRcmd,' + hex('fail'), errs)).toBe('OK');
    expect(errs[0]).toMatch(/^dbg: Error: boom/);
  });

  it('naks a bad checksum, resends on -, and switches to no-ack mode', async () => {
    const { c } = await start();
    c.raw('$g#00');
    expect(await c.next()).toEqual({ kind: 'nak' });
    c.send('qAttached');
    expect(await c.next()).toEqual({ kind: 'ack' });
    const first = await c.next();
    c.raw('-');
    expect(await c.next()).toEqual(first);
    c.raw('+');
    expect(await c.ask('QStartNoAckMode')).toBe('OK');
    c.noAck = true;
    c.send('qAttached');
    expect(await c.next()).toMatchObject({ kind: 'packet' }); // no '+' before it
  });

  it('answers unknown packets with the empty reply and oversized ones with E01', async () => {
    const { c } = await start();
    expect(await c.ask('qTStatus')).toBe('');
    // host I/O is read-only and limited to the files the target names: EACCES (13) for any other
    expect(await c.ask('vFile:open:2f6574632f706173737764,0,0')).toBe('F-1,d');
    expect(await c.ask('vFile:unlink:2f6574632f706173737764')).toBe('');
    expect(await c.ask('M600000,1:' + '00'.repeat(0x50000))).toBe('E01');
    expect(logs.some((l) => /^packet of \d+ bytes is longer than PacketSize 0x80000: refused$/.test(l))).toBe(true);
    expect(await c.ask('qAttached')).toBe('1');
  });

  it('refuses a second debugger clearly and keeps serving the first', async () => {
    const { c, server } = await start();
    const second = await connect(server.port);
    expect(await second.ask('qSupported')).toMatch(/^E\.another debugger \(127\.0\.0\.1:\d+\) is attached to this dbg GDB server; only one at a time$/);
    expect(await second.next()).toBe('closed');
    expect(logs.some((l) => l.startsWith('refused gdb from 127.0.0.1:'))).toBe(true);
    expect(await c.ask('qAttached')).toBe('1');
  });

  it('after detach, k or a vanished client the target stays stopped with no points left, for the next client', async () => {
    const { c, server, target } = await start({ execution: true });
    await c.ask('Z0,401080,1');
    await c.ask('Z2,600000,8');
    expect(target.pointCount).toBe(2);
    expect(await c.ask('D;1')).toBe('OK');
    expect(await c.next()).toBe('closed');
    await server.idle();
    expect(target.pointCount).toBe(0);
    const c2 = await connect(server.port);
    await c2.ask('Z0,401080,1');
    c2.send('k');
    expect(await c2.next()).toEqual({ kind: 'ack' });
    expect(await c2.next()).toBe('closed');
    await server.idle();
    expect(target.pointCount).toBe(0);
    expect(target.closed).toBe(false);
    // a client vanishing mid-run: the guest is stopped for the next one
    const c3 = await connect(server.port);
    c3.send('c');
    await c3.next();
    await new Promise((r) => setTimeout(r, 30));
    c3.close();
    await server.idle();
    expect(target.caps.execution!.running).toBe(false);
    const c4 = await connect(server.port);
    expect(await c4.ask('?')).toMatch(/^T02/);
    // a client vanishing mid-packet
    c4.raw('$m401000,');
    c4.close();
    await server.idle();
    const c5 = await connect(server.port);
    expect(await c5.ask('m401000,1')).toBe('90');
  });

  it('vFile reads any regular file only when the user allowed host I/O, and never writes', async () => {
    const target = new FakeTarget({ execution: true });
    const server = await serveGdb(target, monitor, { port: 0, log: (m) => logs.push(m), allowHostIo: true });
    servers.push(server);
    const c = await connect(server.port);
    const file = join(repoRoot, 'package.json');
    expect(await c.ask(`vFile:open:${hex(file)},1,0`)).toBe('F-1,d'); // O_WRONLY: refused even so
    expect(await c.ask(`vFile:open:${hex(repoRoot)},0,0`)).toBe('F-1,d'); // not a regular file
    const fd = await c.ask(`vFile:open:${hex(file)},0,0`);
    expect(fd).toMatch(/^F[0-9a-f]+$/);
    const got = await c.ask(`vFile:pread:${fd.slice(1)},10,0`);
    expect(got).toBe(`F10;${readFileSync(file, 'latin1').slice(0, 16)}`);
    const st = await c.ask(`vFile:fstat:${fd.slice(1)}`);
    expect(st.slice(0, 4)).toBe('F40;');
    expect(Buffer.from(st.slice(4), 'latin1').readBigUInt64BE(28)).toBe(BigInt(statSync(file).size));
    expect(await c.ask(`vFile:close:${fd.slice(1)}`)).toBe('F0');
    expect(await c.ask(`vFile:pread:${fd.slice(1)},10,0`)).toBe('F-1,9'); // EBADF
  });
});
