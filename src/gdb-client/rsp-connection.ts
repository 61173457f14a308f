/**
 * A connection to a GDB stub (QEMU's -s, gdbserver, bhyve -G, dbg's own --gdb): packets out,
 * replies in. Target reads are synchronous in dbg (target.ts), so the socket lives on a worker
 * thread (rsp-worker.ts) and `ask` blocks on a shared flag until the worker has the reply or the
 * packet's timeout passed; `run` (a resume) waits asynchronously, as long as the guest runs, and
 * `interrupt` sends the 0x03 byte meanwhile.
 *
 * Every failure is one DbgError line naming the stub and the packet:
 *   gdb stub 127.0.0.1:1234: no reply within 5 s (packet m1000,40)
 */

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { DbgError } from '../common/errors.js';

/** The compiled worker, dist/src/gdb-client/rsp-worker.js (a worker thread cannot load TypeScript). */
function workerFile(): string {
  let dir = typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return join(dir, 'dist', 'src', 'gdb-client', 'rsp-worker.js');
}

type Answer = { reply: string; console: string[] } | { error: string } | { connected: true };

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
    const flag = new SharedArrayBuffer(4);
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
    const a = this.waitSync(timeoutMs * 2 + 10_000, packet);
    if ('error' in a) {
      this.broken = a.error;
      throw this.fail(a.error, packet);
    }
    if (!('reply' in a)) throw this.fail('an answer out of order', packet);
    for (const t of a.console) this.onConsole(t);
    return a.reply;
  }

  /** Send `packet` (a resume) and wait, without a timeout, for the stop reply. */
  run(packet: string): Promise<string> {
    this.usable(packet);
    return new Promise((resolve, reject) => {
      const onMessage = (a: Answer): void => {
        this.worker.off('message', onMessage);
        if ('error' in a) {
          this.broken = a.error;
          return reject(this.fail(a.error, packet));
        }
        if (!('reply' in a)) return reject(this.fail('an answer out of order', packet));
        for (const t of a.console) this.onConsole(t);
        resolve(a.reply);
      };
      this.worker.on('message', onMessage);
      // While the guest runs, the worker must keep the process alive (it is unref'd otherwise).
      this.worker.ref();
      this.worker.postMessage({ op: 'send', packet, timeoutMs: 0, sync: false, stop: true });
    }).finally(() => this.worker.unref()) as Promise<string>;
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
    const m = receiveMessageOnPort(this.syncPort);
    if (!m) throw this.fail('an answer was lost', packet);
    return m.message as Answer;
  }
}
