/**
 * The socket side of a connection to a GDB stub, on a worker thread (see rsp-connection.ts): it
 * frames packets, handles acks, naks and checksums, collects console (O) packets, and enforces
 * each packet's timeout, so that the thread that asks can block on a reply (Atomics.wait) and the
 * Target's synchronous reads stay synchronous.
 *
 * workerData: { host, port, connectMs, flag: SharedArrayBuffer, syncPort: MessagePort }.
 *
 *   request (parentPort)                             reply
 *   { op: 'send', packet, timeoutMs, sync, stop, then? }  { reply, console, then? } | { error }
 *     timeoutMs 0: no timeout (a resume: the stub answers when the guest stops)
 *     stop: the reply is a stop reply (?, a resume); otherwise a stop reply that comes is one the
 *     stub sent unasked (QEMU does when a client connects to a running guest) and is dropped
 *     sync: the reply goes to syncPort and flag[0] is set and notified; else to parentPort
 *     then: { packet, timeoutMs }, sent as soon as a stop reply (T, S) came, its reply returned
 *     as `then` (g after a step: one hand-over between the threads instead of two)
 *     repeat: send the packet (a step) up to this many times while each stop reply is a plain
 *     trap (T05 without watch/rwatch/awatch/replaylog), the last reply returned, with `repeated`
 *     (how many were sent); an interrupt byte meanwhile ends the repeats instead of going out
 *   { op: 'batch', packets, timeoutMs }              { replies, console } | { error } (on syncPort)
 *     every packet written at once, the replies collected in order (pipelining: only for stubs
 *     that read a packet while the previous reply is unacknowledged; see RspConnection.askMany)
 *   { op: 'raw', byte }                              none (0x03, the interrupt byte)
 *   { op: 'noack' }                                  none (QStartNoAckMode was accepted)
 *   { op: 'close' }                                  none
 *
 * The connection result is posted on syncPort as { connected: true } or { error }.
 */

import { connect } from 'node:net';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { encodePacket, PacketCodec, type CodecEvent } from '../gdbserver/packet-codec.js';

interface Init {
  host: string;
  port: number;
  connectMs: number;
  flag: SharedArrayBuffer;
  syncPort: MessagePort;
}

type Request =
  | { op: 'send'; packet: string; timeoutMs: number; sync: boolean; stop: boolean; then?: { packet: string; timeoutMs: number }; repeat?: number }
  | { op: 'batch'; packets: string[]; timeoutMs: number }
  | { op: 'raw'; byte: number } | { op: 'noack' } | { op: 'close' };

const { host, port, connectMs, flag, syncPort } = workerData as Init;
const flags = new Int32Array(flag);
/** 16 MiB of payload: far above any PacketSize a stub offers, so that a lying stub is bounded. */
const codec = new PacketCodec(1 << 24);
const events: CodecEvent[] = [];
let wake: (() => void) | undefined;
let closed: string | undefined;
let noAck = false;

function answerSync(msg: unknown): void {
  syncPort.postMessage(msg);
  Atomics.store(flags, 0, 1);
  Atomics.notify(flags, 0);
}

let connecting = true;
const socket = connect({ host, port });
socket.setNoDelay(true);
const connectFailed = (why: string): void => {
  if (!connecting) return;
  connecting = false;
  closed = why;
  answerSync({ error: why });
};
const connectTimer = setTimeout(() => {
  connectFailed(`no connection within ${connectMs / 1000} s`);
  socket.destroy();
}, connectMs);
socket.once('connect', () => {
  clearTimeout(connectTimer);
  connecting = false;
  answerSync({ connected: true });
});
socket.on('data', (d) => {
  events.push(...codec.feed(d));
  wake?.();
});
socket.on('error', (e: NodeJS.ErrnoException) => {
  clearTimeout(connectTimer);
  const why = e.code === 'ECONNREFUSED' ? 'connection refused (is the stub listening there?)' : e.message;
  if (connecting) connectFailed(why);
  closed ??= why;
  wake?.();
});
socket.on('close', () => {
  closed ??= 'the stub closed the connection';
  wake?.();
});

/** The next event, or a string saying why none came (timeout, connection gone). */
async function next(deadline: number): Promise<CodecEvent | string> {
  for (;;) {
    const e = events.shift();
    if (e) return e;
    if (closed !== undefined) return closed;
    const left = deadline === 0 ? 0 : deadline - Date.now();
    if (deadline !== 0 && left <= 0) return 'timeout';
    await new Promise<void>((res) => {
      const t = deadline === 0 ? undefined : setTimeout(res, left);
      wake = () => {
        if (t) clearTimeout(t);
        wake = undefined;
        res();
      };
    });
  }
}

const CONSOLE = /^O(?:[0-9a-fA-F]{2})+$/;

const STOP = /^[TS][0-9a-fA-F]{2}/;

