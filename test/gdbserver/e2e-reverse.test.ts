// Reverse execution from a real gdb 13 through dbg's GDB server, on a recorded history: the QEMU
// fixture's kernel run to its panic by `dbg live --record`, then served (a) as a replay target and
// (b) live, by the emulator that recorded it, when the emulator offers the reverse capability.
// One suite, every backend (as rp2040js runs one suite against two). Every reverse command must
// land where forward execution had been: the test records the registers going forward, goes back,
// and compares. The emulator and recording are deterministic, so transcripts are golden files.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { EmulatorRecorder } from '../../src/store/emulator-recorder.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import type { Target } from '../../src/targets/target.js';
import { qemuSample, recordQemuSample } from '../helpers/repo.js';
import { gdbBatch } from './gdb-batch.js';
import { expectGolden } from './golden.js';

const kernel = qemuSample('kernel.elf');
let dir: string;
let trace: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-gdb-reverse-'));
  trace = join(dir, 'kernel.trace');
  recordQemuSample(trace, ':c; ::status');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Backend {
  readonly name: string;
  open(): Promise<Target>;
}

/** A live guest, recording, run to its panic: time travel over what it recorded, then live again. */
async function liveRecorded(): Promise<Target> {
  const t = EmulatorTarget.open(kernel);
  t.record(new EmulatorRecorder(join(dir, 'live.trace'), { guest: 'kernel.elf', symbols: kernel }));
  await t.caps.execution!.resume();
  return t;
}

const backends: Backend[] = [
  { name: 'replay', open: async () => ReplayTarget.open(trace, { symbols: [kernel] }) },
  { name: 'live-recording', open: liveRecorded },
];

let server: GdbServerHandle;

/** Run gdb with `==name==` markers between commands; returns each marked section's text. */
async function sections(cmds: (string | { mark: string })[]): Promise<{ all: string; at: Record<string, string> }> {
  const r = await gdbBatch(server.port, cmds.map((c) => (typeof c === 'string' ? c : `echo ==${c.mark}==\\n`)), { file: kernel });
  expect(r.code, r.stderr).toBe(0);
  if (process.env.DBG_SHOW) console.log(r.stdout);
  const at: Record<string, string> = {};
  const parts = r.stdout.split(/^==([\w-]+)==\n/m);
  for (let i = 1; i < parts.length; i += 2) at[parts[i]!] = parts[i + 1]!;
  return { all: r.stdout, at };
}

const regs = 'info registers rax rbx rcx rdx rsi rdi rbp rsp r8 r9 r10 r11 r12 r13 r14 r15 rip eflags';

