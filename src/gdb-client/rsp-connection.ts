/**
 * A connection to a GDB stub (QEMU's -s, gdbserver, bhyve -G, dbg's own --gdb): packets out,
 * replies in. Target reads are synchronous in dbg (target.ts), so the socket lives on a worker
 * thread (rsp-worker.ts) and `ask` blocks on a shared flag until the worker has the reply or the
 * packet's timeout passed; `askMany` pipelines reads for stubs that take that; `run` (a resume)
 * blocks briefly (a step) and then waits asynchronously, as long as the guest runs, and
 * `interrupt` sends the 0x03 byte meanwhile.
 *
 * Every failure is one DbgError line naming the stub and the packet:
 *   gdb stub 127.0.0.1:1234: no reply within 5 s (packet m1000,40)
 */

import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { checkoutRoot } from '../common/checkout-root.js';
import { DbgError } from '../common/errors.js';

/** The compiled worker, dist/src/gdb-client/rsp-worker.js (a worker thread cannot load TypeScript). */
function workerFile(): string {
  return join(checkoutRoot(), 'dist', 'src', 'gdb-client', 'rsp-worker.js');
}

/** Milliseconds a resume's stop reply is waited for blocking, before the wait yields to the event loop. */
const STOP_SPIN_MS = 20;

/** Atomics.waitAsync (Node 16+, ES2024; the project's lib is ES2022). */
interface AtomicsWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

type Answer = { reply: string; console: string[]; then?: string; repeated?: number } | { replies: string[]; console: string[] } | { error: string } | { connected: true };

/** How a packet shows in messages: its first 40 characters. */
export function packetName(packet: string): string {
  const p = packet === '\x03' ? '0x03' : packet.replace(/[^\x20-\x7e]/g, '.');
  return p.length > 40 ? `${p.slice(0, 40)}...` : p;
}

export class RspConnection {
  private readonly flags: Int32Array;
  private broken: string | undefined;
  private closed = false;
  /** Console text the stub sent (O packets), for whoever prints it. */
  onConsole: (text: string) => void = () => undefined;

  private constructor(
    /** 'HOST:PORT', for messages. */
    readonly where: string,
    private readonly worker: Worker,
    private readonly syncPort: MessagePort,
    flag: SharedArrayBuffer,
    /** Milliseconds a stub has to answer a packet. */
    readonly timeoutMs: number,
  ) {
    this.flags = new Int32Array(flag);
  }

  static open(host: string, port: number, timeoutMs: number): RspConnection {
    const flag = new SharedArrayBuffer(8);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(workerFile(), { workerData: { host, port, connectMs: timeoutMs, flag, syncPort: port2 }, transferList: [port2] });
    worker.unref();
    const c = new RspConnection(`${host.includes(':') ? `[${host}]` : host}:${port}`, worker, port1, flag, timeoutMs);
    const a = c.waitSync(timeoutMs + 5000, 'connect');
    if ('error' in a) {
      c.close();
      throw c.fail(a.error, 'connect');
    }
    return c;
  }

  /** The error for `why` on `packet`. */
  fail(why: string, packet?: string, code: DbgError['code'] = 'io'): DbgError {
    return new DbgError(code, `gdb stub ${this.where}: ${why}${packet !== undefined ? ` (packet ${packetName(packet)})` : ''}`);
  }

  /** Send `packet` and block until its reply (or throw: timeout, bad checksum, connection gone). */
  ask(packet: string, timeoutMs = this.timeoutMs): string {
    this.usable(packet);
    Atomics.store(this.flags, 0, 0);
    this.worker.postMessage({ op: 'send', packet, timeoutMs, sync: true, stop: packet === '?' });
    return this.settle(this.waitSync(timeoutMs * 2 + 10_000, packet), 'reply', packet).reply;
  }

