/**
 * `npm run bench`: starts the service (batching on and off on Fastify, batching on on Express, and with the
 * prediction cache on Fastify), the naive baseline and the lesson's FastAPI app side by side and loads them
 * one cell at a time, interleaved (each cell on every target in turn), measures the HTTP layer floor
 * (GET /health/live) on the service's two adapters and on the baseline's bare node:http,
 * then the Open Inference Protocol's cells (bench/v2.ts: V2 infer as JSON and as binary tensors on an
 * image-sized model and on digits, with the service's CPU time per request), the isolation cells
 * (bench/isolation.ts: a failing row beside good ones, a slow model beside deadlines) and the memory
 * check, prints the comparison table, the floor table, the V2 table, the isolation table and the targets, and writes
 * bench/results/<start>.json, bench/results/latest.json, docs/PERFORMANCE.md and docs/throughput.svg.
 *
 * Environment: BENCH_DURATION_S (seconds per cell, default 5), BENCH_QUICK=1 (1 s cells at c=1 and 32
 * only, the V2 cells at c=1 and 8 as always: a smoke check), BENCH_ONLY=<part>[,<part>...] (run only
 * these parts: the targets on, off, express, cached, baseline, lesson, then v2, grpc (bench/grpc.ts: gRPC
 * beside REST), isolation and memory; such a run writes bench/results/<start>-only-<parts>.json and nothing
 * else, since it is not a whole measurement;
 * `BENCH_ONLY=v2 BENCH_DURATION_S=1` checks the V2 cells end to end in about half a minute).
 * The npm script builds the service first; this file expects dist/ to be current. The REST cells (every
 * target's, the floor's, the isolation cells) are loaded by wrk, which must be on the PATH (bench/wrk.ts
 * says why); the bench stops at once, saying how to install it, when it is not.
 *
 * stdout gets the table and the targets only; progress goes to stderr.
 * Exit code: 0 whether or not the targets are met; 1 if a target cannot start or answers wrongly
 * (the lesson, which is not ours, is skipped instead when it is missing or does not come up);
 * 130 when interrupted.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderChart } from './chart';
import { writePerformanceDoc } from './docs';
import {
  ISOLATION_CELL_IDS,
  ISOLATION_LABEL,
  ISOLATION_MODELS,
  checkIsolationAnswers,
  isolationRepository,
  measureIsolationCell,
} from './isolation';
import { LoadSpec, RestCellStats, RestSpec, fire, measureCpuCell, measureRestCell, stopLoad } from './load';
import { Child, freePort, killAllNow, rssKb, rssOver, startChild, stopAll, stopChild, waitUntil } from './processes';
import {
  GRPC_CONCURRENCIES,
  GRPC_FORMS,
  GRPC_MODELS,
  GRPC_LABEL,
  GrpcCell,
  grpcEvaluation,
  grpcTextTable,
  measureGrpc,
} from './grpc';
import { clientCostSummary, evaluate, floorTextTable, isolationTextTable, textTable, v2TextTable } from './report';
import {
  Cell,
  describePlacements,
  FloorCell,
  IsolationCell,
  Results,
  RssResult,
  TargetRun,
  V2Cell,
  saveResults,
} from './results';
import {
  V2_CONCURRENCIES,
  V2_FORMS,
  V2_LABEL,
  V2_MODELS,
  removeRepository,
  v2Env,
  v2Repository,
  v2Workloads,
} from './v2';
import { WRK_INSTALL_HINT, findWrk, stopWrk } from './wrk';
import {
  BATCH_SIZE,
  FLOOR_CONCURRENCY,
  FLOOR_PATH,
  FLOOR_TARGET_IDS,
  FloorTargetId,
  MODELS,
  ModelName,
  ROUTES,
  Route,
  TARGETS,
  TARGET_IDS,
  TargetId,
  benchRepository,
  checkAnswers,
  checkFloorAnswer,
  isFloorTarget,
  isServiceTarget,
  samples,
  serviceEnv,
} from './workload';

const ROOT = path.resolve(__dirname, '..');
const LESSON_SCRIPT = path.resolve(ROOT, '..', 'shared', 'anchors', 'lesson-fastapi', 'run.sh');
const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const DOC_FILE = path.join(ROOT, 'docs', 'PERFORMANCE.md');
const CHART_FILE = path.join(ROOT, 'docs', 'throughput.svg');

const QUICK = ['1', 'true', 'yes'].includes((process.env.BENCH_QUICK ?? '').toLowerCase());
const DURATION_S = QUICK ? 1 : positiveNumber('BENCH_DURATION_S', 5);
const WARMUP_S = 1;
const CONCURRENCIES = QUICK ? [1, 32] : [1, 8, 32, 128];
const RSS_FIRST = QUICK ? 2_000 : 10_000;
const RSS_TOTAL = QUICK ? 20_000 : 100_000;
const RSS_CONCURRENCY = 32;
const REQUEST_TIMEOUT_S = 10;
const SERVICE_READY_TIMEOUT_MS = 60_000;
const LESSON_READY_TIMEOUT_MS = 120_000;

/**
 * What BENCH_ONLY can name: each target with its cells (and floor cell), the V2 cells, the gRPC cells,
 * the isolation cells, the memory check.
 */
