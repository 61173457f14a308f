/**
 * MDB's language beyond illumos's own tests (test/mdb/illumos): expression words, character
 * constants, `%` and `%%`, variables `<0` and `>/c/name`, `$[expr]` arguments, a count that repeats
 * a dcmd, a bare address that repeats the last format, macro files, `$>` logging, shell escapes,
 * and the one-line error each bad input gives. Against a raw file of known bytes.
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureOutput, type Session } from '../../src/mdb/session.js';
import { failure, rawSession, run, tempDir } from './helpers.js';

let s: Session;
let dir: string;
let cleanup: () => void;
const pad = (v: string) => ' '.repeat(16) + v;

beforeAll(() => {
  const t = tempDir();
  dir = t.dir;
  cleanup = t.cleanup;
  const b = Buffer.alloc(0x100);
  for (let i = 0; i < b.length; i++) b[i] = i;
  s = rawSession(dir, b);
});
afterAll(() => {
  s.target.close();
  cleanup();
});

describe('expressions', () => {
  it("'A' is a character constant; several pack first-highest", async () => {
    expect(await run(s, "'A'=X")).toEqual([pad('41')]);
    expect(await run(s, "'ab'=X")).toEqual([pad('6162')]);
    expect(await run(s, "'\\n'=X")).toEqual([pad('a')]);
    expect((await failure(s, "''=X")).message).toBe('bad expression "\'\'" at column 1: a character constant holds 1 to 8 characters, not 0');
    expect((await failure(s, "'abc=X")).message).toMatch(/unterminated character constant/);
  });

  it('% divides as signed numbers, %% is the remainder', async () => {
    expect(await run(s, '-0t7%2=D')).toEqual([pad('-3')]);
    expect(await run(s, '0t7%%3=D')).toEqual([pad('1')]);
    expect((await failure(s, '1%%0=D')).message).toMatch(/division by zero/);
    expect((await failure(s, '(1<<0t63)%-1=D')).message).toMatch(/divide overflow/);
  });

  it('+ ^ & alone: dot plus and minus the increment, the last address given', async () => {
    await run(s, '10/X');
    expect(await run(s, '+=K')).toEqual([pad('14'.padEnd(16))].map((l) => l.trimEnd()));
    await run(s, '20/X');
    expect(await run(s, '^=K')).toEqual([pad('1c')]);
    expect(await run(s, '30::map &')).toEqual(['30']);
  });

  it('_ separates digits; a number wider than 64 bits is refused', async () => {
    expect(await run(s, '0x1234_5678=K')).toEqual([pad('12345678')]);
    expect((await failure(s, '0x1_0000_0000_0000_0000=K')).message).toBe('bad expression "0x1_0000_0000_0000_0000" at column 1: 0x1_0000_0000_0000_0000 does not fit in 64 bits');
    expect((await failure(s, '0x_1=K')).message).toMatch(/"0x" is not a valid hexadecimal number/);
  });

  it('$d sets the default radix of numbers and of ::map', async () => {
    expect(await run(s, '0t10$d')).toEqual(['radix = 10 base ten']);
    expect(await run(s, '12=X')).toEqual([pad('c')]);
    expect(await run(s, '::map 0x10')).toEqual(['16']);
    expect(await run(s, '0x10$d')).toEqual(['radix = 16 base ten']);
    expect(await run(s, '$d')).toEqual(['radix = 16 base ten']);
    expect((await failure(s, '1$d')).message).toBe('$d: radix 1 is out of range (2 to 36; 0t10 is ten)');
  });
});

describe('variables and arguments', () => {
  it('<0 is the last value a format printed; >/c/name keeps the low byte', async () => {
    await run(s, '8/J');
    expect(await run(s, '<0=K')).toEqual([pad('f0e0d0c0b0a0908')]);
    await run(s, '0x1234>/c/b');
    expect(await run(s, '<b=K')).toEqual([pad('34')]);
    expect((await failure(s, '1>/q/b')).message).toMatch(/bad size "q" in ">\/q\/": expected c s i l/);
  });

  it('$[expr] is the value of expr as an argument', async () => {
    expect(await run(s, '::echo $[1+2] x')).toEqual(['0x3 x']);
    expect((await failure(s, '::echo $[1+')).message).toMatch(/unterminated "\$\[" \(expected "\]"\)/);
    expect((await failure(s, '::echo $[)]')).message).toMatch(/bad expression/);
  });

  it('// after the arguments is a comment', async () => {
    expect(await run(s, '::echo a b // c d')).toEqual(['a b']);
  });
});

describe('repeating', () => {
  it('addr,count::dcmd runs the dcmd count times', async () => {
    expect(await run(s, '5,3::map .+1')).toEqual(['6', '6', '6']);
  });

  it('an address alone runs the last format there', async () => {
    await run(s, '10/B');
    expect(await run(s, '20')).toEqual(['0x20:           20']);
  });
});

describe('pipes', () => {
  it('a format passes the values it printed, not its text', async () => {
    expect(await run(s, '8,2/J | ::map .')).toEqual(['f0e0d0c0b0a0908', '1716151413121110']);
  });

  it('::eval runs a command with dot at each address', async () => {
    expect(await run(s, "! 'echo 10' | ::eval ./B")).toEqual(['0x10:           10']);
  });
});

describe('macro files and logging', () => {
  it('$< runs a macro from the macro path and restores dot; $<< leaves dot where it went', async () => {
    writeFileSync(join(dir, 'show'), '.,2/B\n40\n');
    await run(s, `::macro_path ${dir}`);
    expect(await run(s, '30$<show')).toEqual(['0x30:           30      31', '0x40:           40      41']);
    expect(await run(s, '.=K')).toEqual([pad('30')]);
    await run(s, '30$<<show');
    expect(await run(s, '.=K')).toEqual([pad('41')]);
    expect((await failure(s, '$<nosuch')).message).toBe(`macro "nosuch" is not in the macro path (${dir}; ::macro_path sets it)`);
    expect((await failure(s, '$<')).message).toMatch(/\$< needs one macro file/);
  });

  it('$< refuses a macro that runs itself forever', async () => {
    writeFileSync(join(dir, 'loop'), '$<loop\n');
    expect((await failure(s, '$<loop')).message).toBe('macro "loop": macros nest deeper than 16 (a macro that runs itself?)');
  });

  it('$> copies the output into a file until $> alone', async () => {
    const log = join(dir, 'out.log');
    await run(s, `$>${log}`);
    await run(s, '::echo logged');
    await run(s, '$>');
    await run(s, '::echo not-logged');
    expect(readFileSync(log, 'utf8')).toBe(`logging output to "${log}"\nlogged \n`);
    expect((await failure(s, `$>${dir}/no/such/dir/x`)).message).toMatch(/^cannot write the log file/);
  });
});

describe('shell escapes', () => {
  it('! runs a command; a dcmd ! command filters its output; !< runs what it prints', async () => {
    expect(await run(s, "! echo 'hi; there' | cat")).toEqual(['hi; there']); // to the end of the line
    expect(await run(s, "::echo b a ! 'tr ab AB'")).toEqual(['B A']);
    expect(await run(s, "!< echo '0t5=D'")).toEqual([pad('5')]);
  });

  it('bad shell escapes are one-line syntax errors', async () => {
    expect((await failure(s, "! 'echo")).message).toBe('syntax error at column 3 of "! \'echo": unterminated quoted shell command');
    expect((await failure(s, "::echo ! 'cat' ! ::map .")).message).toBe(
      'syntax error at column 16 of "::echo ! \'cat\' ! ::map .": a shell command is joined to the next dcmd with "|", not "!"',
    );
    expect((await failure(s, '!')).message).toBe('syntax error at column 1 of "!": expected a shell command after "!"');
    expect((await failure(s, "! 'echo 1' | ::map .+(")).message).toMatch(/^bad expression ".\+\(" at column 4: expression ends where a value was expected$/);
  });

  it('a remote client (gdb monitor) may not run shell commands', async () => {
    const t = tempDir();
    const r = rawSession(t.dir, Buffer.alloc(16));
    r.hostRefusal = 'start dbg with --gdb-allow-host-io to allow it';
    const out = new CaptureOutput();
    await expect(r.execute('! echo no', out)).rejects.toThrow(/refused for a remote client/);
    r.target.close();
    t.cleanup();
  });
});
