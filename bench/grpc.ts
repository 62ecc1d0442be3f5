/**
 * The bench's gRPC cells (`BENCH_ONLY=grpc` of `npm run bench`, or alone: `npm run bench:grpc`): the
 * Open Inference Protocol over gRPC beside REST, on one service process (the `on` target's settings:
 * Fastify, batching on, the prediction cache off so that every request runs), for iris and digits at
 * c=1 and c=32, in one run so that the ratios compare like with like. The REST forms are the bench's
 * own route (POST /v1/models/{model}/predict), V2 JSON and V2 binary, loaded by the bench's REST load
 * (bench/load.ts); gRPC sends raw_input_contents and gets raw_output_contents, as Triton's client does,
 * from a load generator in a process of its own (bench/grpc-load.ts: prepared bytes over node:http2,
 * statuses only, as the REST generators do). Every form sends the same rows, whose classes are checked
 * in every form before the cells.
 *
 * Each cell is measured as the V2 cells are: a warm-up, then a fixed number of requests sized from it,
 * with the service idle on both sides, so that its CPU time (user + system from /proc) divided by its
 * OK answers is their cost; and in rounds, the four forms of one model and concurrency taking turns,
 * so that what else runs on a shared machine weighs on them alike. The load generator's own CPU use
 * is reported as the cores it kept busy: a single-threaded client near one core is what limits its
 * cell, not the service.
 *
 * Targets: gRPC >= 1.3x the REST requests/s on digits at c=32, and never below REST on iris at c=32,
 * where REST is the faster of the two JSON forms (v1 and V2 JSON).
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ChildProcess, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundled, makeRepository } from '../src/testing/model-repository';
import type { LoadOrder, LoadReport } from './grpc-load';
import { LoadSpec, measureCpuCell } from './load';
import { cpuSeconds, freePort, startChild, stopChild, waitIdle, waitUntil } from './processes';
import type { Evaluation, TargetRun } from './results';
import { ReferenceRow, TARGETS, serviceEnv, singleRows } from './workload';

export const GRPC_MODELS = ['iris', 'digits'] as const;
export type GrpcModelName = (typeof GRPC_MODELS)[number];
export const GRPC_FORMS = ['rest-v1', 'rest-v2-json', 'rest-v2-binary', 'grpc-raw'] as const;
export type GrpcForm = (typeof GRPC_FORMS)[number];
/** The forms a gRPC target is compared with: the JSON REST routes, whichever is faster. */
const REST_JSON_FORMS: readonly GrpcForm[] = ['rest-v1', 'rest-v2-json'];
export const GRPC_CONCURRENCIES: readonly number[] = [1, 32];
export const GRPC_LABEL = 'service, REST and gRPC on one process, batching on, Fastify';

export interface GrpcCell {
  model: GrpcModelName;
  form: GrpcForm;
  concurrency: number;
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  /** Requests of the measured run, and those answered OK. */
  requests: number;
  ok: number;
  errors: number;
  /** The service's user + system CPU seconds over the measured run, ÷ its OK answers (µs); null without /proc. */
  cpu_s: number | null;
  cpu_us_per_ok: number | null;
  /** The load generator's CPU seconds ÷ wall seconds over the cell: the cores it kept busy. */
  client_cores: number;
}

const ROOT = path.resolve(__dirname, '..');
const READY_TIMEOUT_MS = 120_000;
const ANSWER_TIMEOUT_MS = 10_000;
/** Each cell's duration is measured in this many rounds, the forms taking turns. */
const ROUNDS = 3;

interface InferAnswer {
  outputs: { datatype: string }[];
  raw_output_contents: Buffer[];
}
type InferClient = grpc.Client & {
  ModelInfer(
    request: object,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, res: InferAnswer) => void,
  ): void;
};
const InferenceClient = (
  grpc.loadPackageDefinition(
    loadSync(path.join(ROOT, 'proto', 'grpc_service.proto'), { keepCase: true, longs: String, defaults: true }),
  ) as unknown as { inference: { GRPCInferenceService: new (...args: unknown[]) => InferClient } }
).inference.GRPCInferenceService;

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

