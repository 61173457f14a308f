/**
 * The MDB command-line grammar, turned into a list of pipelines of commands.
 *
 *   line      := statement { (';' | '\n') statement }
 *   statement := command { '|' command }
 *   command   := [expr] [',' expr] verb
 *   verb      := '::' name {arg}                dcmd
 *              | ('/' | '?' | '\' | '@' | '=') fmt {arg}   format: / memory, ? the object file, \ and @
 *                                               physical memory, = the value (a write: /W /Z /w /v value...)
 *              | '$' letter {arg}               shorthand: $c $C $r $q $Q $m $? $d  -> dcmd
 *              | '$<' file  '$<<' file  '$>' [file]    run a macro file; log output to a file
 *              | ':' letter {arg}               execution shorthand: :c :s :e :u :b :d :z :r :k :w :a :p
 *              | '>' name                       assigns expr (default dot) to variable name (<name reads it)
 *              | (nothing)                      sets dot to expr
 *   shell     := '!' ['<'] (quoted | rest-of-line)   a shell command: at the head of a statement it
 *                                                    runs on its own (its output can feed `| dcmd`);
 *                                                    after a dcmd it reads that dcmd's output. `!<`
 *                                                    runs what the command prints as commands.
 *
 * A shell command in quotes ('...' or "...", where \' and \" stand for the quote) may be followed
 * by `| dcmd`, whose addresses are the lines it prints; an unquoted one runs to the end of the
 * line. `//` starts a comment that runs to the end of the line, also after arguments.
 *
 * A C++ name may be written as such in the expression, `Scheduler::tick::bp`: a `::` after a
 * name is a scope when another `::name` follows it, or when its name is followed by an operator
 * or a format (`Scheduler::tick+4/i`, `ns::count=K`); otherwise it starts the dcmd (`main::dis`).
 *
 * Expressions are kept as source text (with their column) and evaluated by the session when the
 * command runs, since they may read memory and depend on dot. A `|` inside the expression part is
 * bitwise or; after the verb it is a pipe. `/` inside parentheses is division; at the top level
 * it starts a format, as in MDB.
 */

import { errors } from '../common/errors.js';

export interface SourceExpr {
  readonly text: string;
  /** 0-based column of the expression in `line`, for error messages. */
  readonly column: number;
  /** The source line the expression came from. */
  readonly line: string;
}

export type Verb =
  | { readonly kind: 'dcmd'; readonly name: string; readonly args: readonly string[] }
  | { readonly kind: 'format'; readonly space: '/' | '?' | '\\' | '='; readonly fmt: string; readonly args: readonly string[] }
  | { readonly kind: 'assign'; readonly name: string; readonly size?: string } // `expr >name`, `expr >/c/name`: set variable name (<name reads it)
  | { readonly kind: 'shell'; readonly command: string; readonly source: boolean } // `! cmd`, `!< cmd`
  | { readonly kind: 'dot' };

export interface Command {
  readonly addr?: SourceExpr;
  readonly count?: SourceExpr;
  readonly verb: Verb;
  /** The command's text, for messages. */
  readonly text: string;
}

export type Pipeline = readonly Command[];

/** `$x` shorthands, as MDB maps them onto dcmds. */
const dollarMap: Record<string, { name: string; args?: string[] }> = {
  c: { name: 'stack' },
  C: { name: 'stack', args: ['-v'] },
  r: { name: 'regs' },
  q: { name: 'quit' },
  Q: { name: 'quit' },
  m: { name: 'mappings' },
  d: { name: 'radix' },
  '?': { name: 'status' },
};

/**
 * `:x` execution shorthands (adb/MDB). They become ordinary dcmd invocations; the dcmds are
 * registered by the modules of targets that can run (engineer D's emulator module).
 */
const colonMap: Record<string, { name: string; args?: string[] }> = {
  c: { name: 'cont' },
  s: { name: 'step' },
  e: { name: 'step', args: ['over'] },
  u: { name: 'step', args: ['out'] },
  b: { name: 'bp' },
  d: { name: 'delete' },
  z: { name: 'delete', args: ['all'] },
  r: { name: 'run' },
  k: { name: 'kill' },
  w: { name: 'wp', args: ['-w'] },
  a: { name: 'wp', args: ['-r'] },
  p: { name: 'wp', args: ['-x'] },
};

/** Every statement of `line`; throws DbgError('bad-input') at the first syntax error. */
export function parseLine(line: string): Pipeline[] {
  return [...parseStatements(line)];
}

