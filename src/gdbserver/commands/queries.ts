/**
 * qSupported[:FEATURES] · QStartNoAckMode · QEnableErrorStrings · qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH · qAttached[:PID]
 * · qRcmd,HEX · qOffsets · qSymbol:: · vMustReplyEmpty · QCatchSyscalls:0 | QCatchSyscalls:1[;NR]...
 * · QThreadEvents:0 | QThreadEvents:1
 */

import { BadPacket, type Request } from '../request.js';
import { addrLength, hexBytes } from './args.js';

export function parseQuery(packet: string): Request | undefined {
  if (packet === 'qSupported' || packet.startsWith('qSupported:')) {
    return { kind: 'query-supported', features: packet.length > 11 ? packet.slice(11).split(';') : [] };
  }
  if (packet === 'QStartNoAckMode') return { kind: 'start-noack' };
  if (packet.startsWith('QCatchSyscalls:')) return parseCatchSyscalls(packet);
  if (packet.startsWith('QThreadEvents:')) {
    const flag = packet.slice('QThreadEvents:'.length);
    if (flag !== '0' && flag !== '1') throw new BadPacket(packet, 'expected QThreadEvents:0 or QThreadEvents:1');
    return { kind: 'thread-events', on: flag === '1' };
  }
  if (packet === 'QEnableErrorStrings') return { kind: 'enable-error-strings' };
  if (packet === 'qAttached' || packet.startsWith('qAttached:')) return { kind: 'attached' };
  if (packet === 'qOffsets') return { kind: 'offsets' };
  if (packet.startsWith('qSymbol:')) return { kind: 'symbol-lookup' };
  if (packet === 'vMustReplyEmpty') return { kind: 'must-reply-empty' };
  if (packet.startsWith('qRcmd,')) {
    return { kind: 'monitor', command: hexBytes(packet, packet.slice(6), 'command').toString('utf8') };
  }
  if (packet.startsWith('qXfer:')) {
    const [, object, op, annex, range, ...rest] = packet.split(':');
    if (object !== 'features' && object !== 'threads' && object !== 'libraries-svr4' && object !== 'auxv' && object !== 'exec-file') {
      return undefined; // unsupported object: empty reply
    }
    if (op !== 'read' || range === undefined || rest.length > 0) {
      throw new BadPacket(packet, 'expected qXfer:OBJECT:read:ANNEX:OFFSET,LENGTH');
    }
    const { addr, length } = addrLength(packet, range, 0x7fffffff);
    return { kind: 'xfer-read', object, annex: annex ?? '', offset: Number(addr), length };
  }
  return undefined;
}

/** QCatchSyscalls:0 (stop catching), QCatchSyscalls:1 (every call), QCatchSyscalls:1;NR;NR... (hex numbers). */
function parseCatchSyscalls(packet: string): Request {
  const [flag, ...nrs] = packet.slice('QCatchSyscalls:'.length).split(';');
  if (flag === '0' && nrs.length === 0) return { kind: 'catch-syscalls', on: false };
  if (flag !== '1') throw new BadPacket(packet, 'expected QCatchSyscalls:0 or QCatchSyscalls:1[;NR]...');
  if (nrs.length === 0) return { kind: 'catch-syscalls', on: true, nrs: 'all' };
  const list = nrs.map((n) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(n)) throw new BadPacket(packet, `"${n}" is not a system call number in hex`);
    return parseInt(n, 16);
  });
  return { kind: 'catch-syscalls', on: true, nrs: list };
}
