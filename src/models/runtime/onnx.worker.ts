/**
 * A worker thread that owns onnxruntime sessions (onnx.session.ts). onnxruntime-node's run() blocks
 * the thread it is called on, so sessions of models that cost more than a thread hop live here and
 * the main thread keeps parsing, validating and answering.
 */
import * as path from 'node:path';
import { parentPort } from 'node:worker_threads';
import type { TensorData } from '../model.types';
import { loadSession, OrtSession, runSession } from './onnx.session';
import type { WorkerReply, WorkerRequest } from './worker.protocol';

const sessions = new Map<string, OrtSession>();

/**
 * Test fault injection, off unless ONNX_WORKER_FAULT is set (read once, as the thread starts). With
 * `exit-on-run:<model>:<value>` the thread exits, without answering, when it receives a run of <model> (its folder in
 * the model repository) whose first input holds <value> anywhere, so also in a run coalesced with other requests: a
 * worker that dies holding a run. Nothing else can cause that safely: stopping a thread from outside while
 * onnxruntime runs in it aborts the whole process, whereas this exit comes from the thread's own JavaScript before
 * the run starts. Runs without the value work, so the worker that replaces this one serves the same model.
 */
const FAULT = /^exit-on-run:([^:]+):(.+)$/.exec(process.env.ONNX_WORKER_FAULT ?? '');
/** EX_SOFTWARE, reported in the error of each run lost with the thread. Not exported: importing this file runs it. */
const FAULT_EXIT_CODE = 70;
/** Sessions of the faulted model; empty unless the fault is set, so a run pays only for reading its size. */
const faulted = new Set<string>();

function faultHits(feeds: Record<string, TensorData>): boolean {
  const first = Object.values(feeds)[0] as TensorData | undefined;
  const value = Number(FAULT![2]);
  return first !== undefined && Array.prototype.some.call(first.data, (v: unknown) => Number(v) === value);
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.op) {
    case 'load': {
      if (FAULT && path.basename(path.dirname(path.dirname(request.path))) === FAULT[1]) faulted.add(request.key);
      const { session, inputs, outputs, warmUpError, cost } = await loadSession(request.path, request.options);
      sessions.set(request.key, session);
      return { id: request.id, ok: true, inputs, outputs, warmUpError, cost };
    }
    case 'run': {
      const session = sessions.get(request.key);
      if (!session) throw new Error(`no session ${request.key} in this worker`);
      return { id: request.id, ok: true, results: await runSession(session, request.feeds) };
    }
    case 'release': {
      await sessions.get(request.key)?.release();
      sessions.delete(request.key);
      faulted.delete(request.key);
      return { id: request.id, ok: true };
    }
  }
}

parentPort!.on('message', (request: WorkerRequest) => {
  if (faulted.size > 0 && request.op === 'run' && faulted.has(request.key) && faultHits(request.feeds)) {
    process.exit(FAULT_EXIT_CODE);
  }
  handle(request).then(
    (reply) => parentPort!.postMessage(reply),
    (err: Error) => parentPort!.postMessage({ id: request.id, ok: false, error: err.message } satisfies WorkerReply),
  );
});
