// A GDB server on the QEMU sample kernel booted in the emulator, for one describe block: started
// before its tests, stopped after; `logs` collects what the server logs.
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { qemuSample } from '../helpers/repo.js';
import { servedTarget, type ServedTarget } from './served-target.js';

export type LiveSampleServer = ServedTarget<EmulatorTarget>;

export function liveSampleServer(): LiveSampleServer {
  return servedTarget(() => EmulatorTarget.open(qemuSample('kernel.elf'), {}));
}