/**
 * The statements of `line` one at a time, so that a caller can run each before the next is
 * parsed: a syntax error in the third statement does not stop the first two.
 */
export function* parseStatements(line: string): Generator<Pipeline> {
  const p = new LineParser(line);
  for (let st = p.next(); st; st = p.next()) yield st;
}

class LineParser {
  private pos = 0;
  constructor(private readonly s: string) {}

  next(): Pipeline | undefined {
    for (;;) {
      this.skipBlanks();
      if (this.pos >= this.s.length) break;
      const c = this.s[this.pos]!;
      if (c === ';' || c === '\n') {
        this.pos++;
        continue;
      }
      if (c === '/' && this.s[this.pos + 1] === '/') {
        // A `//` comment runs to the end of the line.
        while (this.pos < this.s.length && this.s[this.pos] !== '\n') this.pos++;
        continue;
      }
      const pipeline: Command[] = [];
      for (;;) {
        const cmd = this.command();
        pipeline.push(cmd);
        this.skipBlanks();
        if (this.s[this.pos] === '!' && cmd.verb.kind !== 'shell') {
          pipeline.push(this.shell());
          this.skipBlanks();
        }
        if (this.s[this.pos] === '|') {
          this.pos++;
          continue;
        }
        break;
      }
      return pipeline;
    }
    return undefined;
  }

  private skipBlanks(): void {
    while (this.pos < this.s.length && (this.s[this.pos] === ' ' || this.s[this.pos] === '\t' || this.s[this.pos] === '\r')) this.pos++;
  }

  private command(): Command {
    this.skipBlanks();
    const start = this.pos;
    if (this.s[this.pos] === '|') throw this.error(this.pos, 'a pipe needs a command on each side');
    if (this.s[this.pos] === '!') return this.shell();
    const addr = this.expression();
    let count: SourceExpr | undefined;
    if (this.s[this.pos] === ',') {
      this.pos++;
      count = this.expression();
      if (!count) throw this.error(this.pos, 'expected a count after ","');
    }
    const verb = this.verb();
    if (verb.kind === 'dot' && !addr && !count) {
      const c = this.s[this.pos];
      throw this.error(this.pos, c === undefined ? 'expected a command' : `unexpected "${c}"`);
    }
    return { addr, count, verb, text: this.s.slice(start, this.pos).trim() };
  }