const PARTS = [...TARGET_IDS, 'v2', 'grpc', 'isolation', 'memory'] as const;
type Part = (typeof PARTS)[number];
const ONLY = onlyParts();
const selected = (part: Part): boolean => ONLY === null || ONLY.includes(part);

function onlyParts(): Part[] | null {
  const raw = (process.env.BENCH_ONLY ?? '').trim();
  if (raw === '') return null;
  const names = raw.split(',').map((p) => p.trim());
  const unknown = names.filter((p) => !(PARTS as readonly string[]).includes(p));
  if (unknown.length) {
    console.error(`BENCH_ONLY names parts among ${PARTS.join(', ')}; got "${raw}"`);
    process.exit(1);
  }
  // In the bench's own order, whatever the order given.
  return PARTS.filter((p) => names.includes(p));
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`${name} must be a positive number of seconds, got "${raw}"`);
    process.exit(1);
  }
  return value;
}

const log = (msg: string): void => void process.stderr.write(`${msg}\n`);

/** Set on Ctrl-C: the loops stop at the next cell instead of starting new work while children are stopped. */
let interrupted = false;
class Interrupted extends Error {}
function checkInterrupted(): void {
  if (interrupted) throw new Interrupted('interrupted');
}

/** wrk, found on the PATH by main() before anything starts. */
let WRK = '';

/** The service targets' model repository (every model of MODELS), made by main() when a part needs it. */
let SERVICE_REPOSITORY = '';

/** A started target: its process and where it listens. */
interface Running {
  child: Child;
  baseUrl: string;
}

/**
 * Settings the service might read that come from the bench's own environment (an operator's
 * ORT_INTRA_OP_NUM_THREADS, say): they change the results, so they are recorded too.
 */
function inheritedServiceEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      v !== undefined &&
      /^(ORT_|BATCH|MAX_BATCH|MAX_QUEUE_SIZE$|REQUEST_TIMEOUT_MS$|INFERENCE_|MODEL_REPOSITORY$|DEFAULT_MODEL$|BODY_LIMIT$|NODE_ENV$|UV_THREADPOOL_SIZE$|CACHE_|REDIS_URL$)/.test(
        k,
      )
    )
      out[k] = v;
  }
  return out;
}

async function getJson(url: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url);
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: text };
  }
}

/**
 * Starts `node dist/main.js` with these settings and waits until every model is READY and `models`
 * are among them (the service listens before its models are loaded; FAILED is final).
 */
