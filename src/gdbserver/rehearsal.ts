/**
 * A rehearsal: the GDB server plays scripted gdb sessions against a scratch copy of its target,
 * through its own listener, before it says it listens, so that V8 has compiled the packet path by
 * the time a real client steps.
 *
 * Why: a server started for one debugging session serves its first few hundred packets from V8's
 * interpreter and baseline code while the optimising compiler catches up on the same two cores.
 * gdb's `stepi` (vCont;s, then m and qXfer:threads) measured 3-4x more server CPU for the first
 * 200 steps of a fresh server than after 15,000, where QEMU's gdbstub, compiled ahead of time,
 * pays nothing. The scratch target (another emulator on the same kernel, another reader of the
 * same trace) takes the steps, so the user's target is never touched; what is shared with the
 * real session is only the compiled code of the functions both run.
 *
 * Compiled code is only kept if the real session looks like the rehearsal to V8: a function that
 * meets an object of a shape (a map), a callee or a path it never saw is deoptimised, and runs
 * from the interpreter again until it is hot anew, i.e. during the user's first steps. So:
 *   - the rehearsal dials the server's own listener (RehearsalDoor): its connections are accepted
 *     sockets of the same server as the client's, handled by the same code;
 *   - it plays SESSIONS connections one after another, as clients come and go (see SESSIONS);
 *   - the script is what gdb 13 sends, not only its steps: the connection (acks, qSupported,
 *     vMustReplyEmpty, the target description in pieces, qTStatus, ?, qAttached, Hc, qOffsets,
 *     qSymbol, a read that fails), a breakpoint reached by continue (m, Z0, vCont?, vCont;c,
 *     qXfer:threads, z0; bc on a replay), then rounds of `vCont;s` (and `bs` where the target runs
 *     backwards), `m` at the frame, `qXfer:threads:read`, and now and then `g`; on a live
 *     process's double, a breakpoint hit every round (Z0, vCont;s, Z0, vCont;c, qXfer:threads, z0).
 * With a listener of its own, one session and steps alone, gdb's connection set off 4 to 20
 * deoptimisations (`node --trace-deopt`: the codec on gdb's `+` acks, the parsers, the stop reply
 * of a breakpoint, the page walk, Node's Writable.write, onwrite and clearBuffer on its socket's
 * maps, the server's per-client closures); now 2 or 3 are left (Buffer.from, the page walk).
 * It stops early after `budgetMs`, and a failure of any kind only ends it.
 */

import type { Socket } from 'node:net';
import type { Target } from '../targets/target.js';
import { encodePacket } from './packet-codec.js';
import { dialLoopback, isLoopback, type Channel } from './transport.js';

/** Serve one client on a channel (gdb-server's serveClient, passed in to keep the import one-way). */
export type ServeOne = (ch: Channel, target: Target) => Promise<void>;

/** A scratch copy of the served target for the rehearsal, closed when it is over. */
export type RehearsalTarget = () => Target | undefined;

/**
 * What a server rehearses on: a scratch copy it may step (for a live process, of which no copy can
 * be made, a double whose tracer only pretends: ProcessTarget.rehearsalDouble), or `read-only`,
 * the served target itself with packets that read and never run or write (the compiled code is
 * then the packet path's and the reads', not the step's).
 */
export type Rehearsal = RehearsalTarget | 'read-only';

/**
 * Rounds of the steps above, over all sessions. More rounds leave less to compile during the user's
 * first steps: a fresh `dbg live` server's first 200 `stepi`s through gdb took 1.22 ms each after
 * 400 rounds, 1.11 ms after 1,500 (medians of 9, load 8-10 with the servers at real-time
 * priority, 23:41 UTC; replay `reverse-stepi` 1.32 -> 1.24 ms); 1,500 rounds took 0.5-0.6 s at
 * that priority.
 */
export const REHEARSAL_ROUNDS = 1500;
/**
 * The rounds are played over this many connections, one after another: code V8 compiled for the
 * first connection's socket, its stream state and the server's closures for that client was
 * deoptimised by the next one ("wrong map" in Writable.write, onwrite, clearBuffer and
 * Socket.read, "wrong call target" for the server's per-client `answer`), so the real client must
 * not be the second one to come.
 */
const SESSIONS = 3;

