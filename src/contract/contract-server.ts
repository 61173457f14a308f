/**
 * The control contract's server: the VMKernel plain-text commands (BP=sym; B=1; C=1; C=0; D=1;)
 * over TCP, beside the GDB server, on any target. The wire grammar is in grammar.ts.
 *
 *   Channel (gdbserver/transport.ts) -> CommandParser -> ContractConnection -> session, target
 *
 * Policy held here, once:
 *   - loopback unless the user allowed another address (--contract-allow-remote, with a warning);
 *   - one controller at a time across RSP and the contract (ControllerSlot): a second client gets
 *     `ERR=another debugger (…) is attached …;` and is closed; the next may connect as soon as the
 *     previous one detached or closed;
 *   - BP= sets breakpoints in the MDB session it was given (the REPL's, when there is one), so
 *     ::events lists them and a stop names them by the session's ids; C=1 runs as :c does;
 *   - a client that detaches (D=1) or goes away leaves the target stopped with its breakpoints
 *     deleted, as a gdb client does;
 *   - nothing a client sends stops the server or grows its memory: commands are handled as they
 *     arrive (only an over-long one is held, up to MAX_COMMAND, then dropped), replies wait in the
 *     transport, which stops reading from a client that does not read them.
 */

import { DbgError, describeError } from '../common/errors.js';
import { hex } from '../common/format.js';
import { addSessionBreakpoint, continueSession, deleteSessionEvent } from '../mdb/modules/emulator.js';
import type { SessionView } from '../mdb/dcmd.js';
import { findByName, indexNames } from '../symbols/cxx-names.js';
import { loadDemangler } from '../symbols/demangle.js';
import { symbolOffsetText } from '../symbols/symbol-text.js';
import { ControllerSlot, type Controller } from '../targets/controller-slot.js';
import { need, type StopStatus, type Target } from '../targets/target.js';
import { listenGuarded, type Channel, type ServerHandle } from '../gdbserver/transport.js';
import { CommandParser, CONTRACT_VERSION, escapeValue, MAX_COMMAND, type Command } from './grammar.js';

export interface ServeContractOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The MDB session whose breakpoints BP= adds to (::events lists them). */
  readonly session: SessionView;
  readonly log?: (message: string) => void;
  /** Listen on a non-loopback address (the user gave --contract-allow-remote). */
  readonly allowRemote?: boolean;
}

export const CONTRACT_ALLOW_REMOTE_FLAG = '--contract-allow-remote';

export type ContractServerHandle = ServerHandle;

/** Breakpoints one client may hold: BP= past this is refused (the same symbol again reuses its own). */
export const MAX_POINTS = 10_000;

export async function serveContract(target: Target, options: ServeContractOptions): Promise<ContractServerHandle> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((m: string) => process.stderr.write(`dbg contract: ${m}\n`));
  await loadDemangler();
  // BP= names C++ functions as written: their index is made before the first client, not on its
  // first BP= (a fresh guest's index is most of what that command costs).
  indexNames(target.symbols);
  const slot = ControllerSlot.of(target);
  let previous: Promise<void> = Promise.resolve();

  const start = (ch: Channel, me: Controller, held: Buffer[]): void => {
    log(`client connected from ${ch.peer}`);
    const conn = new ContractConnection(ch, target, options.session, log);
    const done = conn.serve(held);
    previous = previous.then(() => done).then(() => {
      slot.leave(me);
      log(`client from ${ch.peer} left; ${target.name} stays stopped`);
    });
  };

  const onChannel = (ch: Channel): void => {
    const me: Controller = { protocol: 'contract', peer: ch.peer };
    if (slot.claim(me)) return start(ch, me, []);
    // Another controller holds the target, or is on its way out: hold this one's bytes (bounded)
    // for a moment, then serve or refuse it.
    const held: Buffer[] = [];
    let bytes = 0;
    let gone = false;
    ch.onData((d) => {
      held.push(d);
      if ((bytes += d.length) > 2 * MAX_COMMAND) ch.pause();
    });
    ch.onClose(() => (gone = true));
    void slot.grace().then(() => {
      if (gone) return;
      if (slot.claim(me)) return start(ch, me, held);
      const why = slot.refusal('contract', 'control contract server');
      log(`refused ${ch.peer}: ${why}`);
      ch.write(Buffer.from(`ERR=${escapeValue(why)};\n`));
      ch.end();
    });
  };

  const listener = await listenGuarded(
    { host, port: options.port, flag: '--contract', allowFlag: CONTRACT_ALLOW_REMOTE_FLAG, allowRemote: options.allowRemote, what: 'the control contract', log },
    onChannel,
    () => previous,
  );
  log(`listening on ${host}:${listener.port} (commands BP=sym; B=1; C=1; C=0; D=1; V=?;)`);
  return listener;
}

