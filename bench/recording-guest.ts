/**
 * A small real guest for the recorder's tests and benchmark when no emulated machine is needed:
 * a freestanding x86-64 C program (built here with gcc into a flat image) run directly on a
 * Unicorn engine in 64-bit flat mode (no paging: virtual = physical), RAM one host buffer.
 * It loops forever over a linked list, a hash table, a byte ring and SSE copies, so it executes
 * calls, jumps, stack traffic and stores of 1, 2, 4, 8 and 16 bytes, some crossing 64-byte lines.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Registers } from '../src/arch/arch.js';
import { nativeRecorder } from '../src/store/native-recorder.js';
import type { ExecutionObserver, MachineState, ObservedMachine } from '../src/targets/emulator/execution-observer.js';
import { UC, UnicornEngine, X86_REG } from '../src/targets/emulator/unicorn.js';
import { readRegisters } from '../src/targets/emulator/x86-64-cpu.js';

const SOURCE = String.raw`
typedef unsigned long u64; typedef unsigned int u32; typedef unsigned short u16; typedef unsigned char u8;
struct node { struct node *next; u64 val; u32 hits; u16 tag; u8 flag; u8 pad[9]; };
static struct node nodes[256];
static u64 table[1024];
static u8 ring[4096];
static u64 blocks[64][4] __attribute__((aligned(16)));
volatile u64 counter;
volatile u64 last_value;

__attribute__((noinline)) static u64 mix(u64 x, u64 y) {
  x ^= y + 0x9e3779b97f4a7c15UL + (x << 6) + (x >> 2);
  return x;
}

__attribute__((noinline)) static void visit(struct node *n, u64 it) {
  n->val = mix(n->val, it);
  n->hits++;
  n->tag = (u16)it;
  n->flag ^= 1;
}

__attribute__((noinline)) static void ring_put(u64 it, u64 v) {
  u64 at = (it * 13) % (sizeof ring - 8);
  for (int k = 0; k < 8; k++) ring[at + k] = (u8)(v >> (8 * k));
}

typedef long long v2 __attribute__((vector_size(16)));
__attribute__((noinline)) static void copy_block(u64 from, u64 to) {
  *(v2 *)blocks[to] = *(v2 *)blocks[from];
  *(v2 *)(blocks[to] + 2) = *(v2 *)(blocks[from] + 2);
}

void _start(void) {
  u64 seed = 1;
  for (u64 it = 0;; it++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    struct node *n = &nodes[seed >> 56];
    n->next = &nodes[(seed >> 48) & 255];
    visit(n, it);
    visit(n->next, it + 1);
    table[(seed >> 20) & 1023] ^= n->val;
    ring_put(it, seed);
    blocks[it & 63][it & 3] = seed;
    if ((it & 7) == 0) copy_block(it & 63, (seed >> 10) & 63);
    counter++;
    last_value = table[it & 1023];
  }
}
`;

export const GUEST_LOAD = 0x100000n;
export const GUEST_RAM = 16 << 20;
export const GUEST_STACK_TOP = 0xf00000n;

const here = dirname(fileURLToPath(import.meta.url));
const repo = existsSync(join(here, '..', 'package.json')) ? join(here, '..') : join(here, '..', '..');

/** The flat image loaded at GUEST_LOAD, its entry point and its ELF (built once, cached under bench/.work). */
export function guestImage(): { image: Buffer; entry: bigint; elf: string } {
  const hash = createHash('sha256').update(SOURCE).digest('hex').slice(0, 12);
  const dir = join(repo, 'bench', '.work', `recording-guest-${hash}`);
  const bin = join(dir, 'guest.bin');
  const entryFile = join(dir, 'entry');
  if (existsSync(bin) && existsSync(entryFile)) return { image: readFileSync(bin), entry: BigInt(readFileSync(entryFile, 'utf8')), elf: join(dir, 'guest.elf') };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'guest.c'), SOURCE);
  execFileSync('gcc', ['-O2', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-mno-red-zone', '-nostdlib', '-static',
    '-Wl,-Ttext=0x100000', '-Wl,-e,_start', '-g', '-fno-omit-frame-pointer', '-Wl,--build-id=none', '-o', join(dir, 'guest.elf'), join(dir, 'guest.c')]);
  execFileSync('objcopy', ['-O', 'binary', '--set-section-flags', '.bss=alloc,load,contents', join(dir, 'guest.elf'), bin]);
  const elf = readFileSync(join(dir, 'guest.elf'));
  writeFileSync(entryFile, `0x${elf.readBigUInt64LE(24).toString(16)}`);
  return guestImage();
}

/** A guest on its own engine: RAM mapped at physical 0, rip at the entry, rsp at the stack top. */
export class RecordingGuest {
  readonly engine: UnicornEngine;
  readonly ram: Buffer;
  readonly entry: bigint;

  constructor() {
    this.engine = new UnicornEngine('x86-64', UC.CPU_X86_SKYLAKE_SERVER);
    this.ram = Buffer.alloc(GUEST_RAM);
    const { image, entry } = guestImage();
    image.copy(this.ram, Number(GUEST_LOAD));
    this.entry = entry;
    this.engine.mapHost(0n, this.ram);
    this.engine.writeReg(X86_REG.RSP, GUEST_STACK_TOP);
    this.engine.writeReg(X86_REG.RIP, entry);
  }

  get pc(): bigint {
    return this.engine.readReg(X86_REG.RIP);
  }

  close(): void {
    this.engine.close();
  }
}

/**
 * The guest as an ObservedMachine driving an ExecutionObserver the way the emulator does: slices
 * of `quantum` instructions, beforeSlice/afterSlice around each (Unicorn's own count ends them).
 */
export class GuestMachine implements ObservedMachine {
  readonly guest = new RecordingGuest();
  readonly vcpuCount = 1;
  readonly quantum = 10_000;
  readonly ramBase = 0n;
  private seqNow = 0n;
  private observer: ExecutionObserver | undefined;

  get ram(): Buffer {
    return this.guest.ram;
  }
  get seq(): bigint {
    return this.seqNow;
  }
  engineAddress(): bigint {
    return this.guest.engine.address;
  }
  saveState(): MachineState {
    throw new Error('not needed by the recorder');
  }
  loadState(): void {
    throw new Error('not needed by the recorder');
  }
  setObserver(o: ExecutionObserver | undefined): void {
    this.observer = o;
    o?.attach(this);
  }

  /** Run `n` instructions in slices of `quantum`. */
  run(n: number, quantum = 10_000): void {
    const N = nativeRecorder();
    for (let done = 0; done < n; ) {
      const q = Math.min(quantum, n - done);
      this.observer?.beforeSlice(0, this.seqNow);
      const err = N.run(this.guest.engine.address, this.guest.pc, q);
      if (err !== 0) throw new Error(`guest stopped with uc_err ${err}`);
      this.seqNow += BigInt(q);
      this.observer?.afterSlice(0, q, { kind: 'quantum' });
      done += q;
    }
  }

  registers(): Registers {
    return readRegisters(this.guest.engine);
  }

  close(): void {
    this.observer?.detach?.();
    this.guest.close();
  }
}