/**
 * The server's listener while it rehearses: its connections come here. The rehearsal's own (from
 * the loopback port it dialed from) is handed to it; any other waits until open(), then goes to
 * the server in the order it came, as does every later one. A client that connects early (to a
 * port it was given) is thus served as soon as the rehearsal is over, never by the scratch target.
 */
export class RehearsalDoor {
  private opened = false;
  private readonly waiting: Channel[] = [];
  private readonly gone = new Set<Channel>();
  private wanted?: { port: number; take: (ch: Channel) => void };

  constructor(private readonly pass: (ch: Channel) => void) {}

  /** A connection the listener accepted. */
  arrive(ch: Channel): void {
    const w = this.wanted;
    if (w && fromLoopbackPort(ch.peer, w.port)) {
      this.wanted = undefined;
      if (this.opened) ch.end(); // the rehearsal gave up on it
      else w.take(ch);
      return;
    }
    if (this.opened) return this.pass(ch);
    this.waiting.push(ch);
    ch.onClose(() => this.gone.add(ch));
  }

  /** The rehearsal's connection, dialed from loopback port `port`, once the listener accepted it. */
  claim(port: number): Promise<Channel> {
    const i = this.waiting.findIndex((ch) => fromLoopbackPort(ch.peer, port));
    if (i >= 0) return Promise.resolve(this.waiting.splice(i, 1)[0]!);
    return new Promise((take) => (this.wanted = { port, take }));
  }

  /** The rehearsal is over: the connections that waited go to the server, and so will the rest. */
  open(): void {
    this.opened = true;
    for (const ch of this.waiting.splice(0)) if (!this.gone.has(ch)) this.pass(ch);
    this.gone.clear();
  }
}

/** The server's listener, where the rehearsal dials, and its door. */
export interface RehearsalEntry {
  readonly door: RehearsalDoor;
  readonly host: string;
  readonly port: number;
}

/** `peer` ("127.0.0.1:41234", "::1:41234") is a loopback address with that port. */
function fromLoopbackPort(peer: string, port: number): boolean {
  const colon = peer.lastIndexOf(':');
  return Number(peer.slice(colon + 1)) === port && isLoopback(peer.slice(0, colon));
}

/**
 * Play the rehearsal on `makeScratch()`'s target, or read-only on `served` itself, through the
 * server's listener at `entry`; the number of rounds played (0 when there was no scratch or it
 * failed at once).
 */
