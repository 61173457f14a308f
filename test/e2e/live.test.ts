import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dbg = join(root, 'bin', 'dbg');
const kernel = existsSync(join(root, 'dumps', 'kernel.elf')) ? join(root, 'dumps', 'kernel.elf') : join(root, 'dumps', 'kernel.prebuilt.elf');
const dir = mkdtempSync(join(tmpdir(), 'dbg-live-'));

/** Run dbg live; `why` says how it ended (a signal, a timeout) and what it printed, for assertion messages. */
function live(args: string[]): { status: number | null; stdout: string; stderr: string; why: string } {
  const started = performance.now();
  const r = spawnSync(dbg, ['live', ...args], { encoding: 'utf8', timeout: 60_000 });
  const how = r.error ? `error ${r.error.message}` : r.signal ? `signal ${r.signal}` : `status ${r.status}`;
  const why = `dbg live ${args.join(' ')}: ${how} after ${Math.round(performance.now() - started)} ms\nstdout: ${r.stdout?.slice(-2000)}\nstderr: ${r.stderr?.slice(-2000)}`;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, why };
}

describe('dbg live --emulate', () => {
  it('boots the sample kernel to its panic and runs -e commands on the stopped guest', () => {
    const r = live(['--emulate', kernel, '-m', '64M', '--cpus', '2', '--record', join(dir, 'boot.trace'), '-e', ':c; ::status; ::console']);
    expect(r.status, r.why).toBe(0);
    expect(r.stderr).toContain('PANIC: scheduler: task list corrupted (jiffies 33)');
    expect(r.stdout).toMatch(/^stopped: halted \(hlt with interrupts off\) at 0xffffffff[0-9a-f]+ panic\+0x[0-9a-f]+ on vCPU 1/);
    expect(r.stdout).toContain('status: halted');
    expect(r.stdout).toContain('cpu1: online');
  });

  it('--wait, a watchpoint, :c, ::stack and ::dump read back by dbg open', () => {
    const core = join(dir, 'vmcore');
    const r = live(['--emulate', kernel, '-m', '64M', '--cpus', '2', '--wait', '-q', '--no-record', '-e', `tasks::wp -w -L 8; :c; :c; ::stack; ::delete 1; :c; ::dump ${core}`]);
    expect(r.status, r.why).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^1: watchpoint write 8 bytes at 0xffffffff[0-9a-f]+ tasks; hits 0$/);
    expect(lines[1]).toMatch(/^stopped: watchpoint 1 \(write of 0xffffffff[0-9a-f]+\) at 0x[0-9a-f]+ task_init\+/);
    expect(lines[2]).toMatch(/^stopped: watchpoint 1 \(write of 0xffffffff[0-9a-f]+\) at 0x[0-9a-f]+ log_append\+/);
    expect(r.stdout).toMatch(/log_append\+0x[0-9a-f]+\n/);
    expect(r.stdout).toMatch(/stopped: halted .* panic\+/);
    const o = spawnSync(dbg, ['open', core, '--symbols', kernel, '-e', '::status'], { encoding: 'utf8' });
    expect(o.status).toBe(0);
    expect(o.stdout).toContain('panic: scheduler: task list corrupted');
  });

  it('Ctrl-C stops a running guest promptly (slices of at most 4 ms; measured ~5 ms signal to output) and ends the -e script there', async () => {
    const p = spawn(dbg, ['live', '--emulate', kernel, '-m', '64M', '--cmdline', 'nobug', '--no-record', '-e', ':c; ::status'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    let sent = 0;
    let latency = -1;
    p.stdout.on('data', (d) => {
      out += d;
      if (sent && latency < 0 && out.includes('stopped: interrupted')) latency = performance.now() - sent;
    });
    const done = new Promise<number | null>((resolve) => p.on('exit', resolve));
    p.stderr.on('data', (d) => {
      err += d;
      if (!sent && err.includes('kworker')) {
        setTimeout(() => {
          sent = performance.now();
          p.kill('SIGINT');
        }, 200);
      }
    });
    expect(await done).toBe(130);
    expect(out).toMatch(/^stopped: interrupted at 0x[0-9a-f]+ \S+ on vCPU 0$/m);
    expect(err).toContain('dbg: interrupted: the rest of the line from "::status" was not run');
    expect(out).not.toContain('status:');
    // The guest stops within a slice (< 5 ms); the rest is the signal and the pipe. Allow for a
    // loaded machine, but not for a slice loop that ignores the flag.
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThan(100);
  });

  it('-e waits for the script: a breakpoint set before :c stops the guest there; a second Ctrl-C exits, the trace finished', async () => {
    const r = live(['--emulate', kernel, '-m', '64M', '-q', '--no-record', '-e', 'kmain::bp; :c; ::status']);
    expect(r.status, r.why).toBe(0);
    expect(r.stdout).toMatch(/^stopped: breakpoint 1 at 0x[0-9a-f]+ kmain on vCPU 0$/m);
    const trace = join(dir, 'twice.trace');
    const p = spawn(dbg, ['live', '--emulate', kernel, '-m', '64M', '-q', '--cmdline', 'nobug', '--record', trace, '-e', ':c; :c'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => {
      if (!err.includes('recording to') && (err += d).includes('recording to')) {
        setTimeout(() => p.kill('SIGINT'), 1500);
        setTimeout(() => p.kill('SIGINT'), 1502);
      }
    });
    const code = await new Promise<number | null>((resolve) => p.on('exit', (c, sig) => resolve(c ?? (sig === 'SIGINT' ? 130 : -1))));
    expect(code).toBe(130);
    const rp = spawnSync(dbg, ['replay', trace, '-e', '::now'], { encoding: 'utf8' });
    expect(rp.stderr).toBe('');
    expect(rp.stdout).toMatch(/^seq \d+ of \[0, \d+\]/);
  }, 60_000);

  it('reverse execution while recording: ::rcont to a write watchpoint, ::whowrote, ::rstep, forward replays then runs live; writes in the past refused', () => {
    const cmds = 'tasks::wp -w -L 8; :c; :c; ::rcont; tasks/K; tasks,8::whowrote; ::rstep; ::now; :s; :c; :c; ::now';
    const r = live(['--emulate', kernel, '-m', '64M', '--wait', '-q', '--record', join(dir, 'rev.trace'), '-e', cmds]);
    expect(r.stderr).not.toMatch(/dbg: (?!recording)/);
    expect(r.status, r.why).toBe(0);
    const l = r.stdout.split('\n');
    expect(l[1]).toMatch(/^stopped: watchpoint 1 \(write of 0xffffffff[0-9a-f]+\) at 0x[0-9a-f]+ task_init\+/);
    const m = /^stopped: watchpoint 1 \(write of 0xffffffff[0-9a-f]+\) at 0x[0-9a-f]+ log_append\+/.exec(l[2]!);
    expect(m).not.toBeNull();
    // back to the second write: at the writer, memory as before it (the value task_init wrote)
    const back = /^seq (\d+): log_append\+0x[0-9a-f]+ \(0x[0-9a-f]+\) on vCPU 0: write watchpoint 1 on 0xffffffff[0-9a-f]+ \(8 bytes\): memory as before the write$/.exec(l[3]!);
    expect(back).not.toBeNull();
    const writer = BigInt(back![1]!);
    const ww = /^seq (\d+)  task_init\+0x[0-9a-f]+ \(0x[0-9a-f]+\), vCPU 0  phys 0x[0-9a-f]+: 00 00 00 00 00 00 00 00 -> ((?:[0-9a-f]{2} ?){8})$/.exec(l[6]!);
    expect(ww, l[6]).not.toBeNull();
    expect(l[5]!.trimEnd()).toBe(`tasks:          ${Buffer.from(ww![2]!.replace(/ /g, ''), 'hex').readBigUInt64LE(0).toString(16)}`);
    expect(l[7]).toMatch(new RegExp(`^seq ${writer - 1n}: log_append\\+0x[0-9a-f]+ \\(0x[0-9a-f]+\\) on vCPU 0: step$`));
    expect(l[8]).toBe(`seq ${writer - 1n} of [0, ${writer + 1n}] (${writer + 1n} instructions recorded; 2 after now)`);
    expect(l[9]).toMatch(/^stopped: step at 0x[0-9a-f]+ log_append\+/);
    expect(l[10]).toBe(l[2]); // replayed to the end of history: the stop the guest had made
    expect(l[11]).toMatch(/^stopped: watchpoint 1 \(write of 0xffffffff[0-9a-f]+\) at 0x[0-9a-f]+ log_append\+/); // live again
    const end = /^seq (\d+) of \[0, (\d+)\] \(\d+ instructions recorded; 0 after now\)$/.exec(l[12]!);
    expect(end).not.toBeNull();
    expect(BigInt(end![1]!)).toBeGreaterThan(writer + 1n);
    const w = live(['--emulate', kernel, '-m', '64M', '--wait', '-q', '--no-record', '-e', '::rstep']);
    expect(w.status).toBe(1);
    expect(w.stderr).toMatch(/^dbg: .*reverse execution/);
    const p = live(['--emulate', kernel, '-m', '64M', '--wait', '-q', '--record', join(dir, 'past.trace'), '-e', 'tasks::wp -w -L 8; :c; ::rstep; 0::setreg rax']);
    expect(p.status).toBe(1);
    expect(p.stderr).toMatch(/dbg: writing register rax refused: the view is at seq (\d+), in the recorded past \(the guest is at \d+\); changing the past would discard the 1 instructions recorded after it\. Go back to the present first \(::seek \d+\), or make seq \1 the present with ::discard \(deletes the recorded future\)\n$/);
  });

  it('bad input: a missing file, a non-kernel, bad -m', () => {
    let r = live(['--emulate', join(dir, 'nope.elf')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dbg: cannot read kernel ".*nope.elf": no such file/);
    r = live(['--emulate', dbg]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^dbg: dbg: not an ELF file and no multiboot header in its first 8 KiB/);
    r = live(['--emulate', kernel, '-m', 'lots']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('dbg: -m lots: expected a size such as 64M or 1G\n');
    r = live(['--emulate', kernel, '-m', '1M']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/guest RAM of 1048576 bytes: expected a multiple of 4 KiB, at least 2 MiB/);
  });
});
