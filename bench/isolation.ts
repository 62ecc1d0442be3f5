/**
 * The isolation cells: can one request, or one model, hurt the others? Each cell runs two wrk loads at
 * once on one service process (Fastify, batching on, the cache off), with every answer's status counted:
 *
 * - poison: clients sending good indices to the `gather` fixture beside clients sending it an index that
 *   passes validation but fails inside onnxruntime. With batching, a failing row is coalesced with good
 *   ones; the good requests should still answer 200.
 * - deadline: one client keeping the `slow` fixture busy (a run of a large share of a second) beside iris
 *   clients whose requests carry a 100 ms deadline (X-Request-Timeout-Ms). Every iris request should be
 *   answered, 200 or 504, within 150 ms.
 *
 * Both loads of a cell are measured over the same seconds; the CPU time per answer is the whole
 * process's over the cell, divided by the measured load's 2xx answers, so it includes the fault's cost.
 */
import { bundled, fixture, makeRepository } from '../src/testing/model-repository';
import { perAnswerUs, restStats } from './load';
import { treeCpuSeconds, waitIdle } from './processes';
import { IsolationCell, IsolationCellId, IsolationLoad } from './results';
import { WrkRequest, WrkSpec, runWrk, startWrk } from './wrk';

export const ISOLATION_LABEL = 'service, isolation cells (iris, gather, slow), batching on, Fastify';
export const ISOLATION_MODELS = ['iris', 'gather', 'slow'] as const;
export const ISOLATION_CELL_IDS: readonly IsolationCellId[] = ['poison', 'deadline'];

export const POISON_GOOD_CLIENTS = 12;
export const POISON_BAD_CLIENTS = 4;
/** Share of the good requests that must answer 200 beside the failing ones. */
export const POISON_MIN_OK = 0.999;
export const DEADLINE_MS = 100;
/** Bound on the p99 of the deadline requests' response times (200 or 504). */
export const DEADLINE_BOUND_MS = 150;
export const DEADLINE_CLIENTS = 4;
const SLOW_CLIENTS = 1;
/** The slow fixture's cost grows with the width's cube: this width makes a run of a good share of a second. */
const SLOW_WIDTH = 2048;
/** The slow client's own timeout: its runs are long, and cutting them would leave the worker idle. */
const SLOW_TIMEOUT_S = 60;
/** How long the slow client runs alone first, so that the slow model is busy when the measured load starts. */
const SLOW_LEAD_MS = 1500;

const JSON_HEADERS = { 'content-type': 'application/json' };
const GATHER_TABLE = [10, 20, 30, 40, 50];
/** Indices -5..4 answer; 7 and 99 are valid int64 values that fail inside onnxruntime. */
const GOOD_INDICES = [0, 1, 2, 3, 4, -1, -2, -3, -4, -5];
const BAD_INDICES = [7, 99];
const IRIS_ROWS = [
  { features: [5.1, 3.5, 1.4, 0.2], label: 0 },
  { features: [7.0, 3.2, 4.7, 1.4], label: 1 },
  { features: [6.3, 3.3, 6.0, 2.5], label: 2 },
];

const gatherRequest = (idx: number): WrkRequest => ({
  method: 'POST',
  path: '/v1/models/gather/predict',
  headers: JSON_HEADERS,
  body: JSON.stringify({ inputs: { idx: [idx] } }),
});
const deadlineHeaders = { ...JSON_HEADERS, 'x-request-timeout-ms': String(DEADLINE_MS) };
const irisRequest = (features: number[]): WrkRequest => ({
  method: 'POST',
  path: '/v1/models/iris/predict',
  headers: deadlineHeaders,
  body: JSON.stringify({ features }),
});
const slowRequest = (width: number): WrkRequest => ({
  method: 'POST',
  path: '/v1/models/slow/predict',
  headers: JSON_HEADERS,
  body: JSON.stringify({ inputs: { x: [new Array(width).fill(1)] } }),
});

/** A throw-away repository holding the three models these cells use. */
export const isolationRepository = (): Promise<string> =>
  makeRepository({ iris: bundled('iris'), gather: fixture('gather'), slow: fixture('slow') });

async function post(baseUrl: string, r: WrkRequest): Promise<{ status: number; json: unknown }> {
  const res = await fetch(baseUrl + r.path, { method: r.method, headers: r.headers, body: r.body });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) };
  } catch {
    return { status: res.status, json: text };
  }
}

/** The first value of a v1 answer's output, whatever its nesting. */
function firstOutput(json: unknown, name: string): number {
  let v = (json as { outputs?: Record<string, unknown> }).outputs?.[name];
  while (Array.isArray(v)) v = v[0];
  return Number(v);
}

/**
 * Every body once, alone: the good ones must answer right and the failing one must fail, or the cells
 * would measure something else than they say.
 */
