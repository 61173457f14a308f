/**
 * CMOS RAM and real-time clock at 0x70 (index; bit 7 = NMI mask) / 0x71 (data). The clock shows
 * a fixed date (2026-01-01 00:00:00) plus the machine's virtual time, in BCD and 24-hour mode
 * (status B = 0x02), so that a guest reading it twice in a replay sees the same values. The
 * memory-size bytes say what RAM the machine has (as SeaBIOS fills them); other bytes read as
 * written (0 at first), e.g. the shutdown status 0x0f an SMP kernel sets before INIT.
 */

import { NS_PER_S } from './clock.js';

const BASE = Date.UTC(2026, 0, 1) / 1000;
const bcd = (n: number): number => ((Math.floor(n / 10) % 10) << 4) | (n % 10);

export class Cmos {
  private index = 0;
  private readonly ram = new Uint8Array(128);

  constructor(ramBytes: number) {
    const ext = Math.min(0xffff, Math.max(0, (ramBytes - (1 << 20)) >> 10)); // KiB above 1 MiB
    const above16 = Math.min(0xffff, Math.max(0, (ramBytes - (16 << 20)) >> 16)); // 64 KiB above 16 MiB
    this.ram[0x0a] = 0x26;
    this.ram[0x0b] = 0x02;
    this.ram[0x0d] = 0x80;
    this.ram[0x10] = 0; // no floppies
    this.ram[0x14] = 0x06; // FPU, VGA
    this.ram[0x15] = 640 & 0xff;
    this.ram[0x16] = 640 >> 8;
    this.ram[0x17] = this.ram[0x30] = ext & 0xff;
    this.ram[0x18] = this.ram[0x31] = ext >> 8;
    this.ram[0x34] = above16 & 0xff;
    this.ram[0x35] = above16 >> 8;
    this.ram[0x32] = 0x20;
  }

  handles(port: number): boolean {
    return port === 0x70 || port === 0x71;
  }

  in(port: number, now: bigint): number {
    if (port === 0x70) return 0xff;
    const i = this.index;
    if (i <= 9) {
      const d = new Date((BASE + Number(now / NS_PER_S)) * 1000);
      const v = [d.getUTCSeconds(), 0, d.getUTCMinutes(), 0, d.getUTCHours(), 0, d.getUTCDay() + 1, d.getUTCDate(), d.getUTCMonth() + 1, d.getUTCFullYear() % 100][i]!;
      return i % 2 === 1 && i < 6 ? this.ram[i]! : bcd(v);
    }
    if (i === 0x0c) return 0;
    return this.ram[i]!;
  }

  out(port: number, v: number): void {
    if (port === 0x70) this.index = v & 0x7f;
    else if (this.index !== 0x0d && this.index !== 0x0c) this.ram[this.index] = v & 0xff;
  }

  save(): unknown {
    return { index: this.index, ram: this.ram.slice() };
  }

  load(s: unknown): void {
    const st = s as { index: number; ram: ArrayLike<number> };
    this.index = st.index;
    this.ram.set(st.ram);
  }
}
