/**
 * A rehearsal: the GDB server plays a short scripted gdb session, over a loopback connection of
 * its own, against a scratch copy of its target before it listens, so that V8 has compiled the
 * packet path by the time a real client steps.
 *
 * Why: a server started for one debugging session serves its first few hundred packets from V8's
 * interpreter and baseline code while the optimising compiler catches up on the same two cores.
 * gdb's `stepi` (vCont;s, then m and qXfer:threads) measured 3-4x more server CPU for the first
 * 200 steps of a fresh server than after 15,000, where QEMU's gdbstub, compiled ahead of time,
 * pays nothing. The scratch target (another emulator on the same kernel, another reader of the
 * same trace) takes the steps, so the user's target is never touched; what is shared with the
 * real session is only the compiled code of the functions both run.
 *
 * The script is what gdb 13 sends: qSupported, the target description, `?`, then rounds of
 * `vCont;s` (and `bs` where the target runs backwards), `m` at the pc, `qXfer:threads:read`,
 * `g`. It stops early after `budgetMs`, and a failure of any kind only ends it.
 */

import type { Target } from '../targets/target.js';
import { encodePacket } from './packet-codec.js';
import { dialLoopback, listenTcp, type Channel } from './transport.js';

/** Serve one client on a channel (gdb-server's serveClient, passed in to keep the import one-way). */
export type ServeOne = (ch: Channel, target: Target) => Promise<void>;

/** A scratch copy of the served target for the rehearsal, closed when it is over. */
export type RehearsalTarget = () => Target | undefined;

/**
 * What a server rehearses on: a scratch copy it may step, or `read-only`, the served target itself
 * with packets that read and never run or write (a live process, where no copy can be made: the
 * compiled code is then the packet path's and the reads', not the step's).
 */
export type Rehearsal = RehearsalTarget | 'read-only';

const ROUNDS = 400;

/**
 * Play the rehearsal on `makeScratch()`'s target, or read-only on `served` itself; the number of
 * rounds played (0 when there was no scratch or it failed at once).
 */
export async function rehearse(on: Rehearsal, served: Target, serve: ServeOne, budgetMs = 500): Promise<number> {
  const readOnly = on === 'read-only';
  let scratch: Target | undefined;
  const rounds = { played: 0 };
  try {
    const target = readOnly ? served : (scratch = on());
    if (!target) return 0;
    await play(target, serve, budgetMs, rounds, readOnly);
  } catch {
    // A rehearsal that fails costs the user nothing but the compiled code it did not make.
  } finally {
    try {
      scratch?.close();
    } catch {
      // as above
    }
  }
  return rounds.played;
}

async function play(target: Target, serve: ServeOne, budgetMs: number, rounds: { played: number }, readOnly: boolean): Promise<void> {
  const until = performance.now() + budgetMs;
  // Over a loopback connection of its own, as a client's packets come: Node's socket code is half
  // of what a packet costs, and it is compiled by this too.
  let served: Promise<void> | undefined;
  const listener = await listenTcp('127.0.0.1', 0, (ch) => {
    served ??= serve(ch, target);
  });
  const socket = dialLoopback(listener.port);
  let received = '';
  let waiting: ((reply: string) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  socket.on('data', (data: Buffer) => {
    received += data.toString('latin1');
    for (;;) {
      const start = received.indexOf('$');
      const end = start < 0 ? -1 : received.indexOf('#', start);
      if (end < 0 || received.length < end + 3) break;
      const payload = received.slice(start + 1, end);
      received = received.slice(end + 3);
      // Console output packets (O + hex) are not the reply being waited for.
      if (/^O[0-9a-f]+$/.test(payload)) continue;
      const w = waiting;
      waiting = undefined;
      w?.(payload);
    }
  });
  socket.on('error', (e) => failed?.(e));
  socket.on('close', () => failed?.(new Error('the rehearsal connection closed')));
  const ask = (payload: string): Promise<string> =>
    new Promise((resolve, reject) => {
      waiting = resolve;
      failed = reject;
      socket.write(encodePacket(payload));
    });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    await ask('qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;xmlRegisters=i386');
    await ask('QStartNoAckMode');
    socket.write('+');
    await ask('qXfer:features:read:target.xml:0,1000');
    const stop = await ask('?');
    const thread = /thread:([^;]+);/.exec(stop)?.[1] ?? '1';
    await ask(`Hg${thread}`);
    await ask('qC');
    // What gdb sends for `stepi` in all-stop: step this thread, the others may run.
    const pid = /^p([0-9a-f]+)\./.exec(thread)?.[1];
    const step = `vCont;s:${thread};c${pid ? `:p${pid}.-1` : ''}`;
    const reverse = target.caps.reverse !== undefined;
    const runs = !readOnly && target.caps.execution !== undefined;
    for (let i = 0; i < ROUNDS && performance.now() < until; i++) {
      // A replay starts at the end of its history: back one step, then forward again.
      const back = reverse && i % 2 === 0;
      const reply = runs ? await ask(back ? 'bs' : step) : await ask('?');
      if (!reply.startsWith('T') && !reply.startsWith('S')) break; // the scratch guest cannot go on
      await ask(`m${target.status().pc.toString(16)},40`);
      await ask('qXfer:threads:read::0,1000');
      if (i % 4 === 0) await ask('g');
      // On a replay, now and then what `reverse-continue` to a watchpoint sends: a write watchpoint
      // on the stack (where the last stop put it), back to the write, and forward to the end again.
      if (runs && reverse && i % 50 === 1) await reverseToStackWrite(ask, reply);
      rounds.played++;
    }
    // No D: on a process it would detach the served process. The connection closing below ends
    // the session as a client that goes away does.
  } finally {
    failed = undefined;
    socket.destroy();
    await listener.close();
    await served?.catch(() => undefined);
  }
}

/** Z2 on the 8 bytes at the stack pointer of `stop` (x86-64's register 07), bc, z2, then c. */
async function reverseToStackWrite(ask: (payload: string) => Promise<string>, stop: string): Promise<void> {
  const sp = /[;T]07:([0-9a-f]{16});/.exec(stop)?.[1];
  if (sp === undefined) return;
  const addr = BigInt(`0x${Buffer.from(sp, 'hex').reverse().toString('hex')}`).toString(16);
  if ((await ask(`Z2,${addr},8`)) !== 'OK') return;
  await ask('bc');
  await ask(`z2,${addr},8`);
  await ask('vCont;c');
}
