/**
 * MDB expressions: 64-bit unsigned arithmetic over numbers, symbols, dot and memory.
 *
 * Numbers are in the default radix (hexadecimal, or what `$d` set) unless prefixed: `0x` hex,
 * `0t` decimal, `0o` octal, `0i` binary; `_` separates digits (`0x1234_5678`). A number wider
 * than 64 bits is refused.
 * An identifier is a symbol (`main`, `libc.so.6`malloc`); one that no module defines but that
 * spells a hex number is that number (`deadbeef`), as in MDB. `.` is dot; `<name` reads a
 * variable or a register of the selected thread.
 *
 * Operators, loosest last (MDB's set and order):
 *   unary    -x  ~x  #x (logical not)  *x (pointer-sized read)  %x (same, object view)
 *            *&#47;c/x *&#47;s/x *&#47;i/x *&#47;l/x (1, 2, 4, 8-byte reads; also J K B etc. as sizes)
 *   binary   *  %  (signed integer division, as in MDB)  %% (remainder)  #  (round up to a multiple)
 *            +  -
 *            <<  >>
 *            ==  !=
 *            &
 *            ^
 *            |
 * Inside parentheses `/` also divides (at the top level it starts a format). Where a value goes,
 * `+` alone is dot + the increment, `^` dot - the increment, `&` the last command's address;
 * 'A' is a character constant (0x41).
 *
 * Errors are DbgError('bad-input') naming the column, or whatever the lookups throw
 * (no-symbol, unmapped).
 */

import { DbgError, errors } from '../common/errors.js';

export interface ExprContext {
  readonly dot: bigint;
  /** The symbol's address, or undefined when no module defines it. */
  symbol(name: string): bigint | undefined;
  /** Throws no-symbol with the target's own message (lists the modules searched). */
  noSymbol(name: string): DbgError;
  /** An unsigned integer of `size` bytes at `addr`; throws unmapped. */
  read(addr: bigint, size: number): bigint;
  /** The same from the object file behind `addr` (`%addr`); `read` when not given. */
  readObject?(addr: bigint, size: number): bigint;
  readonly pointerBytes: number;
  /** A variable or register by name, or undefined. */
  variable(name: string): bigint | undefined;
  /** The default radix of numbers without a prefix ($d); 16 when not given. */
  readonly radix?: number;
  /** The size of the last thing a format printed: `+` is dot + incr, `^` dot - incr. */
  readonly incr?: bigint;
  /** The address the last command was given: `&`. */
  readonly lastAddr?: bigint;
}

/** The characters of a character constant, with C's backslash escapes. */
function unescapeChars(body: string): string {
  const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return body.replace(/\\(.)/g, (m, c: string) => esc[c] ?? m);
}

function prefixRadix(letter: string): number {
  const r = letter.toLowerCase();
  return r === 'x' ? 16 : r === 't' ? 10 : r === 'o' ? 8 : 2;
}

function digitIn(c: string, radix: number): boolean {
  const d = parseInt(c, 36);
  return c.length === 1 && !Number.isNaN(d) && d < radix;
}

function radixName(radix: number): string {
  return radix === 16 ? 'hexadecimal' : radix === 10 ? 'decimal' : radix === 8 ? 'octal' : radix === 2 ? 'binary' : `base-${radix}`;
}

const MASK = (1n << 64n) - 1n;

type Tok =
  | { t: 'num'; v: bigint; pos: number }
  | { t: 'id'; v: string; pos: number }
  | { t: 'var'; v: string; pos: number }
  | { t: 'op'; v: string; pos: number }
  | { t: 'deref'; v: string; size: number; pos: number }
  | { t: 'end'; pos: number };

const sizeLetters: Record<string, number> = { c: 1, B: 1, s: 2, x: 2, i: 4, X: 4, l: 8, J: 8, K: 8 };

export function evaluate(text: string, ctx: ExprContext, column = 0): bigint {
  return new ExprParser(text, ctx, column).parse();
}

class ExprParser {
  private readonly toks: Tok[];
  private i = 0;
  private depth = 0;

  constructor(
    private readonly s: string,
    private readonly ctx: ExprContext,
    private readonly column: number,
  ) {
    this.toks = this.lex();
  }

  private fail(pos: number, message: string): DbgError {
    return errors.badInput(`bad expression "${this.s}" at column ${this.column + pos + 1}: ${message}`);
  }

