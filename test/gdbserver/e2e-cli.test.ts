// `dbg open|live ... --gdb [HOST:]PORT` as a user runs it: a child process with no terminal, so it
// serves headless until SIGTERM, while a real gdb attaches.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { debuggee } from '../helpers/debuggee.js';
import { qemuSample, repoRoot } from '../helpers/repo.js';
import { servingDbg, type ServingDbg } from '../helpers/serving-dbg.js';
import { gdbBatch } from './gdb-batch.js';

const dbg = join(repoRoot, 'bin', 'dbg');
const start = servingDbg();
/** Start dbg with stdin closed; resolves with the port it reports and a way to stop it. */
const startDbg = (args: string[]): Promise<ServingDbg> => start(args, /listening on 127\.0\.0\.1:(\d+) for gdb/);

describe('dbg --gdb', () => {
  it('dbg open CORE --gdb: headless, gdb attaches, monitor runs dbg commands, SIGTERM ends it with status 0', async () => {
    const d = await debuggee('threads');
    const s = await startDbg(['open', d.core, '--exe', d.exe, '--gdb', '127.0.0.1:0']);
    const r = await gdbBatch(s.port, ['info threads', 'monitor ::status', 'bt 1'], { file: d.exe });
    expect(r.stdout).toMatch(/\* 1 {4}Thread 1\.1 "LWP \d+"/);
    expect(r.stderr).toContain('status: not running (a dump: nothing ran)');
    // the server outlives its client
    const again = await gdbBatch(s.port, ['info registers rip'], { file: d.exe });
    expect(again.stdout).toMatch(/^rip +0x[0-9a-f]+/m);
    expect(s.stderr()).toContain('no terminal: serving gdb on 127.0.0.1:');
    expect(s.stderr()).toMatch(/gdb from 127\.0\.0\.1:\d+ detached/);
    expect(await s.stop()).toBe(0);
  });

  it('dbg live --wait --gdb: the guest waits at its first instruction until gdb continues; reverse over its recording', async () => {
    const kernel = qemuSample('kernel.elf');
    const dir = mkdtempSync(join(tmpdir(), 'dbg-gdb-cli-'));
    try {
      const s = await startDbg(['live', '--emulate', kernel, '--wait', '-q', '--record', join(dir, 'k.trace'), '--gdb', '0']);
      const r = await gdbBatch(s.port, ['info registers rip', 'break check_runqueue', 'continue', 'info threads', 'reverse-stepi', 'bt 1'], { file: kernel });
      expect(r.stdout).toMatch(/^rip +0x200020 +0x200020 <mb1_entry>/m);
      expect(r.stdout).toContain('Breakpoint 1, check_runqueue () at ./kernel.c:368');
      // one instruction back: the call in kmain (the first instruction of line 394)
      expect(r.stdout).toContain('#0  kmain (magic=<optimized out>, info=<optimized out>) at ./kernel.c:394');
      // a second session finds the guest where the first left it
      const r2 = await gdbBatch(s.port, ['bt 1', 'stepi', 'bt 1'], { file: kernel });
      expect(r2.stdout).toContain('#0  kmain (magic=<optimized out>, info=<optimized out>) at ./kernel.c:394');
      expect(r2.stdout).toContain('#0  check_runqueue () at ./kernel.c:368');
      expect(await s.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('dbg replay TRACE --gdb: reverse execution from gdb, monitor runs replay dcmds', async () => {
    const kernel = qemuSample('kernel.elf');
    const dir = mkdtempSync(join(tmpdir(), 'dbg-gdb-cli-'));
    try {
      const trace = join(dir, 'k.trace');
      const rec = spawnSync(process.execPath, [dbg, 'live', '--emulate', kernel, '-q', '--record', trace, '-e', ':c; ::status'], { encoding: 'utf8', input: '' });
      expect(rec.status, rec.stderr).toBe(0);
      const s = await startDbg(['replay', trace, '--symbols', kernel, '--gdb', '0']);
      const r = await gdbBatch(s.port, ['bt 1', 'break check_runqueue', 'reverse-continue', 'monitor ::status'], { file: kernel });
      expect(r.stdout).toContain('#0  panic (msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted") at ./kernel.c:247');
      expect(r.stdout).toContain('Breakpoint 1, check_runqueue () at ./kernel.c:368');
      expect(r.stderr).toMatch(/debugging trace "k\.trace" \(x86-64, replay\)/);
      expect(await s.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a bad --gdb address and a port already in use, with clear messages', async () => {
    const d = await debuggee('threads');
    const bad = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb', 'host:port'], { encoding: 'utf8', input: '' });
    expect(bad.stderr).toContain('--gdb host:port: not a port number; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234');
    expect(bad.status).not.toBe(0);
    const big = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb', '70000'], { encoding: 'utf8', input: '' });
    expect(big.stderr).toContain('--gdb 70000: port 70000 is above 65535');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    const inUse = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb', String(port)], { encoding: 'utf8', input: '' });
    busy.close();
    expect(inUse.stderr).toContain(`cannot listen for gdb on 127.0.0.1:${port}: the address is already in use`);
    expect(inUse.status).not.toBe(0);
  });

  it('safe by default: monitor refuses dcmds that load code or touch host files; --gdb-allow-host-io allows them', async () => {
    const kernel = qemuSample('kernel.elf');
    const dir = mkdtempSync(join(tmpdir(), 'dbg-gdb-cli-'));
    try {
      const dumpPath = join(dir, 'guest.core');
      const dmod = join(dir, 'evil.mjs');
      writeFileSync(dmod, `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(join(dir, 'ran'))}, 'x'); export default { name: 'evil', dcmds: [] };\n`);
      const s = await startDbg(['live', '--emulate', kernel, '--wait', '-q', '--no-record', '--gdb', '0']);
      const r = await gdbBatch(s.port, [`monitor ::dump ${dumpPath}`, `monitor ::load ${dmod}`, `monitor ::symbols ${kernel}`, 'monitor ::status'], { file: kernel });
      const said = r.stdout + r.stderr;
      expect(said).toContain('dbg: ::dump writes a file on the machine dbg runs on: refused for a remote client; start dbg with --gdb-allow-host-io to allow it');
      expect(said).toContain('dbg: ::load runs code from a file on the machine dbg runs on: refused for a remote client; start dbg with --gdb-allow-host-io to allow it');
      expect(said).toContain('dbg: ::symbols reads a file on the machine dbg runs on: refused for a remote client');
      expect(said).toContain('debugging emulated guest "kernel.elf"'); // the session goes on
      expect(existsSync(dumpPath)).toBe(false);
      expect(existsSync(join(dir, 'ran'))).toBe(false);
      expect(await s.stop()).toBe(0);

      const allowed = await startDbg(['live', '--emulate', kernel, '--wait', '-q', '--no-record', '--gdb', '0', '--gdb-allow-host-io']);
      const r2 = await gdbBatch(allowed.port, [`monitor ::dump ${dumpPath}`, `monitor ::load ${dmod}`], { file: kernel });
      expect(r2.stdout + r2.stderr).toContain(`wrote ${dumpPath}`);
      expect(existsSync(dumpPath)).toBe(true);
      expect(existsSync(join(dir, 'ran'))).toBe(true);
      expect(await allowed.stop()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a non-loopback --gdb address needs --gdb-allow-remote, which warns', async () => {
    const d = await debuggee('threads');
    const wild = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb', '0.0.0.0:0'], { encoding: 'utf8', input: '' });
    expect(wild.stderr).toBe(
      'dbg: --gdb 0.0.0.0:0: 0.0.0.0 is not a loopback address, and anyone who can reach it could control the target with no password; add --gdb-allow-remote to listen there anyway\n',
    );
    expect(wild.status).toBe(1);
    // Allowed: the warning comes first. 192.0.2.1 (TEST-NET-1) is on no interface here, so nothing
    // actually listens beyond loopback during the test.
    const allowed = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb', '192.0.2.1:0', '--gdb-allow-remote'], { encoding: 'utf8', input: '' });
    expect(allowed.stderr).toContain('dbg gdbserver: warning: listening on 192.0.2.1, not loopback: anyone who can reach this port controls the target (no authentication, no encryption)');
    expect(allowed.stderr).toContain('dbg: cannot listen for gdb on 192.0.2.1:0');
    const alone = spawnSync(process.execPath, [dbg, 'open', d.core, '--gdb-allow-host-io'], { encoding: 'utf8', input: '' });
    expect(alone.stderr).toBe('dbg: --gdb-allow-host-io applies to the GDB server: give --gdb [HOST:]PORT too\n');
    expect(alone.status).toBe(1);
  });
});