async function startService(label: string, env: Record<string, string>, models: readonly string[]): Promise<Running> {
  const child = startChild(label, process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  const baseUrl = `http://127.0.0.1:${env.PORT}`;
  await waitUntil(child, 'READY', SERVICE_READY_TIMEOUT_MS, async () => {
    const { status, json } = await getJson(`${baseUrl}/v1/models`);
    const listed = status === 200 ? ((json as { models?: { name: string; state: string }[] }).models ?? []) : [];
    const failed = listed.filter((m) => m.state === 'FAILED');
    if (failed.length)
      throw new Error(`models FAILED: ${failed.map((m) => m.name).join(', ')}: ${JSON.stringify(json)}`);
    const names = new Set(listed.filter((m) => m.state === 'READY').map((m) => m.name));
    return listed.length > 0 && listed.every((m) => m.state === 'READY') && models.every((m) => names.has(m));
  }).catch(async (err: Error) => {
    await stopChild(child);
    throw err;
  });
  return { child, baseUrl };
}

async function startBaseline(port: number): Promise<Running> {
  const child = startChild(
    TARGETS.baseline.label,
    process.execPath,
    ['-r', 'ts-node/register/transpile-only', 'bench/baseline.ts'],
    {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
    },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  // The baseline listens only once its models are loaded.
  await waitUntil(child, 'listening', 30_000, async () => (await getJson(`${baseUrl}/health`)).status === 200).catch(
    async (err: Error) => {
      await stopChild(child);
      throw err;
    },
  );
  return { child, baseUrl };
}

/** The lesson's app, or a reason to skip it: it is not ours, so its absence is a note, not a failure. */
async function startLesson(port: number): Promise<Running | string> {
  if (!fs.existsSync(LESSON_SCRIPT)) return `${path.relative(ROOT, LESSON_SCRIPT)} not found`;
  const baseUrl = `http://127.0.0.1:${port}`;
  let child: Child | undefined;
  try {
    child = startChild(TARGETS.lesson.label, 'bash', [LESSON_SCRIPT], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port) },
    });
    await waitUntil(
      child,
      'healthy',
      LESSON_READY_TIMEOUT_MS,
      async () => (await getJson(`${baseUrl}/health`)).status === 200,
    );
    return { child, baseUrl };
  } catch (err) {
    if (child) await stopChild(child);
    const reason = (err instanceof Error ? err.message : String(err))
      .replace(`${TARGETS.lesson.label}: `, '')
      .split('\n');
    return `did not come up: ${reason[0]}${reason.length > 1 ? ` (last output: ${reason.slice(1).join(' ').slice(-300)})` : ''}`;
  }
}

function loadSpec(baseUrl: string, target: TargetId, model: ModelName, route: Route, concurrency: number): RestSpec {
  const requestPath = TARGETS[target].path(model, route);
  return {
    url: baseUrl,
    connections: concurrency,
    requests: samples(ROOT, model, route).map((s) => ({
      method: 'POST',
      path: requestPath,
      headers: { 'content-type': 'application/json' },
      body: s.body,
    })),
  };
}

function describeCommand(id: TargetId): string {
  switch (id) {
    case 'on':
    case 'off':
    case 'express':
    case 'cached':
      return 'node dist/main.js';
    case 'baseline':
      return 'node -r ts-node/register/transpile-only bench/baseline.ts';
    case 'lesson':
      return `bash ${path.relative(ROOT, LESSON_SCRIPT)}`;
  }
}

async function startTarget(id: TargetId): Promise<Running | string> {
  const port = await freePort();
  if (isServiceTarget(id)) return startService(TARGETS[id].label, serviceEnv(port, id, SERVICE_REPOSITORY), MODELS);
  if (id === 'baseline') return startBaseline(port);
  return startLesson(port);
}

