/**
 * Time travel for a live guest that records: the `reverse` and `history` capabilities an
 * emulator target can expose, backed by its EmulatorRecorder's trace.
 *
 * The live machine always stays at the end of history. Going back commits the open chunk and
 * opens the trace (read-only, beside the writer: WAL allows it) as a ReplayTarget, which then
 * answers reads and registers (`past`). Going forward again replays from the trace; when that
 * reaches the end of history, `past` is dropped and the caller continues live. Writing memory or
 * registers while in the past would contradict the recorded future: `refuseWriteInPast` says so.
 *
 * Discarding the recorded future (`discard`, behind an explicit request: ::discard) puts the live
 * machine in its exact state at the view's seq S and cuts the trace there. RAM and every vCPU's
 * CPU context come from the trace (the replay target, positioned at S); the scheduler's position,
 * the quantum left, the per-vCPU timers, run states, pending breakpoint skips, the UART and the
 * console length come from the device marks the machine keeps while recording
 * (Machine.keepDeviceMarks: one at each slice start and after each serial access; in between
 * they follow from the instruction count). The trace loses everything after S (the chunk holding
 * S is re-encoded to end there) and the recorder goes on from S.
 *
 * Wiring: EmulatorTarget.record() keeps one LiveHistory per recorded machine, exposes `reverse`
 * and `history` in caps, serves reads/registers/threads/status from `past` while it is set,
 * routes step/resume through `stepForward`/`resumeForward` (a 'live' answer means: now run the
 * machine), and calls `setEvents` with the live breakpoints and watchpoints (and their ids)
 * before each operation in the past.
 */

import { DbgError } from '../../common/errors.js';
import type { EmulatorRecorder } from '../../store/emulator-recorder.js';
import type { History, ReverseExecution, Seq, StopStatus, VirtAddr, WatchKind } from '../target.js';
import { X86_REG } from '../emulator/unicorn.js';
import { ReplayTarget } from './replay-target.js';

export interface LiveEvent {
  /** The live target's id for this event; stops in the past report it (default: the trace's own id). */
  readonly id?: number;
  readonly kind: 'breakpoint' | WatchKind;
  readonly addr: VirtAddr;
  readonly length?: number;
  readonly physical?: boolean;
}

export class LiveHistory {
  private replay: ReplayTarget | undefined;
  /** The recorder's seq and input count when `replay` was opened: it is stale when either moved. */
  private openedAt = -1n;
  private openedInputs = -1;
  private first: Seq | undefined;
  /** Set while the view is in the past. */
  past: ReplayTarget | undefined;
  private events: readonly LiveEvent[] = [];
  /** Breakpoint/watchpoint ids of the open trace -> the live target's ids. */
  private readonly ids = new Map<number, number>();
  readonly reverse: ReverseExecution;
  readonly history: History;

  constructor(private readonly recorder: EmulatorRecorder) {
    this.reverse = {
      bounds: () => {
        const last = this.recorder.seq;
        // The first seq never changes: read once (opening the trace at every live step costs a flush).
        this.first ??= this.trace().caps.reverse!.bounds().first;
        return { first: this.first, last, now: this.past ? this.past.caps.reverse!.bounds().now : last };
      },
      stepBack: (thread) => this.back((t) => t.caps.reverse!.stepBack(thread)),
      resumeBack: () => this.back((t) => t.caps.reverse!.resumeBack()),
      seek: async (seq) => {
        if (seq === this.recorder.seq) {
          this.past = undefined;
          return this.trace().status();
        }
        return this.back((t) => t.caps.reverse!.seek(seq));
      },
    };
    const h = (): History => (this.past ?? this.trace()).caps.history!;
    this.history = {
      get path() {
        return h().path;
      },
      whoWrote: (a, l, t) => h().whoWrote(a, l, t),
      writes: (a, l, t, f, to, limit) => h().writes(a, l, t, f, to, limit),
      when: (pc, limit, opts) => h().when(pc, limit, opts),
      summary: () => h().summary(),
      calls: () => h().calls(),
      activity: (buckets) => h().activity(buckets),
      sql: (q) => h().sql(q),
      sqlInterruptible: (q, signal) => h().sqlInterruptible(q, signal),
    };
  }

  /** The live breakpoints and watchpoints, which reverse and forward replay stop at. */
  setEvents(events: readonly LiveEvent[]): void {
    this.events = events;
    if (this.replay) this.arm(this.replay);
  }

  /** The position of the live machine (the end of the recorded history). */
  get liveSeq(): Seq {
    return this.recorder.seq;
  }

