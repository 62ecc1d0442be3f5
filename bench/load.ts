/**
 * One load cell against one target, route and concurrency, after an unrecorded warm-up: wrk for the
 * REST cells (measureRestCell, with the target's and the client's CPU time per request), autocannon
 * for the cells whose bodies are binary (the V2 cells) and for the memory check.
 *
 * With autocannon:
 * Latency percentiles are computed here from every 2xx response time autocannon reports, rather than
 * taken from autocannon's summary: its latency histogram has a resolution of 1 ms, which would make
 * p50s of 0.4 ms and 0.9 ms look equal and make a "no more than 1 ms worse" target meaningless.
 * Throughput is likewise 2xx responses over the measured duration, rather than the mean of autocannon's
 * per-second samples (whose last sample is a partial second, which skews 1 s cells).
 * autocannon's own figures are kept alongside, for reference.
 */
import autocannon from 'autocannon';
import { treeCpuSeconds, waitIdle } from './processes';
import { WrkRequest, runWrk } from './wrk';

export interface LoadSpec {
  url: string;
  requests: autocannon.Request[];
  connections: number;
}

/** What every cell reports, whichever client loaded it. */
export interface LoadStats {
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** autocannon errors (connection errors) + timeouts + non-2xx responses. */
  errors: number;
  error_detail: { errors: number; timeouts: number; non2xx: number };
  responses_2xx: number;
  duration_s: number;
}

export interface CellStats extends LoadStats {
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
  const before = treeCpuSeconds(pid);
  const { result, times } = await run(spec, { amount: requests });
  // The answers are out; what the target still does for them (freeing their buffers) is theirs too.
  await waitIdle(pid);
  const after = treeCpuSeconds(pid);
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

/** A REST cell, loaded by wrk, with what it cost the target and the client per answer. */
export interface RestCellStats extends LoadStats {
  /** The slowest response of the measured run, in ms (any status). */
  max_ms: number;
  /** User + system CPU seconds of the target's processes over the measured run; null without /proc. */
  cpu_s: number | null;
  /** cpu_s ÷ 2xx answers, in µs. */
  cpu_us_per_request: number | null;
  /** wrk's own CPU seconds over the measured run, and per 2xx answer (µs): what the client costs. */
  client_cpu_s: number | null;
  client_cpu_us_per_request: number | null;
  /** Answers per HTTP status, for the cells that count them. */
  statuses: Record<string, number> | null;
}

export interface RestSpec {
  url: string;
  connections: number;
  requests: WrkRequest[];
  countStatuses?: boolean;
}

export function perAnswerUs(cpuS: number | null, answers: number): number | null {
  return cpuS === null || answers === 0 ? null : round((cpuS * 1e6) / answers, 1);
}

/**
 * A REST cell: a warm-up of `warmupS`, then `durationS` of load by wrk, with the target's CPU time read
 * from /proc before and after (with the target idle on both sides). The requests wrk has in flight when
 * it stops are answered after it, their CPU time without their answers: at most `connections` of them,
 * a small share of any cell of several seconds.
 */
export async function measureRestCell(
  wrk: string,
  spec: RestSpec,
  durationS: number,
  warmupS: number,
  pid: number,
): Promise<RestCellStats> {
  const wrkSpec = { ...spec, timeoutS: TIMEOUT_S };
  if (warmupS > 0) await runWrk(wrk, wrkSpec, warmupS);
  await waitIdle(pid);
  const before = treeCpuSeconds(pid);
  const r = await runWrk(wrk, wrkSpec, durationS);
  await waitIdle(pid);
  const after = treeCpuSeconds(pid);
  return restStats(r, before === null || after === null ? null : after - before);
}

export function restStats(r: Awaited<ReturnType<typeof runWrk>>, cpuS: number | null): RestCellStats {
  // With statuses counted, 2xx is exact; otherwise wrk counts only the answers of 400 and above apart.
  const ok = r.statuses
    ? Object.entries(r.statuses).reduce((n, [status, count]) => (status.startsWith('2') ? n + count : n), 0)
    : r.requests - r.status_errors;
  const connectionErrors = r.connect_errors + r.read_errors + r.write_errors;
  return {
    req_per_s: round(ok / r.duration_s, 1),
    p50_ms: round(r.p50_ms, 3),
    p99_ms: round(r.p99_ms, 3),
    max_ms: round(r.max_ms, 3),
    errors: connectionErrors + r.timeouts + (r.requests - ok),
    error_detail: { errors: connectionErrors, timeouts: r.timeouts, non2xx: r.requests - ok },
    responses_2xx: ok,
    duration_s: round(r.duration_s, 3),
    cpu_s: cpuS === null ? null : round(cpuS, 2),
    cpu_us_per_request: perAnswerUs(cpuS, ok),
    client_cpu_s: r.client_cpu_s,
    client_cpu_us_per_request: perAnswerUs(r.client_cpu_s, ok),
    statuses: r.statuses,
  };
}