/** One model's requests in every form, built from the same reference rows. */
interface Workload {
  rows: ReferenceRow[];
  rest: Record<Exclude<GrpcForm, 'grpc-raw'>, { path: string; body: Buffer; headers: Record<string, string> }[]>;
  grpc: LoadOrder['requests'];
}

function workload(model: GrpcModelName, input: Tensor): Workload {
  const rows = singleRows(ROOT, model);
  const shape = [1, ...input.shape.slice(1)];
  const json = { 'content-type': 'application/json' };
  const raws = rows.map((r) => Buffer.from(Float32Array.from(r.features).buffer));
  const tensor = { name: input.name, shape, datatype: input.datatype };
  return {
    rows,
    rest: {
      'rest-v1': rows.map((r) => ({
        path: `/v1/models/${model}/predict`,
        body: Buffer.from(JSON.stringify({ features: r.features })),
        headers: json,
      })),
      'rest-v2-json': rows.map((r) => ({
        path: `/v2/models/${model}/infer`,
        body: Buffer.from(JSON.stringify({ inputs: [{ ...tensor, data: r.features }] })),
        headers: json,
      })),
      'rest-v2-binary': raws.map((raw) => {
        const header = Buffer.from(
          JSON.stringify({
            inputs: [{ ...tensor, parameters: { binary_data_size: raw.length } }],
            parameters: { binary_data_output: true },
          }),
        );
        return {
          path: `/v2/models/${model}/infer`,
          body: Buffer.concat([header, raw]),
          headers: {
            'content-type': 'application/octet-stream',
            'inference-header-content-length': String(header.length),
          },
        };
      }),
    },
    grpc: raws.map((raw) => ({
      model_name: model,
      inputs: [tensor],
      raw_input_contents: [raw.toString('base64')],
    })),
  };
}