export async function checkIsolationAnswers(baseUrl: string): Promise<void> {
  for (const idx of GOOD_INDICES) {
    const { status, json } = await post(baseUrl, gatherRequest(idx));
    const want = GATHER_TABLE[(idx + 5) % 5];
    if (status !== 200 || firstOutput(json, 'out') !== want)
      throw new Error(`gather [${idx}] should answer 200 with ${want}, got ${status} ${JSON.stringify(json)}`);
  }
  for (const idx of BAD_INDICES) {
    const { status, json } = await post(baseUrl, gatherRequest(idx));
    if (status < 400) throw new Error(`gather [${idx}] should fail, got ${status} ${JSON.stringify(json)}`);
  }
  const small = await post(baseUrl, slowRequest(4));
  if (small.status !== 200 || firstOutput(small.json, 's') !== 64)
    throw new Error(`slow [1, 4] of ones should answer 200 with 64, got ${small.status} ${JSON.stringify(small.json)}`);
  for (const row of IRIS_ROWS) {
    const { status, json } = await post(baseUrl, irisRequest(row.features));
    const got = (json as { prediction?: unknown }).prediction;
    if (status !== 200 || got !== row.label)
      throw new Error(
        `iris ${JSON.stringify(row.features)} should be class ${row.label}, got ${status} ${JSON.stringify(json)}`,
      );
  }
}

interface LoadPlan {
  role: string;
  spec: WrkSpec;
}

function plans(id: IsolationCellId, baseUrl: string): { measured: LoadPlan; fault: LoadPlan } {
  if (id === 'poison')
    return {
      measured: {
        role: 'good indices',
        spec: { url: baseUrl, connections: POISON_GOOD_CLIENTS, requests: GOOD_INDICES.map(gatherRequest) },
      },
      fault: {
        role: 'failing index',
        spec: { url: baseUrl, connections: POISON_BAD_CLIENTS, requests: BAD_INDICES.map(gatherRequest) },
      },
    };
  return {
    measured: {
      role: `iris, ${DEADLINE_MS} ms deadline`,
      spec: { url: baseUrl, connections: DEADLINE_CLIENTS, requests: IRIS_ROWS.map((r) => irisRequest(r.features)) },
    },
    fault: {
      role: 'slow model kept busy',
      spec: { url: baseUrl, connections: SLOW_CLIENTS, requests: [slowRequest(SLOW_WIDTH)], timeoutS: SLOW_TIMEOUT_S },
    },
  };
}

export const ISOLATION_TITLES: Record<IsolationCellId, string> = {
  poison: `gather: ${POISON_GOOD_CLIENTS} clients sending good indices beside ${POISON_BAD_CLIENTS} sending a failing one`,
  deadline: `iris with X-Request-Timeout-Ms: ${DEADLINE_MS}, ${DEADLINE_CLIENTS} clients, beside ${SLOW_CLIENTS} client keeping the slow fixture busy`,
};

/**
 * One isolation cell on a running service: a short warm-up of both loads, then both at once for
 * `durationS` (the fault first, alone for a moment, so that it is in full swing when the measured load
 * starts; it is stopped once the measured load is done).
 */
export async function measureIsolationCell(
  wrk: string,
  id: IsolationCellId,
  baseUrl: string,
  pid: number,
  durationS: number,
  warmupS: number,
): Promise<IsolationCell> {
  const { measured, fault } = plans(id, baseUrl);
  const count = (p: LoadPlan): WrkSpec => ({ ...p.spec, countStatuses: true });
  if (warmupS > 0) await Promise.all([runWrk(wrk, count(measured), warmupS), runWrk(wrk, count(fault), warmupS)]);
  await waitIdle(pid, 100, 15_000);
  const before = treeCpuSeconds(pid);
  // Long enough to cover the measured load whatever the lead, and stopped by hand when it is done.
  const faultRun = startWrk(wrk, count(fault), durationS + SLOW_LEAD_MS / 1000 + 5);
  await new Promise((r) => setTimeout(r, id === 'deadline' ? SLOW_LEAD_MS : 200));
  const measuredResult = await runWrk(wrk, count(measured), durationS);
  faultRun.stop();
  const faultResult = await faultRun.done;
  await waitIdle(pid, 100, 15_000);
  const after = treeCpuSeconds(pid);
  const cpu = before === null || after === null ? null : after - before;
  const load = (p: LoadPlan, r: Awaited<ReturnType<typeof runWrk>>, cpuS: number | null): IsolationLoad => {
    const request = p.spec.requests[0];
    return {
      role: p.role,
      path: request.path,
      concurrency: p.spec.connections,
      headers: request.headers ?? {},
      ...restStats(r, cpuS),
    };
  };
  const measuredLoad = load(measured, measuredResult, cpu);
  // The whole process's CPU is given once, with the measured load; the fault's answers are not what it is for.
  const faultLoad = { ...load(fault, faultResult, null), cpu_us_per_request: null };
  measuredLoad.cpu_us_per_request = perAnswerUs(cpu, measuredLoad.responses_2xx);
  return { id, title: ISOLATION_TITLES[id], measured: measuredLoad, fault: faultLoad };
}
