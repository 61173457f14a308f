/**
 * runSession in a child process: SIGINT while a command runs must reach the target's
 * interrupt() (the command then finishes and the session goes on), not kill dbg.
 */

import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { tempDir } from './helpers.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => {
  const t = tempDir('dbg-cli-session-');
  dir = t.dir;
  cleanup = t.cleanup;
});
afterAll(() => cleanup());

/** A script that runs a session on a raw file whose target claims execution control. */
function script(execute: string): string {
  const dist = (p: string) => pathToFileURL(join(repoRoot, 'dist', 'src', p)).href;
  const blob = join(dir, 'blob.bin');
  writeFileSync(blob, Buffer.alloc(16));
  return `
    import { runSession } from '${dist('mdb/cli-session.js')}';
    import { FileTarget } from '${dist('targets/file/file-target.js')}';
    const file = FileTarget.raw(${JSON.stringify(blob)});
    let stop = false;
    const execution = { running: false, interrupt() { stop = true; }, step: async () => file.status(), resume: async () => file.status() };
    const target = Object.create(file, { caps: { value: { execution } } });
    const spin = { name: 'spin', usage: '::spin', help: 'run until interrupted', needs: ['execution'],
      async run(s, inv, out) {
        out.line('spinning');
        while (!stop) await new Promise((r) => setTimeout(r, 10));
        out.line('interrupted');
      } };
    const code = await runSession(target, { execute: ${JSON.stringify(execute)}, modules: [{ name: 'spin', dcmds: [spin] }] });
    console.log('exit ' + code);
    process.exit(code);
  `;
}

describe('runSession', () => {
  it('turns Ctrl-C during a command into target.caps.execution.interrupt(), and the rest of the line is not run (as MDB)', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script('::spin; 0t5=D')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    await new Promise<void>((res) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('spinning')) res();
      }),
    );
    child.kill('SIGINT');
    const code = await exited;
    await new Promise((r) => setTimeout(r, 50));
    expect(out).toBe('spinning\ninterrupted\nexit 130\n');
    expect(code).toBe(130);
  });
});