  private lex(): Tok[] {
    const s = this.s;
    const out: Tok[] = [];
    let p = 0;
    while (p < s.length) {
      const c = s[p]!;
      if (c === ' ' || c === '\t') {
        p++;
        continue;
      }
      const start = p;
      if (/[0-9]/.test(c)) {
        let radix = this.ctx.radix ?? 16;
        if (c === '0' && /[xXtToOiI]/.test(s[p + 1] ?? '') && digitIn(s[p + 2] ?? '', prefixRadix(s[p + 1]!))) {
          radix = prefixRadix(s[p + 1]!);
          p += 2;
        }
        // Digits, with `_` allowed between and after them as a separator (0x1234_5678).
        const dstart = p;
        while (p < s.length && (digitIn(s[p]!, radix) || s[p] === '_')) p++;
        if (p < s.length && /[\w]/.test(s[p]!)) {
          throw this.fail(start, `"${s.slice(start, p + 1)}" is not a valid ${radixName(radix)} number`);
        }
        out.push({ t: 'num', v: this.number(s.slice(dstart, p), radix, start), pos: start });
        continue;
      }
      if (/[A-Za-z_]/.test(c) || (c === '.' && /[A-Za-z_]/.test(s[p + 1] ?? ''))) {
        // A C++ name as written, `ns::Foo::bar`: each `::` followed by a name joins it.
        for (;;) {
          while (p < s.length && /[\w.$@]/.test(s[p]!)) p++;
          if (s[p] === ':' && s[p + 1] === ':' && /[A-Za-z_~]/.test(s[p + 2] ?? '')) p += 2;
          else break;
        }
        // ... and its parameter list, naming one overload: `ns::Foo::bar(int, int) const`.
        if (s[p] === '(' && s.slice(start, p).includes('::')) {
          const close = s.indexOf(')', p);
          if (close < 0) throw this.fail(p, `unclosed parameter list of "${s.slice(start, p)}"`);
          p = close + 1;
          const cv = /^\s*const\b/.exec(s.slice(p));
          if (cv) p += cv[0].length;
        }
        if (s[p] === '`') {
          p++;
          while (p < s.length && /[\w.$@]/.test(s[p]!)) p++;
        }
        out.push({ t: 'id', v: s.slice(start, p), pos: start });
        continue;
      }
      if (c === '.') {
        out.push({ t: 'id', v: '.', pos: start });
        p++;
        continue;
      }
      if (c === "'") {
        // A character constant: 'A' is 0x41; up to 8 characters pack into one value, first highest.
        const close = s.indexOf("'", p + 1);
        if (close < 0) throw this.fail(start, 'unterminated character constant');
        const chars = unescapeChars(s.slice(p + 1, close));
        if (chars.length === 0 || chars.length > 8) throw this.fail(start, `a character constant holds 1 to 8 characters, not ${chars.length}`);
        let v = 0n;
        for (const ch of chars) v = (v << 8n) | BigInt(ch.charCodeAt(0) & 0xff);
        out.push({ t: 'num', v, pos: start });
        p = close + 1;
        continue;
      }
      if (c === '<' && /[A-Za-z_0-9]/.test(s[p + 1] ?? '')) {
        p++;
        while (p < s.length && /[\w]/.test(s[p]!)) p++;
        out.push({ t: 'var', v: s.slice(start + 1, p), pos: start });
        continue;
      }
      if ((c === '*' || c === '%') && s[p + 1] === '/') {
        const close = s.indexOf('/', p + 2);
        const letter = close > 0 ? s.slice(p + 2, close) : '';
        const size = sizeLetters[letter];
        if (size === undefined) throw this.fail(start, `bad size in "${c}/${letter}/": expected one of c s i l (1, 2, 4, 8 bytes)`);
        out.push({ t: 'deref', v: c, size, pos: start });
        p = close + 1;
        continue;
      }
      const two = s.slice(p, p + 2);
      if (two === '<<' || two === '>>' || two === '==' || two === '!=' || two === '%%') {
        out.push({ t: 'op', v: two, pos: start });
        p += 2;
        continue;
      }
      if ('+-*/%#&|^~()'.includes(c)) {
        out.push({ t: 'op', v: c, pos: start });
        p++;
        continue;
      }
      throw this.fail(start, `unexpected character "${c}"`);
    }
    out.push({ t: 'end', pos: s.length });
    return out;
  }

  /** The value of `digits` (separators removed) in `radix`; refuses one wider than 64 bits. */
  private number(digits: string, radix: number, pos: number): bigint {
    let v = 0n;
    const R = BigInt(radix);
    for (const d of digits) if (d !== '_') v = v * R + BigInt(parseInt(d, radix));
    if (v > MASK) throw this.fail(pos, `${this.s.slice(pos, pos + digits.length + 2).trim()} does not fit in 64 bits`);
    return v;
  }

  private peek(): Tok {
    return this.toks[this.i]!;
  }

  private isOp(...ops: string[]): string | undefined {
    const t = this.peek();
    return t.t === 'op' && ops.includes(t.v) ? t.v : undefined;
  }

  parse(): bigint {
    if (this.peek().t === 'end') throw this.fail(0, 'empty expression');
    const v = this.binary(0);
    const t = this.peek();
    if (t.t !== 'end') throw this.fail(t.pos, `unexpected ${describe(t)}`);
    return v;
  }

  private static readonly levels: string[][] = [['|'], ['^'], ['&'], ['==', '!='], ['<<', '>>'], ['+', '-'], ['*', '%', '%%', '#', '/']];

