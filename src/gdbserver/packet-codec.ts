/**
 * Framing of the GDB remote serial protocol: bytes in, packets out, and back.
 *
 *   $ <payload> # <2 hex digits: sum of payload bytes mod 256>
 *
 * Inside the payload (as sent, before decoding):
 *   `}` x     escaped byte: x ^ 0x20 (gdb escapes $ # } and * this way)
 *   c `*` n   run-length: c repeated (n - 29) more times (n is a printable count byte)
 *
 * Outside packets the client sends `+` (ack), `-` (nak: resend) and the 0x03 interrupt byte.
 * Anything else between packets is noise and skipped.
 *
 * The decoder is a byte-at-a-time state machine that never throws: a packet that is too long (as
 * sent, or once its runs are expanded) or whose checksum is wrong comes out as an event, and the
 * server decides what to answer. Its memory is bounded by maxPayload whatever a client sends:
 * one `c*~` (3 bytes) expands to 98, so a packet is measured before anything is expanded.
 */

export type CodecEvent =
  | { kind: 'packet'; payload: Buffer; checksumOk: boolean }
  | { kind: 'oversized'; length: number }
  | { kind: 'ack' }
  | { kind: 'nak' }
  | { kind: 'interrupt' };

const DOLLAR = 0x24;
const HASH = 0x23;
const BRACE = 0x7d;
const STAR = 0x2a;

// Decoder states (numbers: a switch on them is cheaper than on strings in V8's baseline code,
// where a fresh server's first packets run).
const IDLE = 0;
const BODY = 1;
const SUM1 = 2;
const SUM2 = 3;

/** The value of hex digit `b` (an ASCII code), or -1. */
function hexDigit(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x61 + 10 : -1;
}

export class PacketCodec {
  private state = IDLE;
  /** The payload as sent so far (its first maxPayload bytes), grown by doubling. */
  private body = Buffer.alloc(256);
  private length = 0;
  private sum = 0;
  /** The first checksum digit's value (-1: not a hex digit). */
  private sumHigh = 0;

  /** `maxPayload`: longest payload (as sent) accepted; longer ones are dropped whole. */
  constructor(readonly maxPayload: number) {}

  /** No packet is partly fed: the next byte starts something new. */
  get idle(): boolean {
    return this.state === IDLE;
  }

  /** Feed bytes; returns the events they complete, in order. */
  feed(data: Buffer): CodecEvent[] {
    const out: CodecEvent[] = [];
    const n = data.length;
    for (let i = 0; i < n; i++) {
      const b = data[i]!;
      switch (this.state) {
        case IDLE:
          if (b === DOLLAR) this.start();
          else if (b === 0x2b) out.push({ kind: 'ack' });
          else if (b === 0x2d) out.push({ kind: 'nak' });
          else if (b === 0x03) out.push({ kind: 'interrupt' });
          break;
        case BODY:
          if (b === HASH) {
            this.state = SUM1;
          } else if (b === DOLLAR) {
            // A new packet start inside a packet: the previous one was cut short; start over.
            this.start();
          } else {
            if (this.length < this.maxPayload) {
              if (this.length === this.body.length) this.grow();
              this.body[this.length] = b;
            }
            this.length++;
            this.sum = (this.sum + b) & 0xff;
          }
          break;
        case SUM1:
          this.sumHigh = hexDigit(b);
          this.state = SUM2;
          break;
        case SUM2: {
          this.state = IDLE;
          const low = hexDigit(b);
          const raw = this.body.subarray(0, Math.min(this.length, this.maxPayload));
          const decoded = this.length > this.maxPayload ? undefined : decodePayload(raw, this.maxPayload);
          if (decoded === undefined) {
            out.push({ kind: 'oversized', length: this.length > this.maxPayload ? this.length : decodedLength(raw) });
          } else {
            const sent = this.sumHigh < 0 || low < 0 ? -1 : this.sumHigh * 16 + low;
            // A copy: the body buffer is reused for the next packet.
            out.push({ kind: 'packet', payload: decoded === raw ? Buffer.from(raw) : decoded, checksumOk: sent === this.sum });
          }
          if (this.body.length > 65536) this.body = Buffer.alloc(256); // do not hold a big one while idle
          break;
        }
      }
    }
    return out;
  }

  /** True while a packet has started but not ended (a client vanishing now left it half-sent). */
  get midPacket(): boolean {
    return this.state !== IDLE;
  }

  private start(): void {
    this.state = BODY;
    this.length = 0;
    this.sum = 0;
  }

  private grow(): void {
    const bigger = Buffer.alloc(Math.min(this.body.length * 2, this.maxPayload));
    this.body.copy(bigger);
    this.body = bigger;
  }
}

/**
 * Undo `}` escapes and expand run-length encoding, straight into a Buffer of the decoded size.
 * Undefined when the decoded payload would be longer than `max` bytes (nothing is allocated then).
 */