  /** Expression text up to the verb, a ',' or the end of the command. */
  private expression(): SourceExpr | undefined {
    this.skipBlanks();
    const start = this.pos;
    let depth = 0;
    while (this.pos < this.s.length) {
      const c = this.s[this.pos]!;
      const next = this.s[this.pos + 1];
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === '\n' || c === ';') break;
      // Only `/` is also an operator (division, inside parentheses); the other verb characters
      // never occur in an expression, so they end it even inside an unclosed parenthesis.
      // `file.c:42` is a source line (an address): a `:` followed by a digit never starts a verb.
      else if (c === ':' && next !== undefined && next >= '0' && next <= '9' && /[A-Za-z_][\w.\/+-]*$/.test(this.s.slice(start, this.pos))) {
        this.pos++;
        continue;
      } else if (c === ':' && next === ':' && cxxScope(this.s, start, this.pos)) {
        this.pos += 2;
        continue;
      } else if (c === ',' && depth > 0 && /[A-Za-z_]\w*::[\w:~]*\([^)]*$/.test(this.s.slice(start, this.pos))) {
        this.pos++; // a C++ parameter list: `ns::Foo::bar(int, int)`
        continue;
      } else if (c === ',' || c === '?' || c === '\\' || c === '$' || c === ':') break;
      // `@` formats physical memory, as `\`; inside a symbol name (`memcpy@GLIBC_2.14`) it is a letter.
      else if (c === '@' && !/^[A-Za-z_]/.test(/[\w.$`]*$/.exec(this.s.slice(start, this.pos))![0])) break;
      else if (c === '=' && next !== '=' && this.s[this.pos - 1] !== '!' && this.s[this.pos - 1] !== '=') break;
      else if (c === '/' && depth <= 0) break;
      else if (c === '>' && next !== '>' && this.s[this.pos - 1] !== '>') break;
      if ((c === '*' || c === '%') && next === '/') {
        // Sized dereference `*/J/expr`: skip the size letter and its closing slash.
        const close = this.s.indexOf('/', this.pos + 2);
        if (close > 0) {
          this.pos = close + 1;
          continue;
        }
      }
      if (c === '`') {
        this.pos++;
        continue;
      }
      if (c === "'") {
        // A character constant ('A', '\n') is one token: its characters are not verbs.
        const close = this.s.indexOf("'", this.pos + 1);
        const eol = this.s.indexOf('\n', this.pos);
        if (close > 0 && (eol < 0 || close < eol)) {
          this.pos = close + 1;
          continue;
        }
      }
      this.pos++;
    }
    const text = this.s.slice(start, this.pos);
    if (text.trim() === '') {
      this.pos = start;
      return undefined;
    }
    const lead = text.length - text.trimStart().length;
    const l = this.lineOf(start);
    return { text: text.trim(), column: start + lead - l.start, line: l.text };
  }

  private verb(): Verb {
    const c = this.s[this.pos];
    if (c === ':' && this.s[this.pos + 1] === ':') {
      this.pos += 2;
      const nameStart = this.pos;
      while (this.pos < this.s.length && /[A-Za-z0-9_.\-$?]/.test(this.s[this.pos]!)) this.pos++;
      const name = this.s.slice(nameStart, this.pos);
      if (!name) throw this.error(nameStart, 'expected a dcmd name after "::"');
      return { kind: 'dcmd', name, args: this.args() };
    }
    if (c === ':') {
      const letter = this.s[this.pos + 1];
      const m = letter !== undefined ? colonMap[letter] : undefined;
      if (!m) throw this.error(this.pos, `unknown ":${letter ?? ''}" command (known: ${Object.keys(colonMap).map((k) => ':' + k).join(' ')})`);
      this.pos += 2;
      return { kind: 'dcmd', name: m.name, args: [...(m.args ?? []), ...this.args()] };
    }
    if (c === '$' && this.s[this.pos + 1] === '<') {
      // `$<file` runs a macro file's commands; `$<<file` too, in the current context.
      const nested = this.s[this.pos + 2] === '<';
      this.pos += nested ? 3 : 2;
      return { kind: 'dcmd', name: nested ? 'source' : 'macro', args: this.args() };
    }
    if (c === '$' && this.s[this.pos + 1] === '>') {
      this.pos += 2;
      return { kind: 'dcmd', name: 'log', args: this.args() };
    }
    if (c === '$') {
      const letter = this.s[this.pos + 1];
      const m = letter !== undefined ? dollarMap[letter] : undefined;
      if (!m) throw this.error(this.pos, `unknown "$${letter ?? ''}" command (known: ${Object.keys(dollarMap).map((k) => '$' + k).join(' ')})`);
      this.pos += 2;
      return { kind: 'dcmd', name: m.name, args: [...(m.args ?? []), ...this.args()] };
    }
    if (c === '/' || c === '?' || c === '\\' || c === '=' || c === '@') {
      this.pos++;
      this.skipBlanks(); // `555 = E` is `555=E`
      const fmtStart = this.pos;
      let quote: string | undefined;
      while (this.pos < this.s.length) {
        const d = this.s[this.pos]!;
        if (quote) {
          if (d === quote) quote = undefined;
        } else if (d === '"') quote = d;
        else if (d === ' ' || d === '\t' || d === ';' || d === '|' || d === '\n') break;
        this.pos++;
      }
      if (quote) throw this.error(fmtStart, 'unterminated string in format');
      return { kind: 'format', space: c === '@' ? '\\' : c, fmt: this.s.slice(fmtStart, this.pos), args: this.args() };
    }
    if (c === '>') {
      // `>/c/name` keeps only the low byte (c, s, i, l: 1, 2, 4, 8 bytes).
      const m = /^>\s*(?:\/([A-Za-z])\/)?\s*([A-Za-z_]\w*)/.exec(this.s.slice(this.pos));
      if (!m) throw this.error(this.pos, 'expected a variable name after ">" (or ">/c/name" with a size c s i l)');
      if (m[1] !== undefined && !'csil'.includes(m[1])) throw this.error(this.pos, `bad size "${m[1]}" in ">/${m[1]}/": expected c s i l (1, 2, 4, 8 bytes)`);
      this.pos += m[0].length;
      return { kind: 'assign', name: m[2]!, ...(m[1] !== undefined ? { size: m[1] } : {}) };
    }
    return { kind: 'dot' };
  }

  /** `! cmd` or `!< cmd`, at the '!'. */
  private shell(): Command {
    const start = this.pos++;
    const source = this.s[this.pos] === '<';
    if (source) this.pos++;
    this.skipBlanks();
    const q = this.s[this.pos];
    let command: string;
    if (q === "'" || q === '"') {
      command = this.quoted(q);
      this.skipBlanks();
      const c = this.s[this.pos];
      if (c === '!') throw this.error(this.pos, 'a shell command is joined to the next dcmd with "|", not "!"');
      if (c !== undefined && c !== '|' && c !== ';' && c !== '\n') throw this.error(this.pos, `unexpected "${c}" after the quoted shell command`);
    } else {
      let end = this.s.indexOf('\n', this.pos);
      if (end < 0) end = this.s.length;
      command = this.s.slice(this.pos, end);
      this.pos = end;
    }
    if (command.trim() === '') throw this.error(start, `expected a shell command after "${source ? '!<' : '!'}"`);
    return { verb: { kind: 'shell', command, source }, text: this.s.slice(start, this.pos).trim() };
  }

  /**
   * A quoted shell command, at its opening quote. `\'` (and in double quotes `\"`) stands for the
   * quote; double quotes also take `\\`, `\n` and `\t`; any other backslash is kept for the shell.
   */
  private quoted(q: string): string {
    const open = this.pos++;
    let out = '';
    while (this.pos < this.s.length) {
      const d = this.s[this.pos]!;
      if (d === q) {
        this.pos++;
        return out;
      }
      if (d === '\\' && this.pos + 1 < this.s.length) {
        const e = this.s[this.pos + 1]!;
        const map: Record<string, string> = q === '"' ? { '"': '"', "'": "'", '\\': '\\', n: '\n', t: '\t' } : { "'": "'" };
        if (e in map) {
          out += map[e];
          this.pos += 2;
          continue;
        }
      }
      if (d === '\n') break;
      out += d;
      this.pos++;
    }
    throw this.error(open, 'unterminated quoted shell command');
  }

  /** Words up to '|', ';', '!', a `//` comment or newline; single and double quotes group. */
  private args(): string[] {
    const out: string[] = [];
    for (;;) {
      this.skipBlanks();
      const c = this.s[this.pos];
      if (c === '/' && this.s[this.pos + 1] === '/') {
        while (this.pos < this.s.length && this.s[this.pos] !== '\n') this.pos++;
        return out;
      }
      if (c === undefined || c === '|' || c === ';' || c === '\n' || c === '!') return out;
      let word = '';
      while (this.pos < this.s.length) {
        const d = this.s[this.pos]!;
        if (d === ' ' || d === '\t' || d === '|' || d === ';' || d === '\n') break;
        if (d === '$' && this.s[this.pos + 1] === '[') {
          // `$[expr]`: the expression's value as the argument (the session evaluates it).
          let depth = 0;
          let end = this.pos + 1;
          for (; end < this.s.length; end++) {
            if (this.s[end] === '[') depth++;
            else if (this.s[end] === ']' && --depth === 0) break;
          }
          if (end >= this.s.length) throw this.error(this.pos, 'unterminated "$[" (expected "]")');
          word += this.s.slice(this.pos, end + 1);
          this.pos = end + 1;
          continue;
        }
        if (d === '"' || d === "'") {
          const close = this.s.indexOf(d, this.pos + 1);
          if (close < 0) throw this.error(this.pos, `unterminated ${d === '"' ? 'double' : 'single'} quote`);
          word += this.s.slice(this.pos + 1, close);
          this.pos = close + 1;
          continue;
        }
        word += d;
        this.pos++;
      }
      out.push(word);
    }
  }

  private lineOf(pos: number): { text: string; start: number } {
    const start = this.s.lastIndexOf('\n', pos - 1) + 1;
    let end = this.s.indexOf('\n', pos);
    if (end < 0) end = this.s.length;
    return { text: this.s.slice(start, end), start };
  }

  private error(pos: number, message: string) {
    const l = this.lineOf(pos);
    return errors.badInput(`syntax error at column ${pos - l.start + 1} of "${l.text}": ${message}`);
  }
}

/**
 * Whether the `::` at `at` (inside the expression that began at `start`) joins two parts of a C++
 * name rather than starting a dcmd: it follows a name, and the name after it is followed by
 * another `::name` or by an operator or a format rather than by the dcmd's arguments.
 */
function cxxScope(s: string, start: number, at: number): boolean {
  if (!/[A-Za-z_]\w*$/.test(s.slice(start, at))) return false;
  const m = /^::[A-Za-z_~]\w*/.exec(s.slice(at));
  if (!m) return false;
  const after = s.slice(at + m[0].length);
  return /^::[A-Za-z_~]/.test(after) || /^[+*%&^()=\/,]/.test(after);
}
