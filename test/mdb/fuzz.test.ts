/**
 * Malformed command lines never escape as anything but DbgError: random lines built from MDB
 * tokens (fixed seed, so a failure reproduces) run against a raw file.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbgError } from '../../src/common/errors.js';
import { CaptureOutput, type Session } from '../../src/mdb/session.js';
import { rawSession, tempDir } from './helpers.js';

const tokens = [
  '::', ':', '$', '/', '=', '?', '\\', ',', ';', '|', '(', ')', '*', '%', '#', '~', '-', '+', '<<', '>>', '==', '!=', '&', '^', '>', '<',
  '"', "'", '`', '.', ' ', '0', '10', '0t12', '0x1f', '0i101', '0o7', 'ffffffffffffffff', 'main', 'x`y', 'X', 'J', 's', 'i', 'a', 'K', 'W', 'Z',
  'c', 'r', 'q', 'stack', 'list', 'walk', 'nm', 'dis', 'help', 'thread', 'status', '-a', '-n', '-z', '*/c/', '*/q/', '\n', '\t', 'ü', '\0',
];

let s: Session;
let cleanup: () => void;
beforeAll(() => {
  const t = tempDir();
  cleanup = t.cleanup;
  const b = Buffer.alloc(256);
  for (let i = 0; i < b.length; i++) b[i] = (i * 37) & 0xff;
  s = rawSession(t.dir, b);
  // `!=` at the start of a statement is a shell escape: refused here, so random lines run no shell.
  s.hostRefusal = 'the fuzz test runs no shell commands';
});
afterAll(() => {
  s.target.close();
  cleanup();
});

describe('random command lines', () => {
  it('fail only with DbgError', async () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let failures = 0;
    for (let k = 0; k < 3000; k++) {
      const line = Array.from({ length: 1 + rand(8) }, () => tokens[rand(tokens.length)]!).join('');
      if (/\$q|::quit|q\b/.test(line)) continue;
      try {
        await s.execute(line, new CaptureOutput(k % 2 === 0));
      } catch (e) {
        if (!(e instanceof DbgError)) throw new Error(`"${JSON.stringify(line)}" threw a non-DbgError: ${(e as Error).stack}`);
        expect(e.message).not.toMatch(/\n/);
        failures++;
      }
      s.quitRequested = false;
    }
    expect(failures).toBeGreaterThan(1000);
  });
});
