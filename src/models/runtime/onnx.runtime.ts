import { Injectable, Logger } from '@nestjs/common';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AppConfig } from '../../config/app.config';
import { TensorData, ValueInfo } from '../model.types';
import {
  LoadOptions,
  ModelRuntime,
  RunCost,
  RunLostError,
  RuntimeOptions,
  RuntimeSession,
} from './model-runtime.interface';
import { loadSession, OrtSession, runSession } from './onnx.session';
import { WorkerReply, WorkerRequest } from './worker.protocol';

type Ok = Extract<WorkerReply, { ok: true }>;
type Request = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

// Under ts-node/Jest the worker is TypeScript; built, it is JavaScript beside this file.
const WORKER_FILE = path.join(__dirname, __filename.endsWith('.ts') ? 'onnx.worker.ts' : 'onnx.worker.js');
const WORKER_EXEC_ARGV = __filename.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only'] : [];

/** One inference thread and the requests it has not answered yet. */
class InferenceWorker {
  private readonly pending = new Map<number, { resolve: (r: Ok) => void; reject: (e: Error) => void }>();
  /** Runs sent and not answered: the batchers' scheduler keeps it at most one per worker. */
  runs = 0;
  private readonly worker: Worker;
  private nextId = 1;
  /** Set when the thread has exited: every request still sent to it fails with this at once. */
  private lost: RunLostError | undefined;
  /** Resolves once a replacement has loaded the sessions again (each failure logged); runs wait for it. */
  ready: Promise<void> = Promise.resolve();

  constructor(onExit: (worker: InferenceWorker, error: RunLostError, unanswered: number) => void) {
    this.worker = new Worker(WORKER_FILE, { execArgv: WORKER_EXEC_ARGV });
    this.worker.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply);
      else waiter?.reject(new Error(reply.error));
    });
    // An uncaught exception in the thread comes as 'error' just before 'exit'; process.exit() in it, or a
    // terminate(), comes as 'exit' alone.
    let failure: Error | undefined;
    this.worker.on('error', (err) => (failure = err));
    this.worker.on('exit', (code) => {
      const unanswered = this.pending.size;
      this.lost = new RunLostError(
        `the inference worker stopped (exit code ${code}${failure ? `: ${failure.message}` : ''}) before answering`,
      );
      for (const waiter of this.pending.values()) waiter.reject(this.lost);
      this.pending.clear();
      onExit(this, this.lost, unanswered);
    });
  }

  /** Requests waiting on this worker, loads and releases included. */
  get busy(): number {
    return this.pending.size;
  }

  request(message: Request, transfer: ArrayBuffer[] = []): Promise<Ok> {
    // A run that waited for this worker's `ready` may arrive after the exit, when nothing would ever answer it.
    if (this.lost) return Promise.reject(this.lost);
    const id = this.nextId++;
    return new Promise<Ok>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Input buffers are handed to the worker rather than copied, when the array owns its whole buffer. */
function transferables(feeds: Readonly<Record<string, TensorData>>): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const { data } of Object.values(feeds)) {
    if (Array.isArray(data)) continue;
    if (
      data.byteOffset === 0 &&
      data.byteLength === data.buffer.byteLength &&
      data.buffer instanceof ArrayBuffer &&
      !buffers.includes(data.buffer)
    ) {
      buffers.push(data.buffer);
    }
  }
  return buffers;
}

class PooledSession implements RuntimeSession {
  constructor(
    private readonly runtime: OnnxRuntime,
    private readonly key: string,
    readonly inputs: readonly ValueInfo[],
    readonly outputs: readonly ValueInfo[],
    readonly warmUpError: string | undefined,
    readonly cost: RunCost | undefined,
  ) {}

  run(
    feeds: Readonly<Record<string, TensorData>>,
    placed?: (placement: string) => void,
  ): Promise<Record<string, TensorData>> {
    return this.runtime.runSession(this.key, feeds, placed);
  }

  release(): Promise<void> {
    return this.runtime.releaseSession(this.key);
  }
}

/** A session on the main thread: each run holds the event loop for its length, so only cheap models get one. */
class InlineSession implements RuntimeSession {
  private released = false;

  constructor(
    private readonly session: OrtSession,
    readonly inputs: readonly ValueInfo[],
    readonly outputs: readonly ValueInfo[],
    readonly warmUpError: string | undefined,
  ) {}