  private binary(level: number): bigint {
    if (level >= ExprParser.levels.length) return this.unary();
    let left = this.binary(level + 1);
    for (;;) {
      const ops = ExprParser.levels[level]!.filter((o) => o !== '/' || this.depth > 0);
      const op = this.isOp(...ops);
      if (!op) return left;
      const pos = this.peek().pos;
      this.i++;
      const right = this.binary(level + 1);
      left = this.apply(op, left, right, pos) & MASK;
    }
  }

  private apply(op: string, a: bigint, b: bigint, pos: number): bigint {
    switch (op) {
      case '|':
        return a | b;
      case '^':
        return a ^ b;
      case '&':
        return a & b;
      case '==':
        return a === b ? 1n : 0n;
      case '!=':
        return a !== b ? 1n : 0n;
      case '<<':
        return b >= 64n ? 0n : a << b;
      case '>>':
        return b >= 64n ? 0n : a >> b;
      case '+':
        return a + b;
      case '-':
        return a - b;
      case '*':
        return a * b;
      case '%': {
        // MDB's `%` divides as signed 64-bit numbers; `%%` is the (unsigned) remainder.
        if (b === 0n) throw this.fail(pos, 'division by zero');
        const q = BigInt.asIntN(64, a) / BigInt.asIntN(64, b);
        if (q === 1n << 63n) throw this.fail(pos, 'divide overflow');
        return q;
      }
      case '%%':
        if (b === 0n) throw this.fail(pos, 'division by zero');
        return a % b;
      case '/':
        if (b === 0n) throw this.fail(pos, 'division by zero');
        return a / b;
      case '#':
        if (b === 0n) throw this.fail(pos, 'round-up to a multiple of zero');
        return ((a + b - 1n) / b) * b;
    }
    throw this.fail(pos, `unknown operator ${op}`);
  }

  private unary(): bigint {
    const t = this.peek();
    if (t.t === 'op' && (t.v === '-' || t.v === '~' || t.v === '#' || t.v === '*' || t.v === '%')) {
      this.i++;
      const v = this.unary();
      switch (t.v) {
        case '-':
          return -v & MASK;
        case '~':
          return ~v & MASK;
        case '#':
          return v === 0n ? 1n : 0n;
        case '%':
          return (this.ctx.readObject ?? this.ctx.read)(v, this.ctx.pointerBytes);
        default:
          return this.ctx.read(v, this.ctx.pointerBytes);
      }
    }
    if (t.t === 'deref') {
      this.i++;
      const v = this.unary();
      return t.v === '%' ? (this.ctx.readObject ?? this.ctx.read)(v, t.size) : this.ctx.read(v, t.size);
    }
    return this.primary();
  }

  private primary(): bigint {
    const t = this.peek();
    this.i++;
    switch (t.t) {
      case 'num':
        return t.v;
      case 'id': {
        if (t.v === '.') return this.ctx.dot;
        const a = this.ctx.symbol(t.v);
        if (a !== undefined) return a;
        // A word no module defines that spells a number in the default radix is that number
        // (`deadbeef`, `bad_cafe`), as in MDB.
        const radix = this.ctx.radix ?? 16;
        if (radix === 16 && /^[0-9a-fA-F][0-9a-fA-F_]*$/.test(t.v)) return this.number(t.v, 16, t.pos);
        throw this.ctx.noSymbol(t.v);
      }
      case 'var': {
        const v = this.ctx.variable(t.v);
        if (v === undefined) throw this.fail(t.pos, `unknown variable or register "<${t.v}"`);
        return v;
      }
      case 'op':
        if (t.v === '(') {
          this.depth++;
          if (this.peek().t === 'op' && (this.peek() as { v: string }).v === ')') throw this.fail(this.peek().pos, 'empty parentheses');
          const v = this.binary(0);
          this.depth--;
          const close = this.peek();
          if (!(close.t === 'op' && close.v === ')')) throw this.fail(close.pos, `expected ")" but found ${describe(close)}`);
          this.i++;
          return v;
        }
        // Alone where a value goes, `+` is dot plus the increment, `^` dot minus it, `&` the last
        // address a command was given (MDB's expression words).
        if (t.v === '+') return (this.ctx.dot + (this.ctx.incr ?? 0n)) & MASK;
        if (t.v === '^') return (this.ctx.dot - (this.ctx.incr ?? 0n)) & MASK;
        if (t.v === '&') return this.ctx.lastAddr ?? this.ctx.dot;
        throw this.fail(t.pos, `expected a number, symbol or "(" but found "${t.v}"`);
      case 'end':
        throw this.fail(t.pos, 'expression ends where a value was expected');
      default:
        throw this.fail(t.pos, `unexpected ${describe(t)}`);
    }
  }
}

function describe(t: Tok): string {
  switch (t.t) {
    case 'end':
      return 'end of expression';
    case 'num':
      return `number 0x${t.v.toString(16)}`;
    case 'id':
      return `"${t.v}"`;
    case 'var':
      return `"<${t.v}"`;
    case 'op':
      return `"${t.v}"`;
    case 'deref':
      return `"${t.v}/../"`;
  }
}
