/**
 * `dbg live` starts the trace writer's thread before the trace is made (prewarmTraceWriter, in
 * src/store/trace-writer.ts): the recording that follows is written by that thread, exactly as by
 * one started for it, and a thread started ahead and never used does not keep the process alive.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { TraceReader } from '../../src/store/trace-reader.js';
import { prewarmTraceWriter } from '../../src/store/trace-writer.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-writer-prewarm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function record(name: string, prewarm: boolean): Promise<TraceReader> {
  if (prewarm) prewarmTraceWriter();
  const path = join(dir, `${name}.trace`);
  const t = EmulatorTarget.open(kernel, { ramBytes: 32 << 20, cmdline: 'nobug' });
  try {
    t.record(new EmulatorRecorder(path, { guest: 'kernel.elf', chunkTarget: 100_000 }));
    for (let i = 0; i < 4; i++) expect((await t.machine.run({ vcpu: 0, count: 100_000 })).reason.kind).toBe('step');
  } finally {
    t.close();
  }
  return TraceReader.open(path);
}

describe('the trace writer started ahead', () => {
  it('writes the recording that follows as a writer started for it does', async () => {
    const ahead = await record('ahead', true);
    const made = await record('made', false);
    try {
      const chunks = (r: TraceReader) => r.db.prepare('SELECT id, first, count FROM chunk ORDER BY id').raw().all();
      expect(chunks(ahead)).toEqual(chunks(made));
      expect(ahead.end).toBe(400_000);
      const pages = (r: TraceReader) => r.db.prepare('SELECT chunk, page, data FROM page ORDER BY chunk, page').raw().all();
      expect(pages(ahead)).toEqual(pages(made));
    } finally {
      ahead.close();
      made.close();
    }
  });

  it('one never used does not keep the process alive', () => {
    const script = `import('${join(root, 'dist', 'src', 'store', 'trace-writer.js')}').then((m) => { m.prewarmTraceWriter(); console.log('started'); })`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe('started\n');
    expect(r.status).toBe(0);
  });
});
