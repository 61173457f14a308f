// A GDB server on the QEMU sample kernel booted in the emulator, for one describe block: started
// before its tests, stopped after; `logs` collects what the server logs.
import { afterAll, beforeAll } from 'vitest';
import { serveGdb, type GdbServerHandle } from '../../src/gdbserver/gdb-server.js';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { qemuSample } from '../helpers/repo.js';

export interface LiveSampleServer {
  target: EmulatorTarget;
  server: GdbServerHandle;
  readonly logs: string[];
}

export function liveSampleServer(): LiveSampleServer {
  const s = { logs: [] as string[] } as LiveSampleServer;
  beforeAll(async () => {
    s.target = EmulatorTarget.open(qemuSample('kernel.elf'), {});
    s.server = await serveGdb(s.target, undefined, { port: 0, log: (m) => s.logs.push(m) });
  });
  afterAll(async () => {
    await s.server?.close();
    s.target?.close();
  });
  return s;
}