/** A cell's figures on one progress line: req/s, CPU per answer of the target and of wrk, latencies, errors. */
function cellLine(stats: RestCellStats): string {
  const us = (x: number | null): string => (x === null ? '-' : x.toFixed(0));
  return (
    `${stats.req_per_s.toFixed(0).padStart(6)} req/s  ${us(stats.cpu_us_per_request).padStart(5)} µs CPU/req ` +
    `(wrk ${us(stats.client_cpu_us_per_request)})  p50 ${stats.p50_ms.toFixed(2)} ms  p99 ${stats.p99_ms.toFixed(2)} ms` +
    (stats.errors ? `  ERRORS ${stats.errors} ${JSON.stringify(stats.error_detail)}` : '')
  );
}

/** GET /health/live at FLOOR_CONCURRENCY: what the target's HTTP stack alone allows. */
async function measureFloor(id: FloorTargetId, started: Running): Promise<FloorCell> {
  const spec: RestSpec = {
    url: started.baseUrl,
    connections: FLOOR_CONCURRENCY,
    requests: [{ method: 'GET', path: FLOOR_PATH }],
  };
  const stats = await measureRestCell(WRK, spec, DURATION_S, WARMUP_S, started.child.pid);
  checkInterrupted();
  log(`   ${id.padEnd(8)} floor  GET ${FLOOR_PATH} c=${FLOOR_CONCURRENCY} ${cellLine(stats)}`);
  // of_bare is filled in once every floor cell is in.
  return { target: id, method: 'GET', path: FLOOR_PATH, concurrency: FLOOR_CONCURRENCY, ...stats, of_bare: null };
}

/** Where the service placed each bench model's runs, as GET /v1/models/{model} says. */
async function placementsOf(baseUrl: string): Promise<NonNullable<TargetRun['placements']>> {
  const out: NonNullable<TargetRun['placements']> = {};
  for (const model of MODELS) {
    const { json } = await getJson(`${baseUrl}/v1/models/${model}`);
    const p = (json as { placement?: { placement: string; inline_max_rows?: number | null; run_cost_us?: number } })
      .placement;
    if (p)
      out[model] = {
        placement: p.placement,
        inline_max_rows: p.inline_max_rows ?? null,
        run_cost_us: p.run_cost_us ?? null,
      };
  }
  return out;
}

/**
 * Starts every target at once (each on its own port; the idle ones cost nothing measurable), checks their
 * answers, then runs the cells interleaved: each model × route × concurrency on every target in turn, so
 * that the two sides of a ratio are measured seconds apart rather than minutes, and a noisy spell on a
 * shared machine moves both. The floor cells follow, each in its target's own process, then every target
 * stops.
 */
async function measureTargets(ids: readonly TargetId[], cells: Cell[], floor: FloorCell[]): Promise<TargetRun[]> {
  const runs: TargetRun[] = [];
  const up = new Map<TargetId, Running>();
  try {
    for (const id of ids) {
      const info = TARGETS[id];
      const run: TargetRun = {
        id,
        label: info.label,
        status: 'measured',
        note: null,
        command: describeCommand(id),
        env: {},
      };
      runs.push(run);
      checkInterrupted();
      log(`\n== ${info.label}: starting`);
      const started = await startTarget(id);
      if (typeof started === 'string') {
        log(`   SKIPPED: ${started}`);
        Object.assign(run, { status: 'skipped', note: started });
        continue;
      }
      up.set(id, started);
      if (isServiceTarget(id)) {
        run.env = serviceEnv(Number(new URL(started.baseUrl).port), id, SERVICE_REPOSITORY);
        run.placements = await placementsOf(started.baseUrl);
        log(`   placement: ${describePlacements(run.placements)}`);
      }
      await checkAnswers(ROOT, started.baseUrl, info);
      if (isFloorTarget(id)) await checkFloorAnswer(started.baseUrl, info);
      log(`   pid ${started.child.pid} on ${started.baseUrl}, answers checked`);
    }
    log('');
    for (const model of MODELS) {
      for (const route of ROUTES) {
        for (const concurrency of CONCURRENCIES) {
          for (const [id, started] of up) {
            if (!TARGETS[id].models.includes(model)) continue;
            checkInterrupted();
            const stats = await measureRestCell(
              WRK,
              loadSpec(started.baseUrl, id, model, route, concurrency),
              DURATION_S,
              WARMUP_S,
              started.child.pid,
            );
            checkInterrupted(); // a cell cut short by Ctrl-C is not a result
            cells.push({
              model,
              route,
              target: id,
              concurrency,
              ...stats,
              instances_per_s: route === 'batch' ? Number((stats.req_per_s * BATCH_SIZE).toFixed(1)) : null,
            });
            log(
              `   ${id.padEnd(8)} ${model.padEnd(6)} ${route.padEnd(6)} c=${String(concurrency).padEnd(3)} ${cellLine(stats)}`,
            );
          }
        }
      }
    }
    for (const [id, started] of up) {
      checkInterrupted();
      if (isFloorTarget(id)) floor.push(await measureFloor(id, started));
    }
  } finally {
    await Promise.all([...up.values()].map((started) => stopChild(started.child)));
  }
  return runs;
}

