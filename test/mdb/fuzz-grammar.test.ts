/**
 * Grammar-driven fuzzing (fast-check) of the MDB command language: lines built from the grammar
 * (expressions of numbers in every radix with `_` separators, character constants, symbols,
 * variables, operators and parentheses; formats with counts and quoted text; dcmds with flags and
 * `$[expr]` arguments; `$` commands; pipes, `;` and `//` comments), each then mutated by cutting,
 * doubling or swapping characters. Every line must print or fail with one line (a DbgError), and
 * finish in bounded time. Shell escapes are refused in this session, so no shell runs.
 */

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { CaptureOutput, type Session } from '../../src/mdb/session.js';
import { rawSession, tempDir } from './helpers.js';

let s: Session;
const tmp = tempDir();
beforeAll(() => {
  s = rawSession(tmp.dir, Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 73 + 11) & 0xff)));
  s.hostRefusal = 'the fuzz test runs no shell commands';
});
afterAll(() => (s.target.close(), tmp.cleanup()));

const digits = (alphabet: string) => fc.string({ unit: fc.constantFrom(...alphabet.split('')), minLength: 1, maxLength: 20 });
const number = fc.oneof(
  digits('0123456789abcdef_').map((d) => '0x' + d),
  digits('0123456789_').map((d) => '0t' + d),
  digits('01234567_').map((d) => '0o' + d),
  digits('01_').map((d) => '0i' + d),
  digits('0123456789abcdef_'),
  fc.constantFrom("'A'", "'ab'", "'\\n'", "''", "'abcdefghi'", 'ffffffffffffffff', '10000000000000000'),
);
const word = fc.constantFrom('.', 'main', 'x`y', '<x', '<0', '<rip', '+', '^', '&', 'bad_cafe', 'dead', '*/c/', '*/J/');
const op = fc.constantFrom('+', '-', '*', '%', '%%', '#', '|', '^', '&', '<<', '>>', '==', '!=', '/');
const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    number,
    word,
    fc.tuple(tie('e'), op, tie('e')).map(([a, o, b]) => `${a}${o}${b}`),
    fc.tuple(fc.constantFrom('-', '~', '#', '*', '%'), tie('e')).map(([u, a]) => u + a),
    tie('e').map((a) => `(${a})`),
  ),
})).e;
const fmtChar = fc.constantFrom(...'BCDEFGHIJKOPQRSTUVWXYZabcdefghijnoqrstuvwxyz+-^'.split(''));
const format = fc
  .array(fc.oneof(fc.tuple(fc.nat(0x40), fmtChar).map(([n, c]) => (n > 1 ? String(n) : '') + c), fc.constantFrom('"text"', '"', '" "')), { minLength: 0, maxLength: 5 })
  .map((xs) => xs.join(''));
const dcmd = fc.constantFrom('::echo', '::map', '::eval', '::dcmds', '::walkers', '::formats', '::nm', '::list', '::walk', '::dis', '::help', '::status', '$d', '$<', '$<<', '$>', '$c', '$r', '$m', '::macro_path', '::nosuch');
const arg = fc.oneof(fc.constantFrom('-n', '-a', '-z', 'list', '8', './X', '"a b"', "'q'", '//c', '$[1+2]', '$[', '$[)]'), expr);
const command = fc.oneof(
  fc.tuple(fc.option(expr), fc.option(expr), fc.constantFrom('/', '=', '?', '\\'), format).map(([a, c, v, f]) => `${a ?? ''}${c !== null ? ',' + c : ''}${v}${f}`),
  fc.tuple(fc.option(expr), fc.option(expr), dcmd, fc.array(arg, { maxLength: 3 })).map(([a, c, d, xs]) => `${a ?? ''}${c !== null ? ',' + c : ''}${d} ${xs.join(' ')}`),
  fc.tuple(expr, fc.constantFrom('>x', '>/c/x', '>/q/x', '>')).map(([a, v]) => a + v),
  expr,
  fc.constantFrom("! 'echo x'", '! echo x', "!< 'echo 1=K'"),
);
const line = fc
  .tuple(fc.array(command, { minLength: 1, maxLength: 3 }), fc.constantFrom(' | ', '; ', '\n'))
  .map(([cs, sep]) => cs.join(sep))
  .chain((l) =>
    fc.oneof(
      fc.constant(l),
      fc.nat(l.length).map((k) => l.slice(0, k)),
      fc.tuple(fc.nat(l.length), fc.nat(l.length)).map(([a, b]) => l.slice(0, Math.min(a, b)) + l.slice(Math.max(a, b))),
      fc.nat(l.length).map((k) => l.slice(0, k) + l.slice(k - 1)),
    ),
  );

describe('grammar-driven fuzzing', () => {
  it('every line prints or fails with one line, in bounded time', async () => {
    await fc.assert(
      fc.asyncProperty(line, async (l) => {
        const out = new CaptureOutput(false);
        const start = performance.now();
        try {
          await s.execute(l, out);
        } catch (e) {
          if (!(e instanceof DbgError)) throw new Error(`${JSON.stringify(l)} threw a non-DbgError: ${(e as Error).stack}`);
          expect(e.message, JSON.stringify(l)).not.toMatch(/\n/);
        }
        s.quitRequested = false;
        s.radix = 16;
        expect(performance.now() - start, JSON.stringify(l)).toBeLessThan(5000);
        expect(out.lines.length, JSON.stringify(l)).toBeLessThan(0x100000);
      }),
      { numRuns: 800, seed: 20261205 },
    );
  }, 120_000);
});
