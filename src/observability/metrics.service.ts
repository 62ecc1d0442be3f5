import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ErrorCode } from '../common/domain.errors';
import { InferenceStatistics } from './inference-statistics';

/** Where queue depths (rows, and the requests carrying them) come from; the model registry registers itself. */
export type QueueDepthSource = () => Iterable<{ model: string; version: number; depth: number; requests: number }>;

/** Triton's reasons for a failed inference request (the `reason` label of nv_inference_request_failure). */
export type FailureReason = 'REJECTED' | 'CANCELED' | 'BACKEND' | 'OTHER';

/**
 * The reason of each error code an inference request can fail with: refused by the scheduler (queue
 * full, not started within its deadline, the version closing), given up by its client, failed in the
 * runtime; any other code (invalid input, an internal fault) is OTHER, as Triton counts them.
 */
const FAILURE_REASONS: Partial<Record<ErrorCode, FailureReason>> = {
  QUEUE_FULL: 'REJECTED',
  DEADLINE_EXCEEDED: 'REJECTED',
  MODEL_NOT_READY: 'REJECTED',
  SHUTTING_DOWN: 'REJECTED',
  CLIENT_CLOSED: 'CANCELED',
  INFERENCE_FAILED: 'BACKEND',
};

export const failureReason = (code: string): FailureReason => FAILURE_REASONS[code as ErrorCode] ?? 'OTHER';

