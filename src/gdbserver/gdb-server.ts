/**
 * The GDB server loop: one debugger at a time on a target, packets in, replies out.
 *
 *   Channel (transport.ts) -> PacketCodec (framing, acks) -> parseRequest -> GdbClient -> target
 *
 * Policy held here, once:
 *   - one client at a time, shared with the control contract's server (ControllerSlot): a second connection gets `E.<why>` to its first packet, then is closed;
 *     a client that detached or killed has left at once, and one whose close is not seen yet gets
 *     LEAVE_GRACE_MS to be seen going, so the next may connect right away (its packets wait for
 *     the previous client's cleanup);
 *   - acks until QStartNoAckMode, `-` makes the last reply go out again;
 *   - requests are handled one after another; only the 0x03 byte is seen while the guest runs;
 *   - nothing a client sends stops the server: bad packets get `E01`, unknown ones the empty reply,
 *     a bug in a handler is logged and answered `E01`;
 *   - a client that disconnects (or detaches, or sends k) leaves the target stopped, with its
 *     break/watchpoints removed, ready for the next client. The target is never closed or reset.
 */

import { DbgError, describeError } from '../common/errors.js';
import type { Target } from '../targets/target.js';
import { RequestMemo } from './commands/request-memo.js';
import { E_BAD_PACKET, GdbClient, PACKET_SIZE, type MonitorSession, type Reply } from './gdb-client.js';
import { encodeHexPacket, encodePacket, PacketCodec } from './packet-codec.js';
import { BadPacket } from './request.js';
import { RehearsalDoor, rehearse, type Rehearsal, type RehearsalEntry } from './rehearsal.js';
import { listenGuarded, type Channel, type ServerHandle } from './transport.js';
import { ControllerSlot, type Controller } from '../targets/controller-slot.js';

export interface ServeGdbOptions {
  /**
   * A scratch copy of the target (a second emulator on the same kernel, a second reader of the
   * same trace), or 'read-only' on the target itself, for a rehearsal before it says it listens: see
   * rehearsal.ts. None: no rehearsal.
   */
  readonly rehearsal?: Rehearsal;
  /** Default 127.0.0.1: only this machine may attach unless asked otherwise. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Where connection events and protocol errors go (default: standard error). */
  readonly log?: (message: string) => void;
  /**
   * Listening on an address other than loopback is refused unless this is set (the user gave
   * --gdb-allow-remote); when it is, a warning says who can now control the target.
   */
  readonly allowRemote?: boolean;
  /**
   * A client may read host files by any path (vFile); without it, only the files the target itself
   * names (its executable, libraries, symbol files). The monitor session's own policy is its own.
   */
  readonly allowHostIo?: boolean;
}

/** The flags a user gives to lift the defaults above (named in refusals and warnings). */
export const ALLOW_REMOTE_FLAG = '--gdb-allow-remote';
export const ALLOW_HOST_IO_FLAG = '--gdb-allow-host-io';

export { isLoopback } from './transport.js';

export type GdbServerHandle = ServerHandle;

export async function serveGdb(
  target: Target,
  session: MonitorSession | undefined,
  options: ServeGdbOptions,
): Promise<GdbServerHandle> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((m: string) => process.stderr.write(`dbg gdbserver: ${m}\n`));
  // One controller at a time across every server of this target (RSP, the control contract).
  const slot = ControllerSlot.of(target);
  /** Settles when the previous client's run has stopped and its points are removed. */
  let previous: Promise<void> = Promise.resolve();

  const start = (ch: Channel, me: Controller): void => {
    log(`gdb connected from ${ch.peer}`);
    const leaving = (): void => slot.leave(me);
    const done = serveClient(ch, target, session, previous, log, leaving, options.allowHostIo === true);
    previous = done.then(() => {
      log(`gdb from ${ch.peer} left; ${target.name} stays stopped, waiting for the next client`);
    });
  };

  const onChannel = (ch: Channel): void => {
    const me: Controller = { protocol: 'gdb', peer: ch.peer };
    if (slot.claim(me)) {
      start(ch, me);
      return;
    }
    // Someone is attached, or on the way out with its close not seen yet (a client that closes and
    // reconnects at once): decide at this client's first packet, giving the other a moment to go.
    const gate = holdUntilFirstPacket(ch);
    void gate.first.then(async (got) => {
      if (!got) return; // it left without a word
      await slot.grace();
      if (gate.gone()) return; // it left while it waited
      if (slot.claim(me)) start(gate.channel, me);
      else refuse(ch, slot.refusal('gdb', 'GDB server'), log);
    });
  };
  // The rehearsal comes in through the listener, as a client will (see rehearsal.ts); a client
  // that connects meanwhile waits for it to end.
  const door = new RehearsalDoor(onChannel);
  const listener = await listenGuarded(
    { host, port: options.port, flag: '--gdb', allowFlag: ALLOW_REMOTE_FLAG, allowRemote: options.allowRemote, what: 'gdb', log },
    (ch) => door.arrive(ch),
    () => previous,
  );
  if (options.rehearsal) await rehearseGdb(options.rehearsal, target, { door, host, port: listener.port });
  log(`listening on ${host}:${listener.port} for gdb (target remote ${host}:${listener.port})`);
  door.open();
  return listener;
}

