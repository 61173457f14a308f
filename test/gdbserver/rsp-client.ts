/** A raw RSP client for tests: sends packets (or any bytes) and collects what the server answers. */

import { connect, type Socket } from 'node:net';
import { encodePacket, PacketCodec, type CodecEvent } from '../../src/gdbserver/packet-codec.js';

export class RspClient {
  private readonly codec = new PacketCodec(1 << 22);
  private readonly events: CodecEvent[] = [];
  private waiters: (() => void)[] = [];
  closed = false;
  noAck = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => {
      this.events.push(...this.codec.feed(d));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RspClient> {
    const s = connect(port, '127.0.0.1');
    s.setNoDelay(true);
    await new Promise<void>((res, rej) => {
      s.once('connect', () => res());
      s.once('error', rej);
    });
    return new RspClient(s);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  raw(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Next event from the server (ack, nak or packet), or 'closed'. */
  async next(timeoutMs = 5000): Promise<CodecEvent | 'closed'> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.shift();
      if (e) return e;
      if (this.closed) return 'closed';
      if (Date.now() > deadline) throw new Error('timeout waiting for the server');
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  /** The next packet's text, skipping acks; console (O) packets are collected into `console`. */
  async reply(timeoutMs = 5000, console: string[] = []): Promise<string> {
    for (;;) {
      const e = await this.next(timeoutMs);
      if (e === 'closed') return '<closed>';
      if (e.kind !== 'packet') continue;
      const text = e.payload.toString('latin1');
      if (!this.noAck) this.raw('+');
      if (text.startsWith('O') && text.length > 1 && /^O[0-9a-f]+$/.test(text)) {
        console.push(Buffer.from(text.slice(1), 'hex').toString('utf8'));
        continue;
      }
      return text;
    }
  }

  send(payload: string | Buffer): void {
    this.raw(encodePacket(payload));
  }

  async ask(payload: string | Buffer, console: string[] = []): Promise<string> {
    this.send(payload);
    return this.reply(5000, console);
  }

  close(): void {
    this.socket.destroy();
  }
}
