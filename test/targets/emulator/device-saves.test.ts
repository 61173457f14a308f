/**
 * A device's save() for the machine's marks (Machine.keepDeviceMarks) must hold all its state,
 * copied: the local APIC's and the ATA channel's are written field by field (devices/lapic.ts,
 * devices/ata.ts), so a field added to the class must be added there too, or a `::discard` would
 * leave it as it was.
 */
import { describe, expect, it } from 'vitest';
import { AtaChannel } from '../../../src/targets/emulator/devices/ata.js';
import { Lapic } from '../../../src/targets/emulator/devices/lapic.js';

const noop = (): void => {};

describe('Lapic.save', () => {
  it('holds every field but the callbacks, copied, and load puts them back', () => {
    const a = new Lapic(1, noop, noop, noop);
    a.tpr = 0x20;
    a.lvt[0] = 0x20030;
    a.initial = 10_000;
    a.start = 123n;
    a.next = 456n;
    a.irr[1] = 0x8000;
    a.isr[2] = 1;
    a.tmr[3] = 4;
    const saved = a.save() as Record<string, unknown>;
    const fields = Object.keys(a).filter((k) => typeof (a as unknown as Record<string, unknown>)[k] !== 'function');
    expect(Object.keys(saved).sort()).toEqual(fields.sort());
    // copies: changing the device after the save leaves the save as it was
    a.lvt[0] = 0;
    a.irr[1] = 0;
    expect((saved.lvt as number[])[0]).toBe(0x20030);
    expect((saved.irr as Uint32Array)[1]).toBe(0x8000);
    const b = new Lapic(1, noop, noop, noop);
    b.load(saved);
    expect(b.save()).toEqual(saved);
    expect(b.lvt[0]).toBe(0x20030);
  });
});

describe('AtaChannel.save', () => {
  it('holds every field but the disks and the IRQ line, copied, and load puts them back', () => {
    const a = new AtaChannel([], noop);
    const own = a as unknown as Record<string, unknown>;
    own.buf = Buffer.from('sector data');
    own.pos = 4;
    own.lba = 77;
    own.status = 0x58;
    const saved = a.save() as Record<string, unknown>;
    const fields = Object.keys(a).filter((k) => k !== 'disks' && k !== 'irq');
    expect(Object.keys(saved).sort()).toEqual(fields.sort());
    (own.buf as Buffer)[0] = 0x21; // the device's buffer changed after the save: the save's did not
    expect((saved.buf as Buffer).toString()).toBe('sector data');
    const b = new AtaChannel([], noop);
    b.load(saved);
    expect(b.save()).toEqual(saved);
  });
});
