import { GraphOptimizationLevel } from '../../config/app.config';
import { TensorData, ValueInfo } from '../model.types';

/** Injection token for the ModelRuntime implementation. */
export const MODEL_RUNTIME = Symbol('MODEL_RUNTIME');

export interface RuntimeOptions {
  /** Threads inside one operator; 0 lets the runtime decide. */
  readonly intraOpNumThreads: number;
  /** Threads across independent operators; 0 lets the runtime decide. */
  readonly interOpNumThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
}

/** One loaded model file, ready to run. */
export interface RuntimeSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Why the warm-up run (zeros of the input shapes) failed, if it did; real inputs may still work. */
  readonly warmUpError?: string;
  /**
   * Runs the graph, fetching every output. `placed`, when given, is told where the run goes (the
   * device and the worker), for its trace span.
   */
  run(
    feeds: Readonly<Record<string, TensorData>>,
    placed?: (placement: string) => void,
  ): Promise<Record<string, TensorData>>;
  release(): Promise<void>;
}

/** A model framework the service can serve. ONNX is the one implementation today. */
export interface ModelRuntime {
  readonly platform: string;
  /** How many runs can usefully be in flight at once (the number of inference threads). */
  readonly concurrency: number;
  load(modelPath: string, options: RuntimeOptions): Promise<RuntimeSession>;
  /** Stops the runtime once every session is released. */
  close(): Promise<void>;
}
