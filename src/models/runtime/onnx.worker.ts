/**
 * A worker thread that owns onnxruntime sessions (onnx.session.ts). onnxruntime-node's run() blocks
 * the thread it is called on, so sessions of models that cost more than a thread hop live here and
 * the main thread keeps parsing, validating and answering.
 */
import { parentPort } from 'node:worker_threads';
import { loadSession, OrtSession, runSession } from './onnx.session';
import type { WorkerReply, WorkerRequest } from './worker.protocol';

const sessions = new Map<string, OrtSession>();

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.op) {
    case 'load': {
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
      return { id: request.id, ok: true };
    }
  }
}

parentPort!.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (reply) => parentPort!.postMessage(reply),
    (err: Error) => parentPort!.postMessage({ id: request.id, ok: false, error: err.message } satisfies WorkerReply),
  );
});