/** The server's rehearsal (rehearsal.ts) for `served`, through the listener at `entry`; resolves to the rounds played. */
export function rehearseGdb(on: Rehearsal, served: Target, entry: RehearsalEntry, budgetMs?: number): Promise<number> {
  return rehearse(on, served, (ch, scratch) => serveClient(ch, scratch, undefined, Promise.resolve(), () => undefined, () => undefined, false), entry, budgetMs);
}

/** Answer a client's first packet (already received) with why it cannot attach, and close. */
function refuse(ch: Channel, why: string, log: (m: string) => void): void {
  log(`refused gdb from ${ch.peer}: ${why}`);
  ch.write(Buffer.from('+'));
  ch.write(encodePacket(`E.${why}`));
  ch.end();
}

/**
 * Read a client's bytes until its first complete packet, keeping them: `first` says whether one
 * came (false: it closed first), and `channel` is the same client with those bytes delivered again
 * to whoever listens next, so a session can start from them.
 */
function holdUntilFirstPacket(ch: Channel): { first: Promise<boolean>; channel: Channel; gone: () => boolean } {
  const codec = new PacketCodec(PACKET_SIZE);
  const held: Buffer[] = [];
  let heldBytes = 0;
  let sink: ((data: Buffer) => void) | undefined;
  let settle!: (got: boolean) => void;
  const first = new Promise<boolean>((resolve) => (settle = resolve));
  let seen = false;
  ch.onData((data) => {
    if (sink) return sink(data);
    held.push(data);
    heldBytes += data.length;
    if (seen) {
      if (heldBytes > 2 * PACKET_SIZE) ch.pause(); // bounded while it waits its turn
      return;
    }
    if (codec.feed(data).some((e) => e.kind === 'packet' || e.kind === 'oversized')) {
      seen = true;
      settle(true);
    }
  });
  let gone = false;
  ch.onClose(() => {
    gone = true;
    settle(false);
  });
  const channel: Channel = {
    peer: ch.peer,
    write: (d) => ch.write(d),
    directFd: () => ch.directFd(),
    onClose: (l) => ch.onClose(l),
    end: () => ch.end(),
    pause: () => ch.pause(),
    resume: () => ch.resume(),
    onData: (listener) => {
      sink = listener;
      for (const d of held.splice(0)) listener(d);
      ch.resume();
    },
  };
  return { first, channel, gone: () => gone };
}

/**
 * Requests a client may have waiting (pipelined) before dbg stops reading from it: its memory is
 * this, plus one packet being decoded (PacketSize), plus the replies it has not read (transport).
 */
const MAX_QUEUED = 8 << 20;
/** What a queued request costs beyond its bytes (the Buffer), as counted against it. */
const PACKET_OVERHEAD = 256;
/** A queued `oversized` event: answered E01 in its turn. */
const OVERSIZED = Buffer.alloc(0);

/**
 * Serve one client until it goes away; resolves once the target is stopped and cleaned up.
 *
 * Requests are answered one after another, in the order they came. One whose reply is ready at
 * once (all but a resume and monitor) is answered inside the data event that brought it, with no
 * promise: a promise per packet and its trips through the microtask queue were a tenth of the
 * server's work per packet. A request whose reply is a promise holds the others until it settles.
 */