/**
 * RSS of a fresh service process (batching on, Fastify) over RSS_FIRST and then RSS_TOTAL digits single
 * requests: at the end of each phase, and the lowest over each phase's second half (what the ratio compares).
 */
async function measureRss(): Promise<RssResult | null> {
  checkInterrupted();
  log(`\n== memory: ${TARGETS.on.label}, digits single, c=${RSS_CONCURRENCY}, ${RSS_FIRST} then ${RSS_TOTAL} requests`);
  const started = await startService(TARGETS.on.label, serviceEnv(await freePort(), 'on', SERVICE_REPOSITORY), MODELS);
  try {
    if (rssKb(started.child.pid) === null) {
      log('   SKIPPED: no /proc/<pid>/status on this platform');
      return null;
    }
    await checkAnswers(ROOT, started.baseUrl, TARGETS.on);
    // A fixed number of requests, which wrk cannot send: autocannon, whose cost does not matter here.
    const spec: LoadSpec = loadSpec(started.baseUrl, 'on', 'digits', 'single', RSS_CONCURRENCY);
    const pid = started.child.pid;
    const mb = (kb: number) => (kb / 1024).toFixed(1);
    const first = await rssOver(pid, () => fire(spec, RSS_FIRST));
    checkInterrupted();
    log(`   after ${RSS_FIRST}: ${mb(first.endKb)} MB, lowest ${mb(first.lowKb)} MB (${first.result.duration_s} s)`);
    const rest = await rssOver(pid, () => fire(spec, RSS_TOTAL - RSS_FIRST));
    checkInterrupted();
    log(`   after ${RSS_TOTAL}: ${mb(rest.endKb)} MB, lowest ${mb(rest.lowKb)} MB (${rest.result.duration_s} s)`);
    return {
      target: 'on',
      model: 'digits',
      route: 'single',
      concurrency: RSS_CONCURRENCY,
      first_requests: RSS_FIRST,
      total_requests: RSS_TOTAL,
      rss_first_kb: first.endKb,
      rss_total_kb: rest.endKb,
      rss_first_low_kb: first.lowKb,
      rss_total_low_kb: rest.lowKb,
      ratio: Number((rest.lowKb / first.lowKb).toFixed(4)),
      errors: first.result.errors + rest.result.errors,
    };
  } finally {
    await stopChild(started.child);
  }
}

/**
 * The Open Inference Protocol's cells, on a service process of their own (its model repository holds
 * the image model, and JSON images need a larger body limit): each model × form × concurrency, with
 * the process's CPU time per request.
 */
