/**
 * The shape of one bench run, as written to bench/results/<timestamp>.json and bench/results/latest.json,
 * and the lookups the report, the chart and the document share.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GrpcCell } from './grpc';
import { CpuCellStats, RestCellStats } from './load';
import { V2Form, V2ModelName } from './v2';
import { FloorTargetId, ModelName, Route, TargetId } from './workload';

export interface Cell extends RestCellStats {
  model: ModelName;
  route: Route;
  target: TargetId;
  concurrency: number;
  /** Batch routes only: req_per_s × instances per request. */
  instances_per_s: number | null;
}

/** One HTTP layer floor cell: GET /health/live on one target's process, loaded like any other cell. */
export interface FloorCell extends RestCellStats {
  target: FloorTargetId;
  method: 'GET';
  path: string;
  concurrency: number;
  /** req_per_s ÷ the bare node:http server's (the baseline's) req_per_s; null when that was not measured. */
  of_bare: number | null;
}

/**
 * One Open Inference Protocol cell: V2 infer requests of one instance, as JSON or as binary tensors,
 * with the service's CPU time per request beside its requests/s.
 */
export interface V2Cell extends CpuCellStats {
  model: V2ModelName;
  form: V2Form;
  concurrency: number;
  /** Bytes of one request body (the mean over the cell's bodies). */
  body_bytes: number;
}

/** One of the loads of an isolation cell (bench/isolation.ts): its own wrk run, statuses counted. */
export interface IsolationLoad extends RestCellStats {
  /** What this load is, e.g. "good indices" or "failing index". */
  role: string;
  path: string;
  concurrency: number;
  headers: Record<string, string>;
}

/**
 * An isolation cell: a load that should be unharmed (`measured`) beside one that tries to harm it
 * (`fault`), on the same service process at the same time.
 */
export interface IsolationCell {
  id: IsolationCellId;
  title: string;
  measured: IsolationLoad;
  fault: IsolationLoad;
}
export type IsolationCellId = 'poison' | 'deadline';

/** The V2 cells' and the isolation cells' service processes are targets of their own, beside those of TARGET_IDS. */
export interface TargetRun {
  id: TargetId | 'v2' | 'grpc' | 'isolation';
  label: string;
  status: 'measured' | 'skipped';
  /** Why it was skipped, or anything worth knowing about how it ran. */
  note: string | null;
  command: string;
  env: Record<string, string>;
  /**
   * Service targets: where each model's runs went (GET /v1/models/{model} `placement`), decided from timings
   * taken as the service started, so it can differ between runs on a noisy machine.
   */
  placements?: Record<string, { placement: string; inline_max_rows: number | null; run_cost_us: number | null }>;
}

/** A service target's placements in words: `iris inline (at most 64 rows a run), digits worker`. */
export function describePlacements(placements: NonNullable<TargetRun['placements']>): string {
  return Object.entries(placements)
    .map(([m, p]) => `${m} ${p.placement}${p.inline_max_rows ? ` (at most ${p.inline_max_rows} rows a run)` : ''}`)
    .join(', ');
}

export interface RssResult {
  target: TargetId;
  model: ModelName;
  route: Route;
  concurrency: number;
  first_requests: number;
  total_requests: number;
  /** RSS at the end of each phase. */
  rss_first_kb: number;
  rss_total_kb: number;
  /** The lowest RSS read over the second half of each phase; absent from older results files. */
  rss_first_low_kb?: number;
  rss_total_low_kb?: number;
  /** rss_total_low_kb / rss_first_low_kb (older results files: rss_total_kb / rss_first_kb) */
  ratio: number;
  errors: number;
}

/** The reading the ratio compares for a phase: its lowest over its second half, else (older files) its end. */
export const rssCompared = (rss: RssResult, phase: 'first' | 'total'): number =>
  phase === 'first' ? (rss.rss_first_low_kb ?? rss.rss_first_kb) : (rss.rss_total_low_kb ?? rss.rss_total_kb);

export interface Evaluation {
  id: string;
  title: string;
  status: 'PASS' | 'FAIL' | 'SKIP';
  detail: string;
}

export interface Results {
  /**
   * 1: targets on, off, baseline, lesson. 2: adds the express target and the floor cells. 3: adds the
   * V2 cells (`v2`), and `settings.only` for a run of some parts only. 4: the REST cells are loaded by
   * wrk and give the target's and the client's CPU time per answer; the MLP model; the isolation cells.
   */
  schema: 4;
  started_at: string;
  finished_at: string;
  wall_time_s: number;
  machine: {
    cpu_model: string;
    cpu_count: number;
    total_mem_mb: number;
    node: string;
    platform: string;
    release: string;
  };
  git: { commit: string | null; dirty: boolean | null };
  settings: {
    quick: boolean;
    duration_s: number;
    warmup_s: number;
    concurrencies: number[];
    v2_concurrencies: number[];
    batch_size: number;
    request_timeout_s: number;
    /** The client of the REST cells ("wrk 4.1.0 ...", its first line of `wrk -v`) and of the V2 cells. */
    rest_client: string;
    autocannon: string;
    onnxruntime_node: string;
    service_env: Record<string, string>;
    baseline_session_options: Record<string, number>;
    /** The parts BENCH_ONLY named, or null for a whole run. */
    only: string[] | null;
  };
  targets: TargetRun[];
  cells: Cell[];
  /** The HTTP layer floor, one cell per target in FLOOR_TARGET_IDS that was measured. */
  floor: FloorCell[];
  rss: RssResult | null;
  v2: V2Cell[];
  isolation: IsolationCell[];
  /** The gRPC cells beside REST (bench/grpc.ts); absent from older results files. */
  grpc?: GrpcCell[];
  evaluation: Evaluation[];
}

export function findCell(
  results: Pick<Results, 'cells'>,
  model: ModelName,
  route: Route,
  target: TargetId,
  concurrency: number,
): Cell | undefined {
  return results.cells.find(
    (c) => c.model === model && c.route === route && c.target === target && c.concurrency === concurrency,
  );
}

export function findV2Cell(
  results: Pick<Results, 'v2'>,
  model: V2ModelName,
  form: V2Form,
  concurrency: number,
): V2Cell | undefined {
  // Older results files have no V2 cells.
  return (results.v2 ?? []).find((c) => c.model === model && c.form === form && c.concurrency === concurrency);
}

/**
 * Writes the dated file and latest.json (same content); returns the dated file's path. A run of some
 * parts only (settings.only) is not the latest measurement of the whole: it writes its dated file
 * alone, named after those parts.
 */
export function saveResults(dir: string, results: Results): string {
  fs.mkdirSync(dir, { recursive: true });
  // Colons are not portable in file names; keep the ISO form otherwise so the files sort by time.
  const stamp = results.started_at.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const only = results.settings.only;
  const json = JSON.stringify(results, null, 2) + '\n';
  const dated = path.join(dir, only ? `${stamp}-only-${only.join('+')}.json` : `${stamp}.json`);
  fs.writeFileSync(dated, json);
  if (!only) fs.writeFileSync(path.join(dir, 'latest.json'), json);
  return dated;
}
