/**
 * A client of the control contract, with the seed's VMKernelContract operations: break at,
 * break, continue, stop, detach (and the version query). Used by `dbg contract` and the tests.
 *
 * Replies come in command order (each command's BP= lines, then its OK or ERR); STOP= replies
 * come whenever the guest stops and are queued for waitStop(). An ERR rejects the operation with
 * a DbgError carrying the server's reason. Every wait has a timeout: a server that stops
 * answering is an error, never a hang.
 */

import { connect, type Socket } from 'node:net';
import { DbgError } from '../common/errors.js';
import { parseReply, type Reply } from './grammar.js';

export interface Breakpoint {
  readonly id: number;
  readonly pc: bigint;
  readonly symbol: string;
}

export interface Stop {
  /** A StopReason kind: breakpoint, interrupted, halted, fault, history-end… */
  readonly reason: string;
  readonly pc: bigint;
  readonly cpu: number;
  /** The session's breakpoint id, for a breakpoint stop. */
  readonly breakpoint?: number;
  readonly symbol: string;
  /** The reply as received. */
  readonly text: string;
}

interface Waiter {
  readonly records: Reply[];
  resolve(r: { records: Reply[]; last: Reply }): void;
  reject(e: Error): void;
}

/** Bytes of a reply not yet ended before the client gives up on the server. */
const MAX_REPLY = 1 << 20;

export class ContractClient {
  private buf = '';
  private readonly waiters: Waiter[] = [];
  private readonly stops: Stop[] = [];
  private stopWaiter: { resolve(s: Stop): void; reject(e: Error): void } | undefined;
  private failure: Error | undefined;
  /** Every reply line received, in order (for `dbg contract`'s transcript). */
  readonly onReply: ((text: string) => void)[] = [];

  private constructor(
    private readonly socket: Socket,
    readonly address: string,
    private readonly timeoutMs: number,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d) => this.data(d.toString('latin1')));
    socket.on('error', (e) => this.fail(new DbgError('io', `dbg contract ${address}: ${e.message}`)));
    socket.on('close', () => this.fail(new DbgError('io', `dbg contract ${address}: the server closed the connection`)));
  }

  static open(host: string, port: number, opts: { timeoutMs?: number } = {}): Promise<ContractClient> {
    const address = `${host}:${port}`;
    return new Promise((resolve, reject) => {
      const s = connect({ host, port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new DbgError('io', `cannot connect to the dbg contract at ${address}: no answer in ${opts.timeoutMs ?? 10_000} ms`));
      }, opts.timeoutMs ?? 10_000);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(new ContractClient(s, address, opts.timeoutMs ?? 10_000));
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why = e.code === 'ECONNREFUSED' ? 'connection refused (is dbg running with --contract?)' : e.message;
        reject(new DbgError('io', `cannot connect to the dbg contract at ${address}: ${why}`));
      });
    });
  }

  private data(text: string): void {
    this.buf += text;
    for (;;) {
      const semi = this.buf.indexOf(';');
      if (semi < 0) break;
      const line = this.buf.slice(0, semi).trim();
      this.buf = this.buf.slice(semi + 1);
      if (line !== '') this.reply(parseReply(line));
    }
    if (this.buf.length > MAX_REPLY) this.fail(new DbgError('corrupt', `dbg contract ${this.address}: a reply longer than ${MAX_REPLY} bytes`));
  }

  private reply(r: Reply): void {
    for (const l of this.onReply) l(r.text + ';');
    if (r.key === 'STOP') {
      const stop: Stop = {
        reason: r.value,
        pc: BigInt(r.fields.get('PC') ?? '0'),
        cpu: Number(r.fields.get('CPU') ?? 0),
        ...(r.fields.has('BP') ? { breakpoint: Number(r.fields.get('BP')) } : {}),
        symbol: r.fields.get('SYM') ?? '?',
        text: r.text,
      };
      if (this.stopWaiter) {
        const w = this.stopWaiter;
        this.stopWaiter = undefined;
        w.resolve(stop);
      } else this.stops.push(stop);
      return;
    }
    const w = this.waiters[0];
    if (!w) {
      // An answer to no command: the server refusing this client before its first one.
      if (r.key === 'ERR') this.fail(new DbgError('denied', r.value));
      return;
    }
    if (r.key === 'BP') {
      w.records.push(r);
      return;
    }
    this.waiters.shift();
    if (r.key === 'ERR') w.reject(new DbgError('bad-input', r.value));
    else w.resolve({ records: w.records, last: r });
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const w of this.waiters.splice(0)) w.reject(e);
    this.stopWaiter?.reject(e);
    this.stopWaiter = undefined;
  }

  private withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DbgError('io', `dbg contract ${this.address}: no answer to ${what} in ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  /** Send one command (text with its ";") and wait for its OK (or V=) and the records before it. */
  command(text: string): Promise<{ records: Reply[]; last: Reply }> {
    if (this.failure) return Promise.reject(this.failure);
    const p = new Promise<{ records: Reply[]; last: Reply }>((resolve, reject) => this.waiters.push({ records: [], resolve, reject }));
    this.socket.write(text);
    return this.withTimeout(p, text.trim());
  }

  /** Send bytes as they are, waiting for nothing (for hostile-input tests and raw scripts). */
  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  async version(): Promise<string> {
    return (await this.command('V=?;')).last.value;
  }

  /** BP=name; — the breakpoints set (an overload set gives several). */
  async breakAt(symbol: string): Promise<Breakpoint[]> {
    const { records } = await this.command(`BP=${symbol};`);
    return records.map((r) => ({ id: Number(r.value), pc: BigInt(r.fields.get('PC') ?? '0'), symbol: r.fields.get('SYM') ?? '' }));
  }

  /** B=1; — break into the debugger: resolves with the stop (at once when already stopped). */
  async break(): Promise<Stop> {
    await this.command('B=1;');
    return this.waitStop();
  }

  /** C=1; — the guest runs; waitStop() gives its stop. */
  async continue(): Promise<void> {
    await this.command('C=1;');
  }

  /** C=0; — stop a run (its stop then comes to waitStop()). */
  async stop(): Promise<void> {
    await this.command('C=0;');
  }

  /** D=1; — detach: the server deletes this client's breakpoints and closes. */
  async detach(): Promise<void> {
    await this.command('D=1;');
    this.socket.end();
  }

  /** The next STOP= reply (queued ones first); Infinity: wait as long as the guest runs. */
  waitStop(timeoutMs = this.timeoutMs): Promise<Stop> {
    const queued = this.stops.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    const p = new Promise<Stop>((resolve, reject) => (this.stopWaiter = { resolve, reject }));
    if (timeoutMs === Infinity) return p;
    let timer: NodeJS.Timeout;
    const t = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DbgError('io', `dbg contract ${this.address}: no STOP= in ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([p, t]).finally(() => clearTimeout(timer));
  }

  close(): void {
    this.socket.destroy();
  }
}
