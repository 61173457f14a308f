/**
 * parseRequest with the requests of recent packets kept, by their text. gdb sends the same few
 * packets at every stepi (`vCont;s:p1.1;c:p1.-1`, `qXfer:threads:read::0,1000`, the `m` of the
 * stack line it unwinds through): parsing them again (splits, hex, BigInt) was a tenth of the
 * server's own work per step.
 *
 * Only requests that are plain values are kept: none that holds bytes of its payload (M, X, G, P
 * carry data), and none from a packet longer than KEPT_LENGTH. A packet that fails to parse is
 * parsed (and fails) again each time.
 */

import type { Request } from '../request.js';
import { parseRequest } from './parse-request.js';

/** Requests made of numbers and strings alone, and sent again and again. */
const KEPT = new Set<Request['kind']>(['resume', 'reverse', 'read-memory', 'xfer-read', 'set-thread', 'thread-info', 'thread-alive', 'insert-point', 'remove-point', 'read-register', 'read-registers', 'halt-reason', 'current-thread']);
const KEPT_LENGTH = 64;
/** The memo is emptied when it holds this many (an `m` at each new address fills it). */
const MAX_KEPT = 64;

export class RequestMemo {
  private readonly kept = new Map<string, Request>();

  /** The request of `payload`; throws BadPacket as parseRequest does. */
  parse(payload: Buffer): Request {
    if (payload.length > KEPT_LENGTH) return parseRequest(payload);
    const packet = payload.toString('latin1');
    const hit = this.kept.get(packet);
    if (hit) return hit;
    const req = parseRequest(payload, packet);
    if (KEPT.has(req.kind)) {
      if (this.kept.size >= MAX_KEPT) this.kept.clear();
      this.kept.set(packet, req);
    }
    return req;
  }
}
