/**
 * The trace writer's thread (see trace-writer.ts): runs each op the recording thread posts on a
 * TraceDbWriter of its own connection, reports the first failure on `port`, and ends after `close`.
 *
 * workerData: { path, shared (SharedArrayBuffer of SHARED_BYTES), port (MessagePort) }, or
 * { waitForStart: true } for a thread started ahead (prewarmTraceWriter), whose first message
 * gives those.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { nativeRecorder } from './native-recorder.js';
import { TraceDbWriter, type ChunkRecord } from './trace-db-writer.js';
import { asBuffer, WriterSide, type WriterOp, type WriterStart } from './trace-writer.js';

// a chunk handed over does not take the guest thread's core the moment it arrives (recorder.c)
nativeRecorder().batchThread();

/** The writer of the trace `start` names: ops are run from here on. */
function serve(start: WriterStart): void {
  const { path, shared, port } = start;
  const side = new WriterSide(() => new TraceDbWriter(path), shared, (f) => port.postMessage(f));
  process.on('exit', () => side.ended());
  parentPort!.on('message', (op: WriterOp) => {
    if (op.k === 'chunk') {
      const c = op.c;
      op = { k: 'chunk', c: { ...c, pcs: asBuffer(c.pcs), lineImages: asBuffer(c.lineImages), ckpts: asBuffer(c.ckpts) } satisfies ChunkRecord };
    }
    side.run(op);
    if (op.k === 'close') {
      parentPort!.close();
      port.close();
    }
  });
}

const data = workerData as WriterStart | { waitForStart: true };
// started ahead (prewarmTraceWriter): the first message names the trace
if ('waitForStart' in data) parentPort!.once('message', (start: WriterStart) => serve(start));
else serve(data);
