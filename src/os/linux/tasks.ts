/**
 * Linux tasks read with vmlinux's types (never offsets by hand): the process list from
 * init_task.tasks, each process's threads (signal->thread_head / thread_node, or thread_group on
 * older kernels), what `ps` shows of a task, and where a sleeping task's registers were saved.
 *
 *   task_struct.__state (or .state)  TASK_* bits; with exit_state, ps's letter (task_state_to_char)
 *   task_struct.thread.sp            the kernel stack pointer saved by __switch_to_asm, pointing at
 *                                    struct inactive_task_frame { r15 r14 r13 r12 bx bp ret_addr }:
 *                                    the task resumes at ret_addr with sp just above the frame
 *   task_struct.on_cpu, thread_info.cpu (or .cpu)   whether and where it runs
 *
 * Lists are followed with a budget, a visited set and readable pointers: a cycle or a node outside
 * the dump ends the walk with a message saying where and after how many tasks (onStop), never an
 * exception half-way through a pipe.
 */

import { DbgError } from '../../common/errors.js';
import { hex } from '../../common/format.js';
import { followPath } from '../../types/print-value.js';
import { sizeOf } from '../../types/type.js';
import type { ObjectSpace, TypedObject } from '../../types/typed-object.js';
import { needObjects, type LinuxPort } from './port.js';

export interface TaskInfo {
  readonly addr: bigint;
  readonly pid: number;
  readonly tgid: number;
  readonly ppid: number;
  /** ps's letter: R S D T t X Z P I. */
  readonly state: string;
  readonly cpu: number;
  readonly onCpu: boolean;
  readonly comm: string;
  readonly kernelThread: boolean;
}

/** Called when a list walk stops early, with why and how many containers it yielded. */
export type OnStop = (message: string) => void;

const MAX_TASKS = 4_000_000;
const PF_KTHREAD = 0x00200000n;
const TASK_REPORT = 0x7fn;
const TASK_IDLE = 0x402n; // TASK_UNINTERRUPTIBLE | TASK_NOLOAD
const TASK_RTLOCK_WAIT = 0x1000n;
const STATE_CHARS = 'RSDTtXZPI';

const perPort = new WeakMap<LinuxPort, LinuxTasks>();

/** The LinuxTasks of a port, made once (its type lookups are what costs). */
export function linuxTasks(port: LinuxPort): LinuxTasks {
  let t = perPort.get(port);
  if (!t) perPort.set(port, (t = new LinuxTasks(port)));
  return t;
}

export class LinuxTasks {
  readonly objects: ObjectSpace;
  private readonly hasThreadNode: boolean;

  constructor(readonly port: LinuxPort) {
    this.objects = needObjects(port, 'the task list');
    this.hasThreadNode = this.has('struct task_struct', 'thread_node');
  }

  private readonly members = new Map<string, boolean>();

  /** Whether `type` has `member` (kernels rename them: __state was state, thread_node is 6.1's). */
  private has(type: string, member: string): boolean {
    const key = `${type}.${member}`;
    let hit = this.members.get(key);
    if (hit === undefined) {
      try {
        followPath(this.objects.types.get(type), 0n, member, undefined);
        hit = true;
      } catch {
        hit = false;
      }
      this.members.set(key, hit);
    }
    return hit;
  }

  private task(addr: bigint): TypedObject {
    return this.objects.at(addr, 'struct task_struct');
  }

  /** init_task's address. */
  initTask(): bigint {
    const a = this.port.symbol('init_task');
    if (a === undefined) throw new DbgError('no-symbol', `${this.port.name}: the kernel has no init_task symbol`);
    return a;
  }

  /**
   * The containers of the circular list_head (or, with `hlist`, the NULL-ended hlist_head) at
   * `head`, each a `type` whose `member` is the node; the head itself is not yielded.
   */
  listHead(head: bigint, type: string, member: string, onStop: OnStop, hlist = false, what = `list of ${type}`): Generator<bigint> {
    return listContainers(this.port, this.objects, head, type, member, onStop, hlist, what);
  }

  /** init_task (pid 0), then every process (thread-group leader) on init_task.tasks. */
  *processes(onStop: OnStop): Generator<bigint> {
    const init = this.initTask();
    yield init;
    const head = init + followPath(this.objects.types.get('struct task_struct'), 0n, 'tasks', undefined).addr;
    yield* this.listHead(head, 'struct task_struct', 'tasks', onStop, false, 'the task list (init_task.tasks)');
  }

