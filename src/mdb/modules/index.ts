/**
 * The dcmd modules every session loads. Areas that bring their own dcmds (kernel dumps, the
 * emulator, replay) add one import and one entry each; a module whose dcmds need a capability
 * declares it in `needs`, and ::help marks them on targets that lack it.
 */

import type { DcmdModule } from '../dcmd.js';
import { coreModule } from './core.js';
import { emulatorModule } from './emulator.js';
import { historyModule } from './history.js';
import { kernelModule } from './kernel.js';
import { languageModule } from './language.js';
import { linuxModule } from './linux.js';
import { processModule } from './process.js';
import { recordingModule } from './recording.js';
import { typedefModule } from './typedef.js';
import { typesModule } from './types.js';

export const builtinModules: DcmdModule[] = [coreModule, languageModule, kernelModule, linuxModule, emulatorModule, historyModule, recordingModule, processModule, typesModule, typedefModule];