  /**
   * Send all `packets` at once and block until every reply is in: one round trip instead of one
   * each. Only for a stub that reads the next packet before its last reply is acknowledged (one in
   * no-ack mode, QEMU's system-mode stub); gdbserver in ack mode drops what comes before the ack.
   * Stop replies are not expected (no resumes here).
   */
  askMany(packets: readonly string[], timeoutMs = this.timeoutMs): string[] {
    if (packets.length === 0) return [];
    const name = `${packets[0]!}${packets.length > 1 ? ` and ${packets.length - 1} more` : ''}`;
    this.usable(name);
    Atomics.store(this.flags, 0, 0);
    this.worker.postMessage({ op: 'batch', packets, timeoutMs });
    return this.settle(this.waitSync(timeoutMs * packets.length + 10_000, name), 'replies', name).replies;
  }

  /**
   * Send `packet` (a resume) and wait, without a timeout, for the stop reply. A step stops within
   * a millisecond or so: that wait blocks, as `ask` does (a promise settled through the event loop
   * costs more than the step); past STOP_SPIN_MS it goes on without blocking, so that Ctrl-C is seen.
   * `then`: a packet to send as soon as the stop reply came (g); its reply is `then` in the result
   * (absent when the guest exited). `repeat`: send `packet` (a step) up to that many times, while
   * each stop is a plain trap, without coming back to this thread in between; `repeated` says how
   * many went out (an interrupt ends the repeats).
   */
  async run(packet: string, then?: string, repeat = 1): Promise<{ reply: string; then?: string; repeated: number }> {
    this.usable(packet);
    Atomics.store(this.flags, 0, 0);
    this.worker.postMessage({ op: 'send', packet, timeoutMs: 0, sync: true, stop: true, then: then === undefined ? undefined : { packet: then, timeoutMs: this.timeoutMs }, repeat });
    if (Atomics.wait(this.flags, 0, 0, STOP_SPIN_MS) === 'timed-out') {
      // While the guest runs, the worker must keep the process alive (it is unref'd otherwise).
      this.worker.ref();
      try {
        const w = (Atomics as unknown as AtomicsWaitAsync).waitAsync(this.flags, 0, 0);
        if (w.async) await w.value;
      } finally {
        this.worker.unref();
      }
    }
    const a = this.settle(this.receive(packet), 'reply', packet);
    return { reply: a.reply, then: a.then, repeated: a.repeated ?? 1 };
  }

  /** The worker's answer of the kind `key` names, its console text passed on; an error or another kind throws. */
  private settle<K extends 'reply' | 'replies'>(a: Answer, key: K, packet: string): Extract<Answer, Record<K, unknown>> {
    if ('error' in a) {
      this.broken = a.error;
      throw this.fail(a.error, packet);
    }
    if (!(key in a)) throw this.fail('an answer out of order', packet);
    const ok = a as Extract<Answer, Record<K, unknown>>;
    for (const t of (a as { console: string[] }).console) this.onConsole(t);
    return ok;
  }

  /** The 0x03 byte: the stub stops the running guest and answers the pending resume. */
  interrupt(): void {
    if (!this.closed && this.broken === undefined) this.worker.postMessage({ op: 'raw', byte: 3 });
  }

  /** The stub accepted QStartNoAckMode. */
  noAck(): void {
    this.worker.postMessage({ op: 'noack' });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.worker.postMessage({ op: 'close' });
    this.syncPort.close();
    void this.worker.terminate();
  }

  private usable(packet: string): void {
    if (this.closed) throw this.fail('the connection is closed', packet, 'state');
    if (this.broken !== undefined) throw this.fail(`the connection failed earlier (${this.broken}); attach again`, packet);
  }

  private waitSync(ms: number, packet: string): Answer {
    if (Atomics.wait(this.flags, 0, 0, ms) === 'timed-out') {
      this.broken = 'no answer';
      throw this.fail(`no reply within ${ms / 1000} s`, packet);
    }
    return this.receive(packet);
  }

  /** The answer the worker flagged. */
  private receive(packet: string): Answer {
    // The flag can be seen before the message the worker posted first is on this side of the port
    // (seen under load, about once in 10^4 answers): wait for it a little.
    for (let ms = 0; ms < 1000; ms++) {
      const m = receiveMessageOnPort(this.syncPort);
      if (m) return m.message as Answer;
      Atomics.wait(this.flags, 1, 0, 1);
    }
    throw this.fail('an answer was lost', packet);
  }
}