  /** The threads of the process whose leader is `leader`, the leader first. */
  *threadsOf(leader: bigint, onStop: OnStop): Generator<bigint> {
    if (this.hasThreadNode) {
      let head: bigint;
      try {
        head = this.task(leader).member('signal').value();
        if (head === 0n) {
          yield leader;
          return;
        }
        head += followPath(this.objects.types.get('struct signal_struct'), 0n, 'thread_head', undefined).addr;
      } catch (e) {
        if (!(e instanceof DbgError)) throw e;
        onStop(`the threads of task ${hex(leader)}: ${e.message}`);
        return;
      }
      let any = false;
      for (const t of this.listHead(head, 'struct task_struct', 'thread_node', onStop, false, `the threads of task ${hex(leader)}`)) {
        any = true;
        yield t;
      }
      if (!any) yield leader; // init_task's signal has no thread list of its own
      return;
    }
    yield leader;
    const head = leader + followPath(this.objects.types.get('struct task_struct'), 0n, 'thread_group', undefined).addr;
    yield* this.listHead(head, 'struct task_struct', 'thread_group', onStop, false, `the threads of task ${hex(leader)}`);
  }

  /** Every thread of every process. */
  *all(onStop: OnStop): Generator<bigint> {
    for (const p of this.processes(onStop)) yield* this.threadsOf(p, onStop);
  }

  info(addr: bigint): TaskInfo {
    const t = this.task(addr);
    const state = this.has('struct task_struct', '__state') ? t.member('__state').value() : t.member('state').value();
    const exit = t.member('exit_state').value();
    let report = (state | exit) & TASK_REPORT;
    if (state === TASK_IDLE) report = TASK_REPORT + 1n;
    if (state === TASK_RTLOCK_WAIT) report = 2n;
    const letter = STATE_CHARS[report === 0n ? 0 : report.toString(2).length] ?? '?';
    const cpu = this.has('struct task_struct', 'thread_info.cpu') ? t.member('thread_info.cpu').value() : this.has('struct task_struct', 'cpu') ? t.member('cpu').value() : 0n;
    return {
      addr,
      pid: Number(t.member('pid').value()),
      tgid: Number(t.member('tgid').value()),
      ppid: Number(t.member('real_parent->pid').value()),
      state: letter,
      cpu: Number(cpu),
      onCpu: this.has('struct task_struct', 'on_cpu') ? t.member('on_cpu').value() !== 0n : false,
      comm: t.member('comm').string(16),
      kernelThread: (t.member('flags').value() & PF_KTHREAD) !== 0n,
    };
  }

  /**
   * The registers a task switched out with (x86-64 names): frame 0 is inactive_task_frame's
   * ret_addr, with rsp just above the frame, and the callee-saved registers it holds.
   */
  savedContext(addr: bigint): Map<string, bigint> {
    const sp = this.task(addr).member('thread.sp').value();
    const frame = this.objects.at(sp, 'struct inactive_task_frame');
    const regs = new Map<string, bigint>();
    regs.set('rip', frame.member('ret_addr').value());
    regs.set('rsp', sp + BigInt(sizeOf(frame.type) ?? 56));
    for (const [reg, member] of [['rbp', 'bp'], ['rbx', 'bx'], ['r12', 'r12'], ['r13', 'r13'], ['r14', 'r14'], ['r15', 'r15']] as const) {
      if (this.has('struct inactive_task_frame', member)) regs.set(reg, frame.member(member).value());
    }
    return regs;
  }
}

/**
 * The containers of the circular list_head (or, with `hlist`, the NULL-ended hlist_head) at
 * `head`, each a `type` whose `member` is the node; the head itself is not yielded. Followed with
 * a budget, a visited set and readable pointers (see the file comment).
 */
export function* listContainers(port: LinuxPort, objects: ObjectSpace, head: bigint, type: string, member: string, onStop: OnStop, hlist = false, what = `list of ${type}`): Generator<bigint> {
  const off = followPath(objects.types.get(type), 0n, member, undefined).addr;
  const seen = new Set<bigint>();
  let yielded = 0;
  const next = (at: bigint): bigint | undefined => {
    try {
      return port.read(at, 8).readBigUInt64LE(0);
    } catch (e) {
      if (!(e instanceof DbgError)) throw e;
      onStop(`${what}: the node at ${hex(at)} cannot be read (${e.message}); stopped after ${yielded}`);
      return undefined;
    }
  };
  let node = next(head);
  for (;;) {
    if (node === undefined) return;
    if (hlist ? node === 0n : node === head) return;
    if (node === 0n) {
      onStop(`${what}: a NULL next pointer after ${yielded} (the list is not circular)`);
      return;
    }
    if (seen.has(node)) {
      onStop(`${what}: cycles back to ${hex(node - off)} after ${yielded} without returning to the head`);
      return;
    }
    if (yielded >= MAX_TASKS) {
      onStop(`${what}: stopped after ${yielded}`);
      return;
    }
    seen.add(node);
    const after = next(node);
    if (after === undefined) return;
    yield node - off;
    yielded++;
    node = after;
  }
}
