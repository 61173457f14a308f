/**
 * An MDB session over one target: the selected thread, dot, the dcmds and walkers of the loaded
 * modules, and the interpreter that runs parsed command lines.
 *
 * Every failure inside a command is a DbgError thrown out of execute(); the caller (the REPL,
 * `-e`, a GDB `monitor` command) reports it. Output goes through an Output so the same session
 * serves the terminal, --json, pipes and the GDB server.
 */

import { spawnSync } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { resolve as resolvePath } from 'node:path';
import { DbgError, errors } from '../common/errors.js';
import { need, type Target } from '../targets/target.js';
import type { Dcmd, DcmdModule, HostEffect, Invocation, Output, SessionView, Walker } from './dcmd.js';
import type { Arch } from '../arch/arch.js';
import { Disassembler } from './disasm.js';
import { FILE_LINE, lineAddresses } from '../types/frame-source.js';
import { evaluate, type ExprContext } from './expr.js';
import { firstReadSize, label, matchSizes, matchValue, needsDisassembler, parseFormat, printItems, readUpTo, readValue, writeSizes, type FormatContext } from './formats.js';
import { Iob } from './iob.js';
import { symbolName } from './names.js';
import { parseStatements, type Command, type SourceExpr } from './parser.js';

export interface Registered<T> {
  readonly item: T;
  readonly module: string;
}

/** An Output that keeps lines (for pipes and tests). */
export class CaptureOutput implements Output {
  readonly lines: string[] = [];
  readonly values: unknown[] = [];
  /** What value() put into the pipe; undefined while no dcmd has called it. */
  piped?: bigint[];
  /** Where warnings go: a pipe stage's go to the terminal's output (stderr), never into the pipe. */
  warn?: (text: string) => void;
  constructor(
    readonly jsonMode = false,
    readonly piping = false,
  ) {}
  value(v: bigint): void {
    (this.piped ??= []).push(v);
  }
  line(text: string): void {
    this.lines.push(text);
  }
  json(value: unknown): void {
    this.values.push(value);
  }
}

const hostEffectText: Record<HostEffect, string> = {
  'loads-code': 'runs code from a file',
  'reads-files': 'reads a file',
  'writes-files': 'writes a file',
};

export class Session implements SessionView {
  thread: number;
  dot = 0n;
  /** MDB's increment: the size of the last thing a format printed. */
  incr = 0n;
  /** The default radix of numbers without a prefix, and of ::map's output ($d sets it). */
  radix = 16;
  /** The last value a format printed (MDB's variable 0, read as `<0`). */
  lastValue = 0n;
  /** The address the last command was given (MDB's `&`). */
  lastAddr?: bigint;
  /** Where $< and $<< look for macro files. */
  macroPath: string[] = (process.env.DBG_MACRO_PATH ?? '.').split(':').filter((d) => d !== '');
  /** How deep $< macros are nested now. */
  macroDepth = 0;
  /** The file $> copies output into. */
  private logFile?: string;
  /** How deep execute() is nested (::eval, macros): only the outermost call copies to the log. */
  private depth = 0;
  readonly state = new Map<string, unknown>();
  readonly variables = new Map<string, bigint>();
  /** Set by ::quit; the REPL stops reading when it sees it. */
  quitRequested = false;
  /**
   * Set on a session that runs commands for a remote client (gdb's `monitor`): dcmds that declare
   * a host effect (Dcmd.host) are refused, and this says how the user may allow them.
   */
  hostRefusal?: string;
  private readonly dcmdTable = new Map<string, Registered<Dcmd>>();
  private readonly walkerTable = new Map<string, Registered<Walker>>();
  private readonly moduleList: DcmdModule[] = [];
  private disassembler?: Disassembler;
  /** The last display format run, which an empty line repeats at the next address. */
  private lastFormat?: { space: '/' | '?' | '\\' | '='; fmt: string; count: bigint };

  constructor(
    public target: Target,
    modules: readonly DcmdModule[] = [],
  ) {
    // Start where the target stopped (the panicking CPU of a kernel dump), as mdb and gdb do.
    const threads = target.threads();
    const stopped = target.status().thread;
    this.thread = threads.some((t) => t.index === stopped) ? stopped : (threads[0]?.index ?? 0);
    for (const m of modules) this.register(m);
  }

