// The GDB server's rehearsal (src/gdbserver/rehearsal.ts): scripted gdb sessions played on a scratch
// copy of the target through the server's own listener before it says it listens. It must really
// step the scratch (forward on a live guest, back and forth on a replay), close it, and leave the
// served target as it was; a client that connects meanwhile waits and is served the real target.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rehearseGdb, serveGdb } from '../../src/gdbserver/gdb-server.js';
import { REHEARSAL_ROUNDS, RehearsalDoor, type Rehearsal } from '../../src/gdbserver/rehearsal.js';
import { listenTcp, type Channel } from '../../src/gdbserver/transport.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { ProcessTarget } from '../../src/targets/process/process-target.js';
import { ReplayTarget } from '../../src/targets/replay/replay-target.js';
import type { Target } from '../../src/targets/target.js';
import { qemuSample, recordQemuSample, repoRoot } from '../helpers/repo.js';
import { freePort } from '../../bench/gdb-bench.js';
import { RspClient } from './rsp-client.js';

const kernel = qemuSample('kernel.elf');
const tracerBuilt = existsSync(join(repoRoot, 'native', 'ptrace', 'build', 'Release', 'ptrace.node'));
const processIt = tracerBuilt && process.platform === 'linux' && process.arch === 'x64' ? it : it.skip;
let dir: string;
let trace: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbg-rehearsal-'));
  trace = join(dir, 'kernel.trace');
  recordQemuSample(trace, ':c; ::status');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The rehearsal through a listener of its own, as serveGdb plays it through the server's. */
async function rehearseHere(on: Rehearsal, served: Target, budgetMs?: number): Promise<number> {
  const door = new RehearsalDoor((ch) => ch.end());
  const listener = await listenTcp('127.0.0.1', 0, (ch) => door.arrive(ch));
  try {
    return await rehearseGdb(on, served, { door, host: '127.0.0.1', port: listener.port }, budgetMs);
  } finally {
    door.open();
    await listener.close();
  }
}

/** The scratch target, watched: where it stood when the rehearsal closed it. */
function watched<T extends Target>(open: () => T): { make: () => T; closedAt: () => bigint | undefined; steps: () => number } {
  let closedAt: bigint | undefined;
  let steps = 0;
  return {
    make: () => {
      const t = open();
      const close = t.close.bind(t);
      const status = t.status.bind(t);
      t.close = () => {
        closedAt = status().seq;
        close();
      };
      const exec = t.caps.execution;
      if (exec) {
        const step = exec.step.bind(exec);
        exec.step = (...args) => {
          steps++;
          return step(...args);
        };
      }
      return t;
    },
    closedAt: () => closedAt,
    steps: () => steps,
  };
}

