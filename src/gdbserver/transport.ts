/**
 * The only file that touches node:net (as rp2040js keeps its GDB server transport-agnostic):
 * a TCP listener handing each connection to the server as a plain byte Channel.
 */

import { writeSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { DbgError } from '../common/errors.js';

/** A byte stream to one client. */
export interface Channel {
  /** "127.0.0.1:41234", for logs and refusal messages. */
  readonly peer: string;
  /** Empty `data`: a reply went out another way (directFd), nothing to send. */
  write(data: Buffer): void;
  /**
   * The socket's descriptor while a reply written straight to it goes out in order (nothing waits
   * in the stream), else -1: for a target that sends a stop reply itself (StopReplyAhead).
   */
  directFd(): number;
  onData(listener: (data: Buffer) => void): void;
  /** Called once when the client goes away or the channel is closed. */
  onClose(listener: () => void): void;
  /** Flush what was written, then close. */
  end(): void;
  /** Stop reading from the client (it has sent more than the server will hold), and go on. */
  pause(): void;
  resume(): void;
}

/**
 * Replies not yet taken by a client that does not read: above this, the channel stops reading its
 * requests until they drain, so a client cannot make dbg hold more than this plus its queue.
 */
const MAX_UNSENT = 8 << 20;

export interface Listener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The socket's file descriptor, or -1 where Node does not expose it. Node keeps it on the
 * connection's handle (`_handle.fd`, as net.Socket's own code reads it); not part of its typed API.
 */
function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/**
 * Writes `data` to a connected socket's descriptor at once (it is non-blocking); returns how many
 * bytes it took: all of a reply, short when its buffer is full, 0 on any error (the stream's own
 * write then meets it and reports it the usual way). One write(2), where socket.write() went
 * through the Writable stream, a write request object, a cork until the next tick and a callback
 * after it: code that also had to be compiled anew for each client's socket (see rehearsal.ts).
 */
function writeNow(fd: number, data: Buffer): number {
  if (fd < 0) return 0;
  try {
    return writeSync(fd, data);
  } catch {
    return 0;
  }
}

export async function listenTcp(host: string, port: number, onChannel: (ch: Channel) => void): Promise<Listener> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    const closers: (() => void)[] = [];
    let closed = false;
    let paused = false;
    let outputFull = false;
    const closeOnce = (): void => {
      if (closed) return;
      closed = true;
      sockets.delete(socket);
      for (const c of closers) c();
    };
    socket.on('close', closeOnce);
    // A reset or broken pipe is just a client that went away: 'close' follows.
    socket.on('error', () => undefined);
    const fd = socketFd(socket);
    onChannel({
      peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      // After a reply the event loop goes back to sleep in epoll, not polling for gdb's next
      // packet: it used to spin with setImmediate for 1 ms while a CPU looked spare, which halves an
      // echo's round trip against a C peer, but with gdb on 2 CPUs the spin takes the CPU gdb needs
      // whenever the scheduler puts both on one (gdb stepi 1.13 ms against 0.90 pinned so; in one
      // run of 9 each, unpinned: 0.697 ms against 0.597, QEMU's stub 0.670, 12-07 11:56 UTC,
      // load 1.4, the bench's own).
      write: (data) => {
        if (socket.destroyed || data.length === 0) return;
        // Straight to the socket while nothing waits in its stream (see writeNow); the stream
        // takes what the socket did not, and everything after it until it has drained.
        const sent = socket.writableLength === 0 ? writeNow(fd, data) : 0;
        if (sent === data.length) return;
        socket.write(sent === 0 ? data : data.subarray(sent));
        if (socket.writableLength > MAX_UNSENT && !outputFull) {
          outputFull = true;
          socket.pause();
          socket.once('drain', () => {
            outputFull = false;
            if (!paused) socket.resume();
          });
        }
      },
      directFd: () => (socket.destroyed || socket.writableLength > 0 ? -1 : fd),
      pause: () => {
        paused = true;
        socket.pause();
      },
      resume: () => {
        paused = false;
        if (!outputFull) socket.resume();
      },
      onData: (listener) => socket.on('data', listener),
      onClose: (listener) => closers.push(listener),
      end: () => {
        socket.end();
        // A client that never reads must not hold the server: drop it if end() does not finish.
        setTimeout(() => socket.destroy(), 2000).unref();
      },
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  return {
    host,
    port: actualPort,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A connection from this machine to a listener on `host` (the server's rehearsal dials its own),
 * with Nagle off. An unspecified host (0.0.0.0, ::) is reached on its loopback address.
 */
export function dialLoopback(port: number, host = '127.0.0.1'): Socket {
  const to = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const socket = connect(port, to);
  socket.setNoDelay(true);
  return socket;
}

/** 127.0.0.0/8, ::1, ::ffff:127.x.x.x and the name localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** A running dbg server (GDB, control contract), as the commands and tests hold it. */
export interface ServerHandle {
  readonly host: string;
  readonly port: number;
  /** Resolves when no client is attached and the guest is not running (for tests and headless mode). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export interface GuardedListen {
  readonly host: string;
  readonly port: number;
  /** The flag that asked for this server ('--gdb'), and the one that allows a non-loopback host. */
  readonly flag: string;
  readonly allowFlag: string;
  readonly allowRemote?: boolean;
  /** For messages: 'gdb', 'the control contract'. */
  readonly what: string;
  readonly log: (message: string) => void;
}

/**
 * The policy of every dbg server, then listenTcp: a non-loopback host is refused unless the user
 * allowed it (then a warning says who can control the target); a failed bind is one DbgError line.
 * `idle` is the server's own: settled when no client is attached; close() waits for it.
 */
export async function listenGuarded(o: GuardedListen, onChannel: (ch: Channel) => void, idle: () => Promise<void>): Promise<ServerHandle> {
  const listener = await listenChecked(o, onChannel);
  return {
    host: o.host,
    port: listener.port,
    idle,
    close: async () => {
      await listener.close();
      await idle();
    },
  };
}

async function listenChecked(o: GuardedListen, onChannel: (ch: Channel) => void): Promise<Listener> {
  if (!isLoopback(o.host)) {
    if (!o.allowRemote) {
      throw new DbgError(
        'denied',
        `${o.flag} ${o.host}:${o.port}: ${o.host} is not a loopback address, and anyone who can reach it could control the target with no password; add ${o.allowFlag} to listen there anyway`,
      );
    }
    o.log(`warning: listening on ${o.host}, not loopback: anyone who can reach this port controls the target (no authentication, no encryption)`);
  }
  try {
    return await listenTcp(o.host, o.port, onChannel);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new DbgError('io', `cannot listen for ${o.what} on ${o.host}:${o.port}: ${why}`);
  }
}
