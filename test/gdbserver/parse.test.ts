import { describe, expect, it } from 'vitest';
import { parseRequest } from '../../src/gdbserver/commands/parse-request.js';
import { RequestMemo } from '../../src/gdbserver/commands/request-memo.js';
import { BadPacket } from '../../src/gdbserver/request.js';

const p = (s: string | Buffer) => parseRequest(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
const bad = (s: string): string => {
  try {
    p(s);
  } catch (e) {
    expect(e).toBeInstanceOf(BadPacket);
    return (e as BadPacket).message;
  }
  throw new Error(`"${s}" parsed without error`);
};

describe('packet parsers', () => {
  it('memory: m, M, X (binary data taken from the payload)', () => {
    expect(p('m401000,10')).toEqual({ kind: 'read-memory', addr: 0x401000n, length: 16 });
    expect(p('M600000,2:abcd')).toEqual({ kind: 'write-memory', addr: 0x600000n, data: Buffer.from([0xab, 0xcd]) });
    const x = Buffer.concat([Buffer.from('X600000,3:'), Buffer.from([0x00, 0x23, 0xff])]);
    expect(p(x)).toEqual({ kind: 'write-memory', addr: 0x600000n, data: Buffer.from([0x00, 0x23, 0xff]) });
    expect(p('X600000,0:')).toEqual({ kind: 'write-memory', addr: 0x600000n, data: Buffer.alloc(0) });
  });

  it('memory: bad arguments name what was wrong', () => {
    expect(bad('mzz,10')).toBe('bad packet "mzz,10": address "zz" is not hex');
    expect(bad('m10')).toBe('bad packet "m10": length "" is not hex');
    expect(bad('m10,200000')).toBe('bad packet "m10,200000": length 0x200000 is larger than 0x100000');
    expect(bad('m11112222333344445,1')).toBe('bad packet "m11112222333344445,1": address 0x11112222333344445 does not fit in 64 bits');
    expect(bad('M10,2:abc')).toBe('bad packet "M10,2:abc": data is not an even number of hex digits');
    expect(bad('M10,3:abcd')).toBe('bad packet "M10,3:abcd": length 0x3 but 0x2 bytes of data');
    expect(bad('X10,1')).toBe('bad packet "X10,1": expected ADDR,LENGTH:DATA');
  });

  it('registers: g, G, p, P', () => {
    expect(p('g')).toEqual({ kind: 'read-registers' });
    expect(p('p10')).toEqual({ kind: 'read-register', regno: 16 });
    expect(p('P10=0010400000000000')).toEqual({ kind: 'write-register', regno: 16, data: Buffer.from('0010400000000000', 'hex') });
    expect(bad('P10')).toBe('bad packet "P10": expected P REGNO=VALUE');
    expect(bad('pq')).toBe('bad packet "pq": register number "q" is not hex');
    expect(bad('gx')).toBe('bad packet "gx": g takes no arguments');
  });

  it('break/watchpoints: Z0-Z4 and z', () => {
    expect(p('Z0,401000,1')).toEqual({ kind: 'insert-point', type: 'sw', addr: 0x401000n, length: 1 });
    expect(p('Z1,401000,1')).toMatchObject({ type: 'hw' });
    expect(p('Z2,600000,4')).toMatchObject({ type: 'write', length: 4 });
    expect(p('Z3,600000,4')).toMatchObject({ type: 'read' });
    expect(p('z4,600000,8')).toEqual({ kind: 'remove-point', type: 'access', addr: 0x600000n, length: 8 });
    expect(p('Z0,401000,1;X1,0f')).toMatchObject({ type: 'sw' }); // conditions ignored
    expect(bad('Z9,1,1')).toBe('bad packet "Z9,1,1": breakpoint type "9" is not 0-4');
    expect(bad('Z0,1')).toBe('bad packet "Z0,1": kind/length "" is not hex');
  });

  it('resume: c, s, C, S, vCont, vCont?, bs, bc', () => {
    expect(p('c')).toEqual({ kind: 'resume', actions: [{ action: 'continue', thread: { kind: 'any' } }] });
    expect(p('S05')).toEqual({ kind: 'resume', actions: [{ action: 'step', thread: { kind: 'any' }, signal: 5 }] });
    expect(p('vCont?')).toEqual({ kind: 'resume-query' });
    expect(p('vCont;s:p1.2;c')).toEqual({
      kind: 'resume',
      actions: [
        { action: 'step', thread: { kind: 'thread', index: 2 } },
        { action: 'continue', thread: { kind: 'all' } },
      ],
    });
    expect(p('vCont;C02:1')).toEqual({ kind: 'resume', actions: [{ action: 'continue', thread: { kind: 'thread', index: 1 }, signal: 2 }] });
    expect(p('bs')).toEqual({ kind: 'reverse', action: 'step' });
    expect(p('bc')).toEqual({ kind: 'reverse', action: 'continue' });
    expect(bad('vCont;r1,2')).toBe('bad packet "vCont;r1,2": vCont action "r1,2" is not c, C, s or S');
    expect(bad('c401000')).toBe('bad packet "c401000": resuming at another address is not supported');
    expect(bad('vCont;s:pzz.1')).toBe('bad packet "vCont;s:pzz.1": process id "zz" is not hex');
  });

  it('threads: H, T, qC, qfThreadInfo, qsThreadInfo', () => {
    expect(p('Hgp1.2')).toEqual({ kind: 'set-thread', op: 'g', thread: { kind: 'thread', index: 2 } });
    expect(p('Hc-1')).toEqual({ kind: 'set-thread', op: 'c', thread: { kind: 'all' } });
    expect(p('Hg0')).toEqual({ kind: 'set-thread', op: 'g', thread: { kind: 'any' } });
    expect(p('Tp1.3')).toEqual({ kind: 'thread-alive', thread: { kind: 'thread', index: 3 } });
    expect(p('qC')).toEqual({ kind: 'current-thread' });
    expect(p('qsThreadInfo')).toEqual({ kind: 'thread-info', first: false });
    expect(bad('Hx1')).toBe('bad packet "Hx1": Hx: expected Hg or Hc');
  });

  it('queries: qSupported, qXfer, qRcmd, QStartNoAckMode, qAttached', () => {
    expect(p('qSupported:multiprocess+;swbreak+')).toEqual({ kind: 'query-supported', features: ['multiprocess+', 'swbreak+'] });
    expect(p('qXfer:features:read:target.xml:0,ffb')).toEqual({
      kind: 'xfer-read',
      object: 'features',
      annex: 'target.xml',
      offset: 0,
      length: 0xffb,
    });
    expect(p('qXfer:auxv:read::0,100')).toEqual({ kind: 'xfer-read', object: 'auxv', annex: '', offset: 0, length: 0x100 });
    expect(p('qXfer:memory-map:read::0,100')).toEqual({ kind: 'unknown', packet: 'qXfer:memory-map:read::0,100' });
    expect(p('vFile:open:2f6574632f706173737764,0,0')).toEqual({ kind: 'file', op: 'open', path: '/etc/passwd', flags: 0 });
    expect(p('vFile:pread:1,100000,10')).toEqual({ kind: 'file', op: 'pread', fd: 1, count: 0x10000, offset: 0x10 });
    expect(p('vFile:unlink:2f6574632f706173737764')).toEqual({ kind: 'unknown', packet: 'vFile:unlink:2f6574632f706173737764' });
    expect(() => p('vFile:open:2f')).toThrow('vFile:open takes 3 argument(s)');
    expect(p('qRcmd,' + Buffer.from('::status').toString('hex'))).toEqual({ kind: 'monitor', command: '::status' });
    expect(p('QStartNoAckMode')).toEqual({ kind: 'start-noack' });
    expect(p('qAttached:1')).toEqual({ kind: 'attached' });
    expect(bad('qRcmd,zz')).toBe('bad packet "qRcmd,zz": command is not an even number of hex digits');
    expect(bad('qXfer:features:write:target.xml:0,1')).toBe(
      'bad packet "qXfer:features:write:target.xml:0,1": expected qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH',
    );
  });

  it('unknown packets become the empty reply, k/vKill/D are recognised', () => {
    expect(p('qTStatus')).toEqual({ kind: 'unknown', packet: 'qTStatus' });
    expect(p('')).toEqual({ kind: 'unknown', packet: '' });
    expect(p('vKill;1')).toEqual({ kind: 'kill' });
    expect(p('k')).toEqual({ kind: 'kill' });
    expect(p('D;1')).toEqual({ kind: 'detach', pid: 1 });
    expect(p('D;7a2f')).toEqual({ kind: 'detach', pid: 0x7a2f });
    expect(p('D')).toEqual({ kind: 'detach' });
    expect(p('QThreadEvents:1')).toEqual({ kind: 'thread-events', on: true });
    expect(p('QThreadEvents:0')).toEqual({ kind: 'thread-events', on: false });
    expect(() => p('QThreadEvents:2')).toThrow('bad packet "QThreadEvents:2": expected QThreadEvents:0 or QThreadEvents:1');
  });
});

describe('RequestMemo', () => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1');

  it('gives the request parseRequest gives, the same object for a packet seen before', () => {
    const memo = new RequestMemo();
    for (const text of ['vCont;s:p1.1;c:p1.-1', 'qXfer:threads:read::0,1000', 'mffffffffc0011fc0,40', 'bs', 'Z0,401040,1', 'Hgp1.2', 'g', '?']) {
      const first = memo.parse(b(text));
      expect(first).toEqual(parseRequest(b(text)));
      expect(memo.parse(b(text))).toBe(first);
    }
    // another address, another request
    expect(memo.parse(b('m10,4'))).toEqual({ kind: 'read-memory', addr: 0x10n, length: 4 });
    expect(memo.parse(b('m20,4'))).toEqual({ kind: 'read-memory', addr: 0x20n, length: 4 });
  });

  it('keeps no request that holds payload bytes, and fails a bad packet every time', () => {
    const memo = new RequestMemo();
    const write = memo.parse(b('M600000,2:abcd'));
    expect(write).toEqual({ kind: 'write-memory', addr: 0x600000n, data: Buffer.from([0xab, 0xcd]) });
    expect(memo.parse(b('M600000,2:abcd'))).not.toBe(write);
    for (let i = 0; i < 2; i++) expect(() => memo.parse(b('mzz,10'))).toThrow('bad packet "mzz,10": address "zz" is not hex');
  });

  it('stays bounded: past its size it starts again, and still answers right', () => {
    const memo = new RequestMemo();
    for (let a = 0; a < 1000; a++) expect(memo.parse(b(`m${a.toString(16)},40`))).toEqual({ kind: 'read-memory', addr: BigInt(a), length: 0x40 });
    expect((memo as unknown as { kept: Map<string, unknown> }).kept.size).toBeLessThanOrEqual(64);
  });
});

