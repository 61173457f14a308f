// The control contract on the C++ sample guest (dumps/cxx-kernel.elf, built by g++ in setup) booted
// on the emulator: BP= on unmangled C++ names, C=1 to the STOP= reply, the grammar's edges, one
// controller at a time across the contract and RSP, detach, and a dump that cannot run.
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContractClient } from '../../src/contract/contract-client.js';
import { serveContract, type ContractServerHandle } from '../../src/contract/contract-server.js';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { builtinModules } from '../../src/mdb/modules/index.js';
import { CaptureOutput, Session } from '../../src/mdb/session.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { openTarget } from '../../src/targets/open-target.js';
import { RspClient } from '../gdbserver/rsp-client.js';
import { repoRoot } from '../helpers/repo.js';

const kernel = join(repoRoot, 'dumps', 'cxx-kernel.elf');

/** Raw bytes in, every reply line out until `count` replies came (or 5 s passed). */
async function exchange(port: number, chunks: (string | Buffer)[], count: number, gapMs = 0): Promise<string[]> {
  const sock = createConnection({ host: '127.0.0.1', port });
  let text = '';
  const done = new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${text.split('\n').length - 1} replies: ${text}`)), 5000);
    sock.on('data', (d) => {
      text += d.toString('latin1');
      const lines = text.split('\n').filter((l) => l !== '');
      if (lines.length >= count) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
  });
  await new Promise((r) => sock.once('connect', r));
  for (const c of chunks) {
    sock.write(c);
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  try {
    return await done;
  } finally {
    sock.destroy();
  }
}

describe('the control contract on a live C++ guest', () => {
  let target: EmulatorTarget;
  let session: Session;
  let server: ContractServerHandle;
  let gdb: GdbServerHandle;
  const logs: string[] = [];

  beforeAll(async () => {
    target = EmulatorTarget.open(kernel, {});
    session = new Session(target, builtinModules);
    server = await serveContract(target, { port: 0, session, log: (m) => logs.push(m) });
    gdb = await serveGdb(target, undefined, { port: 0, log: (m) => logs.push(m) });
  });
  afterAll(async () => {
    await server?.close();
    await gdb?.close();
    target?.close();
  });

  const events = async (): Promise<string[]> => {
    const out = new CaptureOutput();
    await session.execute('::events', out);
    return out.lines;
  };
  const addr = (mangled: string): bigint => target.symbols.find(mangled)!.addr;

  it('V=?; names the version; BP= on an unmangled method stops there, and ::events lists it', async () => {
    const c = await ContractClient.open('127.0.0.1', server.port);
    expect(await c.version()).toBe('dbg-contract/1');
    const bps = await c.breakAt('Scheduler::tick');
    expect(bps).toEqual([{ id: 1, pc: addr('_ZN9Scheduler4tickEv'), symbol: 'Scheduler::tick()' }]);
    expect(await events()).toEqual([`1: breakpoint at 0x${addr('_ZN9Scheduler4tickEv').toString(16).padStart(16, '0')} Scheduler::tick(); hits 0`]);
    await c.continue();
    const stop = await c.waitStop();
    expect(stop.text).toBe(`STOP=breakpoint,PC=0x${addr('_ZN9Scheduler4tickEv').toString(16)},CPU=0,BP=1,SYM=Scheduler::tick()`);
    expect(await events()).toEqual([expect.stringMatching(/^1: breakpoint at .*; hits 1$/)]);
    await c.detach();
    await server.idle();
    expect(await events()).toEqual(['no breakpoints or watchpoints']);
  });

  it('an overload set whole, one overload by its parameters, a template by name or instantiation', async () => {
    const c = await ContractClient.open('127.0.0.1', server.port);
    const all = await c.breakAt('ns::Foo::bar');
    expect(all.map((b) => b.symbol).sort()).toEqual(['ns::Foo::bar(char const*)', 'ns::Foo::bar(int)', 'ns::Foo::bar(int, int) const']);
    // the same overload again: the breakpoint it already has
    const one = await c.breakAt('ns::Foo::bar(char const *)');
    expect(one).toEqual([all.find((b) => b.symbol === 'ns::Foo::bar(char const*)')]);
    expect((await c.breakAt('max')).map((b) => b.symbol)).toEqual(expect.arrayContaining(['max<int>(int, int)', 'max<long>(long, long)']));
    expect((await c.breakAt('max<long>')).map((b) => b.pc)).toEqual([addr('_Z3maxIlET_S0_S0_')]);
    expect((await c.breakAt('Ring<int, 8>::push')).map((b) => b.pc)).toEqual([addr('_ZN4RingIiLi8EE4pushEi')]);
    // a C name, and a mangled one as the symbol table has it
    expect((await c.breakAt('kmain')).map((b) => b.symbol)).toEqual(['kmain']);
    expect((await c.breakAt('_ZN2ns3Foo3barEi')).map((b) => b.symbol)).toEqual(['ns::Foo::bar(int)']);
    await expect(c.breakAt('ns::Foo::baz')).rejects.toThrow(/^no symbol "ns::Foo::baz" in cxx-kernel\.elf \(a C name as written, a C\+\+ name unmangled/);
    await expect(c.breakAt('ns::Foo::bar(long)')).rejects.toThrow(/^no symbol "ns::Foo::bar\(long\)"/);
    expect((await events()).length).toBe(7); // bar x3, max x2, push, kmain
    c.close(); // going away without D=1 deletes them too
    await server.idle();
    expect(await events()).toEqual(['no breakpoints or watchpoints']);
  });

  it('several commands in one read, whitespace between, one split across reads, bad ones answered', async () => {
    const replies = await exchange(
      server.port,
      ['V=?;  \n\tBP=max<int>;\r\nC', '=', 'tr', 'ue;', 'X=1;;C=2;B=0;V=1;BP=;', Buffer.from([1, 0xff, 0x3b]), 'C=false;D=1;'],
      14,
      20,
    );
    expect(replies.slice(0, 3)).toEqual(['V=dbg-contract/1;', expect.stringMatching(/^BP=\d+,PC=0x[0-9a-f]+,SYM=max<int>\(int, int\);$/), 'OK;']);
    expect(replies[3]).toBe('OK;');
    // the stop comes whenever the guest gets there, between the other replies
    const rest = replies.slice(4);
    expect(rest.filter((l) => l.startsWith('STOP='))).toEqual([expect.stringMatching(/^STOP=breakpoint,PC=0x[0-9a-f]+,CPU=0,BP=\d+,SYM=max<int>\(int, int\);$/)]);
    expect(rest.filter((l) => !l.startsWith('STOP='))).toEqual([
      'ERR=unknown command "X=1": the commands are BP=SYMBOL%3B B=1%3B C=1%3B C=0%3B D=1%3B V=?%3B;',
      'ERR=empty command: expected KEY=VALUE%3B (BP=, B=, C=, D=, V=);',
      'ERR=C=2: expected 1 or true (continue), 0 or false (stop);',
      'ERR=B=0: expected B=1%3B (break into the debugger);',
      'ERR=V=1: the only version query is V=?%3B;',
      'ERR=BP= needs a symbol: BP=kmain%3B or BP=ns::Foo::bar(int)%3B;',
      'ERR=byte 0x01 in command "%01%FF": commands are printable ASCII;',
      'OK;',
      'OK;',
    ]);
  });

  it('B=1 on a stopped guest says where it is; C=0 stops a run; C=1 while running is refused', async () => {
    const c = await ContractClient.open('127.0.0.1', server.port);
    const here = await c.break();
    expect(here.text).toMatch(/^STOP=\w[\w-]*,PC=0x[0-9a-f]+,CPU=0,/);
    await c.breakAt('Scheduler::tick');
    await c.continue();
    expect((await c.waitStop()).symbol).toBe('Scheduler::tick()');
    await c.stop(); // harmless when stopped
    await c.detach();
    await server.idle();
  });

  it('one controller at a time across the contract and RSP, each refused with the holder named', async () => {
    const a = await ContractClient.open('127.0.0.1', server.port);
    expect(await a.version()).toBe('dbg-contract/1');
    const b = await ContractClient.open('127.0.0.1', server.port);
    await expect(b.version()).rejects.toThrow(/^another debugger \(127\.0\.0\.1:\d+\) is attached to this dbg control contract server; only one at a time$/);
    const g = await RspClient.open(gdb.port);
    expect(await g.ask('?')).toMatch(/^E\.another debugger \(127\.0\.0\.1:\d+, over the dbg control contract\) is attached to this dbg GDB server; only one at a time$/);
    g.close();
    await a.detach();
    await server.idle();
    // now gdb may attach, and the contract is refused while it is
    const g2 = await RspClient.open(gdb.port);
    expect(await g2.ask('?')).toMatch(/^T05/);
    const c = await ContractClient.open('127.0.0.1', server.port);
    await expect(c.version()).rejects.toThrow(/^another debugger \(127\.0\.0\.1:\d+, over the GDB remote protocol\) is attached to this dbg control contract server; only one at a time$/);
    expect(await g2.ask('D')).toBe('OK');
    g2.close();
    await gdb.idle();
    const d = await ContractClient.open('127.0.0.1', server.port);
    expect(await d.version()).toBe('dbg-contract/1');
    await d.detach();
    await server.idle();
  });
});

describe('the control contract on a dump', () => {
  it('answers that the target cannot run, and BP= that it has no breakpoints', async () => {
    const target = openTarget(join(repoRoot, 'dumps', 'vmcore.0'), { symbols: [join(repoRoot, 'dumps', 'kernel.elf')] });
    const server = await serveContract(target, { port: 0, session: new Session(target, builtinModules), log: () => undefined });
    try {
      const c = await ContractClient.open('127.0.0.1', server.port);
      await expect(c.continue()).rejects.toThrow('kernel dump "vmcore.0" cannot run: execution control is not supported by this target');
      await expect(c.break()).rejects.toThrow('kernel dump "vmcore.0" cannot run');
      await expect(c.stop()).rejects.toThrow('kernel dump "vmcore.0" cannot run');
      await expect(c.breakAt('panic')).rejects.toThrow('breakpoints and watchpoints is not supported by kernel dump "vmcore.0"');
      await c.detach();
    } finally {
      await server.close();
      target.close();
    }
  });

  it('refuses a non-loopback address without the flag', async () => {
    const target = openTarget(join(repoRoot, 'dumps', 'vmcore.0'), {});
    try {
      await expect(serveContract(target, { host: '0.0.0.0', port: 0, session: new Session(target, builtinModules) })).rejects.toThrow(
        '--contract 0.0.0.0:0: 0.0.0.0 is not a loopback address, and anyone who can reach it could control the target with no password; add --contract-allow-remote to listen there anyway',
      );
    } finally {
      target.close();
    }
  });
});
