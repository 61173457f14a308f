/**
 * The control contract's wire grammar, both ways: plain ASCII, `;`-terminated, no framing.
 *
 * Commands (client -> dbg):
 *
 *   command  = key "=" value ";"          whitespace and newlines around commands are ignored,
 *   key      = 1*ALPHA                     keys are case-insensitive (BP, B, C, D, V)
 *   value    = *(any byte but ";")         trimmed; at most MAX_COMMAND bytes per command
 *
 * Replies (dbg -> client), each ended by ";" and a newline (for netcat), fields in a fixed order:
 *
 *   OK;                                   the command was done
 *   ERR=<reason>;                         it was not, and why (one line of text)
 *   V=dbg-contract/1;                     the answer to V=?;
 *   BP=<id>,PC=0x<hex>,SYM=<name>;        one per breakpoint a BP= set, before its OK;
 *   STOP=<reason>,PC=0x<hex>,CPU=<n>[,BP=<id>],SYM=<name+0xoff>;
 *                                         asynchronous: the guest stopped (after a C=1; or B=1;)
 *
 * Every complete command gets exactly one OK or ERR (V=?; gets its V= instead). SYM is always
 * the last field and runs to the ";", so a C++ name may hold commas and spaces. In <reason> and
 * <name>, the bytes ";", "%" and anything outside printable ASCII are written %XX (hex).
 */

/** The version a V=?; query answers. */
export const CONTRACT_VERSION = 'dbg-contract/1';

/** A longer command is answered ERR and its bytes are dropped as they come: memory stays bounded. */
export const MAX_COMMAND = 4096;

export type Command =
  | { readonly kind: 'command'; readonly key: string; readonly value: string; readonly text: string }
  | { readonly kind: 'bad'; readonly why: string };

/**
 * Splits a byte stream into commands, whatever the reads' boundaries: a command split across
 * reads is kept until its ";", several in one read come out together.
 */
export class CommandParser {
  private buf = '';
  /** Bytes of an over-long command dropped so far (its ";" ends the drop). */
  private dropping = 0;

  feed(data: Buffer): Command[] {
    const out: Command[] = [];
    let start = 0;
    for (;;) {
      const semi = data.indexOf(0x3b, start);
      const end = semi < 0 ? data.length : semi;
      if (this.dropping > 0) {
        this.dropping += end - start;
      } else if (this.buf.length + (end - start) > MAX_COMMAND) {
        this.dropping = this.buf.length + (end - start);
        this.buf = '';
      } else {
        this.buf += data.toString('latin1', start, end);
      }
      if (semi < 0) return out;
      if (this.dropping > 0) {
        out.push({ kind: 'bad', why: `command of ${this.dropping + 1} bytes is longer than ${MAX_COMMAND}: dropped` });
        this.dropping = 0;
      } else {
        out.push(parseCommand(this.buf));
      }
      this.buf = '';
      start = semi + 1;
    }
  }

  /** Bytes held of a command not yet ended (at most MAX_COMMAND). */
  get pending(): number {
    return this.buf.length;
  }
}

function parseCommand(raw: string): Command {
  const text = raw.trim();
  // eslint-disable-next-line no-control-regex
  const bad = /[^\x20-\x7e\t\r\n]/.exec(text);
  if (bad) return { kind: 'bad', why: `byte 0x${bad[0].charCodeAt(0).toString(16).padStart(2, '0')} in command "${text}": commands are printable ASCII` };
  const m = /^([A-Za-z]+)\s*=\s*(.*)$/s.exec(text);
  if (!m) return { kind: 'bad', why: text === '' ? 'empty command: expected KEY=VALUE; (BP=, B=, C=, D=, V=)' : `"${text}" is not KEY=VALUE; (BP=, B=, C=, D=, V=)` };
  return { kind: 'command', key: m[1]!.toUpperCase(), value: m[2]!.trim(), text };
}

/** A value as the reply grammar writes it: ";", "%" and non-printable bytes as %XX. */
export function escapeValue(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[;%\x00-\x1f\x7f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0);
    return code > 0xff ? '?' : `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
  });
}

export function unescapeValue(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** One reply as the client reads it: its key, and its fields (the first one's value under the key). */
export interface Reply {
  readonly key: string;
  readonly value: string;
  readonly fields: ReadonlyMap<string, string>;
  /** The reply as sent, without its ";". */
  readonly text: string;
}

/** Parse one reply (without its ";"): `STOP=breakpoint,PC=0x…,CPU=0,BP=1,SYM=a, b`. */
export function parseReply(text: string): Reply {
  const t = text.trim();
  const eq = t.indexOf('=');
  if (eq < 0) return { key: t, value: '', fields: new Map(), text: t };
  const key = t.slice(0, eq);
  const fields = new Map<string, string>();
  let rest = t.slice(eq + 1);
  // ERR's reason is one field; elsewhere SYM is last and keeps its commas.
  if (key === 'ERR') return { key, value: unescapeValue(rest), fields, text: t };
  let value: string | undefined;
  for (;;) {
    const symAt = rest.startsWith('SYM=') ? 0 : -1;
    const comma = symAt === 0 ? -1 : rest.indexOf(',');
    const part = comma < 0 ? rest : rest.slice(0, comma);
    if (value === undefined) value = unescapeValue(part);
    else {
      const e = part.indexOf('=');
      fields.set(e < 0 ? part : part.slice(0, e), e < 0 ? '' : unescapeValue(part.slice(e + 1)));
    }
    if (comma < 0) break;
    rest = rest.slice(comma + 1);
  }
  return { key, value: value ?? '', fields, text: t };
}