describe('--gdb [HOST:]PORT', () => {
  it('defaults the host to 127.0.0.1 and accepts names, IPv4 and bracketed IPv6', async () => {
    const { parseListenAddress } = await import('../../src/gdbserver/gdb-listen.js');
    expect(parseListenAddress('1234')).toEqual({ host: '127.0.0.1', port: 1234 });
    expect(parseListenAddress(':1234')).toEqual({ host: '127.0.0.1', port: 1234 });
    expect(parseListenAddress('0.0.0.0:0')).toEqual({ host: '0.0.0.0', port: 0 });
    expect(parseListenAddress('localhost:9')).toEqual({ host: 'localhost', port: 9 });
    expect(parseListenAddress('[::1]:1234')).toEqual({ host: '::1', port: 1234 });
  });

  it('rejects what is not [HOST:]PORT with a bad-input error that says what to write', async () => {
    const { parseListenAddress } = await import('../../src/gdbserver/gdb-listen.js');
    for (const [text, why] of [
      ['', 'not a port number'],
      ['host:', 'not a port number'],
      ['12ab', 'not a port number'],
      ['a b:1', 'not a port number'],
      ['65536', 'port 65536 is above 65535'],
    ] as const) {
      expect(() => parseListenAddress(text)).toThrow(
        expect.objectContaining({ code: 'bad-input', message: `--gdb ${text}: ${why}; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234` }),
      );
    }
  });
});
