import { Attributes, Context, Span, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ClientClosedError,
  DeadlineExceededError,
  ModelNotReadyError,
  QueueFullError,
} from '../../common/domain.errors';
import type { Cancellation } from '../../common/request-context';
import { TensorData } from '../model.types';
import { concatRows, sliceRows } from '../tensor-rows';
import { RunLostError, RuntimeSession } from '../runtime/model-runtime.interface';
import { SchedulerClient, WorkerScheduler } from './worker.scheduler';

export interface BatchingOptions {
  /** Coalesce concurrent requests into one run; off for models without a batch dimension. */
  readonly enabled: boolean;
  /** Most rows in one coalesced run (a single larger request still runs, alone). */
  readonly maxBatchSize: number;
  /** How long a partial batch may wait for more rows while a worker is free. */
  readonly maxQueueDelayMs: number;
  /** Most rows waiting; beyond it submissions are refused with QUEUE_FULL. */
  readonly maxQueueSize: number;
  /** Most inference workers this version holds at once (config.json `instances`, else the whole pool). */
  readonly concurrency: number;
  /**
   * When maxQueueDelayMs is 0: how long a partial batch may wait, while a worker is free, for as many rows
   * as the version's last run carried (the measured cost of a run: what one more row joining saves).
   */
  readonly holdMs?: number;
}

/** Where the version's small runs go instead of a worker: a session on the event loop. */
export interface InlineLane {
  readonly session: RuntimeSession;
  /** Most rows of one inline run (what the measured cost allows); larger requests run on a worker. */
  readonly maxRows: number;
}

export interface SubmitOptions {
  /** Epoch ms by which the request must have started running. */
  readonly deadline?: number;
  /** Aborted when the client goes away; a queued request is then dropped. */
  readonly signal?: Cancellation;
  /** The request's trace context, when it is traced: its queue wait and its run become spans under it. */
  readonly trace?: Context;
}

/** What a batch run reports, for logs and metrics. */
export interface RunReport {
  readonly requests: number;
  readonly rows: number;
  readonly queueWaitMs: readonly number[];
  readonly runMs: number;
  readonly placement: 'inline' | 'worker';
}

interface Pending {
  readonly feeds: Record<string, TensorData>;
  readonly rows: number;
  /** Requests with the same key have the same inner dimensions, so they can share a run. */
  readonly shapeKey: string;
  readonly enqueuedAt: number;
  /** Epoch ms by which it must start, else DEADLINE_EXCEEDED. */
  readonly deadline?: number;
  readonly resolve: (outputs: Record<string, TensorData>) => void;
  readonly reject: (error: Error) => void;
  cleanup: () => void;
  /** Aborted when the client goes away. */
  readonly signal?: Cancellation;
  /** The request's trace context and its queue-wait span, when it is traced. */
  readonly trace?: Context;
  readonly waiting?: Span;
}

/** Requests with the same key (each input's name and dimensions past the batch one) can share a run. */
function shapeKeyOf(feeds: Record<string, TensorData>): string {
  let key = '';
  for (const name in feeds) {
    const dims = feeds[name].dims;
    key += `${name}:`;
    for (let d = 1; d < dims.length; d++) key += `${dims[d]}x`;
    key += ';';
  }
  return key;
}

/**
 * The spans of one traced request in the batcher, made through the OpenTelemetry API alone (no-ops
 * unless a tracer provider is registered); only requests handed a trace context pay for them.
 */
const tracer = () => trace.getTracer('onnx-inference-service.batcher');