/** The STOP= reply for `st`. */
export function stopReply(t: Target, st: StopStatus): string {
  const cpu = t.threads().find((th) => th.index === st.thread)?.tid ?? st.thread - 1;
  const r = st.reason;
  const id = r.kind === 'breakpoint' || r.kind === 'watchpoint' ? `,BP=${r.id}` : '';
  return `STOP=${r.kind},PC=${hex(st.pc)},CPU=${cpu}${id},SYM=${escapeValue(symbolAt(t, st.pc))};`;
}

/** `ns::Foo::bar(int)+0x12`, or `?` where no symbol holds pc. */
function symbolAt(t: Target, pc: bigint): string {
  const r = t.symbols.resolve(pc);
  if (!r || !r.inside) return '?';
  return symbolOffsetText(r.sym.name, r.offset);
}

const TRUE = new Set(['1', 'true']);
const FALSE = new Set(['0', 'false']);

/** One client, from its first byte until it detaches or goes away. */
class ContractConnection {
  private readonly parser = new CommandParser();
  /** Session event ids of the breakpoints this client set, by address. */
  private readonly points = new Map<bigint, number>();
  /** The run a C=1 started, until its stop is reported. */
  private run: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly ch: Channel,
    private readonly target: Target,
    private readonly session: SessionView,
    private readonly log: (m: string) => void,
  ) {}

  /** Serve until the client leaves; resolves once the target is stopped and its points deleted. */
  serve(held: Buffer[]): Promise<void> {
    return new Promise<void>((resolve) => {
      let finishing: Promise<void> | undefined;
      const finish = (): Promise<void> => (finishing ??= this.cleanup().then(resolve));
      this.detach = async () => {
        await finish();
        this.send('OK;');
        this.ch.end();
      };
      this.ch.onClose(() => {
        this.closed = true;
        void finish();
      });
      const onData = (d: Buffer): void => {
        for (const c of this.parser.feed(d)) {
          if (this.closed || finishing) return; // after D=1 nothing is answered
          this.handle(c);
        }
      };
      this.ch.onData(onData);
      for (const d of held) onData(d);
      this.ch.resume();
    });
  }

  private detach: () => Promise<void> = async () => undefined;

  private send(reply: string): void {
    if (!this.closed) this.ch.write(Buffer.from(reply + '\n', 'latin1'));
  }

  private error(why: string): void {
    this.send(`ERR=${escapeValue(why)};`);
  }

  private handle(c: Command): void {
    if (c.kind === 'bad') return this.error(c.why);
    const flag = c.value.toLowerCase(); // C=TRUE; as C=true;
    try {
      switch (c.key) {
        case 'V':
          if (c.value !== '?') return this.error(`V=${c.value}: the only version query is V=?;`);
          return this.send(`V=${CONTRACT_VERSION};`);
        case 'BP':
          return this.breakAt(c.value);
        case 'B':
          if (!TRUE.has(flag)) return this.error(`B=${c.value}: expected B=1; (break into the debugger)`);
          return this.brk();
        case 'C':
          if (TRUE.has(flag)) return this.cont();
          if (FALSE.has(flag)) return this.stop();
          return this.error(`C=${c.value}: expected 1 or true (continue), 0 or false (stop)`);
        case 'D':
          if (!TRUE.has(flag)) return this.error(`D=${c.value}: expected D=1; (detach)`);
          void this.detach();
          return;
        default:
          return this.error(`unknown command "${c.text.slice(0, 80)}": the commands are BP=SYMBOL; B=1; C=1; C=0; D=1; V=?;`);
      }
    } catch (e) {
      if (!(e instanceof DbgError)) this.log(`internal error on "${c.text.slice(0, 60)}": ${describeError(e)}`);
      this.error(e instanceof DbgError ? e.message : `internal error (a bug in dbg): ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private breakAt(name: string): void {
    if (name === '') return this.error('BP= needs a symbol: BP=kmain; or BP=ns::Foo::bar(int);');
    const t = this.target;
    need(t, 'breakpoints');
    const found = findByName(t.symbols, name);
    if (found.length === 0) {
      const mods = t.symbols.modules.map((m) => m.name).join(', ') || 'no symbol table';
      return this.error(`no symbol "${name}" in ${mods} (a C name as written, a C++ name unmangled: ns::Foo::bar, or ns::Foo::bar(int) for one overload)`);
    }
    const fresh = found.filter((f) => !this.points.has(f.sym.addr)).length;
    if (this.points.size + fresh > MAX_POINTS) return this.error(`BP=${name}: this client has ${this.points.size} breakpoints, and ${MAX_POINTS} is the most one may set`);
    const lines: string[] = [];
    for (const f of found) {
      let id = this.points.get(f.sym.addr);
      if (id === undefined) {
        id = addSessionBreakpoint(this.session, f.sym.addr, f.sym.name);
        this.points.set(f.sym.addr, id);
      }
      lines.push(`BP=${id},PC=${hex(f.sym.addr)},SYM=${escapeValue(f.name)};`);
    }
    this.send([...lines, 'OK;'].join('\n'));
  }

  /** The target's execution control, or a DbgError saying that it cannot run (a dump). */
  private exec(): NonNullable<Target['caps']['execution']> {
    const x = this.target.caps.execution;
    if (!x) throw new DbgError('unsupported', `${this.target.name} cannot run: execution control is not supported by this target`);
    return x;
  }

  private get running(): boolean {
    return this.run !== undefined || this.target.caps.execution?.running === true;
  }

  private cont(): void {
    this.exec();
    if (this.running) return this.error('the target is already running (C=0; or B=1; stops it)');
    this.send('OK;');
    // The guest's first slice runs synchronously: let the OK go out before it, not after. The
    // channel sends what was written in a nextTick (it corks the socket until then); this one,
    // queued after it, runs next, without waiting for a turn of the event loop.
    this.run = new Promise<void>((r) => process.nextTick(r))
      .then(() => continueSession(this.session))
      .then(
        (st) => {
          this.session.thread = st.thread;
          this.session.dot = st.pc;
          this.send(stopReply(this.target, st));
        },
        (e: unknown) => {
          this.log(`the run failed: ${describeError(e)}`);
          this.send(stopReply(this.target, { ...this.target.status(), reason: { kind: 'fault', fault: describeError(e), pc: this.target.status().pc } }));
        },
      )
      .finally(() => (this.run = undefined));
  }

  /** B=1: stop a run (its STOP= follows), or say at once where the stopped target is. */
  private brk(): void {
    const x = this.exec();
    this.send('OK;');
    if (this.running) x.interrupt();
    else this.send(stopReply(this.target, this.target.status()));
  }

  private stop(): void {
    const x = this.exec();
    if (this.running) x.interrupt();
    this.send('OK;');
  }

  /** Stop a run this client started, delete its breakpoints. */
  private async cleanup(): Promise<void> {
    if (this.run) {
      this.target.caps.execution?.interrupt();
      await this.run;
    }
    for (const id of this.points.values()) {
      try {
        deleteSessionEvent(this.session, id);
      } catch (e) {
        this.log(`could not delete breakpoint ${id}: ${describeError(e)}`);
      }
    }
    this.points.clear();
  }
}
