/**
 * Golden transcripts (as vscode-js-debug's goldenText): the expected text lives in
 * test/gdbserver/golden/<name>.txt; on a mismatch the test writes <name>.actual beside it and
 * fails. DBG_UPDATE_GOLDEN=1 rewrites the golden files instead. A golden file that is missing is
 * written (a new test's first run) except under CI (env CI set), where it fails: a checkout that
 * lost its golden files must not pass by writing them.
 */

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'golden');

export function expectGolden(name: string, actual: string): void {
  const file = join(dir, `${name}.txt`);
  const actualFile = join(dir, `${name}.actual`);
  if (!existsSync(file) && process.env.DBG_UPDATE_GOLDEN !== '1' && process.env.CI) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(actualFile, actual);
    expect.fail(`golden file test/gdbserver/golden/${name}.txt is missing (under CI it is not written; see ${name}.actual, DBG_UPDATE_GOLDEN=1 to accept)`);
  }
  if (process.env.DBG_UPDATE_GOLDEN === '1' || !existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, actual);
    rmSync(actualFile, { force: true });
    return;
  }
  const expected = readFileSync(file, 'utf8');
  if (expected === actual) {
    rmSync(actualFile, { force: true });
    return;
  }
  writeFileSync(actualFile, actual);
  expect(actual, `transcript differs from ${name}.txt (see ${name}.actual; DBG_UPDATE_GOLDEN=1 to accept)`).toBe(expected);
}