async function measureV2(cells: V2Cell[]): Promise<TargetRun> {
  checkInterrupted();
  log(`\n== ${V2_LABEL}: starting`);
  const repository = await v2Repository();
  const env = v2Env(await freePort(), repository);
  const run: TargetRun = {
    id: 'v2',
    label: V2_LABEL,
    status: 'measured',
    note: 'MODEL_REPOSITORY is a temporary copy of test/fixtures/models/image and models/digits',
    command: 'node dist/main.js',
    env,
  };
  try {
    const started = await startService(V2_LABEL, env, V2_MODELS);
    try {
      const workloads = await v2Workloads(ROOT, started.baseUrl);
      log(`   pid ${started.child.pid} on ${started.baseUrl}, answers checked (JSON and binary agree)`);
      for (const { model, path: requestPath, requests } of workloads) {
        for (const form of V2_FORMS) {
          for (const concurrency of V2_CONCURRENCIES) {
            checkInterrupted();
            const spec: LoadSpec = {
              url: started.baseUrl,
              connections: concurrency,
              requests: requests[form].map((r) => ({ method: 'POST', path: requestPath, ...r })),
            };
            const stats = await measureCpuCell(spec, DURATION_S, WARMUP_S, started.child.pid);
            checkInterrupted();
            const bodyBytes = requests[form].reduce((n, r) => n + r.body.length, 0) / requests[form].length;
            cells.push({ model, form, concurrency, body_bytes: Math.round(bodyBytes), ...stats });
            log(
              `   ${model.padEnd(6)} ${form.padEnd(6)} c=${String(concurrency).padEnd(3)} ` +
                `${stats.req_per_s.toFixed(1).padStart(7)} req/s  ` +
                `${stats.cpu_ms_per_request === null ? '-' : stats.cpu_ms_per_request.toFixed(3)} ms CPU/req  ` +
                `p50 ${stats.p50_ms.toFixed(2)} ms  p99 ${stats.p99_ms.toFixed(2)} ms  (${stats.requests} requests)` +
                (stats.errors ? `  ERRORS ${stats.errors} ${JSON.stringify(stats.error_detail)}` : ''),
            );
          }
        }
      }
    } finally {
      await stopChild(started.child);
    }
  } finally {
    await removeRepository(repository);
  }
  return run;
}

/**
 * The isolation cells, on a service process of their own (its model repository holds iris and the
 * gather and slow fixtures): a failing row beside good ones, a slow model beside deadlines.
 */
async function measureIsolation(cells: IsolationCell[]): Promise<TargetRun> {
  checkInterrupted();
  log(`\n== ${ISOLATION_LABEL}: starting`);
  const repository = await isolationRepository();
  const env = serviceEnv(await freePort(), 'on', repository);
  const run: TargetRun = {
    id: 'isolation',
    label: ISOLATION_LABEL,
    status: 'measured',
    note: 'MODEL_REPOSITORY is a temporary copy of models/iris and test/fixtures/models/{gather,slow}',
    command: 'node dist/main.js',
    env,
  };
  try {
    const started = await startService(ISOLATION_LABEL, env, ISOLATION_MODELS);
    try {
      await checkIsolationAnswers(started.baseUrl);
      log(`   pid ${started.child.pid} on ${started.baseUrl}, answers checked`);
      for (const id of ISOLATION_CELL_IDS) {
        checkInterrupted();
        const cell = await measureIsolationCell(WRK, id, started.baseUrl, started.child.pid, DURATION_S, WARMUP_S);
        checkInterrupted();
        cells.push(cell);
        for (const load of [cell.measured, cell.fault])
          log(
            `   ${id.padEnd(8)} ${load.role.padEnd(24)} c=${String(load.concurrency).padEnd(3)} ${cellLine(load)}  ` +
              `max ${load.max_ms.toFixed(1)} ms  statuses ${JSON.stringify(load.statuses)}`,
          );
      }
    } finally {
      await stopChild(started.child);
    }
  } finally {
    await fs.promises.rm(repository, { recursive: true, force: true });
  }
  return run;
}

function packageVersion(name: string): string {
  try {
    return (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

function gitState(): Results['git'] {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: null, dirty: null };
  }
}

function installCleanup(): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      // Second Ctrl-C: no more waiting for graceful stops.
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    log(`\n${signal}: stopping the load and every child process (again to force)`);
    stopLoad();
    stopWrk();
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // Whatever else ends the process (an uncaught error, process.exit), no child may outlive it.
  process.on('exit', killAllNow);
}

