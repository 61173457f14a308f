import { describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { parseLine, parseStatements } from '../../src/mdb/parser.js';

function bad(line: string): DbgError {
  try {
    parseLine(line);
  } catch (e) {
    if (e instanceof DbgError) return e;
    throw e;
  }
  throw new Error(`"${line}" parsed`);
}

describe('MDB command-line parser', () => {
  it('parses addr::dcmd args', () => {
    const [p] = parseLine('main+10::dis -n 4');
    expect(p).toHaveLength(1);
    expect(p![0]).toMatchObject({ addr: { text: 'main+10', column: 0 }, verb: { kind: 'dcmd', name: 'dis', args: ['-n', '4'] } });
  });

  it('parses addr,count::dcmd and addr,count/fmt', () => {
    const [a, b] = parseLine('list_head,3::walk list; 1000,0t8/X');
    expect(a![0]).toMatchObject({ addr: { text: 'list_head' }, count: { text: '3' }, verb: { kind: 'dcmd', name: 'walk', args: ['list'] } });
    expect(b![0]).toMatchObject({ addr: { text: '1000' }, count: { text: '0t8', column: 29 }, verb: { kind: 'format', space: '/', fmt: 'X', args: [] } });
  });

  it('parses expr=fmt, ?fmt and \\fmt', () => {
    const [a, b, c] = parseLine('0t10+1=D\nmain?i\n1000\\J');
    expect(a![0]!.verb).toEqual({ kind: 'format', space: '=', fmt: 'D', args: [] });
    expect(a![0]!.addr!.text).toBe('0t10+1');
    expect(b![0]!.verb).toMatchObject({ space: '?', fmt: 'i' });
    expect(c![0]!.verb).toMatchObject({ space: '\\', fmt: 'J' });
  });

  it('keeps == and != inside the expression', () => {
    const [p] = parseLine('(1==1)!=0=D');
    expect(p![0]!.addr!.text).toBe('(1==1)!=0');
    expect(p![0]!.verb).toMatchObject({ space: '=', fmt: 'D' });
  });

  it('maps $c $C $r $q $m $? onto dcmds', () => {
    const names = parseLine('$c; $C; $r; $q; $m; $?').map((p) => p[0]!.verb);
    expect(names).toEqual([
      { kind: 'dcmd', name: 'stack', args: [] },
      { kind: 'dcmd', name: 'stack', args: ['-v'] },
      { kind: 'dcmd', name: 'regs', args: [] },
      { kind: 'dcmd', name: 'quit', args: [] },
      { kind: 'dcmd', name: 'mappings', args: [] },
      { kind: 'dcmd', name: 'status', args: [] },
    ]);
  });

  it('maps :c :s :e :u :b :d :z into execution dcmds', () => {
    const v = parseLine(':c; :s; :e; :u; main:b; 1:d; :z; 1000:w').map((p) => p[0]!);
    expect(v.map((c) => c.verb)).toEqual([
      { kind: 'dcmd', name: 'cont', args: [] },
      { kind: 'dcmd', name: 'step', args: [] },
      { kind: 'dcmd', name: 'step', args: ['over'] },
      { kind: 'dcmd', name: 'step', args: ['out'] },
      { kind: 'dcmd', name: 'bp', args: [] },
      { kind: 'dcmd', name: 'delete', args: [] },
      { kind: 'dcmd', name: 'delete', args: ['all'] },
      { kind: 'dcmd', name: 'wp', args: ['-w'] },
    ]);
    expect(v[4]!.addr!.text).toBe('main');
  });

  it('splits pipes after the verb; | inside the expression is bitwise or', () => {
    const [p] = parseLine('1|2::walk list | ::list 8 | ::nm');
    expect(p).toHaveLength(3);
    expect(p![0]!.addr!.text).toBe('1|2');
    expect(p!.map((c) => (c.verb as { name: string }).name)).toEqual(['walk', 'list', 'nm']);
  });

  it('splits statements on ; and newlines and skips empty ones', () => {
    expect(parseLine(';;  ::status ;\n\n::threads;').length).toBe(2);
  });

  it('takes quoted words as one argument', () => {
    const [p] = parseLine(`::load "my dmod.mjs" 'a b'`);
    expect(p![0]!.verb).toEqual({ kind: 'dcmd', name: 'load', args: ['my dmod.mjs', 'a b'] });
  });

  it('keeps a format write request with its values', () => {
    const [p] = parseLine('buf/W 0t5 6');
    expect(p![0]!.verb).toEqual({ kind: 'format', space: '/', fmt: 'W', args: ['0t5', '6'] });
  });

  it('keeps sized dereferences */c/ in the expression', () => {
    const [p] = parseLine('*/c/main+1=B');
    expect(p![0]!.addr!.text).toBe('*/c/main+1');
    expect(p![0]!.verb).toMatchObject({ space: '=', fmt: 'B' });
  });

  it('parses statements lazily, so earlier ones are returned before a later syntax error', () => {
    const it = parseStatements('::status; ::; ::threads');
    expect(it.next().value).toBeDefined();
    expect(() => it.next()).toThrow(/syntax error at column 13/);
  });

  it('reports syntax errors with the column and the line', () => {
    expect(bad('::').message).toBe('syntax error at column 3 of "::": expected a dcmd name after "::"');
    expect(bad('main $z').message).toMatch(/^syntax error at column 6 of "main \$z": unknown "\$z" command/);
    expect(bad(':y').message).toMatch(/unknown ":y" command/);
    expect(bad('::load "x').message).toMatch(/unterminated double quote/);
    expect(bad('1,::status').message).toMatch(/expected a count after ","/);
    expect(bad('::status | | ::x').message).toMatch(/column 12 .*a pipe needs a command on each side/);
    expect(bad('::status |').message).toMatch(/expected a command/);
  });
});
