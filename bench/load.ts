/**
 * One load cell: autocannon against one target, route and concurrency, after an unrecorded warm-up.
 *
 * Latency percentiles are computed here from every 2xx response time autocannon reports, rather than
 * taken from autocannon's summary: its latency histogram has a resolution of 1 ms, which would make
 * p50s of 0.4 ms and 0.9 ms look equal and make a "no more than 1 ms worse" target meaningless.
 * Throughput is likewise 2xx responses over the measured duration, rather than the mean of autocannon's
 * per-second samples (whose last sample is a partial second, which skews 1 s cells).
 * autocannon's own figures are kept alongside, for reference.
 */
import autocannon from 'autocannon';
import { cpuSeconds, waitIdle } from './processes';

export interface LoadSpec {
  url: string;
  requests: autocannon.Request[];
  connections: number;
}

export interface CellStats {
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** autocannon errors (connection errors) + timeouts + non-2xx responses. */
  errors: number;
  error_detail: { errors: number; timeouts: number; non2xx: number };
  responses_2xx: number;
  duration_s: number;
  autocannon: { req_per_s_avg: number; p50_ms: number; p99_ms: number };
}

/** Seconds a request may take before autocannon counts it as a timeout (its default). */
const TIMEOUT_S = 10;

let current: autocannon.Instance | null = null;

/** Stops the load in progress, if any (Ctrl-C): its callback still fires, with what was measured. */
export function stopLoad(): void {
  current?.stop();
}

function run(
  spec: LoadSpec,
  limit: { duration: number } | { amount: number },
): Promise<{ result: autocannon.Result; times: number[] }> {
  const times: number[] = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        connections: spec.connections,
        pipelining: 1,
        timeout: TIMEOUT_S,
        requests: spec.requests,
        ...limit,
      },
      (err, result) => {
        current = null;
        if (err) reject(err);
        else resolve({ result, times });
      },
    );
    current = instance;
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) times.push(ms);
    });
  });
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits));

function statsOf(result: autocannon.Result, times: number[], fallbackDurationS: number): CellStats {
  const sorted = Float64Array.from(times).sort();
  const duration = result.duration > 0 ? result.duration : fallbackDurationS;
  return {
    req_per_s: round(times.length / duration, 1),
    p50_ms: round(percentile(sorted, 50), 3),
    p99_ms: round(percentile(sorted, 99), 3),
    errors: result.errors + result.timeouts + result.non2xx,
    error_detail: { errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx },
    responses_2xx: times.length,
    duration_s: duration,
    autocannon: { req_per_s_avg: result.requests.average, p50_ms: result.latency.p50, p99_ms: result.latency.p99 },
  };
}

export async function measureCell(spec: LoadSpec, durationS: number, warmupS: number): Promise<CellStats> {
  // Warm-up at the cell's own concurrency: JIT, connection set-up and (for the batcher) queue sizing
  // settle before anything is recorded.
  if (warmupS > 0) await run(spec, { duration: warmupS });
  const { result, times } = await run(spec, { duration: durationS });
  return statsOf(result, times, durationS);
}

export interface CpuCellStats extends CellStats {
  /** Requests of the measured run, every one of them answered (or failed) within it. */
  requests: number;
  /** User + system CPU seconds of the target process over the measured run; null without /proc. */
  cpu_s: number | null;
  /** cpu_s ÷ requests, in ms. */
  cpu_ms_per_request: number | null;
}

/**
 * A cell that also gives the CPU time the target process spends per request. Its measured run is a
 * fixed number of requests, as many as the warm-up's rate makes in about `durationS`, rather than a
 * duration: when a duration ends, the requests in flight are cut with part of their work done, which
 * would count their CPU time without their answers (c of them, a large share of a slow route's cell).
 * The CPU time is read with the target idle on both sides, so it holds these requests' work only.
 */
export async function measureCpuCell(
  spec: LoadSpec,
  durationS: number,
  warmupS: number,
  pid: number,
): Promise<CpuCellStats> {
  if (!(warmupS > 0)) throw new Error('measureCpuCell sizes its run from the warm-up: warmupS must be positive');
  const warm = await run(spec, { duration: warmupS });
  const warmRate = warm.times.length / (warm.result.duration > 0 ? warm.result.duration : warmupS);
  // At least two requests per connection, so that every connection is loaded after its first answer.
  const requests = Math.max(2 * spec.connections, Math.round(warmRate * durationS));
  await waitIdle(pid);
  const before = cpuSeconds(pid);
  const { result, times } = await run(spec, { amount: requests });
  // The answers are out; what the target still does for them (freeing their buffers) is theirs too.
  await waitIdle(pid);
  const after = cpuSeconds(pid);
  const cpu = before === null || after === null ? null : after - before;
  return {
    ...statsOf(result, times, durationS),
    requests,
    cpu_s: cpu === null ? null : round(cpu, 2),
    cpu_ms_per_request: cpu === null ? null : round((cpu * 1000) / requests, 3),
  };
}

/** Sends exactly `amount` requests as fast as `connections` allow (for the memory measurement). */
export async function fire(spec: LoadSpec, amount: number): Promise<{ errors: number; duration_s: number }> {
  const { result } = await run(spec, { amount });
  return { errors: result.errors + result.timeouts + result.non2xx, duration_s: result.duration };
}