async function send(packet: string, timeoutMs: number, stop: boolean): Promise<{ reply: string; console: string[] } | { error: string }> {
  const framed = encodePacket(packet);
  // Whatever came before this request answers none of it.
  events.length = 0;
  const ackDeadline = (): number => Date.now() + (timeoutMs || 10_000);
  const secs = (ms: number): string => `${ms / 1000} s`;
  let tries = 0;
  socket.write(framed);
  // The ack (in ack mode): a nak asks for the packet again.
  if (!noAck) {
    const deadline = ackDeadline();
    for (;;) {
      const e = await next(deadline);
      if (typeof e === 'string') return { error: e === 'timeout' ? `no acknowledgement within ${secs(timeoutMs || 10_000)}` : e };
      if (e.kind === 'ack') break;
      if (e.kind === 'nak') {
        if (++tries > 3) return { error: 'the stub refused the packet 4 times (nak)' };
        socket.write(framed);
        continue;
      }
      if (e.kind === 'packet') {
        // Some stubs skip the ack and answer at once: take it as the reply.
        events.unshift(e);
        break;
      }
    }
  }
  const console: string[] = [];
  let bad = 0;
  const deadline = timeoutMs === 0 ? 0 : Date.now() + timeoutMs;
  for (;;) {
    const e = await next(deadline);
    if (typeof e === 'string') return { error: e === 'timeout' ? `no reply within ${secs(timeoutMs)}` : e };
    if (e.kind === 'oversized') return { error: `a reply of ${e.length} bytes, more than dbg accepts` };
    if (e.kind !== 'packet') continue;
    if (!e.checksumOk) {
      if (noAck || ++bad > 3) return { error: 'a reply with a wrong checksum' };
      socket.write('-');
      continue;
    }
    if (!noAck) socket.write('+');
    const text = e.payload.toString('latin1');
    if (CONSOLE.test(text)) {
      console.push(Buffer.from(text.slice(1), 'hex').toString('utf8'));
      continue;
    }
    if (!stop && STOP.test(text)) continue;
    return { reply: text, console };
  }
}

/**
 * Pipelined packets: all written in one go, then one reply each, in order. Acks are counted, not
 * waited for; a nak or a wrong checksum fails the batch (a resend would reorder the pipeline).
 */
async function batch(packets: string[], timeoutMs: number): Promise<{ replies: string[]; console: string[] } | { error: string }> {
  events.length = 0;
  socket.write(Buffer.concat(packets.map((p) => encodePacket(p))));
  const replies: string[] = [];
  const console: string[] = [];
  let deadline = Date.now() + timeoutMs;
  while (replies.length < packets.length) {
    const e = await next(deadline);
    if (typeof e === 'string') return { error: e === 'timeout' ? `no reply within ${timeoutMs / 1000} s` : e };
    if (e.kind === 'nak') return { error: 'the stub refused a pipelined packet (nak)' };
    if (e.kind === 'oversized') return { error: `a reply of ${e.length} bytes, more than dbg accepts` };
    if (e.kind !== 'packet') continue;
    if (!e.checksumOk) return { error: 'a reply with a wrong checksum' };
    if (!noAck) socket.write('+');
    const text = e.payload.toString('latin1');
    if (CONSOLE.test(text)) {
      console.push(Buffer.from(text.slice(1), 'hex').toString('utf8'));
      continue;
    }
    if (STOP.test(text)) continue;
    replies.push(text);
    // Each reply restarts the clock: a long batch is many packets, each with its own timeout.
    deadline = Date.now() + timeoutMs;
  }
  return { replies, console };
}

const PLAIN_TRAP = /^T05/;
/** Set while a step is being repeated: an interrupt ends the repeats. */
let repeating: { stop: boolean } | undefined;

let queue = Promise.resolve();
parentPort!.on('message', (m: Request) => {
  switch (m.op) {
    case 'raw':
      // Between two repeated steps the stub is stopped, and an interrupt byte there is not
      // answered by every stub: the repeats end instead, each step being short.
      if (repeating) repeating.stop = true;
      else if (closed === undefined) socket.write(Buffer.from([m.byte]));
      return;
    case 'noack':
      noAck = true;
      return;
    case 'close':
      socket.end();
      socket.destroy();
      parentPort!.close();
      return;
    case 'batch':
      queue = queue.then(async () => answerSync(await batch(m.packets, m.timeoutMs)));
      return;
    case 'send':
      queue = queue.then(async () => {
        let r: Awaited<ReturnType<typeof send>> & { then?: string; repeated?: number } = await send(m.packet, m.timeoutMs, m.stop);
        if (m.repeat !== undefined && m.repeat > 1) {
          repeating = { stop: false };
          const console: string[] = [];
          let n = 1;
          while ('reply' in r && n < m.repeat && !repeating.stop && PLAIN_TRAP.test(r.reply) && !/(?:^|;)(?:r|a)?watch:|(?:^|;)replaylog:/.test(r.reply)) {
            console.push(...r.console);
            r = await send(m.packet, m.timeoutMs, m.stop);
            n++;
          }
          repeating = undefined;
          if ('reply' in r) r = { reply: r.reply, console: [...console, ...r.console], repeated: n };
        }
        if (m.then && 'reply' in r && /^[TS]/.test(r.reply)) {
          const t = await send(m.then.packet, m.then.timeoutMs, false);
          r = 'error' in t ? t : { ...r, console: [...r.console, ...t.console], then: t.reply };
        }
        if (m.sync) answerSync(r);
        else parentPort!.postMessage(r);
      });
  }
});
