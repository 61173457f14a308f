/**
 * A stand-in for native/ptrace that never runs or changes the process: the GDB server's rehearsal
 * (rehearsal.ts) steps and hits breakpoints on a ProcessTarget over it, so that V8 has compiled
 * the resume path (vCont, Z0/z0, the stop and its reply) before gdb's first packet.
 *
 * Why: a fresh `dbg run --gdb` served its first few hundred breakpoint hits from V8's interpreter
 * and baseline code while the optimising compiler caught up on the same two cores: V8's worker
 * threads took ~460 µs of CPU per hit (gdbserver's whole hit: ~600 µs) in a session of 500.
 *
 * It answers from a copy of one thread's registers taken when it is made: a step moves pc on by
 * one, a continue stops at the first breakpoint inserted (else as interrupted), and the stop
 * replies of both go out ahead as the tracer's do. Memory is read from the process itself
 * (/proc/PID/mem, read only); writes, breakpoints and debug registers are only counted, never put
 * in.
 */

import { writeSync } from 'node:fs';
import { encodePacket } from '../../gdbserver/packet-codec.js';
import { SO_REPLY, SO_SENT, STOP_BYTES, REGS_GET, REGS_SET, XSTATE_GET, type NativeEvent, type PtraceAddon } from './ptrace-addon.js';

const RIP = 16 * 8; // user_regs_struct.rip

export function dryTracer(real: PtraceAddon, pid: number, gp: Buffer, xsave: Buffer): PtraceAddon {
  const regs = Buffer.from(gp);
  const breakpoints = new Set<bigint>();
  let ahead: { fd: number; step: string; breakpoint: string; registers: Int32Array; plain: BigUint64Array } | undefined;
  const stop = (out: Buffer, kind: string, sendAhead = false): true => {
    out.fill(0);
    out.write(kind, 0, 'latin1');
    out.writeInt32LE(pid, 24);
    out.writeInt32LE(1, 44);
    regs.copy(out, 216);
    if (sendAhead) replyAhead(out, kind);
    return true;
  };
  /**
   * The stop reply the tracer sends itself (ptrace.c's send_ahead), sent the same way to the same
   * socket, so that the rehearsal runs the server's code for it: a step's, and a hit's at a plain
   * breakpoint.
   */
  const replyAhead = (out: Buffer, kind: string): void => {
    const at = out.readBigUInt64LE(48);
    const prefix = !ahead ? undefined : kind === 'step' ? ahead.step : kind === 'breakpoint' && ahead.breakpoint && ahead.plain.includes(at) ? ahead.breakpoint : undefined;
    if (!ahead || prefix === undefined) return;
    let payload = `${prefix}${pid.toString(16)};`;
    for (let i = 0; i < ahead.registers.length; i += 2) payload += `${ahead.registers[i]!.toString(16).padStart(2, '0')}:${regs.toString('hex', ahead.registers[i + 1]!, ahead.registers[i + 1]! + 8)};`;
    const reply = encodePacket(payload);
    let written = 0;
    try {
      written = writeSync(ahead.fd, reply);
    } catch {
      // as the tracer: what did not go, the server sends
    }
    out.writeInt32LE(written, SO_SENT);
    out.writeInt32LE(reply.length, SO_SENT + 4);
    reply.copy(out, SO_REPLY);
  };
  const none = (): void => undefined;
  return {
    spawn: () => pid,
    attach: () => pid,
    detach: none,
    kill: none,
    threads: () => [pid],
    regs: (op, _tid, buf) => {
      if (op === REGS_GET) return regs.copy(buf);
      if (op === REGS_SET) return buf.copy(regs);
      if (op === XSTATE_GET) return xsave.copy(buf);
      return buf.length;
    },
    setDebugRegs: none,
    readMemory: (addr, into) => real.readMemory(addr, into),
    writeMemory: (_addr, data) => data.length,
    insertBreakpoint: (addr) => {
      breakpoints.add(addr);
      return true;
    },
    removeBreakpoint: (addr) => {
      breakpoints.delete(addr);
    },
    interrupt: none,
    signalPolicy: none,
    catchSyscall: none,
    catchEvents: none,
    drainEvents: (): NativeEvent[] => [],
    resume: (mode, _tid, _signal, out, sendAhead) => {
      if (out.length < STOP_BYTES) throw new RangeError('resume: the stop buffer is too short');
      if (mode === 2) {
        regs.writeBigUInt64LE(regs.readBigUInt64LE(RIP) + 1n, RIP);
        return stop(out, 'step', sendAhead);
      }
      const at = breakpoints.values().next();
      if (at.done) return stop(out, 'interrupted');
      regs.writeBigUInt64LE(at.value, RIP);
      stop(out, 'breakpoint');
      out.writeBigUInt64LE(at.value, 48);
      if (sendAhead) replyAhead(out, 'breakpoint');
      return true;
    },
    pid: () => pid,
    softWatch: none,
    serveAhead: none,
    replyAhead: (fd, step, breakpoint, registers, plain) => {
      ahead = { fd, step, breakpoint, registers: Int32Array.from(registers), plain: BigUint64Array.from(plain) };
    },
  };
}