export async function rehearse(on: Rehearsal, served: Target, serve: ServeOne, entry: RehearsalEntry, budgetMs = 800): Promise<number> {
  const readOnly = on === 'read-only';
  let scratch: Target | undefined;
  const rounds = { played: 0 };
  try {
    const target = readOnly ? served : (scratch = on());
    if (!target) return 0;
    await play(target, serve, entry, budgetMs, rounds, readOnly);
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

/** gdb's side of the rehearsal: one request at a time over `socket`, each resolving to its reply. */
function gdbSide(socket: Socket, until: number): { ask: (payload: string, interruptAfterMs?: number) => Promise<string>; done: () => void } {
  let received = '';
  let waiting: ((reply: string) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  // gdb acknowledges every packet with `+` until QStartNoAckMode is agreed.
  let acking = true;
  let asked = '';
  socket.on('data', (data: Buffer) => {
    received += data.toString('latin1');
    for (;;) {
      const start = received.indexOf('$');
      const end = start < 0 ? -1 : received.indexOf('#', start);
      if (end < 0 || received.length < end + 3) break;
      const payload = received.slice(start + 1, end);
      received = received.slice(end + 3);
      // Console output packets (O + hex) are not the reply being waited for.
      if (acking) socket.write('+');
      if (asked === 'QStartNoAckMode') acking = false;
      if (/^O[0-9a-f]+$/.test(payload)) continue;
      const w = waiting;
      waiting = undefined;
      w?.(payload);
    }
  });
  const fail = (e: Error): void => failed?.(e);
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('the rehearsal connection closed')));
  // Whatever happens (a reply that never comes), the server goes on to listen soon after the budget.
  const late = new Error('the rehearsal ran out of time');
  const deadline = setTimeout(() => fail(late), until - performance.now() + 1000);
  const ask = (payload: string, interruptAfterMs?: number): Promise<string> =>
    new Promise((resolve, reject) => {
      if (performance.now() > until + 1000) return reject(late);
      // A continue whose stop does not come soon is interrupted (0x03), as a user would.
      const timer = interruptAfterMs === undefined ? undefined : setTimeout(() => socket.write('\x03'), interruptAfterMs);
      waiting = (reply) => {
        clearTimeout(timer);
        resolve(reply);
      };
      failed = (e) => {
        clearTimeout(timer);
        reject(e);
      };
      asked = payload;
      socket.write(encodePacket(payload));
    });
  return { ask, done: () => clearTimeout(deadline) };
}

async function play(target: Target, serve: ServeOne, entry: RehearsalEntry, budgetMs: number, rounds: { played: number }, readOnly: boolean): Promise<void> {
  const start = performance.now();
  for (let n = 1; n <= SESSIONS; n++) {
    const until = start + (budgetMs * n) / SESSIONS;
    if (!(await session(target, serve, entry, until, Math.round((REHEARSAL_ROUNDS * n) / SESSIONS) - rounds.played, rounds, readOnly))) return;
  }
}

/** One gdb session of up to `count` rounds; false when the scratch cannot go on. */
async function session(target: Target, serve: ServeOne, entry: RehearsalEntry, until: number, count: number, rounds: { played: number }, readOnly: boolean): Promise<boolean> {
  const socket = dialLoopback(entry.port, entry.host);
  const { ask, done } = gdbSide(socket, until);
  let served: Promise<void> | undefined;
  let over = false;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    // The server's end of this connection, once its listener has accepted it.
    void entry.door.claim(socket.localPort!).then((ch) => {
      if (over) ch.end();
      else served = serve(ch, target);
    });
    await connect(ask);
    const stop = await ask('?');
    const thread = /thread:([^;]+);/.exec(stop)?.[1] ?? '1';
    await ask(`Hg${thread}`);
    await ask('qC');
    // What gdb sends for `stepi` in all-stop: step this thread, the others may run.
    const pid = /^p([0-9a-f]+)\./.exec(thread)?.[1];
    const step = `vCont;s:${thread};c${pid ? `:p${pid}.-1` : ''}`;
    const resume = `vCont;c${pid ? `:p${pid}.-1` : ''}`;
    const reverse = target.caps.reverse !== undefined;
    const runs = !readOnly && target.caps.execution !== undefined;
    // A live process's double (dry-tracer.ts) never comes back to a pc: every round also plays a
    // breakpoint hit as gdb's `continue` sends it (the process bench's and most sessions' packets).
    const hits = runs && target.kind === 'process' && pid !== undefined;
    const seen = new Set<string>();
    let reply = stop;
    /** Steps back not yet made up: a replay's session ends where it began, at the end of the history. */
    let behind = 0;
    for (let i = 0; i < count && performance.now() < until; i++) {
      // On a replay the steps go back and forth one behind the end: a step onto the end is a step
      // onto a checkpoint, which restores it and moves RAM line by line (5-15 ms at load 10, a few
      // hundred rounds fewer in the budget), as gdb's steps inside a history never do.
      if (runs && reverse && behind === 0) {
        reply = await ask('bs');
        behind = 1;
      }
      // Then back one step and forward again.
      const back = reverse && i % 2 === 0;
      const pcBefore = expedited(reply, '10');
      reply = runs ? await ask(back ? 'bs' : step) : await ask('?');
      if (!reply.startsWith('T') && !reply.startsWith('S')) return false; // the scratch guest cannot go on
      if (runs && reverse) behind = Math.max(0, behind + (back ? 1 : -1));
      await ask(`m${frameAddress(reply) ?? target.status().pc.toString(16)},40`);
      await ask('qXfer:threads:read::0,1000');
      if (i % 4 === 0) await ask('g');
      if (hits) await breakpointHit(ask, target.status().pc, step, resume);
      const pc = expedited(reply, '10');
      if (runs && i % 50 === 3 && pc !== undefined) {
        // `break X; continue` (or reverse-continue) as gdb sends it, to a breakpoint that is hit:
        // on a replay the pc one step back, on a guest that only runs forward a pc it has been
        // at before (a loop, so it comes round again; if not, the continue is interrupted).
        const at = reverse ? (back ? undefined : pcBefore) : seen.has(pc) ? pc : undefined;
        if (at !== undefined && (await continueTo(ask, at, reverse ? 'bc' : resume, reverse ? resume : undefined))) behind = 0;
      }
      if (pc !== undefined) seen.add(pc);
      // On a replay, now and then what `reverse-continue` to a watchpoint sends: a write watchpoint
      // on the stack (where the last stop put it), back to the write, and forward to the end again.
      if (runs && reverse && i % 50 === 1 && (await reverseToStackWrite(ask, reply, resume))) behind = 0;
      rounds.played++;
    }
    for (; behind > 0; behind--) await ask(step);
    // No D: on a process it would detach the served process. The connection closing below ends
    // the session as a client that goes away does.
    return true;
  } finally {
    over = true;
    done();
    socket.destroy();
    await served?.catch(() => undefined);
  }
}