function serveClient(
  ch: Channel,
  target: Target,
  session: MonitorSession | undefined,
  previous: Promise<void>,
  log: (m: string) => void,
  /** The client has left (detach, kill, its side closed): another may connect. */
  leaving: () => void,
  allowHostIo: boolean,
): Promise<void> {
  let closed = false;
  const client = new GdbClient(target, session, {
    allowHostIo,
    replyFd: () => (closed ? -1 : ch.directFd()),
    // the target may read the client's next requests itself only from where the server left off
    quiet: () => noAck && queue.length === 0 && codec.idle,
  });
  const codec = new PacketCodec(PACKET_SIZE);
  const requests = new RequestMemo();
  let noAck = false;
  let last: Buffer | undefined;
  const queue: Buffer[] = [];
  /** Bytes of the requests waiting their turn; past MAX_QUEUED the channel stops reading. */
  let queuedBytes = 0;
  let paused = false;
  /** A reply being waited for (or the previous client's cleanup): the queue waits for it. */
  let waiting: Promise<void> | undefined = previous.then(() => {
    waiting = undefined;
    pump();
  });

  const send = (payload: string): void => {
    last = encodePacket(payload);
    ch.write(last);
  };

  const failed = (payload: Buffer, e: unknown): Reply => {
    if (e instanceof BadPacket) {
      log(e.message);
    } else {
      log(`internal error on packet "${payload.toString('latin1').slice(0, 60)}": ${describeError(e)}`);
    }
    return { packet: E_BAD_PACKET };
  };

  /** The reply to `payload`, or the promise of it being sent. */
  const answer = (payload: Buffer): Promise<void> | undefined => {
    if (closed) return undefined; // the client left while this packet waited its turn
    if (payload === OVERSIZED) {
      send(E_BAD_PACKET);
      return undefined;
    }
    let reply: Reply | Promise<Reply>;
    try {
      reply = client.handle(requests.parse(payload));
    } catch (e) {
      reply = failed(payload, e);
    }
    if (reply instanceof Promise) {
      return reply.then(
        (r) => deliver(payload, r),
        (e: unknown) => deliver(payload, failed(payload, e)),
      );
    }
    deliver(payload, reply);
    return undefined;
  };

  const deliver = (payload: Buffer, reply: Reply): void => {
    if (closed) return;
    if (reply.error) log(reply.error);
    for (const text of reply.output ?? []) send('O' + Buffer.from(text, 'utf8').toString('hex'));
    if (reply.framed !== undefined || reply.hex !== undefined) {
      last = reply.framed ?? encodeHexPacket(reply.hex!);
      ch.write(reply.written ? last.subarray(reply.written) : last);
    } else if (reply.packet !== undefined) {
      send(reply.packet);
    }
    if (!noAck && payload.length === 15 && payload.toString('latin1') === 'QStartNoAckMode') noAck = true;
    if (reply.close) {
      closed = true; // whatever it sends after D or k is not answered
      leaving();
      log(`gdb from ${ch.peer} ${reply.close === 'kill' ? 'sent kill: the session ends, dbg keeps serving' : 'detached'}`);
      ch.end();
    }
  };

  /** Answers the queued requests in order, until one has to be waited for. */
  const pump = (): void => {
    while (waiting === undefined && queue.length > 0) {
      const payload = queue.shift()!;
      queuedBytes -= payload.length + PACKET_OVERHEAD;
      if (paused && queuedBytes < MAX_QUEUED / 2) {
        paused = false;
        ch.resume();
      }
      const pending = answer(payload);
      if (pending) {
        waiting = pending.then(() => {
          waiting = undefined;
          pump();
        });
        return;
      }
    }
    if (waiting === undefined) client.settle();
  };

  const enqueue = (payload: Buffer): void => {
    queue.push(payload);
    queuedBytes += payload.length + PACKET_OVERHEAD;
    if (queuedBytes > MAX_QUEUED && !paused) {
      paused = true;
      ch.pause();
    }
  };

  // Named, so that profiles and V8's traces (--trace-opt, --trace-deopt) can tell it apart.
  const received = (data: Buffer): void => {
    for (const ev of codec.feed(data)) {
      switch (ev.kind) {
        case 'interrupt':
          client.interrupt(queue.length > 0);
          break;
        case 'nak':
          if (last && !noAck) ch.write(last);
          break;
        case 'ack':
          break;
        case 'oversized':
          if (!noAck) ch.write(Buffer.from('+'));
          log(`packet of ${ev.length} bytes is longer than PacketSize 0x${PACKET_SIZE.toString(16)}: refused`);
          enqueue(OVERSIZED);
          break;
        case 'packet':
          if (!ev.checksumOk && !noAck) {
            ch.write(Buffer.from('-'));
            break;
          }
          if (!noAck) ch.write(Buffer.from('+'));
          enqueue(ev.payload);
          break;
      }
    }
    pump();
  };
  ch.onData(received);

  return new Promise<void>((resolve) => {
    ch.onClose(() => {
      closed = true;
      leaving();
      // A client gone mid-run leaves the guest running: stop it before the next client comes.
      client.interrupt();
      const done = (): void => {
        client.interrupt();
        client.cleanup();
        resolve();
      };
      if (waiting) void waiting.catch(() => undefined).then(done);
      else done();
    });
  });
}
