import { TensorData, ValueInfo } from '../models/model.types';
import { ModelRuntime, RuntimeOptions, RuntimeSession } from '../models/runtime/model-runtime.interface';

/**
 * A ModelRuntime and RuntimeSession without onnxruntime, for unit specs: answers that follow from
 * the input, failures on demand, and (gated) runs that finish only when the test says so, which is
 * the timing a real model cannot be told to have. Never part of the build.
 */

/** What a run answers for its feeds; throwing fails the run with that error. */
export type Compute = (feeds: Readonly<Record<string, TensorData>>) => Record<string, TensorData>;

export interface FakeSessionOptions {
  /** The graph's inputs; one dynamic float32 matrix `x` unless told. */
  readonly inputs?: readonly ValueInfo[];
  /** The graph's outputs; one dynamic float32 matrix `y` unless told. */
  readonly outputs?: readonly ValueInfo[];
  /** Holds every run until the test finishes it (`finishAll()`, or one of `held`). */
  readonly gated?: boolean;
  readonly warmUpError?: string;
  /** What runs answer; `doubling` of the first input into the first output unless told. */
  readonly compute?: Compute;
}

/** A gated run that has started and not finished. */
export interface HeldRun {
  readonly feeds: Record<string, TensorData>;
  /** Computes the answer (or the failure), settles the run's promise and leaves `held`. */
  finish(): void;
}

export const DEFAULT_INPUTS: readonly ValueInfo[] = [{ name: 'x', isTensor: true, type: 'float32', shape: [-1, -1] }];
export const DEFAULT_OUTPUTS: readonly ValueInfo[] = [{ name: 'y', isTensor: true, type: 'float32', shape: [-1, -1] }];

/**
 * y = 2x element by element (so row by row), as float32 with the input's dimensions; a negative
 * value anywhere fails the run with 'negative input', so a test can make one row bad on purpose.
 */
export function doubling(input = 'x', output = 'y'): Compute {
  return (feeds) => {
    const x = feeds[input];
    if (Array.isArray(x.data) || x.data instanceof BigInt64Array || x.data instanceof BigUint64Array) {
      throw new Error(`the fake session doubles numbers; input '${input}' is ${x.type}`);
    }
    const values = Array.from(x.data);
    if (values.some((v) => v < 0)) throw new Error('negative input');
    return { [output]: { type: 'float32', dims: [...x.dims], data: Float32Array.from(values, (v) => v * 2) } };
  };
}

export class FakeSession implements RuntimeSession {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
  readonly warmUpError?: string;
  /** Gated runs started and not finished yet, oldest first. */
  readonly held: HeldRun[] = [];
  /** Runs started so far, and the rows (first dimension of the first input) they carried. */
  runCount = 0;
  rowCount = 0;
  released = false;
  private readonly gated: boolean;
  private readonly compute: Compute;

  constructor(options: FakeSessionOptions = {}) {
    this.inputs = options.inputs ?? DEFAULT_INPUTS;
    this.outputs = options.outputs ?? DEFAULT_OUTPUTS;
    this.warmUpError = options.warmUpError;
    this.gated = options.gated ?? false;
    this.compute = options.compute ?? doubling(this.inputs[0]?.name, this.outputs[0]?.name);
  }

  run(feeds: Readonly<Record<string, TensorData>>): Promise<Record<string, TensorData>> {
    // Refused before counting, as onnxruntime refuses such calls before it runs anything.
    if (this.released) return Promise.reject(new Error('the session was released'));
    const missing = this.inputs.find((i) => !(i.name in feeds));
    if (missing) return Promise.reject(new Error(`input '${missing.name}' is missing in feeds`));
    this.runCount++;
    this.rowCount += this.inputs.length > 0 ? (feeds[this.inputs[0].name].dims[0] ?? 1) : 0;
    return new Promise((resolve, reject) => {
      const finish = () => {
        try {
          resolve(this.compute(feeds));
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      if (!this.gated) return finish();
      const held: HeldRun = {
        feeds: { ...feeds },
        finish: () => {
          const index = this.held.indexOf(held);
          if (index >= 0) this.held.splice(index, 1);
          finish();
        },
      };
      this.held.push(held);
    });
  }

  release(): Promise<void> {
    this.released = true;
    return Promise.resolve();
  }

  /** Finishes every held run, then lets the callbacks of their promises settle. */
  async finishAll(): Promise<void> {
    for (const run of this.held.splice(0)) run.finish();
    await new Promise((r) => setImmediate(r));
  }
}

export interface FakeRuntimeOptions {
  readonly concurrency?: number;
  /** The session a model file loads as, or the error its load fails with; a plain FakeSession unless told. */
  readonly load?: (modelPath: string, options: RuntimeOptions) => FakeSessionOptions | Error;
}

export class FakeRuntime implements ModelRuntime {
  readonly platform = 'fake';
  readonly concurrency: number;
  /** Every load asked for, in order, including the ones that failed. */
  readonly loads: { readonly modelPath: string; readonly options: RuntimeOptions }[] = [];
  /** The sessions handed out, in order. */
  readonly sessions: FakeSession[] = [];
  closed = false;

  constructor(private readonly options: FakeRuntimeOptions = {}) {
    this.concurrency = options.concurrency ?? 1;
  }

  load(modelPath: string, options: RuntimeOptions): Promise<RuntimeSession> {
    this.loads.push({ modelPath, options });
    const made = this.options.load ? this.options.load(modelPath, options) : {};
    if (made instanceof Error) return Promise.reject(made);
    const session = new FakeSession(made);
    this.sessions.push(session);
    return Promise.resolve(session);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
