/**
 * The damage the hostile-trace campaign found, one by one, each with the message it gives: a
 * directory or FIFO as the trace, meta values out of range or of the wrong type, rows of the wrong
 * SQL type, a FIFO named as the symbol file (once a hang), checked before anything is allocated.
 */
import Database from 'better-sqlite3';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordSampleTrace } from '../../bench/hostile-traces.js';
import { DbgError } from '../../src/common/errors.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';

const dir = mkdtempSync(join(tmpdir(), 'dbg-trace-damage-'));
const good = join(dir, 'good.trace');
const fifo = join(dir, 'fifo');

beforeAll(async () => {
  await recordSampleTrace(good);
  execFileSync('mkfifo', [fifo]);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the good trace with `sql` run on it. */
function edited(name: string, sql: string, ...args: unknown[]): string {
  const p = join(dir, name);
  copyFileSync(good, p);
  const db = new Database(p);
  db.pragma('journal_mode = DELETE');
  db.prepare(sql).run(...args);
  db.close();
  return p;
}

async function refusal(p: string): Promise<string> {
  try {
    const t = ReplayTarget.open(p);
    await t.caps.reverse!.seek(1000n);
    t.close();
  } catch (e) {
    expect(e).toBeInstanceOf(DbgError);
    return (e as DbgError).message;
  }
  throw new Error(`${p} opened`);
}

describe('damaged traces: what each says', () => {
  it('a directory or a FIFO as the trace', async () => {
    const d = join(dir, 'adir.trace');
    mkdirSync(d);
    expect(await refusal(d)).toBe(`trace "${d}" is a directory, not a trace file`);
    expect(await refusal(fifo)).toBe(`trace "${fifo}" is a FIFO, not a trace file`);
  });

  it('meta values out of range or not numbers, refused before RAM or engines are allocated', async () => {
    const before = process.memoryUsage().arrayBuffers;
    expect(await refusal(edited('v.trace', "UPDATE meta SET value = 100000 WHERE key = 'vcpus'"))).toMatch(/^trace ".*v\.trace": meta\.vcpus = 100000: expected an integer from 1 to 16$/);
    expect(await refusal(edited('r.trace', "UPDATE meta SET value = 17179869184 WHERE key = 'ram_size'"))).toMatch(
      /^trace ".*r\.trace": meta\.ram_size = 17179869184 \(16 GiB\) is more than (this machine's memory|the largest buffer Node makes) \([\d.]+ GiB\): the value is damaged, or the trace needs a larger machine$/,
    );
    expect(await refusal(edited('b.trace', "UPDATE meta SET value = 'lots' WHERE key = 'ram_base'"))).toMatch(/^trace ".*b\.trace": meta\.ram_base = "lots": expected a 4 KiB-aligned physical address/);
    expect(await refusal(edited('s.trace', "UPDATE meta SET value = 12345 WHERE key = 'ram_size'"))).toMatch(/meta\.ram_size = 12345: expected a positive multiple of 4096/);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20);
  });

  it('rows of the wrong SQL type', async () => {
    expect(await refusal(edited('f.trace', 'UPDATE mem SET data = 7'))).toMatch(/^trace ".*f\.trace": the data of the memory row of line 0x[0-9a-f]+ in chunk \d+ is INTEGER, expected a BLOB$/);
    expect(await refusal(edited('z.trace', 'UPDATE mem SET data = zeroblob(100)'))).toMatch(/^trace ".*z\.trace": memory row of line 0x[0-9a-f]+ in chunk \d+ has 100 bytes, expected at least 128$/);
    expect(await refusal(edited('d.trace', "UPDATE mem SET data = 'x'"))).toMatch(/^trace ".*d\.trace": the data of the memory row of line 0x[0-9a-f]+ in chunk \d+ is TEXT, expected a BLOB$/);
    expect(await refusal(edited('i.trace', 'UPDATE ram_init SET data = 0.5'))).toMatch(/^trace ".*i\.trace": ram_init\.data of page \d+ is REAL, expected a BLOB$/);
    expect(await refusal(edited('c.trace', 'UPDATE ckpt SET data = zeroblob(10), flags = flags | 1'))).toMatch(/holds 10 bytes, expected a uc_context of \d+ bytes/);
    // the local APIC's ID a trace tells (schema 9), which replay answers the guest's reads with
    expect(await refusal(edited('l.trace', `UPDATE input SET detail = '{"value":"x"}' WHERE kind = 'lapic-id'`))).toMatch(/^trace ".*l\.trace": the lapic-id input at seq 0: its value "x" is not a 32-bit register value$/);
    expect(await refusal(edited('m.trace', `UPDATE input SET detail = '{"value":4294967296}' WHERE kind = 'lapic-id'`))).toMatch(/^trace ".*m\.trace": the lapic-id input at seq 0: its value 4294967296 is not a 32-bit register value$/);
  });

  it('a trace says which Unicorn build made it; a trace of another build is refused saying what to do', async () => {
    const db = new Database(good, { readonly: true });
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: unknown }[]).map((r) => [r.key, r.value]));
    db.close();
    expect(meta.get('unicorn_version')).toMatch(/^2\.\d+\.\d+$/);
    const size = Number(meta.get('context_size'));
    expect(size).toBeGreaterThan(1000);
    const other = edited('other.trace', "UPDATE meta SET value = '1.0.3' WHERE key = 'unicorn_version'");
    expect(await refusal(other)).toBe(
      `trace "${other}" was recorded with Unicorn 1.0.3 (uc_context of ${size} bytes); this dbg runs Unicorn ${meta.get('unicorn_version')} (uc_context of ${size} bytes): its register checkpoints cannot be loaded; replay it with the dbg and libunicorn it was recorded with, or record the guest again`,
    );
    // Refused after its engines were made: they are closed, so a process that is refused again
    // and again runs out of nothing (the port-feed table holds 64 engines).
    for (let i = 0; i < 70; i++) {
      let code: string | undefined;
      try {
        ReplayTarget.open(other);
      } catch (e) {
        code = (e as DbgError).code;
      }
      expect(code, `open ${i}`).toBe('trace-version');
    }
    expect(await refusal(edited('ctx.trace', "UPDATE meta SET value = 4242 WHERE key = 'context_size'"))).toMatch(/recorded with Unicorn 2\.\d+\.\d+ \(uc_context of 4242 bytes\); this dbg runs Unicorn .* \(uc_context of \d+ bytes\)/);
    expect(await refusal(edited('ver.trace', "UPDATE meta SET value = 7 WHERE key = 'unicorn_version'"))).toMatch(/meta\.unicorn_version = 7: expected a version such as "2\.0\.1"$/);
  });

  it('a FIFO named as the symbol file: a warning, not a hang; dbg replay prints it and goes on', () => {
    const p = edited('fifo-sym.trace', "UPDATE meta SET value = ? WHERE key = 'symbols'", fifo);
    const t = ReplayTarget.open(p);
    expect(t.warnings).toContain(`the recorded guest's symbol file "${fifo}" is a FIFO: not read, no symbols (pass --symbols FILE)`);
    t.close();
    const out = spawnSync(join(__dirname, '..', '..', 'bin', 'dbg'), ['replay', p, '-e', '::status'], { encoding: 'utf8', timeout: 60_000 });
    expect(out.signal).toBeNull();
    expect(out.status).toBe(0);
  }, 90_000);
});
