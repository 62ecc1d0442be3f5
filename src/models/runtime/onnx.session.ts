/**
 * onnxruntime-node sessions, for the inference workers (onnx.worker.ts) and for inline runs on the
 * main thread (onnx.runtime.ts). This is the only file that imports onnxruntime-node.
 */
import * as ort from 'onnxruntime-node';
import { ElementType, isElementType, zeros } from '../element-types';
import type { TensorData, ValueInfo } from '../model.types';
import { product } from '../tensor-rows';
import type { LoadOptions, RunCost } from './model-runtime.interface';

/**
 * Where the runtime has Float16Array (Node 24), onnxruntime-common 1.30 hands float16 tensors to the
 * native binding as one, and the binding reads it as no data at all ("not enough space: expected 12,
 * got 0"). onnxruntime-common looks for Float16Array once, when it makes its first tensor: made here
 * with Float16Array out of sight, float16 tensors are Uint16Array half bits, as on Node 20 and as the
 * rest of the service keeps them (element-types.ts), on the main thread and in workers alike; the
 * global itself is put back for everything else.
 */
function useHalfBitsForFloat16(): void {
  const scope = globalThis as { Float16Array?: unknown };
  const own = Object.getOwnPropertyDescriptor(scope, 'Float16Array');
  if (own) delete scope.Float16Array;
  try {
    new ort.Tensor('float32', new Float32Array(0), [0]);
  } finally {
    if (own) Object.defineProperty(scope, 'Float16Array', own);
  }
}
useHalfBitsForFloat16();

export type OrtSession = ort.InferenceSession;

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false };
  if (!isElementType(meta.type)) {
    throw new Error(`tensor '${meta.name}' has element type ${meta.type}, which this service does not support`);
  }
  // Symbolic dimensions come back as strings ("N", "batch"); both they and unknown sizes mean dynamic.
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  return { name: meta.name, isTensor: true, type: meta.type, shape };
}

export async function runSession(
  session: ort.InferenceSession,
  feeds: Readonly<Record<string, TensorData>>,
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

/** Feeds of zeros, dynamic dimensions as 1 (the first as `rows`), or undefined for non-tensor inputs. */
function zeroFeeds(inputs: readonly ValueInfo[], rows = 1): Record<string, TensorData> | undefined {
  const feeds: Record<string, TensorData> = {};
  for (const input of inputs) {
    if (!input.isTensor) return undefined;
    const dims = input.shape.map((d, i) => (d === -1 ? (i === 0 ? rows : 1) : d));
    feeds[input.name] = { type: input.type, dims, data: zeros(input.type, product(dims)) };
  }
  return feeds;
}

/** The fastest of a few runs, in µs: noise on a shared machine only ever adds time. */
async function fastestRunUs(session: ort.InferenceSession, feeds: Record<string, TensorData>, outputs: string[]) {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    await runSession(session, feeds, outputs);
    best = Math.min(best, (performance.now() - started) * 1000);
    // A run this long is a worker's model whatever the exact figure: do not hold the load for more.
    if (best > 50_000) break;
  }
  return best;
}

/**
 * A run of one row and a run of `rows` rows, timed, so that a run's cost can be estimated for any
 * batch. Models with a non-batch dynamic dimension have a cost no warm-up can know: their inputs
 * then decide, and the cost is left unmeasured.
 */
async function measure(
  session: ort.InferenceSession,
  inputs: readonly ValueInfo[],
  outputs: string[],
  rows: number,
): Promise<RunCost | undefined> {
  const tensors = inputs.filter((i) => i.isTensor);
  if (tensors.length !== inputs.length || tensors.some((i) => i.shape.slice(1).includes(-1))) return undefined;
  const batchable = tensors.length > 0 && tensors.every((i) => i.shape[0] === -1);
  const one = await fastestRunUs(session, zeroFeeds(inputs, 1)!, outputs);
  if (!batchable || rows <= 1) return { perRunUs: one, perRowUs: 0, rows: 1 };
  const many = await fastestRunUs(session, zeroFeeds(inputs, rows)!, outputs);
  const perRowUs = Math.max(0, (many - one) / (rows - 1));
  return { perRunUs: Math.max(0, one - perRowUs), perRowUs, rows };
}

export interface LoadedSession {
  readonly session: ort.InferenceSession;
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  readonly warmUpError?: string;
  readonly cost?: RunCost;
}

/** Creates a session, warms it up with zeros so the first request does not pay the cold start, and times it if asked */
export async function loadSession(file: string, options: LoadOptions): Promise<LoadedSession> {
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: options.intraOpNumThreads,
    interOpNumThreads: options.interOpNumThreads,
    graphOptimizationLevel: options.graphOptimizationLevel,
    executionProviders: ['cpu'],
    // onnxruntime would print its own coloured lines to stderr, breaking the JSON log stream; a
    // failed run is reported through the service's error path (and log line) instead.
    logSeverityLevel: 4,
    enableCpuMemArena: options.cpuMemArena ?? true,
  });
  try {
    const inputs = session.inputMetadata.map(toValueInfo);
    const outputs = session.outputMetadata.map(toValueInfo);
    let warmUpError: string | undefined;
    let cost: RunCost | undefined;
    const feeds = zeroFeeds(inputs);
    const tensorOutputs = outputs.filter((o) => o.isTensor).map((o) => o.name);
    if (feeds && tensorOutputs.length) {
      await runSession(session, feeds, tensorOutputs).catch((err: Error) => (warmUpError = err.message));
      if (!warmUpError && options.measureRows !== undefined) {
        cost = await measure(session, inputs, tensorOutputs, options.measureRows).catch(() => undefined);
      }
    }
    return { session, inputs, outputs, warmUpError, cost };
  } catch (err) {
    await session.release();
    throw err;
  }
}
