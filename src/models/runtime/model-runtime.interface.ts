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
  /** The runtime's own memory arena for a session's buffers. */
  readonly cpuMemArena?: boolean;
}

export interface LoadOptions extends RuntimeOptions {
  /**
   * Rows of the second timed run after the warm-up (the version's largest batch), so that the
   * cost of a row can be told apart from the cost of a run. Unset: no timed runs.
   */
  readonly measureRows?: number;
}

/** What a run of zeros cost on an inference thread, measured at warm-up: `perRunUs + rows · perRowUs`. */
export interface RunCost {
  readonly perRunUs: number;
  readonly perRowUs: number;
  /** Rows of the largest timed run. */
  readonly rows: number;
}

/**
 * A run lost with the thread that held it (the thread died before answering). The inputs are not known to be at
 * fault, and running them again could take down another thread the same way, so the batcher fails the requests
 * of that run instead of running each again alone.
 */
export class RunLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunLostError';
  }
}

/** One loaded model file, ready to run. */
export interface RuntimeSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  /** Why the warm-up run (zeros of the input shapes) failed, if it did; real inputs may still work. */
  readonly warmUpError?: string;
  /** Measured after the warm-up when measureRows was given and the runs succeeded. */
  readonly cost?: RunCost;
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
  /**
   * How many runs can usefully be in flight at once (the number of inference threads). Each runs
   * one at a time: the batchers never hand a worker session more runs than this (WorkerScheduler).
   */
  readonly concurrency: number;
  /** A session run by the inference threads. */
  load(modelPath: string, options: LoadOptions): Promise<RuntimeSession>;
  /**
   * A session of the same file run on the calling thread, for models whose runs cost less than a
   * thread hop; it blocks that thread for the length of each run. Runtimes without one leave it out.
   */
  loadInline?(modelPath: string, options: RuntimeOptions): Promise<RuntimeSession>;
  /** Stops the runtime once every session is released. */
  close(): Promise<void>;
}
