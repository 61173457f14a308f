/** I/O-port watchpoints (`PORT::wp -i`): the sample kernel's COM1 output and CPU-number reads stop it. */
import { afterAll, describe, expect, it } from 'vitest';
import { EmulatorTarget } from '../../src/targets/emulator/emulator-target.js';
import { session } from './emulator-session.js';
import { sampleKernel } from './sample-kernel.js';

const t = EmulatorTarget.open(sampleKernel(), { ramBytes: 32 << 20, cpus: 2 });
afterAll(() => t.close());
const s = session(t);

describe('::wp -i', () => {
  it('stops after the OUT or IN that touched a watched port, counts hits, and goes with ::delete', async () => {
    expect(await s.run('0x3f8::wp -i -w')).toEqual(['1: watchpoint write 1 I/O port at 0x3f8; hits 0']);
    expect(await s.run(':c')).toEqual([expect.stringMatching(/^stopped: watchpoint 1 \(OUT to I\/O port 0x3f8\) at 0x[0-9a-f]+ putc_raw\+0x[0-9a-f]+ on vCPU 0$/)]);
    // the OUT has run: rip is past it, and the byte reached the console
    expect(t.caps.console!.consoleText().length).toBe(1);
    await s.run('::delete 1');
    expect(await s.run('0x514::wp -i -r -L 8')).toEqual(['2: watchpoint read 8 I/O ports at 0x514; hits 0']);
    expect((await s.run(':c'))[0]).toMatch(/^stopped: watchpoint 2 \(IN from I\/O port 0x51[4c]\) at 0x[0-9a-f]+ \S+ on vCPU [01]$/);
    expect(await s.run('::events')).toEqual(['2: watchpoint read 8 I/O ports at 0x514; hits 1']);
    await s.run('::delete all');
  });

  it('bad input names what was wrong', async () => {
    await expect(s.run('0x10::wp -i -x')).rejects.toThrow(`execute watchpoints on I/O ports is not supported by ${t.name}`);
    await expect(s.run('0x10::wp -i -p -w')).rejects.toThrow('::wp: -p (physical memory) and -i (I/O port) exclude each other');
    await expect(s.run('0x10000::wp -i -w')).rejects.toThrow('I/O port 0x10000: expected 0-0xffff');
    await expect(s.run('0xfffe::wp -i -w -L 4')).rejects.toThrow('I/O watchpoint of 4 port(s) at 0xfffe: expected 1 to 0x2');
  });
});