/** gdb 13 connecting (`target remote`), up to its first `?`. */
async function connect(ask: (payload: string) => Promise<string>): Promise<void> {
  await ask('qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;xmlRegisters=i386');
  await ask('vMustReplyEmpty');
  await ask('QStartNoAckMode');
  await ask('Hgp0.0');
  for (let offset = 0; offset < 0x100000; offset += 0x1000) {
    if (!(await ask(`qXfer:features:read:target.xml:${offset.toString(16)},1000`)).startsWith('m')) break;
  }
  await ask('qTStatus');
  await ask('qAttached:1');
  await ask('qXfer:exec-file:read:1:0,1000');
  await ask('Hc-1');
  await ask('qOffsets');
  await ask('qSymbol::');
  // gdb reads where it will put a breakpoint, which may not be mapped yet: the error path.
  await ask('m8000000000000000,1');
}

/**
 * Z0 at `pc`, then `go` (a continue, stopped by 0x03 if the breakpoint is not hit within 50 ms),
 * gdb's look at the threads, z0, and `after` (back to the end of a replay's history); whether
 * `after` was sent.
 */
async function continueTo(ask: (payload: string, interruptAfterMs?: number) => Promise<string>, pcLittleEndian: string, go: string, after?: string): Promise<boolean> {
  const addr = fromLittleEndian(pcLittleEndian);
  await ask(`m${addr},1`);
  if ((await ask(`Z0,${addr},1`)) !== 'OK') return false;
  await ask('vCont?');
  await ask(go, 50);
  await ask('qXfer:threads:read::0,1000');
  await ask(`z0,${addr},1`);
  if (!after) return false;
  await ask(after, 50);
  return true;
}

/**
 * What gdb sends for each `continue` that ends at a breakpoint: its breakpoints in (the one it
 * stopped at only after a step over it), the continue, the thread list, its breakpoints out.
 */
async function breakpointHit(ask: (payload: string) => Promise<string>, pc: bigint, step: string, resume: string): Promise<void> {
  const other = (pc + 0x40n).toString(16);
  const here = (pc + 0x80n).toString(16);
  await ask(`Z0,${other},1`);
  await ask(step);
  await ask(`Z0,${here},1`);
  await ask(resume);
  await ask('qXfer:threads:read::0,1000');
  await ask(`z0,${here},1`);
  await ask(`z0,${other},1`);
}

/** Z2 on the 8 bytes at the stack pointer of `stop` (x86-64's register 07), bc, z2, then `resume`; whether it got that far. */
async function reverseToStackWrite(ask: (payload: string) => Promise<string>, stop: string, resume: string): Promise<boolean> {
  const sp = expedited(stop, '07');
  if (sp === undefined) return false;
  const addr = fromLittleEndian(sp);
  if ((await ask(`Z2,${addr},8`)) !== 'OK') return false;
  await ask('bc');
  await ask(`z2,${addr},8`);
  await ask(resume);
  return true;
}

/** Register `n` (two hex digits) of a stop reply as sent: 16 hex digits, little-endian. */
function expedited(stop: string, n: string): string | undefined {
  return new RegExp(`[;T]${n}:([0-9a-f]{16});`).exec(stop)?.[1];
}

function fromLittleEndian(hex: string): string {
  return BigInt(`0x${Buffer.from(hex, 'hex').reverse().toString('hex')}`).toString(16);
}

/** Where gdb reads after a step (the frame, 0x20 below the stack pointer), or undefined. */
function frameAddress(stop: string): string | undefined {
  const sp = expedited(stop, '07');
  if (sp === undefined) return undefined;
  const at = BigInt(`0x${fromLittleEndian(sp)}`);
  return (at >= 0x20n ? at - 0x20n : at).toString(16);
}