describe.each(backends)('reverse execution from gdb: $name', (backend) => {
  const run = it;
  let target: Target;

  beforeAll(async () => {
    target = await backend.open();
    expect(target.caps.reverse, `${backend.name} offers reverse execution`).toBeDefined();
    server = await serveGdb(target, undefined, { port: 0, log: () => undefined });
  });

  afterAll(async () => {
    await server?.close();
    target?.close();
  });

  run('advertises ReverseStep/ReverseContinue and starts at the end of history', async () => {
    const { all } = await sections(['bt 1', 'reverse-stepi', 'info registers rip']);
    expect(all).toContain('#0  panic (msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted") at ./kernel.c:247');
  });

  run('reverse-continue to a breakpoint lands where continue forward stopped; reverse-stepi/-nexti/-next undo stepi/nexti/next', async () => {
    const { all, at } = await sections([
      'break kmain',
      'reverse-continue', // back to kmain
      'delete',
      'break check_runqueue',
      'continue', // forward to check_runqueue
      { mark: 'fwd-bp' },
      regs,
      { mark: 'end' },
      'continue', // forward to the end of the recording
      { mark: 'rev-bp' },
      'reverse-continue', // back to check_runqueue
      regs,
      'stepi',
      'reverse-stepi',
      { mark: 'rev-stepi' },
      regs,
      'nexti 3',
      'reverse-nexti 3',
      { mark: 'rev-nexti' },
      regs,
      'delete',
      'break kmain',
      'reverse-continue',
      'next',
      { mark: 'fwd-next' },
      regs,
      'next',
      'next',
      'reverse-next',
      'reverse-next',
      { mark: 'rev-next' },
      regs,
    ]);
    const fwd = at['fwd-bp']!.split('\n').filter((l) => /^[re]\w+\s+0x/.test(l));
    expect(fwd).toHaveLength(18);
    // Forward to the end: a replay stops at the end of its history (T05replaylog:end); a live guest
    // replays its history, then runs live again into the halt it had stopped at.
    if (backend.name === 'replay') expect(at['end']).toMatch(/^\nNo more reverse-execution history\.\npanic \(/);
    else expect(at['end']).toMatch(/panic \(msg=msg@entry=0xffffffffc000202a "fixture: run queue corrupted"\) at \.\/kernel\.c:247/);
    expect(at['rev-bp']).toMatch(/^\nBreakpoint 2, check_runqueue \(\) at \.\/kernel\.c:368\n/);
    const lines = (k: string) => at[k]!.split('\n').filter((l) => /^[re]\w+\s+0x/.test(l));
    for (const k of ['rev-bp', 'rev-stepi', 'rev-nexti']) expect(lines(k), k).toEqual(fwd);
    expect(lines('fwd-next')).toHaveLength(18);
    expect(lines('rev-next')).toEqual(lines('fwd-next'));
    expect(fwd.find((l) => l.startsWith('rip'))).toMatch(/<check_runqueue>$/);
    expectGolden(`reverse-breakpoints-${backend.name}`, all);
  });

  run('reverse-step and reverse-finish return to the call; reverse-continue to a watchpoint stops before the write', async () => {
    const { all, at } = await sections([
      'break kmain',
      'reverse-continue',
      'delete',
      'break kprintf',
      'continue', // the first kprintf, called from kmain
      'delete',
      'finish', // back in the caller, just after the call
      { mark: 'after-call' },
      'info registers rip',
      'reverse-step', // back into kprintf's last line
      { mark: 'rev-step' },
      'bt 1',
      'reverse-finish', // to the call instruction in kmain
      { mark: 'rev-finish' },
      'x/i $pc',
      'bt 1',
      'watch jiffies',
      'continue', // forward: the first write, 0 -> 1, stops after the writing instruction
      { mark: 'fwd-watch' },
      'info registers rip',
      'continue', // and the second, 1 -> 2
      'reverse-continue', // back to the second write: before it, pc at the writing instruction
      { mark: 'rev-watch' },
      'p jiffies',
      'stepi', // executing the write again lands where the forward stop was
      { mark: 'rev-watch-stepi' },
      'p jiffies',
      'info registers rip',
    ]);
    expect(at['rev-step']).toMatch(/^#0 {2}[\s\S]*kprintf/m);
    expect(at['rev-finish']).toMatch(/=> 0x[0-9a-f]+ <kmain\+\d+>:\tcall +0x[0-9a-f]+ <kprintf>/);
    expect(at['rev-finish']).toMatch(/#0 {2}0x[0-9a-f]+ in kmain /);
    const afterCall = BigInt(/rip +(0x[0-9a-f]+)/.exec(at['after-call']!)![1]!);
    const callAt = BigInt(/=> (0x[0-9a-f]+)/.exec(at['rev-finish']!)![1]!);
    expect(afterCall - callAt).toBe(5n); // call rel32
    expect(at['fwd-watch']).toMatch(/^rip +0x[0-9a-f]+ +0x[0-9a-f]+ <kmain\+\d+>/m);
    expect(all).toMatch(/Hardware watchpoint 3: jiffies\n\nOld value = 2\nNew value = 1\n/);
    expect(at['rev-watch']).toMatch(/^\$1 = 1$/m);
    expect(at['rev-watch-stepi']).toMatch(/^\$2 = 2$/m);
    const fwdRip = /rip +(0x[0-9a-f]+)/.exec(at['fwd-watch']!)![1];
    expect(at['rev-watch-stepi']).toContain(`rip            ${fwdRip}`);
    expectGolden(`reverse-watch-finish-${backend.name}`, all);
  });

  run("gdb's own `record full` is refused at once (the target runs backwards itself) and gdb stays usable", async () => {
    const r = await gdbBatch(
      server.port,
      ['reverse-stepi 3', 'info registers rip', 'record full', 'info record', 'stepi', 'reverse-stepi', 'info registers rip', 'info threads'],
      { file: kernel },
    );
    expect(r.code, r.stderr).toBe(0);
    // gdb's bare-machine ABI has no process record: refused before anything reaches the target
    // (before, gdb took it and was left with "Selected thread is running" at its first reverse step).
    expect(r.stderr).toContain("Process record: the current architecture doesn't support record function.");
    expect(r.stdout).toContain('No recording is currently active.');
    expect(r.stdout + r.stderr).not.toMatch(/running|Could not write/);
    const rips = [...r.stdout.matchAll(/^rip +(0x[0-9a-f]+)/gm)].map((m) => m[1]);
    expect(rips).toHaveLength(2);
    expect(rips[1]).toBe(rips[0]); // stepi then reverse-stepi, by dbg's history
    expect(r.stdout).toMatch(/^\* 1 +Thread 1\.1 "vCPU 0" \S/m); // stopped, with a frame
  });
});