export function decodePayload(raw: Buffer, max = Infinity): Buffer | undefined {
  if (raw.indexOf(BRACE) < 0 && raw.indexOf(STAR) < 0) return raw.length > max ? undefined : raw;
  const size = decodedLength(raw);
  if (size > max) return undefined;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === BRACE && i + 1 < raw.length) {
      out[o++] = raw[++i]! ^ 0x20;
    } else if (b === STAR && i + 1 < raw.length && o > 0) {
      const n = raw[++i]! - 29;
      if (n > 0) out.fill(out[o - 1]!, o, o + n);
      o += Math.max(0, n);
    } else {
      out[o++] = b;
    }
  }
  return out;
}

/** The length decodePayload would produce, counted without expanding anything. */
export function decodedLength(raw: Buffer): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === BRACE && i + 1 < raw.length) {
      i++;
      n++;
    } else if (b === STAR && i + 1 < raw.length && n > 0) {
      n += Math.max(0, raw[++i]! - 29);
    } else {
      n++;
    }
  }
  return n;
}

export function checksum(data: Buffer): number {
  let s = 0;
  for (let i = 0; i < data.length; i++) s += data[i]!;
  return s & 0xff;
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Frame a reply: escape what must be escaped, add the checksum. A text payload is written straight
 * into the framed buffer (one allocation): replies are made for every packet, the first ones in
 * V8's baseline code.
 */
export function encodePacket(payload: string | Buffer): Buffer {
  let framed: Buffer;
  let n: number;
  if (typeof payload === 'string') {
    n = payload.length;
    framed = Buffer.allocUnsafe(n + 4);
    framed.write(payload, 1, 'latin1');
  } else {
    n = payload.length;
    framed = Buffer.allocUnsafe(n + 4);
    payload.copy(framed, 1);
  }
  framed[0] = DOLLAR;
  if (needsEscape(framed.subarray(1, n + 1))) {
    const raw = framed.subarray(1, n + 1);
    const out: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const b = raw[i]!;
      if (b === DOLLAR || b === HASH || b === BRACE || b === STAR) out.push(BRACE, b ^ 0x20);
      else out.push(b);
    }
    n = out.length;
    framed = Buffer.allocUnsafe(n + 4);
    framed[0] = DOLLAR;
    for (let i = 0; i < n; i++) framed[i + 1] = out[i]!;
  }
  const sum = checksum(framed.subarray(1, n + 1));
  framed[n + 1] = HASH;
  framed[n + 2] = HEX_DIGITS[sum >> 4]!;
  framed[n + 3] = HEX_DIGITS[sum & 15]!;
  return framed;
}

/**
 * A reply that is `data` as hex (m): framed straight from the bytes, with run-length encoding as
 * gdbserver does it (gdb expands it): a run of 4 to 98 equal characters becomes the character,
 * `*` and a count character (repeats + 29), never `#` or `$` (6 and 7 repeats are sent as 5).
 * Zero-filled memory shrinks up to 30 times, which is what gdb spends its time decoding.
 */
export function encodeHexPacket(data: Buffer, prefix = ''): Buffer {
  // The hex digits are made as they are framed (hexChar): no hex string, and no Buffer of it.
  const n = data.length * 2;
  const out = Buffer.allocUnsafe(1 + prefix.length + n + 3);
  out[0] = DOLLAR;
  let o = 1 + out.write(prefix, 1, 'latin1');
  let sum = 0;
  for (let i = 0; i < prefix.length; i++) sum += prefix.charCodeAt(i);
  let i = 0;
  while (i < n) {
    const c = hexChar(data, i);
    let j = i + 1;
    while (j < n && j - i < 98 && hexChar(data, j) === c) j++;
    let repeats = j - i - 1;
    if (repeats >= 3) {
      if (repeats === 6 || repeats === 7) repeats = 5;
      out[o++] = c;
      out[o++] = STAR;
      out[o++] = repeats + 29;
      sum += c + STAR + repeats + 29;
      i += repeats + 1;
    } else {
      out[o++] = c;
      sum += c;
      i++;
    }
  }
  out[o++] = HASH;
  out[o++] = HEX_DIGITS[(sum >> 4) & 15]!;
  out[o++] = HEX_DIGITS[sum & 15]!;
  return out.subarray(0, o);
}

/** Hex digit `i` of `data` as a character code: the high nibble of byte i/2 first. */
function hexChar(data: Buffer, i: number): number {
  const b = data[i >> 1]!;
  return HEX_DIGITS[(i & 1) === 0 ? b >> 4 : b & 15]!;
}

function needsEscape(raw: Buffer): boolean {
  return raw.indexOf(DOLLAR) >= 0 || raw.indexOf(HASH) >= 0 || raw.indexOf(BRACE) >= 0 || raw.indexOf(STAR) >= 0;
}