/** prom-client default metrics removed from the registry: see the constructor. */
export const GAUGES_NAMED_LIKE_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/**
 * Prometheus metrics, named after Triton's so dashboards port over (the README has the mapping).
 * One registry per application, so that several instances in one process (the tests) stay apart.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  /** The Open Inference Protocol's statistics, counted by the same calls as the counters below. */
  readonly statistics = new InferenceStatistics();
  private queueDepths: QueueDepthSource = () => [];

  private readonly httpRequests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, matched route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });

  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency, from the first byte read to the last byte written',
    labelNames: ['method', 'route', 'status'],
    buckets: SECONDS,
    registers: [this.registry],
  });

  private readonly droppedConnections = new Counter({
    name: 'http_connections_dropped_total',
    help: 'Connections closed on arrival because MAX_CONNECTIONS were already open',
    registers: [this.registry],
  });

  private readonly delayedRefusals = new Counter({
    name: 'http_refusals_delayed_total',
    help: 'Requests refused before their body was read whose answer waited its turn (REFUSED_BODIES_PER_SECOND)',
    registers: [this.registry],
  });

  private readonly success = new Counter({
    name: 'inference_request_success_total',
    help: 'Inference requests answered (Triton: nv_inference_request_success)',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly failure = new Counter({
    name: 'inference_request_failure_total',
    help: "Inference requests failed, by Triton's reason (REJECTED, CANCELED, BACKEND, OTHER) and the error code (Triton: nv_inference_request_failure)",
    labelNames: ['model', 'version', 'reason', 'code'],
    registers: [this.registry],
  });

  private readonly requestDuration = new Histogram({
    name: 'inference_request_duration_seconds',
    help: 'Time in the service for an inference request: validation, queue and run (Triton: nv_inference_request_duration_us)',
    labelNames: ['model', 'version'],
    buckets: SECONDS,
    registers: [this.registry],
  });

  private readonly queueDuration = new Histogram({
    name: 'inference_queue_duration_seconds',
    help: 'Time a request waited in the batcher before its run started (Triton: nv_inference_queue_duration_us)',
    labelNames: ['model', 'version'],
    buckets: SECONDS,
    registers: [this.registry],
  });

  private readonly computeDuration = new Histogram({
    name: 'inference_compute_duration_seconds',
    help: 'Time of one run in an inference worker, per batch (Triton: nv_inference_compute_infer_duration_us)',
    labelNames: ['model', 'version'],
    buckets: SECONDS,
    registers: [this.registry],
  });

  private readonly batchSize = new Histogram({
    name: 'inference_batch_size',
    help: 'Rows per run after dynamic batching',
    labelNames: ['model', 'version'],
    buckets: BATCH_SIZES,
    registers: [this.registry],
  });

  private readonly executions = new Counter({
    name: 'inference_exec_count_total',
    help: 'Runs executed, each a batch of one or more requests (Triton: nv_inference_exec_count)',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly rows = new Counter({
    name: 'inference_count_total',
    help: 'Rows (instances) inferred (Triton: nv_inference_count)',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly batchSplits = new Counter({
    name: 'inference_batch_splits_total',
    help: 'Runs of several coalesced requests that failed, after which each request ran again alone',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly cacheHits = new Counter({
    name: 'inference_cache_hits_total',
    help: 'Instances answered from the prediction cache, or by joining an identical computation in flight (Triton: nv_cache_num_hits_per_model)',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly cacheMisses = new Counter({
    name: 'inference_cache_misses_total',
    help: 'Instances the prediction cache did not hold, computed by the model (Triton: nv_cache_num_misses_per_model)',
    labelNames: ['model', 'version'],
    registers: [this.registry],
  });

  private readonly cacheErrors = new Counter({
    name: 'inference_cache_errors_total',
    help: 'Cache store calls that failed or timed out; the prediction was computed and served regardless',
    labelNames: ['operation', 'reason'],
    registers: [this.registry],
  });

  private readonly modelLoads = new Counter({
    name: 'model_load_total',
    help: 'Model loads (start-up and repository loads), by model and outcome (success or failure)',
    labelNames: ['model', 'outcome'],
    registers: [this.registry],
  });

  private readonly modelLoadDuration = new Histogram({
    name: 'model_load_duration_seconds',
    help: 'Time of one model load: reading, session creation in every worker, warm-up and self-test of its new versions',
    labelNames: ['model', 'outcome'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  private readonly modelUnloads = new Counter({
    name: 'model_unload_total',
    help: 'Model versions unloaded (drained, then released in every worker), by model',
    labelNames: ['model'],
    registers: [this.registry],
  });

  private versionStates: () => Iterable<string> = () => [];

  constructor() {
    // Read when scraped, like the queue depths below.
    const versions: Gauge = new Gauge({
      name: 'model_versions',
      help: 'Model versions held by the server, by state (LOADING, READY, FAILED)',
      labelNames: ['state'],
      registers: [this.registry],
      collect: () => {
        versions.reset();
        for (const state of ['LOADING', 'READY', 'FAILED']) versions.set({ state }, 0);
        for (const state of this.versionStates()) versions.inc({ state });
      },
    });
    // Read when scraped, so the gauges are always the queue's current state. Triton counts requests;
    // the rows they carry are what the queue bound (MAX_QUEUE_SIZE) and batches are measured in.
    const pending: Gauge = new Gauge({
      name: 'inference_pending_requests',
      help: 'Requests waiting in the batcher for a run (Triton: nv_inference_pending_request_count)',
      labelNames: ['model', 'version'],
      registers: [this.registry],
      collect: () => {
        pending.reset();
        for (const q of this.queueDepths()) pending.set({ model: q.model, version: String(q.version) }, q.requests);
      },
    });
    const depth: Gauge = new Gauge({
      name: 'inference_queue_depth',
      help: 'Rows waiting in the batcher, the unit of MAX_QUEUE_SIZE (no Triton counterpart)',
      labelNames: ['model', 'version'],
      registers: [this.registry],
      collect: () => {
        depth.reset();
        for (const q of this.queueDepths()) depth.set({ model: q.model, version: String(q.version) }, q.depth);
      },
    });
    // Process metrics: event-loop lag, heap, RSS, GC, handles.
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these three gauges like counters, which `promtool check metrics` refuses (a
    // gauge must not end in _total). Each is the sum of the per-type gauge registered beside it
    // (nodejs_active_handles{type}, ...), so sum() of that one says the same.
    for (const name of GAUGES_NAMED_LIKE_COUNTERS) this.registry.removeSingleMetric(name);
  }

  /**
   * Only an in-memory cache counts its entries cheaply (Redis's own INFO covers a shared one), so only it registers
   * this gauge.
   */
  setCacheEntriesSource(source: () => number): void {
    const entries: Gauge = new Gauge({
      name: 'inference_cache_entries',
      help: 'Entries held by the in-memory prediction cache (at most CACHE_MAX_ENTRIES)',
      registers: [this.registry],
      collect: () => entries.set(source()),
    });
  }

  observeCache(model: string, version: number, hits: number, misses: number): void {
    const labels = { model, version: String(version) };
    this.statistics.cache(model, version, hits, misses);
    if (hits > 0) this.cacheHits.inc(labels, hits);
    if (misses > 0) this.cacheMisses.inc(labels, misses);
  }

  observeCacheError(operation: 'read' | 'write', reason: 'timeout' | 'error'): void {
    this.cacheErrors.inc({ operation, reason });
  }

  setQueueDepthSource(source: QueueDepthSource): void {
    this.queueDepths = source;
  }

  /** The state of every version held, one entry each; the registry registers itself at start-up. */
  setVersionStateSource(source: () => Iterable<string>): void {
    this.versionStates = source;
  }

  observeModelLoad(model: string, outcome: 'success' | 'failure', seconds: number): void {
    this.modelLoads.inc({ model, outcome });
    this.modelLoadDuration.observe({ model, outcome }, seconds);
  }

  observeModelUnload(model: string): void {
    this.modelUnloads.inc({ model });
  }

  observeHttp(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.httpRequests.inc(labels);
    this.httpDuration.observe(labels, seconds);
  }

  observeDroppedConnection(): void {
    this.droppedConnections.inc();
  }

  observeDelayedRefusal(): void {
    this.delayedRefusals.inc();
  }

  observeInference(model: string, version: number, seconds: number, errorCode?: string): void {
    const labels = { model, version: String(version) };
    this.statistics.request(model, version, seconds * 1000, errorCode !== undefined);
    if (errorCode) {
      this.failure.inc({ ...labels, reason: failureReason(errorCode), code: errorCode });
    } else {
      this.success.inc(labels);
      this.requestDuration.observe(labels, seconds);
    }
  }

  observeRun(
    model: string,
    version: number,
    run: { rows: number; runMs: number; queueWaitMs: readonly number[] },
  ): void {
    const labels = { model, version: String(version) };
    this.statistics.run(model, version, run.rows, run.runMs, run.queueWaitMs);
    this.executions.inc(labels);
    this.rows.inc(labels, run.rows);
    this.batchSize.observe(labels, run.rows);
    this.computeDuration.observe(labels, run.runMs / 1000);
    for (const wait of run.queueWaitMs) this.queueDuration.observe(labels, wait / 1000);
  }

  observeBatchSplit(model: string, version: number): void {
    this.batchSplits.inc({ model, version: String(version) });
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