  get modules(): readonly DcmdModule[] {
    return this.moduleList;
  }

  /** Add a module's dcmds and walkers; a later module's name wins, as a dmod overrides in MDB. */
  register(module: DcmdModule): void {
    this.moduleList.push(module);
    for (const d of module.dcmds) {
      for (const n of [d.name, ...(d.aliases ?? [])]) this.dcmdTable.set(n, { item: d, module: module.name });
    }
    for (const w of module.walkers ?? []) this.walkerTable.set(w.name, { item: w, module: module.name });
  }

  /** `::load FILE`: import a dmod (an ES module exporting a DcmdModule as default or `module`). */
  async load(path: string): Promise<DcmdModule> {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(resolvePath(path)).href)) as Record<string, unknown>;
    } catch (e) {
      throw new DbgError('not-found', `cannot load dmod "${path}": ${(e as Error).message.split('\n')[0]}`);
    }
    const candidate = [mod.default, mod.module, ...Object.values(mod)].find(isDcmdModule);
    if (!candidate) throw errors.badInput(`"${path}" is not a dmod: it exports no object with a name and a dcmds array`);
    this.register(candidate);
    return candidate;
  }

  dcmds(): readonly Registered<Dcmd>[] {
    const seen = new Set<Dcmd>();
    const out: Registered<Dcmd>[] = [];
    for (const r of this.dcmdTable.values()) {
      if (seen.has(r.item)) continue;
      seen.add(r.item);
      out.push(r);
    }
    return out.sort((a, b) => (a.item.name < b.item.name ? -1 : a.item.name > b.item.name ? 1 : 0));
  }

  walkers(): readonly Registered<Walker>[] {
    return [...this.walkerTable.values()].sort((a, b) => (a.item.name < b.item.name ? -1 : 1));
  }

  findDcmd(name: string): Dcmd | undefined {
    return this.dcmdTable.get(name)?.item;
  }

  findWalker(name: string): Walker {
    const w = this.walkerTable.get(name)?.item;
    if (!w) {
      const known = [...this.walkerTable.keys()].sort().join(', ') || 'none';
      throw errors.badInput(`unknown walker '${name}' (walkers: ${known})`);
    }
    for (const c of w.needs ?? []) need(this.target, c);
    return w;
  }

  /** Capabilities of the target that `d` needs but lacks. */
  missingCaps(d: { needs?: readonly string[] }): string[] {
    const caps = this.target.caps as Record<string, unknown>;
    return (d.needs ?? []).filter((c) => !caps[c]);
  }

  // --- expressions --------------------------------------------------------------------------

  evaluate(expr: string): bigint {
    return this.fileLine(expr) ?? evaluate(expr, this.exprContext());
  }

  private evalSource(e: SourceExpr): bigint {
    return this.fileLine(e.text) ?? evaluate(e.text, this.exprContext(), e.column);
  }

  /** `file.c:42` as an address: the first place a breakpoint on that line would go. */
  private fileLine(text: string): bigint | undefined {
    const t = text.trim();
    if (!FILE_LINE.test(t)) return undefined;
    return lineAddresses(this.target.symbols, t).addrs[0]!.addr;
  }

  private exprContext(): ExprContext {
    const t = this.target;
    return {
      dot: this.dot,
      pointerBytes: t.arch.pointerBytes,
      symbol: (name) => t.symbols.find(name)?.addr,
      noSymbol: (name) => {
        try {
          t.symbols.lookup(name);
        } catch (e) {
          if (e instanceof DbgError) return e;
        }
        return errors.noSymbol(name);
      },
      read: (addr, size) => readValue(this.formatContext(), addr, size),
      readObject: (addr, size) => readValue(this.formatContext((a, n) => this.readObject(a, n)), addr, size),
      variable: (name) => this.variable(name),
      radix: this.radix,
      incr: this.incr,
      lastAddr: this.lastAddr,
    };
  }

  private variable(name: string): bigint | undefined {
    const v = this.variables.get(name);
    if (v !== undefined) return v;
    if (name === '0') return this.lastValue;
    if (this.target.threads().length === 0) return undefined;
    try {
      return this.target.registers(this.thread).get(name);
    } catch (e) {
      if (e instanceof DbgError) return undefined;
      throw e;
    }
  }

  /**
   * Bytes of the object file behind `addr` (MDB's `?` and `%`): the file contents of the module
   * mapped there, not the memory of the dump or the running guest. A file target is its own object.
   */
  readObject(addr: bigint, length: number): Buffer {
    this.target.symbols.loadDeferred(addr);
    const m = this.target.symbols.modules.find((x) => x.elf && x.start !== undefined && x.end !== undefined && addr >= x.start && addr < x.end);
    if (m?.elf) {
      const b = m.elf.readLoaded(addr - (m.bias ?? 0n), length);
      if (b) return b;
      throw new DbgError('unmapped', `0x${addr.toString(16)} (${length} bytes) is not in the loadable segments of ${m.name}`);
    }
    if (this.target.kind === 'file') return this.target.readVirtual(addr, length);
    throw new DbgError('unmapped', `0x${addr.toString(16)} is in no object file of ${this.target.name} (? and % read the files; / and * read memory)`);
  }

  /** Reading virtual memory as formats see it. */
  formatContext(read?: (addr: bigint, length: number) => Buffer): FormatContext {
    const t = this.target;
    return {
      read: read ?? ((addr, length) => t.readVirtual(addr, length, this.thread || undefined)),
      littleEndian: t.arch.littleEndian,
      pointerBytes: t.arch.pointerBytes,
      symbolic: (addr) => symbolName(t, addr),
      disassembler: this.disassemblerFor(t.arch),
      incr: this.incr,
    };
  }

  /** The disassembler for the target's arch, loading capstone on first use. */
  async disasm(): Promise<Disassembler> {
    const arch = this.target.arch;
    if (this.disassembler?.arch !== arch.name) this.disassembler = await Disassembler.load(arch);
    return this.disassembler;
  }

  /** The loaded disassembler, for the target's architecture now (a guest changes mode as it runs). */
  private disassemblerFor(arch: Arch): Disassembler | undefined {
    if (this.disassembler && this.disassembler.arch !== arch.name) this.disassembler = Disassembler.loaded(arch);
    return this.disassembler;
  }

  // --- running commands ---------------------------------------------------------------------

  /**
   * Run every statement of `line`, parsing each only when the previous one has run. Stops at the
   * first failure and throws it (as `sh -e` would): later statements often depend on earlier ones.
   */
  /** The running command's interruption (Session.interrupt aborts it; the next command gets a fresh one). */
  private abort = new AbortController();

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Ask the running command to stop (Ctrl-C): dcmds that wait on `signal` stop. */
  interrupt(): void {
    this.abort.abort();
  }

  async execute(line: string, out: Output): Promise<void> {
    if (this.abort.signal.aborted && this.depth === 0) this.abort = new AbortController();
    const target = this.depth === 0 ? this.logged(out) : out;
    this.depth++;
    try {
      for (const pipeline of parseStatements(line)) {
        // Ctrl-C stops the line, not only its running command (a script's next `:c` would run on).
        if (this.abort.signal.aborted) throw new DbgError('interrupted', `interrupted: the rest of the line from "${pipeline[0]?.text ?? ''}" was not run`);
        await this.runPipeline(pipeline, target);
        if (this.quitRequested) return;
      }
    } finally {
      this.depth--;
    }
  }

  /** `$> file`: copy output into `file` from now on; `$>` alone stops. */
  logTo(file: string | undefined): void {
    if (file !== undefined) {
      try {
        appendFileSync(file, '');
      } catch (e) {
        throw new DbgError('io', `cannot write the log file "${file}": ${(e as Error).message}`);
      }
    }
    this.logFile = file;
  }

  /** `out`, also copying each text line into the $> log file while one is set. */
  private logged(out: Output): Output {
    const session = this;
    return Object.assign(Object.create(out) as Output, {
      line(text: string) {
        out.line(text);
        if (session.logFile !== undefined) appendFileSync(session.logFile, text + '\n');
      },
      json: out.json.bind(out),
      ...(out.value ? { value: out.value.bind(out) } : {}),
      ...(out.warn ? { warn: out.warn.bind(out) } : {}),
    });
  }

  /**
   * An empty line, as MDB treats it: the last display format again, from where it stopped
   * (dot + the size of what it printed last). Nothing when no format has run.
   */
  async repeat(out: Output): Promise<void> {
    const f = this.lastFormat;
    if (!f) return;
    await this.runFormat(f.space, f.fmt, [], this.dot + this.incr, f.count, out);
  }

  private async runPipeline(pipeline: readonly Command[], out: Output): Promise<void> {
    let inputs: (bigint | undefined)[] = [undefined];
    /** The text the previous stage wrote, when a shell command reads it. */
    let text: readonly string[] = [];
    for (let i = 0; i < pipeline.length; i++) {
      const cmd = pipeline[i]!;
      const last = i === pipeline.length - 1;
      if (cmd.verb.kind === 'shell') {
        const printed = this.shell(cmd.verb.command, i > 0 ? text : undefined);
        if (cmd.verb.source) {
          if (!last) throw errors.badInput(`"${cmd.text}": the commands "!<" runs cannot feed a pipe`);
          await this.execute(printed.join('\n'), out);
        } else if (last) for (const l of printed) out.line(l);
        else inputs = printed.filter((l) => l.trim() !== '').map((l) => this.evaluate(l.trim()));
        continue;
      }
      // A shell command after this stage reads its text; a dcmd reads the values it produced.
      const toShell = pipeline[i + 1]?.verb.kind === 'shell';
      const sink = last ? out : new CaptureOutput(false, !toShell);
      if (!last) (sink as CaptureOutput).warn = (text) => (out.warn ? out.warn(text) : undefined);
      for (const input of inputs) await this.runCommand(cmd, sink, input, i > 0);
      if (last) break;
      const captured = sink as CaptureOutput;
      if (toShell) text = captured.lines;
      // Values a dcmd put into the pipe pass as they are; else the addresses its lines start with.
      else inputs = captured.piped ?? addressesOf(captured.lines, cmd.text);
    }
  }

  /**
   * Run `command` with the user's shell ($SHELL, else /bin/sh), `input` on its standard input;
   * returns the lines it printed. Its standard error goes to dbg's.
   */
  private shell(command: string, input: readonly string[] | undefined): string[] {
    if (this.hostRefusal !== undefined) throw new DbgError('denied', `"!" runs a shell command on the machine dbg runs on: refused for a remote client; ${this.hostRefusal}`);
    const shell = process.env.SHELL || '/bin/sh';
    const r = spawnSync(shell, ['-c', command], {
      input: input === undefined ? '' : input.map((l) => l + '\n').join(''),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'inherit'],
      maxBuffer: 256 * 1024 * 1024,
      signal: this.signal,
    });
    if (r.error) throw new DbgError('io', `cannot run the shell command "${command}" with ${shell}: ${r.error.message}`);
    const lines = r.stdout.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  }

  private async runCommand(cmd: Command, out: Output, piped: bigint | undefined, isPiped: boolean): Promise<void> {
    const addr = piped !== undefined ? piped : cmd.addr ? this.evalSource(cmd.addr) : undefined;
    const count = cmd.count ? this.evalSource(cmd.count) : undefined;
    if (addr !== undefined) this.lastAddr = addr;
    const verb = cmd.verb.kind === 'dcmd' || cmd.verb.kind === 'format' ? { ...cmd.verb, args: cmd.verb.args.map((a) => this.immediate(a)) } : cmd.verb;
    switch (verb.kind) {
      case 'dot':
        if (addr !== undefined) this.dot = addr;
        // As in MDB, an address alone runs the last display format again there (`10/X`, then `20`).
        if (addr !== undefined && this.lastFormat && !isPiped) {
          const f = this.lastFormat;
          await this.runFormat(f.space, f.fmt, [], addr, count ?? f.count, out);
        }
        return;
      case 'assign': {
        const bytes = verb.size === undefined ? 8 : { c: 1, s: 2, i: 4, l: 8 }[verb.size]!;
        this.variables.set(verb.name, BigInt.asUintN(bytes * 8, addr ?? this.dot));
        return;
      }
      case 'dcmd': {
        const d = this.findDcmd(verb.name);
        if (!d) throw errors.badInput(`unknown dcmd '${verb.name}' (::help lists the dcmds)`);
        for (const c of d.needs ?? []) need(this.target, c);
        if (d.host && this.hostRefusal !== undefined) {
          throw new DbgError('denied', `::${d.name} ${hostEffectText[d.host]} on the machine dbg runs on: refused for a remote client; ${this.hostRefusal}`);
        }
        if (addr !== undefined) this.dot = addr;
        if (count === undefined || readsCount(d)) {
          await d.run(this, { addr, count, args: verb.args, piped: isPiped }, out);
          return;
        }
        // `addr,count::dcmd` runs the dcmd count times, dot moving on by the increment each time.
        if (count > 0x1000n) throw errors.badInput(`count 0x${count.toString(16)} is too many runs of ::${d.name} (at most 0x1000)`);
        let at = addr ?? this.dot;
        for (let k = 0n; k < count; k++) {
          if (this.signal.aborted) throw new DbgError('interrupted', `::${d.name} interrupted after ${k} of ${count} runs`);
          this.incr = 0n;
          this.dot = at;
          const inv: Invocation = { addr: at, args: verb.args, piped: isPiped };
          await d.run(this, inv, out);
          at += this.incr;
        }
        return;
      }
      case 'format':
        await this.runFormat(verb.space, verb.fmt, verb.args, addr ?? this.dot, count ?? 1n, out);
        if (verb.space !== '=' && verb.args.length === 0) this.lastFormat = { space: verb.space, fmt: verb.fmt, count: count ?? 1n };
        return;
    }
  }

  /** An argument `$[expr]` becomes the expression's value (as 0x hex); other words stay as they are. */
  private immediate(word: string): string {
    const m = /^\$\[(.*)\]$/s.exec(word);
    return m ? '0x' + this.evaluate(m[1]!).toString(16) : word;
  }

  private async runFormat(space: '/' | '?' | '\\' | '=', fmt: string, args: readonly string[], addr: bigint, count: bigint, out: Output): Promise<void> {
    const items = parseFormat(fmt);
    if (needsDisassembler(items)) await this.disasm();
    let read: ((a: bigint, n: number) => Buffer) | undefined;
    if (space === '\\') {
      const phys = need(this.target, 'physical');
      read = (a, n) => phys.readPhysical(a, n);
    } else if (space === '?') {
      read = (a, n) => this.readObject(a, n);
    } else if (space === '=') {
      const value = Buffer.alloc(8);
      value.writeBigUInt64LE(BigInt.asUintN(64, addr));
      read = (_a, n) => (n <= 8 ? Buffer.from(value.subarray(0, n)) : Buffer.concat([value, Buffer.alloc(n - 8)]));
    }
    const first = items[0];
    if (space !== '=' && first && 'ch' in first && first.ch in writeSizes && (args.length > 0 || items.length === 1)) {
      this.write(space, first.ch, addr, args, out);
      return;
    }
    if (space !== '=' && first && 'ch' in first && first.ch in matchSizes) {
      this.match(space, first.ch, items.length, addr, args, read, out);
      return;
    }
    if (args.length > 0) throw errors.badInput(`unexpected argument "${args[0]}" after format "${fmt}"`);
    if (count > 0x100000n) throw errors.badInput(`count ${count} is too large (at most 0x100000 repetitions)`);
    // Bounded output: a count times the items of one repetition (`,100000=30D`) stays within 0x100000.
    const per = BigInt(items.reduce((n, it) => n + ('count' in it ? it.count : 1), 0));
    if (count * per > 0x100000n) throw errors.badInput(`"${fmt}" ${count} times is 0x${(count * per).toString(16)} items to print (at most 0x100000)`);
    const ctx = this.formatContext(read);
    ctx.emit = (v) => {
      this.lastValue = v;
      if (out.piping && out.value) out.value(v);
    };
    const iob = new Iob((l) => out.line(l));
    let at = addr;
    let lastStart = addr;
    try {
      for (let k = 0n; k < count; k++) {
        if (this.signal.aborted) throw new DbgError('interrupted', `"${fmt}" interrupted after ${k} of ${count} repetitions`);
        lastStart = at;
        if (space === '=') {
          iob.setIndent(true);
          printItems(ctx, iob, addr, items);
          iob.setIndent(false);
          continue;
        }
        if (k === 0n) {
          // Fail before printing the label when the very first read cannot succeed.
          const probe = firstReadSize(items, ctx.pointerBytes);
          if (probe > 0) ctx.read(at, probe);
          const dis = fmt.startsWith('ai') || fmt.startsWith('ia');
          const exact = symbolName(this.target, at);
          if (!dis && exact !== undefined && !exact.includes('+')) out.line(`${exact}:`);
          iob.label(label(ctx, at) + ':');
        }
        iob.setIndent(true);
        at = printItems(ctx, iob, at, items);
        iob.setIndent(false);
      }
    } finally {
      iob.flush();
      // `=` prints values, not memory: it leaves no increment (MDB's m_incr = 0).
      this.incr = space === '=' ? 0n : ctx.incr;
      this.dot = space === '=' ? addr : lastStart;
    }
  }

  /**
   * `addr/L value [mask]` (l: 2 bytes, L: 4, M: 8): the first address from addr on holding value
   * (under mask), printed symbolically; dot moves there, or to where memory ended (nothing printed).
   */
  private match(space: string, ch: string, items: number, addr: bigint, args: readonly string[], read: ((a: bigint, n: number) => Buffer) | undefined, out: Output): void {
    if (items > 1) throw errors.badInput(`format '${ch}' searches memory for a value: addr${space}${ch} value [mask], alone after the '${space}'`);
    if (args.length === 0) throw errors.badInput(`expected value following ${ch} (addr${space}${ch} value [mask])`);
    if (args.length > 2) throw errors.badInput(`only value and mask may follow ${ch}`);
    const [value, mask] = args.map((a) => this.evaluate(a));
    const ctx = this.formatContext(read);
    const r = matchValue((a, n) => readUpTo(ctx, a, n), ctx.littleEndian, addr, matchSizes[ch]!, value!, mask ?? (1n << 64n) - 1n, 1n << 32n, () => this.signal.aborted);
    if (r.found !== undefined) out.line(label(ctx, r.found));
    this.dot = r.end;
    this.incr = 0n;
  }

  /** `addr/W value...`: write through the target's writeMemory capability, MDB's read-back line each. */
  private write(space: string, ch: string, addr: bigint, args: readonly string[], out: Output): void {
    if (args.length === 0) throw errors.badInput(`expected a value to write following ${space}${ch}`);
    if (space === '\\') throw errors.unsupported(this.target.name, 'writing physical memory from the command language');
    const writer = need(this.target, 'writeMemory');
    const size = writeSizes[ch]!;
    const ctx = this.formatContext();
    for (const a of args) {
      const value = BigInt.asUintN(size * 8, this.evaluate(a));
      const old = readValue(ctx, addr, size);
      const b = Buffer.alloc(size);
      for (let k = 0; k < size; k++) b[this.target.arch.littleEndian ? k : size - 1 - k] = Number((value >> BigInt(8 * k)) & 0xffn);
      writer.writeVirtual(addr, b);
      const now = readValue(ctx, addr, size);
      const left = (label(ctx, addr) + ':').padEnd(Iob.margin);
      const oldText = '0x' + old.toString(16);
      out.line(`${left.padEnd(Math.ceil(left.length / 16) * 16)}${oldText.padEnd(size === 8 ? 24 : size === 4 ? 16 : 8)}=       0x${now.toString(16)}`);
      this.dot = addr;
      addr += BigInt(size);
      this.incr = BigInt(size);
    }
  }
}

/** Whether `d` takes `,count` as its own argument (`addr,len::hexdump`) instead of being repeated. */
function readsCount(d: Dcmd): boolean {
  return d.readsCount ?? /,(len|count)\b/.test(d.usage);
}

/** The address on each line a pipe carries: the first word, read as a hex number. */
function addressesOf(lines: readonly string[], from: string): bigint[] {
  const out: bigint[] = [];
  for (const l of lines) {
    const w = l.trim().split(/\s+/)[0];
    if (!w) continue;
    const m = /^(?:0x)?([0-9a-fA-F]+):?$/.exec(w);
    if (!m) throw errors.badInput(`"${from}" wrote "${l.trim()}" into a pipe: expected an address at the start of each line`);
    out.push(BigInt('0x' + m[1]!));
  }
  return out;
}

function isDcmdModule(x: unknown): x is DcmdModule {
  return typeof x === 'object' && x !== null && typeof (x as DcmdModule).name === 'string' && Array.isArray((x as DcmdModule).dcmds);
}