describe('the GDB server rehearsal', () => {
  it('steps a scratch live guest round after round through the packet path, closes it, and the served guest has not moved', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      const scratch = watched(() => {
        const t = EmulatorTarget.open(kernel);
        t.machine.runSync(50_000n);
        return t;
      });
      const rounds = await rehearseHere(scratch.make, served, 120_000);
      expect(rounds).toBe(REHEARSAL_ROUNDS);
      // its steps, and the continues to a breakpoint gdb's `break; continue` makes
      expect(scratch.closedAt()).toBeGreaterThanOrEqual(50_000n + BigInt(REHEARSAL_ROUNDS));
      expect(scratch.steps()).toBeGreaterThanOrEqual(REHEARSAL_ROUNDS); // one instruction at a time
      expect(served.status().seq).toBe(0n);
    } finally {
      served.close();
    }
  });

  it('steps a scratch replay back and forth and leaves it where it began', async () => {
    const scratch = watched(() => ReplayTarget.open(trace, { symbols: [kernel] }));
    const served = ReplayTarget.open(trace, { symbols: [kernel] });
    try {
      const last = served.status().seq;
      expect(await rehearseHere(scratch.make, served, 120_000)).toBe(REHEARSAL_ROUNDS);
      expect(scratch.closedAt()).toBe(last);
      expect(served.status().seq).toBe(last);
    } finally {
      served.close();
    }
  });

  it('read-only on the served target itself: reads, never a step, and the target stays open', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      served.machine.runSync(50_000n);
      const regs = served.registers(1);
      const executed = served.machine.seq;
      expect(await rehearseHere('read-only', served, 120_000)).toBe(REHEARSAL_ROUNDS);
      expect(served.machine.seq).toBe(executed);
      expect(executed).toBeGreaterThanOrEqual(50_000n);
      expect(served.registers(1)).toEqual(regs);
    } finally {
      served.close();
    }
  });

  processIt('on a live process, a double over a dry tracer steps and hits breakpoints; the process never runs and nothing is written to it', async () => {
    const served = ProcessTarget.run('/bin/sleep', ['30']);
    try {
      const regs = served.registers(1);
      const pc = served.status().pc;
      const code = served.readVirtual(pc, 0x100);
      let double: ProcessTarget | undefined;
      let stops = 0;
      const rounds = await rehearseHere(
        () => {
          double = served.rehearsalDouble();
          const run = double.caps.execution!;
          const step = run.step.bind(run);
          const resume = run.resume.bind(run);
          Object.assign(run, {
            step: (t: number, n?: number) => Promise.resolve(step(t, n)).finally(() => stops++),
            resume: (only?: number) => resume(only).finally(() => stops++),
          });
          return double;
        },
        served,
        120_000,
      );
      expect(rounds).toBe(REHEARSAL_ROUNDS);
      expect(stops).toBe(REHEARSAL_ROUNDS * 3); // a stepi, then a step over and a continue to a breakpoint
      expect(double!.status().reason.kind).toBe('breakpoint');
      expect(served.registers(1)).toEqual(regs);
      expect(served.status().pc).toBe(pc);
      expect(served.readVirtual(pc, 0x100)).toEqual(code);
      expect(readFileSync(`/proc/${served.pid}/stat`, 'utf8').split(' ')[2]).toBe('t'); // stopped by its tracer all along
    } finally {
      served.close();
    }
  });

  it('a scratch that cannot be made, or fails, costs nothing but the rehearsal', async () => {
    const served = EmulatorTarget.open(kernel);
    try {
      expect(await rehearseHere(() => undefined, served)).toBe(0);
      expect(
        await rehearseHere(() => {
          throw new Error('no scratch');
        }, served),
      ).toBe(0);
    } finally {
      served.close();
    }
  });

  it('a client that connects while the server rehearses waits, then is served the real target, not the scratch', async () => {
    const served = EmulatorTarget.open(kernel);
    const logs: string[] = [];
    const port = await freePort();
    try {
      const scratch = watched(() => {
        const t = EmulatorTarget.open(kernel);
        t.machine.runSync(50_000n);
        return t;
      });
      const serving = serveGdb(served, undefined, { port, rehearsal: scratch.make, log: (m) => logs.push(m) });
      // Connect as soon as the port takes connections, well before the rehearsal is over.
      let client: RspClient | undefined;
      while (!client) client = await RspClient.open(port).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 5)));
      const stop = await client.ask('?');
      const server = await serving;
      try {
        expect(scratch.closedAt()).toBeGreaterThanOrEqual(50_000n); // the rehearsal ran, and was over first
        expect(stop).toMatch(/^T05/);
        expect(await client.ask('qC')).toBe('QC1');
        // The served guest, at its first instruction, not the scratch 50,000 instructions on.
        const pc = /10:([0-9a-f]{16});/.exec(stop)?.[1];
        expect(BigInt(`0x${Buffer.from(pc!, 'hex').reverse().toString('hex')}`)).toBe(served.status().pc);
        expect(logs.filter((l) => l.startsWith('gdb connected'))).toHaveLength(1); // the rehearsal's are not clients
        expect(logs.findIndex((l) => l.startsWith('listening'))).toBeLessThan(logs.findIndex((l) => l.startsWith('gdb connected')));
      } finally {
        client.close();
        await server.close();
      }
    } finally {
      served.close();
    }
  });

  it('the door holds the connections that are not the rehearsal\'s until it opens, and drops those that left', () => {
    const passed: string[] = [];
    const door = new RehearsalDoor((ch) => passed.push(ch.peer));
    const closers = new Map<string, () => void>();
    const channel = (peer: string): Channel => ({
      peer,
      write: () => undefined,
      directFd: () => -1,
      onData: () => undefined,
      onClose: (l) => closers.set(peer, l),
      end: () => undefined,
      pause: () => undefined,
      resume: () => undefined,
    });
    const mine: string[] = [];
    void door.claim(40001).then((ch) => mine.push(ch.peer));
    door.arrive(channel('127.0.0.1:40000'));
    door.arrive(channel('10.0.0.5:40001')); // the rehearsal's port, but not from this machine
    door.arrive(channel('127.0.0.1:40001'));
    door.arrive(channel('127.0.0.1:40002'));
    closers.get('127.0.0.1:40002')!();
    expect(passed).toEqual([]);
    door.open();
    expect(passed).toEqual(['127.0.0.1:40000', '10.0.0.5:40001']);
    door.arrive(channel('127.0.0.1:40003'));
    expect(passed).toEqual(['127.0.0.1:40000', '10.0.0.5:40001', '127.0.0.1:40003']);
    return Promise.resolve().then(() => expect(mine).toEqual(['127.0.0.1:40001']));
  });
});
