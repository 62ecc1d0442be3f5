/**
 * Per model version, the figures of the Open Inference Protocol's statistics extension (Triton's
 * field names), kept beside the Prometheus counters and updated by the same MetricsService calls,
 * so that /v2/.../stats and /metrics count the same events. Durations are whole nanoseconds.
 */

/** A count of events and their summed duration. */
export interface Duration {
  count: number;
  ns: number;
}

export interface BatchStatistics {
  readonly batch_size: number;
  readonly compute_input: Duration;
  readonly compute_infer: Duration;
  readonly compute_output: Duration;
}

export interface VersionStatistics {
  /** Epoch milliseconds of the last request answered; 0 before the first. */
  last_inference: number;
  /** Rows run by the model (batch rows, as /metrics' inference_count_total). */
  inference_count: number;
  /** Runs, each one batch (inference_exec_count_total). */
  execution_count: number;
  readonly inference_stats: {
    readonly success: Duration;
    readonly fail: Duration;
    readonly queue: Duration;
    readonly compute_input: Duration;
    readonly compute_infer: Duration;
    readonly compute_output: Duration;
    readonly cache_hit: Duration;
    readonly cache_miss: Duration;
  };
  readonly batch_stats: Map<number, BatchStatistics>;
}

const duration = (): Duration => ({ count: 0, ns: 0 });
const ns = (ms: number) => Math.round(ms * 1e6);

function empty(): VersionStatistics {
  return {
    last_inference: 0,
    inference_count: 0,
    execution_count: 0,
    inference_stats: {
      success: duration(),
      fail: duration(),
      queue: duration(),
      compute_input: duration(),
      compute_infer: duration(),
      compute_output: duration(),
      cache_hit: duration(),
      cache_miss: duration(),
    },
    batch_stats: new Map(),
  };
}

export class InferenceStatistics {
  private readonly versions = new Map<string, VersionStatistics>();

  private of(model: string, version: number): VersionStatistics {
    const key = `${model}\u0000${version}`;
    let stats = this.versions.get(key);
    if (!stats) this.versions.set(key, (stats = empty()));
    return stats;
  }

  /** A version's figures; all zero for one that has served nothing yet. */
  get(model: string, version: number): VersionStatistics {
    return this.versions.get(`${model}\u0000${version}`) ?? empty();
  }

  request(model: string, version: number, ms: number, failed: boolean): void {
    const stats = this.of(model, version);
    const into = failed ? stats.inference_stats.fail : stats.inference_stats.success;
    into.count++;
    into.ns += ns(ms);
    if (!failed) stats.last_inference = Date.now();
  }

  /**
   * One run of `rows` rows for `queueWaitMs.length` requests. Every request of a batch spent the
   * batch's compute time, as Triton counts it; input and output preparation happen inside the run
   * (in the worker), so their own durations are not measured apart and stay 0.
   */
  run(model: string, version: number, rows: number, runMs: number, queueWaitMs: readonly number[]): void {
    const stats = this.of(model, version);
    const requests = queueWaitMs.length;
    stats.inference_count += rows;
    stats.execution_count++;
    const s = stats.inference_stats;
    for (const wait of queueWaitMs) {
      s.queue.count++;
      s.queue.ns += ns(wait);
    }
    s.compute_input.count += requests;
    s.compute_infer.count += requests;
    s.compute_infer.ns += ns(runMs) * requests;
    s.compute_output.count += requests;
    let batch = stats.batch_stats.get(rows);
    if (!batch) {
      batch = { batch_size: rows, compute_input: duration(), compute_infer: duration(), compute_output: duration() };
      stats.batch_stats.set(rows, batch);
    }
    batch.compute_input.count++;
    batch.compute_infer.count++;
    batch.compute_infer.ns += ns(runMs);
    batch.compute_output.count++;
  }

  /** Rows the prediction cache answered and missed; lookups are not timed, so their ns stay 0. */
  cache(model: string, version: number, hits: number, misses: number): void {
    const s = this.of(model, version).inference_stats;
    s.cache_hit.count += hits;
    s.cache_miss.count += misses;
  }
}