function endFailed(span: Span | undefined, error: Error): void {
  if (!span) return;
  span.recordException(error);
  const code = (error as { code?: unknown }).code;
  span.setAttribute('error.type', typeof code === 'string' ? code : error.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  span.end();
}

/**
 * The dynamic batcher of one model version, after Triton's: requests queue here (bounded), and
 * whenever a worker is granted (WorkerScheduler) or the version's inline lane is free, the queue's
 * compatible requests, up to maxBatchSize rows, go out as one run. Under load batches form by
 * themselves while the runs are busy; when idle, a request runs at once unless maxQueueDelayMs asks
 * to wait for company. Every caller gets exactly its own rows back; when a run of several requests
 * fails, each of them runs again alone, so a bad request fails only itself, unless the run was lost with its
 * worker (RunLostError): then the requests of that run fail.
 */
export class Batcher implements SchedulerClient {
  private readonly queue: Pending[] = [];
  private queuedRows = 0;
  private workerRuns = 0;
  private inlineBusy = false;
  private timer: NodeJS.Timeout | undefined;
  private closedReason: string | undefined;
  private runs = 0;
  private rowsRun = 0;
  /** Rows of the last run handed to a worker: under steady load, about what the next one can gather. */
  private lastWorkerRows = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly scheduler: WorkerScheduler;
  private readonly inline: InlineLane | undefined;

  /**
   * Without a scheduler shared with other versions, the batcher has `concurrency` workers of its
   * own; `inline` sends the runs it can take to a session on the event loop instead.
   */
  constructor(
    private readonly session: RuntimeSession,
    private readonly options: BatchingOptions,
    private readonly name: string,
    private readonly onRun?: (report: RunReport) => void,
    /** A failed run of several requests, about to run each of them again alone. */
    private readonly onSplit?: (requests: number) => void,
    lanes: { readonly scheduler?: WorkerScheduler; readonly inline?: InlineLane } = {},
    /** What every span of this version carries (model, version). */
    private readonly spanAttributes: Attributes = {},
  ) {
    this.scheduler = lanes.scheduler ?? new WorkerScheduler(options.concurrency);
    this.inline = lanes.inline;
  }

  /** Rows waiting to run. */
  get depth(): number {
    return this.queuedRows;
  }

  /** Requests waiting to run, however many rows each carries. */
  get pendingRequests(): number {
    return this.queue.length;
  }

  /** Runs started so far, the rows they carried, and runs in flight now. */
  get stats(): { runs: number; rows: number; inFlight: number } {
    return { runs: this.runs, rows: this.rowsRun, inFlight: this.inFlight };
  }

  private get inFlight(): number {
    return this.workerRuns + (this.inlineBusy ? 1 : 0);
  }

  get waitingSince(): number | undefined {
    const first = this.queue.find((e) => this.needsWorker(e));
    if (first) return first.enqueuedAt;
    return this.spillable() ? this.queue[0].enqueuedAt : undefined;
  }

  grant(release: () => void): void {
    const batch = this.closedReason || this.workerRuns >= this.options.concurrency ? undefined : this.take('worker');
    if (!batch) return release();
    void this.dispatch(batch, 'worker', release);
    this.schedule();
  }

  submit(
    feeds: Record<string, TensorData>,
    rows: number,
    options: SubmitOptions = {},
  ): Promise<Record<string, TensorData>> {
    if (this.closedReason) return Promise.reject(new ModelNotReadyError(`${this.name} ${this.closedReason}`));
    if (this.queuedRows > 0 && this.queuedRows + rows > this.options.maxQueueSize) {
      return Promise.reject(
        new QueueFullError(
          `${this.name} has ${this.queuedRows} rows queued (limit ${this.options.maxQueueSize}); retry later`,
        ),
      );
    }
    if (options.signal?.aborted) return Promise.reject(new ClientClosedError());
    return new Promise((resolve, reject) => {
      const entry: Pending = {
        feeds,
        rows,
        shapeKey: shapeKeyOf(feeds),
        enqueuedAt: performance.now(),
        deadline: options.deadline,
        resolve,
        reject,
        cleanup: () => undefined,
        signal: options.signal,
        trace: options.trace,
        waiting:
          options.trace &&
          tracer().startSpan(
            'queue wait',
            { attributes: { ...this.spanAttributes, 'inference.rows': rows, 'inference.queue.rows': this.queuedRows } },
            options.trace,
          ),
      };
      const drop = (error: Error) => this.drop(entry, error);
      // An inline request is taken within a turn or two of the event loop (after the inline run in
      // progress, if any), where take() checks its deadline: only a request that waits for a worker
      // needs a timer to be answered at its deadline.
      const timer =
        options.deadline === undefined || !this.needsWorker(entry)
          ? undefined
          : setTimeout(() => drop(this.deadlineExceeded()), Math.max(0, options.deadline - Date.now()));
      // Likewise a departed client: take() asks an inline request's signal, and only a request that waits
      // for a worker listens to it.
      const signal = this.needsWorker(entry) ? options.signal : undefined;
      const onAbort = () => drop(new ClientClosedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      entry.cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.queue.push(entry);
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Refuses new work and fails what is still queued; runs in flight finish. */
  close(reason: string): void {
    this.closedReason = reason;
    this.scheduler.withdraw(this);
    clearTimeout(this.timer);
    for (const entry of this.queue.splice(0)) {
      entry.cleanup();
      const error = new ModelNotReadyError(`${this.name} ${reason}`);
      endFailed(entry.waiting, error);
      entry.reject(error);
    }
    this.queuedRows = 0;
  }

  /** Resolves once no run is in flight, so the session can be released safely. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes a request out of the queue unrun, with its error (nothing if it has left the queue already). */
  private drop(entry: Pending, error: Error): void {
    if (!this.remove(entry)) return;
    endFailed(entry.waiting, error);
    entry.reject(error);
  }

  private remove(entry: Pending): boolean {
    const index = this.queue.indexOf(entry);
    if (index < 0) return false;
    this.queue.splice(index, 1);
    this.queuedRows -= entry.rows;
    entry.cleanup();
    return true;
  }

  /** Whether the request runs on a worker: all of them without an inline lane, else those too large for it. */
  private needsWorker(entry: Pending): boolean {
    return !this.inline || entry.rows > this.inline.maxRows;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0 || this.closedReason) return;
    const inlineFree = this.inline !== undefined && !this.inlineBusy;
    const workerFree = this.workerRuns < this.options.concurrency;
    if (!inlineFree && !workerFree) return;
    if (this.options.enabled && this.options.maxQueueDelayMs > 0 && this.queuedRows < this.options.maxBatchSize) {
      const waited = performance.now() - this.queue[0].enqueuedAt;
      if (waited < this.options.maxQueueDelayMs) {
        this.timer = setTimeout(() => this.schedule(), this.options.maxQueueDelayMs - waited);
        return;
      }
    }
    if (!this.inline && workerFree && this.holding()) return;
    if (inlineFree && this.queue.some((e) => !this.needsWorker(e))) {
      // Taken once the I/O callbacks of this turn of the event loop have run, so that requests
      // parsed in the same turn share the run instead of each paying its own.
      this.inlineBusy = true;
      setImmediate(() => {
        const batch = this.closedReason ? undefined : this.take('inline');
        if (batch) return void this.dispatch(batch, 'inline', () => undefined);
        this.inlineBusy = false;
        if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        this.schedule();
      });
    }
    // The scheduler calls grant() when a worker is this batcher's; a request made twice counts once.
    if (workerFree && (this.queue.some((e) => this.needsWorker(e)) || this.spillable())) this.scheduler.request(this);
  }

  /**
   * Whether the inline requests queued are more than the next inline run takes: under load, a worker
   * batches them better than the event loop, whose time every request needs, runs them one small run at a
   * time. A lone request, or a few, still run inline, without the thread hop.
   */
  private spillable(): boolean {
    if (!this.inline || !this.options.enabled) return false;
    return this.queued('inline').rows > Math.min(this.options.maxBatchSize, this.inline.maxRows);
  }

  /** The rows queued for a lane, and when the oldest of its requests arrived. */
  private queued(lane: 'inline' | 'worker'): { rows: number; oldest: number | undefined } {
    let rows = 0;
    let oldest: number | undefined;
    for (const e of this.queue) {
      if (this.needsWorker(e) !== (lane === 'worker')) continue;
      rows += e.rows;
      oldest ??= e.enqueuedAt;
    }
    return { rows, oldest };
  }

  /**
   * Whether a partial batch for a worker waits a little for company (and arms the timer that ends the wait):
   * only under load, when the last run carried more rows than are queued now, and never longer than holdMs
   * after its oldest request arrived. One request at a time never waits: its last run carried one row.
   */
  private holding(): boolean {
    const holdMs = this.options.holdMs ?? 0;
    if (!this.options.enabled || this.options.maxQueueDelayMs > 0 || holdMs <= 0 || this.workerRuns > 0) return false;
    const want = Math.min(this.lastWorkerRows, this.options.maxBatchSize);
    const { rows, oldest } = this.queued('worker');
    if (oldest === undefined || rows >= want) return false;
    const left = holdMs - (performance.now() - oldest);
    if (left <= 0) return false;
    this.timer = setTimeout(() => this.schedule(), left);
    return true;
  }

  private deadlineExceeded(): DeadlineExceededError {
    return new DeadlineExceededError(`${this.name}: the request was not started within its deadline`);
  }

  /**
   * The oldest request for the lane, and the compatible ones after it that fit in one run. A worker with
   * no request too large for the inline lane takes the inline requests that lane has too many of.
   */
  private take(lane: 'inline' | 'worker'): Pending[] | undefined {
    const forWorker = lane === 'worker' && this.queue.some((e) => this.needsWorker(e));
    if (!forWorker) this.dropGone();
    if (lane === 'worker' && !forWorker && !this.spillable()) return undefined;
    const fits = forWorker ? (e: Pending) => this.needsWorker(e) : (e: Pending) => !this.needsWorker(e);
    const first = this.queue.find(fits);
    if (!first) return undefined;
    const limit =
      lane === 'inline' ? Math.min(this.options.maxBatchSize, this.inline!.maxRows) : this.options.maxBatchSize;
    const batch = [first];
    let rows = first.rows;
    if (this.options.enabled) {
      for (let i = this.queue.indexOf(first) + 1; i < this.queue.length; i++) {
        const entry = this.queue[i];
        if (rows >= limit) break;
        if (entry.shapeKey === first.shapeKey && rows + entry.rows <= limit) {
          batch.push(entry);
          rows += entry.rows;
        }
      }
    }
    for (const entry of batch) this.remove(entry);
    return batch;
  }

  /**
   * Inline requests past their deadline, answered DEADLINE_EXCEEDED, and those whose client has gone,
   * answered CLIENT_CLOSED: they have neither a timer nor a listener (see submit).
   */
  private dropGone(): void {
    const now = Date.now();
    for (const entry of this.queue.filter((e) => !this.needsWorker(e))) {
      if (entry.signal?.aborted) this.drop(entry, new ClientClosedError());
      else if (entry.deadline !== undefined && entry.deadline < now) this.drop(entry, this.deadlineExceeded());
    }
  }

  private async dispatch(batch: Pending[], lane: 'inline' | 'worker', release: () => void): Promise<void> {
    const started = performance.now();
    const rows = batch.reduce((n, e) => n + e.rows, 0);
    if (lane === 'worker') {
      this.workerRuns++;
      this.lastWorkerRows = rows;
    }
    const session = lane === 'inline' ? this.inline!.session : this.session;
    this.runs++;
    this.rowsRun += rows;
    const spans = this.runSpans(batch, rows);
    try {
      const feeds =
        batch.length === 1
          ? batch[0].feeds
          : Object.fromEntries(
              Object.keys(batch[0].feeds).map((name) => [name, concatRows(batch.map((e) => e.feeds[name]))]),
            );
      const outputs = await session.run(
        feeds,
        spans && ((placement) => spans.forEach((s) => s?.setAttribute('inference.placement', placement))),
      );
      spans?.forEach((s) => s?.end());
      this.onRun?.({
        requests: batch.length,
        rows,
        queueWaitMs: batch.map((e) => started - e.enqueuedAt),
        runMs: performance.now() - started,
        placement: lane,
      });
      this.split(batch, outputs, rows);
    } catch (err) {
      // A run that had ended its spans failed only in splitting its outputs; those stay as they were.
      spans?.forEach((s) => s?.isRecording() && endFailed(s, err as Error));
      // A run lost with its worker says nothing about any one request's rows, and running each again could take
      // down another worker the same way: the requests of that run fail, and only they.
      if (batch.length > 1 && !(err instanceof RunLostError)) await this.runEachAlone(batch, started, session, lane);
      else for (const entry of batch) entry.reject(err as Error);
    } finally {
      if (lane === 'inline') this.inlineBusy = false;
      else this.workerRuns--;
      if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      release();
      this.schedule();
    }
  }

  /**
   * After a failed run of several requests: one request's bad rows (an index out of range, a value the
   * graph refuses) must not fail the others, so each runs again alone, once, and gets its own answer or
   * its own error. They run one after another in the slot the failed run held, so a split never takes
   * more workers than the run it replaces.
   */
  private async runEachAlone(
    batch: readonly Pending[],
    started: number,
    session: RuntimeSession,
    placement: 'inline' | 'worker',
  ): Promise<void> {
    this.onSplit?.(batch.length);
    for (const entry of batch) {
      const alone = performance.now();
      this.runs++;
      this.rowsRun += entry.rows;
      // Each request's own run again, in its trace beside the failed shared one.
      const span =
        entry.trace &&
        tracer().startSpan(
          'inference run',
          {
            attributes: {
              ...this.spanAttributes,
              'inference.rows': entry.rows,
              'inference.batch.size': entry.rows,
              'inference.batch.requests': 1,
              'inference.batch.split': true,
            },
          },
          entry.trace,
        );
      try {
        const outputs = await session.run(
          entry.feeds,
          span && ((placement) => span.setAttribute('inference.placement', placement)),
        );
        span?.end();
        // The failed run was not reported, so each request's wait is counted once, here.
        this.onRun?.({
          requests: 1,
          rows: entry.rows,
          queueWaitMs: [started - entry.enqueuedAt],
          runMs: performance.now() - alone,
          placement,
        });
        entry.resolve(outputs);
      } catch (err) {
        endFailed(span, err as Error);
        entry.reject(err as Error);
      }
    }
  }

  /**
   * Ends the traced requests' queue waits and opens one run span per traced request, each under its
   * own request's span: a run shared by several requests appears in each of their traces, with the
   * whole run's size beside the request's own rows. Undefined when no request of the run is traced.
   */
  private runSpans(batch: Pending[], rows: number): (Span | undefined)[] | undefined {
    if (!batch.some((e) => e.trace)) return undefined;
    const attributes: Attributes = {
      ...this.spanAttributes,
      'inference.batch.size': rows,
      'inference.batch.requests': batch.length,
    };
    return batch.map((entry) => {
      if (!entry.trace) return undefined;
      entry.waiting?.end();
      return tracer().startSpan(
        'inference run',
        { attributes: { ...attributes, 'inference.rows': entry.rows } },
        entry.trace,
      );
    });
  }

  private split(batch: Pending[], outputs: Record<string, TensorData>, rows: number): void {
    if (batch.length === 1) {
      batch[0].resolve(outputs);
      return;
    }
    for (const [name, t] of Object.entries(outputs)) {
      if (t.dims[0] !== rows) throw new Error(`output '${name}' has ${t.dims[0]} rows for a batch of ${rows}`);
    }
    let offset = 0;
    for (const entry of batch) {
      const mine: Record<string, TensorData> = {};
      for (const [name, t] of Object.entries(outputs)) mine[name] = sliceRows(t, offset, offset + entry.rows);
      offset += entry.rows;
      entry.resolve(mine);
    }
  }
}