async function main(): Promise<void> {
  installCleanup();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'main.js'))) {
    throw new Error('dist/main.js is missing: run `npm run build` first (`npm run bench` does)');
  }
  const started = new Date();
  const targetIds = TARGET_IDS.filter(selected);
  if (targetIds.length || selected('isolation')) {
    WRK = findWrk() ?? '';
    if (!WRK) throw new Error(`wrk not found: ${WRK_INSTALL_HINT}`);
  }
  if (targetIds.some(isServiceTarget) || selected('memory')) SERVICE_REPOSITORY = await benchRepository();
  try {
    await measureAll(started, targetIds);
  } finally {
    if (SERVICE_REPOSITORY) await fs.promises.rm(SERVICE_REPOSITORY, { recursive: true, force: true });
  }
}

/** The wrk version line (`wrk -v` prints it and exits non-zero), for the results. */
function wrkVersion(): string {
  if (!WRK) return 'not used';
  try {
    execFileSync(WRK, ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const out = ((err as { stdout?: Buffer }).stdout?.toString('utf8') ?? '').split('\n')[0].trim();
    if (out) return out;
  }
  return 'wrk (version unknown)';
}

async function measureAll(started: Date, targetIds: TargetId[]): Promise<void> {
  // Every target's models × routes × concurrencies, plus one floor cell per floor target, the V2 cells
  // and the isolation cells.
  const v2Cells = selected('v2') ? V2_MODELS.length * V2_FORMS.length * V2_CONCURRENCIES.length : 0;
  const cellsPlanned =
    targetIds.reduce((n, id) => n + TARGETS[id].models.length * ROUTES.length * CONCURRENCIES.length, 0) +
    FLOOR_TARGET_IDS.filter(selected).length +
    v2Cells +
    (selected('grpc') ? GRPC_MODELS.length * GRPC_FORMS.length * GRPC_CONCURRENCIES.length : 0) +
    (selected('isolation') ? ISOLATION_CELL_IDS.length : 0);
  log(
    `bench: ${QUICK ? 'QUICK mode, ' : ''}${ONLY ? `only ${ONLY.join(', ')}, ` : ''}` +
      `${cellsPlanned} cells × (${WARMUP_S} s warm-up + ${DURATION_S} s) ` +
      `≈ ${Math.ceil((cellsPlanned * (WARMUP_S + DURATION_S)) / 60)} min of load, plus start-ups` +
      (selected('memory') ? ` and ${RSS_TOTAL} requests for the memory check` : ''),
  );

  const cells: Cell[] = [];
  const floor: FloorCell[] = [];
  const targets: TargetRun[] = [];
  const v2: V2Cell[] = [];
  const isolation: IsolationCell[] = [];
  targets.push(...(await measureTargets(targetIds, cells, floor)));
  const bare = floor.find((f) => f.target === 'baseline');
  for (const f of floor)
    f.of_bare = bare && bare.req_per_s > 0 ? Number((f.req_per_s / bare.req_per_s).toFixed(4)) : null;
  if (selected('v2')) targets.push(await measureV2(v2));
  const grpc: GrpcCell[] = [];
  if (selected('grpc')) targets.push(await measureGrpc(grpc, DURATION_S, WARMUP_S, log));
  if (selected('isolation')) targets.push(await measureIsolation(isolation));
  const rss = selected('memory') ? await measureRss() : null;

  const finished = new Date();
  const m = os.cpus();
  const results: Results = {
    schema: 4,
    started_at: started.toISOString(),
    finished_at: finished.toISOString(),
    wall_time_s: Math.round((finished.getTime() - started.getTime()) / 1000),
    machine: {
      cpu_model: m[0]?.model.trim() ?? 'unknown',
      cpu_count: m.length,
      total_mem_mb: Math.round(os.totalmem() / 2 ** 20),
      node: process.version,
      platform: os.platform(),
      release: os.release(),
    },
    git: gitState(),
    settings: {
      quick: QUICK,
      duration_s: DURATION_S,
      warmup_s: WARMUP_S,
      concurrencies: CONCURRENCIES,
      v2_concurrencies: [...V2_CONCURRENCIES],
      batch_size: BATCH_SIZE,
      request_timeout_s: REQUEST_TIMEOUT_S,
      rest_client: wrkVersion(),
      autocannon: packageVersion('autocannon'),
      onnxruntime_node: packageVersion('onnxruntime-node'),
      service_env: {
        ...inheritedServiceEnv(),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        HTTP_ADAPTER: 'fastify | express',
        BATCHING_ENABLED: 'true | false',
        CACHE_ENABLED: 'true | false',
      },
      baseline_session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
      only: ONLY,
    },
    targets,
    cells,
    floor,
    rss,
    v2,
    isolation,
    grpc,
    evaluation: [],
  };
  results.evaluation = [...evaluate(results), ...grpcEvaluation(grpc)];

  if (cells.length) {
    console.log('');
    console.log(textTable(results));
    console.log(
      `\n(latencies in ms; CPU = the target's user + system µs per 2xx answer, wrk's own beside it in the log; ` +
        `err = connection errors + timeouts + non-2xx; batch rows: ${BATCH_SIZE} instances per request, instances/s = req/s × ${BATCH_SIZE})`,
    );
    const clientCost = clientCostSummary(results);
    if (clientCost) console.log(`${clientCost}.`);
  }
  for (const t of targets.filter((x) => x.status === 'skipped')) console.log(`skipped: ${t.label}: ${t.note}`);
  if (floor.length) {
    console.log(
      `\nHTTP layer floor: GET ${FLOOR_PATH} at c=${FLOOR_CONCURRENCY}, ${DURATION_S} s (of bare = req/s ÷ the bare node:http server's)`,
    );
    console.log(floorTextTable(results));
  }
  if (v2.length) {
    console.log(
      `\nOpen Inference Protocol: POST /v2/models/{model}/infer, one instance per request, as JSON and as binary tensors (${V2_LABEL})`,
    );
    console.log(v2TextTable(results));
    console.log(
      "(latencies in ms; CPU ms/req = the service process's user + system time over the cell ÷ its requests)",
    );
  }
  if (grpc.length) {
    console.log(`\nOpen Inference Protocol over gRPC beside REST, one instance per request (${GRPC_LABEL})`);
    console.log(grpcTextTable(grpc));
  }
  if (isolation.length) {
    console.log(`\nIsolation: two loads at once on one service process (${ISOLATION_LABEL})`);
    console.log(isolationTextTable(results));
  }
  console.log('\ntargets');
  for (const e of results.evaluation) console.log(`  ${e.status.padEnd(4)} ${e.title}\n       ${e.detail}`);

  const dated = saveResults(RESULTS_DIR, results);
  if (ONLY) {
    console.log(
      `\nwall time ${results.wall_time_s} s; wrote ${path.relative(ROOT, dated)} only (BENCH_ONLY: latest.json and the docs describe whole runs)`,
    );
    return;
  }
  fs.mkdirSync(path.dirname(CHART_FILE), { recursive: true });
  fs.writeFileSync(CHART_FILE, renderChart(results));
  writePerformanceDoc(DOC_FILE, results, CHART_FILE, dated);
  console.log(
    `\nwall time ${results.wall_time_s} s; wrote ${path.relative(ROOT, dated)}, bench/results/latest.json, docs/PERFORMANCE.md, docs/throughput.svg`,
  );
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    // On Ctrl-C the signal handler owns the shutdown (and the exit code).
    if (err instanceof Interrupted) return;
    console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`);
    stopLoad();
    await stopAll();
    process.exit(1);
  },
);