/** The load generator process: one order at a time over IPC. */
class GrpcLoad {
  private readonly proc: ChildProcess;
  constructor() {
    this.proc = fork(path.join(__dirname, 'grpc-load.ts'), [], {
      cwd: ROOT,
      execArgv: ['-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  }
  run(order: LoadOrder): Promise<LoadReport> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the gRPC load generator exited (${code})`));
      this.proc.once('exit', onExit);
      this.proc.once('message', (m: { report?: LoadReport; error?: string }) => {
        this.proc.off('exit', onExit);
        if (m.report) resolve(m.report);
        else reject(new Error(`the gRPC load generator failed: ${m.error}`));
      });
      this.proc.send(order);
    });
  }
  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
  }
}

/** Each row once in each form, before any load: the classes must be the reference's. */
async function checkAnswers(baseUrl: string, load: GrpcLoad, address: string, model: GrpcModelName, w: Workload) {
  for (let i = 0; i < w.rows.length; i++) {
    const expected = w.rows[i].label;
    const v1 = w.rest['rest-v1'][i];
    const res = await fetch(`${baseUrl}${v1.path}`, {
      method: 'POST',
      headers: v1.headers,
      body: v1.body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    const got = res.status === 200 ? TARGETS.on.labels('single', await res.json()) : [];
    const v2 = w.rest['rest-v2-json'][i];
    const res2 = await fetch(`${baseUrl}${v2.path}`, {
      method: 'POST',
      headers: v2.headers,
      body: v2.body,
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    const answer = (await res2.json()) as { outputs?: { datatype: string; data: number[] }[] };
    const label = answer.outputs?.find((o) => o.datatype === 'INT64')?.data[0];
    if (got[0] !== expected || res2.status !== 200 || label !== expected) {
      throw new Error(
        `${model} row ${i}: REST v1 answered ${res.status} class ${got[0]} and V2 ${res2.status} class ${label}, ` +
          `expected class ${expected}`,
      );
    }
  }
  // gRPC through a @grpc/grpc-js client, its raw INT64 output decoded; then once through the load
  // generator, which reads statuses only, so that a call it cannot make fails the bench before the cells.
  const client = new InferenceClient(address, grpc.credentials.createInsecure());
  try {
    for (let i = 0; i < w.rows.length; i++) {
      const request = w.grpc[i];
      const answer = await new Promise<InferAnswer>((resolve, reject) =>
        client.ModelInfer(
          { ...request, raw_input_contents: request.raw_input_contents.map((b) => Buffer.from(b, 'base64')) },
          { deadline: Date.now() + ANSWER_TIMEOUT_MS },
          (err, res) => (err ? reject(new Error(`${model} row ${i}: gRPC ${err.message}`)) : resolve(res)),
        ),
      );
      const at = answer.outputs.findIndex((o) => o.datatype === 'INT64');
      const label = at >= 0 ? Number(answer.raw_output_contents[at]?.readBigInt64LE(0)) : undefined;
      if (label !== w.rows[i].label)
        throw new Error(`${model} row ${i}: gRPC answered class ${label}, expected class ${w.rows[i].label}`);
    }
  } finally {
    client.close();
  }
  const once = await load.run({ address, requests: w.grpc, connections: 1, limit: { amount: w.grpc.length } });
  if (once.errors) throw new Error(`${model}: the gRPC load generator's calls failed: ${once.first_error}`);
}

/** One measured run of one cell: its raw counts, which the rounds of a cell add up. */
interface Round {
  requests: number;
  ok: number;
  errors: number;
  wall_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_s: number | null;
  client_cpu_s: number;
  /** Seconds over which client_cpu_s was counted (for REST, its warm-up too). */
  client_wall_s: number;
}

async function grpcRound(
  load: GrpcLoad,
  address: string,
  requests: LoadOrder['requests'],
  connections: number,
  durationS: number,
  warmupS: number,
  pid: number,
): Promise<Round> {
  const warm = await load.run({ address, requests, connections, limit: { duration_s: warmupS } });
  const amount = Math.max(2 * connections, Math.round((warm.ok / warm.wall_s) * durationS));
  await waitIdle(pid);
  const before = cpuSeconds(pid);
  const r = await load.run({ address, requests, connections, limit: { amount } });
  await waitIdle(pid);
  const after = cpuSeconds(pid);
  return {
    requests: amount,
    ok: r.ok,
    errors: r.errors,
    wall_s: r.wall_s,
    p50_ms: r.p50_ms,
    p99_ms: r.p99_ms,
    cpu_s: before === null || after === null ? null : after - before,
    client_cpu_s: r.client_cpu_s,
    client_wall_s: r.wall_s,
  };
}

async function restRound(
  baseUrl: string,
  requests: Workload['rest'][keyof Workload['rest']],
  connections: number,
  durationS: number,
  warmupS: number,
  pid: number,
): Promise<Round> {
  const spec: LoadSpec = {
    url: baseUrl,
    connections,
    requests: requests.map((r) => ({ method: 'POST', path: r.path, headers: r.headers, body: r.body })),
  };
  // The REST load runs in this process: its CPU use over the cell is the client's.
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const s = await measureCpuCell(spec, durationS, warmupS, pid);
  const cpu = process.cpuUsage(cpuBefore);
  return {
    requests: s.requests,
    ok: s.responses_2xx,
    errors: s.errors,
    wall_s: s.duration_s,
    p50_ms: s.p50_ms,
    p99_ms: s.p99_ms,
    cpu_s: s.cpu_s,
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
    client_wall_s: (performance.now() - started) / 1000,
  };
}

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};

/** A cell from its rounds: counts and times added up, latency percentiles the median of the rounds'. */
function cellOf(rounds: Round[]): Omit<GrpcCell, 'model' | 'form' | 'concurrency'> {
  const sum = (f: (r: Round) => number) => rounds.reduce((n, r) => n + f(r), 0);
  const ok = sum((r) => r.ok);
  const cpu = rounds.some((r) => r.cpu_s === null) ? null : sum((r) => r.cpu_s!);
  return {
    req_per_s: ok / sum((r) => r.wall_s),
    p50_ms: median(rounds.map((r) => r.p50_ms)),
    p99_ms: median(rounds.map((r) => r.p99_ms)),
    requests: sum((r) => r.requests),
    ok,
    errors: sum((r) => r.errors),
    cpu_s: cpu,
    cpu_us_per_ok: cpu === null || ok === 0 ? null : (cpu * 1e6) / ok,
    client_cores: sum((r) => r.client_cpu_s) / sum((r) => r.client_wall_s),
  };
}

/**
 * Starts a service of its own, runs every model × concurrency × form, pushes the cells (progress to
 * `log`) and stops it.
 */
export async function measureGrpc(
  cells: GrpcCell[],
  durationS: number,
  warmupS: number,
  log: (msg: string) => void,
): Promise<TargetRun> {
  log(`\n== ${GRPC_LABEL}: starting`);
  const repository = await makeRepository({ iris: bundled('iris'), digits: bundled('digits') });
  const [port, grpcPort] = [await freePort(), await freePort()];
  const env = { ...serviceEnv(port, 'on', repository), GRPC_PORT: String(grpcPort) };
  const baseUrl = `http://127.0.0.1:${port}`;
  const address = `127.0.0.1:${grpcPort}`;
  const child = startChild(GRPC_LABEL, process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
  const load = new GrpcLoad();
  try {
    await waitUntil(child, 'READY', READY_TIMEOUT_MS, async () => {
      const res = await fetch(`${baseUrl}/v2/health/ready`);
      return res.status === 200;
    });
    for (const model of GRPC_MODELS) {
      const meta = (await (await fetch(`${baseUrl}/v2/models/${model}`)).json()) as { inputs: Tensor[] };
      const w = workload(model, meta.inputs[0]);
      await checkAnswers(baseUrl, load, address, model, w);
      log(`   pid ${child.pid}: ${model} answers checked (REST v1, V2 JSON, gRPC raw)`);
      for (const concurrency of GRPC_CONCURRENCIES) {
        // The forms take turns, round after round, so that a change in what else the machine runs
        // falls on all of them alike rather than on whichever form was measured at the time.
        const rounds = new Map<GrpcForm, Round[]>(GRPC_FORMS.map((f) => [f, []]));
        for (let round = 0; round < ROUNDS; round++) {
          for (const form of GRPC_FORMS) {
            const seconds = durationS / ROUNDS;
            rounds
              .get(form)!
              .push(
                form === 'grpc-raw'
                  ? await grpcRound(load, address, w.grpc, concurrency, seconds, warmupS, child.pid)
                  : await restRound(baseUrl, w.rest[form], concurrency, seconds, warmupS, child.pid),
              );
          }
        }
        for (const form of GRPC_FORMS) {
          const cell = cellOf(rounds.get(form)!);
          cells.push({ model, form, concurrency, ...cell });
          log(
            `   ${model.padEnd(6)} ${form.padEnd(14)} c=${String(concurrency).padEnd(3)} ` +
              `${cell.req_per_s.toFixed(1).padStart(7)} req/s  p99 ${cell.p99_ms.toFixed(2)} ms  ` +
              `${cell.cpu_us_per_ok === null ? '-' : cell.cpu_us_per_ok.toFixed(0)} µs CPU/req  ` +
              `client ${cell.client_cores.toFixed(2)} cores  (${cell.requests} requests)` +
              (cell.errors ? `  ERRORS ${cell.errors}` : ''),
          );
        }
      }
    }
  } finally {
    load.stop();
    await stopChild(child);
    await fs.promises.rm(repository, { recursive: true, force: true });
  }
  return {
    id: 'grpc',
    label: GRPC_LABEL,
    status: 'measured',
    note: 'MODEL_REPOSITORY is a temporary copy of models/iris and models/digits; gRPC load from bench/grpc-load.ts',
    command: 'node dist/main.js',
    env: { ...env, MODEL_REPOSITORY: '(temporary)' },
  };
}

const find = (cells: readonly GrpcCell[], model: GrpcModelName, form: GrpcForm, c: number) =>
  cells.find((x) => x.model === model && x.form === form && x.concurrency === c);

export function grpcTextTable(cells: readonly GrpcCell[]): string {
  const head = ['model', 'c', 'form', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'client cores', 'errors'];
  const rows = cells.map((c) => [
    c.model,
    String(c.concurrency),
    c.form,
    c.req_per_s.toFixed(c.req_per_s >= 100 ? 0 : 1),
    c.p50_ms.toFixed(2),
    c.p99_ms.toFixed(2),
    c.cpu_us_per_ok === null ? '-' : c.cpu_us_per_ok.toFixed(0),
    c.client_cores.toFixed(2),
    String(c.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows]
    .map((r) => r.map((v, i) => (i < 3 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  '))
    .join('\n');
}

/** (j) and (k): gRPC against the faster JSON REST form, at c=32. */
export function grpcEvaluation(cells: readonly GrpcCell[]): Evaluation[] {
  const targets = [
    { id: 'j', model: 'digits' as const, need: 1.3, title: '(j) digits, c=32: gRPC (raw contents) >= 1.3x REST req/s' },
    { id: 'k', model: 'iris' as const, need: 1, title: '(k) iris, c=32: gRPC (raw contents) never below REST req/s' },
  ];
  return targets.map(({ id, model, need, title }): Evaluation => {
    const grpcCell = find(cells, model, 'grpc-raw', 32);
    const rest = REST_JSON_FORMS.map((f) => find(cells, model, f, 32)).filter((c): c is GrpcCell => !!c);
    if (!grpcCell || rest.length < REST_JSON_FORMS.length)
      return { id, title, status: 'SKIP', detail: 'cells not measured' };
    const best = rest.reduce((a, b) => (b.req_per_s > a.req_per_s ? b : a));
    const ratio = best.req_per_s > 0 ? grpcCell.req_per_s / best.req_per_s : NaN;
    const errors = [grpcCell, ...rest].filter((c) => c.errors > 0).map((c) => `${c.form}: ${c.errors} errors`);
    const cpu = (c: GrpcCell) => (c.cpu_us_per_ok === null ? '' : `, ${c.cpu_us_per_ok.toFixed(0)} µs CPU/req`);
    return {
      id,
      title,
      status: ratio >= need && errors.length === 0 ? 'PASS' : 'FAIL',
      detail:
        `gRPC ${grpcCell.req_per_s.toFixed(0)} req/s${cpu(grpcCell)} (client ${grpcCell.client_cores.toFixed(2)} cores) ` +
        `vs ${best.form} ${best.req_per_s.toFixed(0)} req/s${cpu(best)} = ${ratio.toFixed(2)}x (need >= ${need.toFixed(2)}x)` +
        (errors.length ? ` [${errors.join('; ')}]` : ''),
    };
  });
}

async function main(): Promise<void> {
  const durationS = Number(process.env.BENCH_DURATION_S ?? 5) || 5;
  const cells: GrpcCell[] = [];
  await measureGrpc(cells, durationS, 1, (m) => void process.stderr.write(`${m}\n`));
  console.log(grpcTextTable(cells));
  console.log('\ntargets');
  for (const e of grpcEvaluation(cells)) console.log(`  ${e.status.padEnd(4)} ${e.title}\n       ${e.detail}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
