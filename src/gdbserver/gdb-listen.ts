/**
 * What the `--gdb [HOST:]PORT` flag of `dbg open`, `dbg live` and `dbg replay` does: serve the
 * target to gdb beside the MDB session, or, with no terminal, headless until SIGTERM/SIGINT.
 *
 *   terminal on stdin:  the REPL runs beside the server; leaving the REPL (::quit, EOF) stops both.
 *   no terminal (stdin closed, /dev/null, a pipe) or -e:  the commands given run first, then dbg
 *                       keeps serving until it is stopped by SIGTERM or SIGINT (exit status 0).
 *   a background job (`dbg … --gdb 1234 &` from an interactive shell):  no REPL and no -e, so the
 *                       terminal is left alone (touching it would stop dbg with SIGTTOU); serves
 *                       until stopped, as without a terminal.
 *
 * `monitor CMD` in gdb runs CMD in an MDB session of its own on the same target (its own dot and
 * selected thread), so a REPL user and a gdb user do not move each other's cursor.
 */

import { errors } from '../common/errors.js';
import type { DcmdModule } from '../mdb/dcmd.js';
import { inBackground } from '../common/terminal.js';
import { builtinModules } from '../mdb/modules/index.js';
import { Session } from '../mdb/session.js';
import type { Target } from '../targets/target.js';
import { ALLOW_HOST_IO_FLAG, serveGdb, type GdbServerHandle } from './gdb-server.js';
import type { Rehearsal } from './rehearsal.js';
import type { ServerHandle } from './transport.js';
import { reportError } from '../mdb/cli-session.js';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `1234`, `:1234`, `0.0.0.0:1234`, `localhost:1234`, `[::1]:1234`. Host defaults to 127.0.0.1. */
export function parseListenAddress(text: string, flag = '--gdb'): ListenAddress {
  const bad = (why: string) => errors.badInput(`${flag} ${text}: ${why}; expected [HOST:]PORT, e.g. 1234 or 127.0.0.1:1234`);
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):)?(\d+)$/.exec(text.trim());
  if (!m) throw bad('not a port number');
  const port = Number(m[2]);
  if (port > 65535) throw bad(`port ${port} is above 65535`);
  let host = m[1] ?? '';
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { host: host === '' ? '127.0.0.1' : host, port };
}

export interface GdbListenOptions {
  /** The session as the command would run it without --gdb (REPL or -e); returns the exit status. */
  readonly session: () => Promise<number>;
  /** Commands were given with -e: there is no REPL, so serve until a signal once they ran. */
  readonly script?: boolean;
  readonly log?: (message: string) => void;
  /** Dcmd modules beyond the built-in ones for `monitor` (the command's own, as runSession gets). */
  readonly modules?: readonly DcmdModule[];
  /** --gdb-allow-remote: listen on a non-loopback address (with a warning). */
  readonly allowRemote?: boolean;
  /** What the GDB server rehearses on before it listens (rehearsal.ts). */
  readonly rehearsal?: Rehearsal;
  /** --gdb-allow-host-io: `monitor` may run dcmds that load code or read/write host files, vFile any path. */
  readonly allowHostIo?: boolean;
  /** --contract [HOST:]PORT: also serve the plain-text control contract (src/contract/). */
  readonly contract?: string;
  /** --contract-allow-remote. */
  readonly contractAllowRemote?: boolean;
  /** The MDB session the command runs (the REPL's): the contract's BP= breakpoints go into it. */
  readonly mdb?: Session;
}



/**
 * Serve `target` to gdb on `listen` and/or to control-contract clients on `opts.contract` while
 * the command's session runs; see the file comment.
 */
export async function serveWhileSession(target: Target, listen: string | undefined, opts: GdbListenOptions): Promise<number> {
  const servers: { what: string; handle: ServerHandle }[] = [];
  try {
    if (listen !== undefined) servers.push({ what: 'gdb', handle: await startServer(target, listen, opts) });
    if (opts.contract !== undefined) servers.push({ what: 'the control contract', handle: await startContract(target, opts.contract, opts) });
  } catch (e) {
    await Promise.all(servers.map((s) => s.handle.close()));
    reportError(e); // a bad address, a port in use, a refused bind: one line, status 1
    return 1;
  }
  return serveUntilDone(servers, opts);
}

async function startContract(target: Target, listen: string, opts: GdbListenOptions): Promise<ServerHandle> {
  const addr = parseListenAddress(listen, '--contract');
  // Loaded only when asked for, as the GDB server is for dbg open.
  const { serveContract } = await import('../contract/contract-server.js');
  const session = opts.mdb ?? new Session(target, [...builtinModules, ...(opts.modules ?? [])]);
  return serveContract(target, { ...addr, session, allowRemote: opts.contractAllowRemote });
}

async function startServer(target: Target, listen: string, opts: GdbListenOptions): Promise<GdbServerHandle> {
  const addr = parseListenAddress(listen);
  const monitor = new Session(target, [...builtinModules, ...(opts.modules ?? [])]);
  if (!opts.allowHostIo) monitor.hostRefusal = `start dbg with ${ALLOW_HOST_IO_FLAG} to allow it`;
  return serveGdb(target, monitor, { ...addr, log: opts.log, allowRemote: opts.allowRemote, allowHostIo: opts.allowHostIo, rehearsal: opts.rehearsal });
}

async function serveUntilDone(servers: { what: string; handle: ServerHandle }[], opts: GdbListenOptions): Promise<number> {
  // The terminal is stdin but belongs to the foreground job: a REPL here would be stopped by SIGTTOU.
  const background = opts.script !== true && process.stdin.isTTY === true && inBackground();
  const headless = opts.script === true || !process.stdin.isTTY || background;
  try {
    if (!headless) return await opts.session();
    // Headless: serve until a signal, whether or not the session's input ever ends (a guest console
    // may hold stdin open); the status is the session's if it finished, else 0.
    let code = 0;
    if (!background) {
      void opts.session().then(
        (c) => {
          code = c;
        },
        () => {
          code = 1;
        },
      );
    }
    const prefix = servers[0]?.what === 'gdb' ? 'dbg gdbserver' : 'dbg contract';
    const what = servers.map((s) => `${s.what} on ${s.handle.host}:${s.handle.port}`).join(' and ');
    (opts.log ?? ((m: string) => process.stderr.write(`${prefix}: ${m}\n`)))(
      `${background ? 'in the background (no REPL)' : 'no terminal'}: serving ${what} until stopped (SIGTERM or SIGINT)`,
    );
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGTERM', stop);
        process.off('SIGINT', stop);
        resolve();
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
    return code;
  } finally {
    await Promise.all(servers.map((s) => s.handle.close()));
  }
}
