import type { TensorData, ValueInfo } from '../model.types';
import type { LoadOptions, RunCost } from './model-runtime.interface';

/** Messages between the main thread and an inference worker (see onnx.worker.ts). */
export type WorkerRequest =
  | {
      readonly id: number;
      readonly op: 'load';
      readonly key: string;
      readonly path: string;
      readonly options: LoadOptions;
    }
  | {
      readonly id: number;
      readonly op: 'run';
      readonly key: string;
      readonly feeds: Record<string, TensorData>;
    }
  | { readonly id: number; readonly op: 'release'; readonly key: string };

export type WorkerReply =
  | { readonly id: number; readonly ok: false; readonly error: string }
  | {
      readonly id: number;
      readonly ok: true;
      readonly inputs?: ValueInfo[];
      readonly outputs?: ValueInfo[];
      readonly results?: Record<string, TensorData>;
      /** Set when the warm-up run with zeros failed; the model may still serve real inputs. */
      readonly warmUpError?: string;
      /** Timed runs after the warm-up, when the load asked for them. */
      readonly cost?: RunCost;
    };
