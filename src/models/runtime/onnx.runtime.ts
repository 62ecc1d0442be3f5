import { Injectable } from '@nestjs/common';
import * as ort from 'onnxruntime-node';
import { ElementType, TensorData, ValueInfo } from '../model.types';
import { ModelRuntime, RuntimeOptions, RuntimeSession } from './model-runtime.interface';

const SUPPORTED: ReadonlySet<string> = new Set<ElementType>([
  'float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64',
  'uint8', 'uint16', 'uint32', 'uint64', 'bool', 'string',
]);

function toValueInfo(meta: ort.InferenceSession.ValueMetadata): ValueInfo {
  if (!meta.isTensor) return { name: meta.name, isTensor: false };
  if (!SUPPORTED.has(meta.type)) {
    throw new Error(`tensor '${meta.name}' has element type ${meta.type}, which this service does not support`);
  }
  // Symbolic dimensions come back as strings ("N", "batch"); both they and unknown sizes mean dynamic.
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  return { name: meta.name, isTensor: true, type: meta.type as ElementType, shape };
}

class OnnxSession implements RuntimeSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];

  constructor(private readonly session: ort.InferenceSession) {
    this.inputs = session.inputMetadata.map(toValueInfo);
    this.outputs = session.outputMetadata.map(toValueInfo);
  }

  async run(feeds: Readonly<Record<string, TensorData>>, outputNames?: readonly string[]): Promise<Record<string, TensorData>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.type, t.data, t.dims);
    }
    const results = outputNames
      ? await this.session.run(ortFeeds, outputNames as string[])
      : await this.session.run(ortFeeds);
    const out: Record<string, TensorData> = {};
    for (const [name, tensor] of Object.entries(results)) {
      out[name] = { type: tensor.type as ElementType, dims: tensor.dims, data: tensor.data };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The only file that imports onnxruntime-node. */
@Injectable()
export class OnnxRuntime implements ModelRuntime {
  readonly platform = 'onnxruntime';

  async load(modelPath: string, options: RuntimeOptions): Promise<RuntimeSession> {
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: options.intraOpNumThreads,
      interOpNumThreads: options.interOpNumThreads,
      graphOptimizationLevel: options.graphOptimizationLevel,
      executionProviders: ['cpu'],
    });
    try {
      return new OnnxSession(session);
    } catch (err) {
      await session.release();
      throw err;
    }
  }
}