  run(
    feeds: Readonly<Record<string, TensorData>>,
    placed?: (placement: string) => void,
  ): Promise<Record<string, TensorData>> {
    if (this.released) return Promise.reject(new Error('the session was released'));
    placed?.('cpu/inline');
    return runSession(this.session, feeds);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/**
 * Runs ONNX sessions in a pool of worker threads, each holding its own session of every loaded
 * model, so that inference never blocks the event loop; and, for models cheaper than the thread
 * hop, sessions on the main thread (loadInline). A worker that dies is replaced and its sessions are
 * loaded again; the requests it held fail with a RunLostError that gives its exit code.
 */
@Injectable()
export class OnnxRuntime implements ModelRuntime {
  readonly platform = 'onnxruntime';
  private readonly logger = new Logger(OnnxRuntime.name);
  private workers: InferenceWorker[] = [];
  private readonly sessions = new Map<string, { modelPath: string; options: RuntimeOptions }>();
  private nextKey = 1;
  private closing = false;

  constructor(private readonly config: AppConfig) {}

  get concurrency(): number {
    return this.config.INFERENCE_WORKERS;
  }

  async load(modelPath: string, options: LoadOptions): Promise<RuntimeSession> {
    if (this.workers.length === 0) {
      this.workers = Array.from({ length: this.config.INFERENCE_WORKERS }, () => this.spawn());
    }
    const key = `session-${this.nextKey++}`;
    const runtimeOptions: RuntimeOptions = {
      intraOpNumThreads: options.intraOpNumThreads,
      interOpNumThreads: options.interOpNumThreads,
      graphOptimizationLevel: options.graphOptimizationLevel,
    };
    // Known before any worker loads it, so that a worker replaced while the loads run loads it too.
    this.sessions.set(key, { modelPath, options: runtimeOptions });
    // Timed in one worker only: every worker runs the same code on the same kind of core.
    const replies = await Promise.allSettled(
      this.workers.map((w, i) =>
        w.request({ op: 'load', key, path: modelPath, options: i === 0 ? options : runtimeOptions }),
      ),
    );
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.releaseSession(key);
      throw failed.reason;
    }
    const first = (replies[0] as PromiseFulfilledResult<Ok>).value;
    return new PooledSession(this, key, first.inputs ?? [], first.outputs ?? [], first.warmUpError, first.cost);
  }

  async loadInline(modelPath: string, options: RuntimeOptions): Promise<RuntimeSession> {
    const { session, inputs, outputs, warmUpError } = await loadSession(modelPath, options);
    return new InlineSession(session, inputs, outputs, warmUpError);
  }

  /**
   * A run of one session, on a worker with no run: the batchers' scheduler hands out at most one
   * run per worker, so there is one (only self-tests at load time, outside the batchers, may share).
   */
  async runSession(
    key: string,
    feeds: Readonly<Record<string, TensorData>>,
    placed?: (placement: string) => void,
  ): Promise<Record<string, TensorData>> {
    const worker = this.workers.reduce((a, b) => (b.runs < a.runs || (b.runs === a.runs && b.busy < a.busy) ? b : a));
    // The CPU execution provider is the only one these sessions are made with.
    placed?.(`cpu/worker-${this.workers.indexOf(worker)}`);
    worker.runs++;
    try {
      await worker.ready;
      const reply = await worker.request({ op: 'run', key, feeds }, transferables(feeds));
      return reply.results!;
    } finally {
      worker.runs--;
    }
  }

  async releaseSession(key: string): Promise<void> {
    this.sessions.delete(key);
    await Promise.allSettled(this.workers.map((w) => w.request({ op: 'release', key })));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }

  private spawn(): InferenceWorker {
    return new InferenceWorker((dead, error, unanswered) => {
      if (this.closing) return;
      this.logger.error(`${error.message} ${unanswered} request(s), which fail; starting a new inference worker`);
      const fresh = this.spawn();
      this.workers = this.workers.map((w) => (w === dead ? fresh : w));
      // Never rejects: a session that does not load again fails only its own runs on this worker ("no session"),
      // and the worker's other sessions serve.
      fresh.ready = Promise.all(
        [...this.sessions].map(([key, s]) =>
          fresh.request({ op: 'load', key, path: s.modelPath, options: s.options }).then(
            () => undefined,
            (err: Error) =>
              this.logger.error(`${s.modelPath} did not load again on the new inference worker: ${err.message}`),
          ),
        ),
      ).then(() => undefined);
    });
  }
}