  /** Set the events in the trace's target, replacing the ones set before. */
  private arm(t: ReplayTarget): void {
    const b = t.caps.breakpoints!;
    for (const rid of this.ids.keys()) b.removeBreakpoint(rid);
    this.ids.clear();
    for (const e of this.events) {
      const rid = e.kind === 'breakpoint' ? b.addBreakpoint(e.addr) : b.addWatchpoint(e.addr, e.length ?? 1, e.kind, e.physical);
      this.ids.set(rid, e.id ?? rid);
    }
  }

  /** A stop of the trace's target with the live target's event ids. */
  private mapped(st: StopStatus): StopStatus {
    const r = st.reason;
    if (r.kind !== 'breakpoint' && r.kind !== 'watchpoint') return st;
    return { ...st, reason: { ...r, id: this.ids.get(r.id) ?? r.id } };
  }

  /** The trace as recorded up to the live position (reopened when the machine ran on). */
  private trace(): ReplayTarget {
    const live = this.recorder.seq;
    // A register or memory write at the live position records an input without moving seq.
    if (!this.replay || this.openedAt !== live || this.openedInputs !== this.recorder.inputs) {
      this.recorder.flush();
      this.replay?.close();
      this.replay = ReplayTarget.open(this.recorder.path, { ownRecording: true, lastStep: this.recorder.lastStored });
      this.openedAt = live;
      this.openedInputs = this.recorder.inputs;
      this.ids.clear();
      this.arm(this.replay);
    }
    return this.replay;
  }

  private async back(op: (t: ReplayTarget) => StopStatus | Promise<StopStatus>): Promise<StopStatus> {
    const t = this.past ?? this.trace();
    const st = await op(t);
    this.past = t;
    return this.mapped(st);
  }

  /**
   * One instruction forward in the past ('live' when already at the live position: step the
   * machine). A step that reaches the live position leaves the past (`past` becomes undefined).
   */
  async stepForward(thread: number): Promise<StopStatus | 'live'> {
    if (!this.past) return 'live';
    if (this.past.caps.reverse!.bounds().now === this.recorder.seq) {
      // In the past at the live position itself (after a reverse run that found nothing to undo): the step is live.
      this.past = undefined;
      return 'live';
    }
    const st = await this.past.caps.execution!.step(thread);
    if (st.seq === this.recorder.seq || st.reason.kind === 'history-end') this.past = undefined;
    return this.mapped(st);
  }

  /** Replay forward to the next event; 'live' when none lies before the live position (run on live). */
  async resumeForward(): Promise<StopStatus | 'live'> {
    if (!this.past) return 'live';
    const st = await this.past.caps.execution!.resume();
    if (st.reason.kind === 'history-end') {
      this.past = undefined;
      return 'live';
    }
    // An event at the live position (a write by the last recorded instruction): back to live, stopped there.
    if (st.seq === this.recorder.seq) this.past = undefined;
    return this.mapped(st);
  }

  /** Throws unless at the live position: a write in the past would contradict the recorded future. */
  refuseWriteInPast(what: string): void {
    if (!this.past) return;
    const b = this.reverse.bounds();
    throw new DbgError(
      'state',
      `${what} refused: the view is at seq ${b.now}, in the recorded past (the guest is at ${b.last}); ` +
        `changing the past would discard the ${b.last - b.now} instructions recorded after it. Go back to the present first (::seek ${b.last}), ` +
        `or make seq ${b.now} the present with ::discard (deletes the recorded future)`,
    );
  }

  /**
   * Make the view's position S the present: `rewind` puts the live machine at S with the RAM and
   * CPU contexts (uc_context images) given, the trace is cut at S, and the recorder goes on from
   * there. Returns S. Nothing to do at the live position. `prevPc(vcpu)` (called after `rewind`
   * has taken RAM and contexts) gives the pc of instruction S - 1, which `vcpu` ran: the
   * machine's spin detector needs it (machine.ts, rewind).
   */
  discard(rewind: (seq: Seq, contexts: Buffer[], ram: Buffer, prevPc: (vcpu: number) => bigint) => void): Seq {
    const t = this.past;
    if (!t) return this.recorder.seq;
    const s = BigInt(t.position);
    const m = t.machine;
    m.seek(t.position);
    const contexts = Array.from({ length: m.reader.vcpus }, (_, v) => m.engine(v).saveContext());
    rewind(s, contexts, m.ram, (vcpu) => {
      m.seek(t.position - 1);
      return m.engine(vcpu).readReg(X86_REG.RIP);
    });
    this.recorder.discardAfter(s);
    this.replay?.close();
    this.replay = undefined;
    this.past = undefined;
    this.openedAt = -1n;
    this.ids.clear();
    return s;
  }

  /** The position the view shows. */
  get now(): Seq {
    return this.reverse.bounds().now;
  }

  close(): void {
    this.replay?.close();
    this.replay = undefined;
    this.past = undefined;
  }
}
