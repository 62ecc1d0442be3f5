/**
 * A worker thread that owns onnxruntime sessions. onnxruntime-node's run() blocks the thread it is
 * called on, so sessions live here and the main thread keeps parsing, validating and answering.
 * This is the only file that imports onnxruntime-node.
 */
import * as ort from 'onnxruntime-node';
import { parentPort } from 'node:worker_threads';
import { ElementType, isElementType, zeros } from '../element-types';
import type { TensorData, ValueInfo } from '../model.types';
import { product } from '../tensor-rows';
import type { WorkerReply, WorkerRequest } from './worker.protocol';

// Where the runtime has Float16Array (Node 24), onnxruntime-common 1.30 hands float16 tensors to
// the native binding as one, and the binding reads it as no data at all ("not enough space:
// expected 12, got 0"). This thread runs nothing but onnxruntime, which looks for Float16Array only
// when it makes its first tensor: without it, float16 tensors are Uint16Array half bits, as on
// Node 20 and as the rest of the service keeps them (element-types.ts).
delete (globalThis as { Float16Array?: unknown }).Float16Array;

const sessions = new Map<string, ort.InferenceSession>();

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false };
  if (!isElementType(meta.type)) {
    throw new Error(`tensor '${meta.name}' has element type ${meta.type}, which this service does not support`);
  }
  // Symbolic dimensions come back as strings ("N", "batch"); both they and unknown sizes mean dynamic.
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  return { name: meta.name, isTensor: true, type: meta.type, shape };
}

async function run(
  session: ort.InferenceSession,
  feeds: Record<string, TensorData>,
  outputNames?: string[],
): Promise<Record<string, TensorData>> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  const results = outputNames ? await session.run(ortFeeds, outputNames) : await session.run(ortFeeds);
  const out: Record<string, TensorData> = {};
  for (const [name, tensor] of Object.entries(results)) {
    out[name] = { type: tensor.type as ElementType, dims: tensor.dims, data: tensor.data };
  }
  return out;
}

/** Feeds of zeros (dynamic dimensions as 1) so the first real request does not pay the cold start. */
function zeroFeeds(inputs: readonly ValueInfo[]): Record<string, TensorData> | undefined {
  const feeds: Record<string, TensorData> = {};
  for (const input of inputs) {
    if (!input.isTensor) return undefined;
    const dims = input.shape.map((d) => (d === -1 ? 1 : d));
    feeds[input.name] = { type: input.type, dims, data: zeros(input.type, product(dims)) };
  }
  return feeds;
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.op) {
    case 'load': {
      const session = await ort.InferenceSession.create(request.path, {
        intraOpNumThreads: request.options.intraOpNumThreads,
        interOpNumThreads: request.options.interOpNumThreads,
        graphOptimizationLevel: request.options.graphOptimizationLevel,
        executionProviders: ['cpu'],
        // onnxruntime would print its own coloured lines to stderr, breaking the JSON log stream; a
        // failed run is reported through the service's error path (and log line) instead.
        logSeverityLevel: 4,
        enableCpuMemArena: request.options.cpuMemArena ?? true,
      });
      try {
        const inputs = session.inputMetadata.map(toValueInfo);
        const outputs = session.outputMetadata.map(toValueInfo);
        let warmUp: string | undefined;
        const feeds = zeroFeeds(inputs);
        const tensorOutputs = outputs.filter((o) => o.isTensor).map((o) => o.name);
        if (feeds && tensorOutputs.length) {
          await run(session, feeds, tensorOutputs).catch((err: Error) => (warmUp = err.message));
        }
        sessions.set(request.key, session);
        return { id: request.id, ok: true, inputs, outputs, warmUpError: warmUp };
      } catch (err) {
        await session.release();
        throw err;
      }
    }
    case 'run': {
      const session = sessions.get(request.key);
      if (!session) throw new Error(`no session ${request.key} in this worker`);
      return { id: request.id, ok: true, results: await run(session, request.feeds) };
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
