/**
 * `npm run bench:grpc`: the Open Inference Protocol over gRPC beside REST, on the same service
 * process (Fastify, batching on, the prediction cache off so that every request runs), for iris
 * and digits at c=1 and c=32, in one run so that the ratios compare like with like. REST is V2
 * JSON (what the REST cells of `npm run bench` send) and V2 binary; gRPC sends raw_input_contents
 * and gets raw_output_contents, as Triton's client does. The gRPC load is a closed loop of c calls
 * in flight over 4 channels, generated in this process; CPU per request is the service's alone
 * (user + system from /proc over the measured seconds). Prints a table and the ratios; writes nothing.
 * Targets: gRPC ≥ 1.3× REST (JSON) requests/s on digits at c=32, and never below REST on iris.
 *
 * Environment: BENCH_DURATION_S (seconds per cell, default 5). Expects dist/ to be current.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundled, makeRepository } from '../src/testing/model-repository';
import { LoadSpec, measureCell } from './load';
import { freePort, startChild, stopChild, waitUntil } from './processes';

const ROOT = path.resolve(__dirname, '..');
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5) || 5;
const CONCURRENCIES = [1, 32];
const CHANNELS = 4;
const TICKS_PER_S = 100; // Linux's USER_HZ, in which /proc/<pid>/stat counts

function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
}

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}
interface Cell {
  req_per_s: number;
  p99_ms: number;
  ok: number;
  errors: number;
}

const definitions = loadSync(path.join(ROOT, 'proto', 'grpc_service.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
});
const Service = (
  grpc.loadPackageDefinition(definitions) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  }
).inference.GRPCInferenceService;
type InferClient = grpc.Client & {
  ModelInfer(request: object, callback: (err: grpc.ServiceError | null) => void): void;
};

/** c calls in flight for `seconds`, each replaced as it answers. */
async function grpcCell(clients: InferClient[], request: object, connections: number, seconds: number): Promise<Cell> {
  const times: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const loop = async (i: number) => {
    const client = clients[i % clients.length];
    while (performance.now() < until) {
      const start = performance.now();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(request, resolve));
      if (err) errors++;
      else times.push(performance.now() - start);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: connections }, (_, i) => loop(i)));
  const elapsed = (performance.now() - started) / 1000;
  times.sort((a, b) => a - b);
  return {
    req_per_s: times.length / elapsed,
    p99_ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.99))] ?? NaN,
    ok: times.length,
    errors,
  };
}

async function main(): Promise<void> {
  const repository = await makeRepository({ iris: bundled('iris'), digits: bundled('digits') });
  const [port, grpcPort] = [await freePort(), await freePort()];
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = startChild('service', process.execPath, ['dist/main.js'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      HTTP_ADAPTER: 'fastify',
      MODEL_REPOSITORY: repository,
      CACHE_ENABLED: 'false',
    },
  });
  const clients = Array.from(
    { length: CHANNELS },
    // Distinct channel options, so that grpc-js opens one connection per client rather than sharing one.
    (_, i) =>
      new Service(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
        'grpc.bench-channel': i,
      }) as unknown as InferClient,
  );
  const rows: string[][] = [];
  try {
    await waitUntil(child, 'READY', 120_000, async () => {
      const res = await fetch(`${baseUrl}/v2/health/ready`).catch(() => undefined);
      return res?.status === 200;
    });
    for (const model of ['iris', 'digits']) {
      const meta = (await (await fetch(`${baseUrl}/v2/models/${model}`)).json()) as { inputs: Tensor[] };
      const input = meta.inputs[0];
      const shape = [1, ...input.shape.slice(1)];
      const size = shape.reduce((a, b) => a * b, 1);
      const values = Float32Array.from({ length: size }, (_, i) => ((i * 37) % 17) / 4);
      const raw = Buffer.from(values.buffer);
      const json = Buffer.from(
        JSON.stringify({ inputs: [{ name: input.name, shape, datatype: input.datatype, data: Array.from(values) }] }),
      );
      const header = Buffer.from(
        JSON.stringify({
          inputs: [{ name: input.name, shape, datatype: input.datatype, parameters: { binary_data_size: raw.length } }],
          parameters: { binary_data_output: true },
        }),
      );
      const url = `${baseUrl}/v2/models/${model}/infer`;
      const rest: Record<string, { body: Buffer; headers: Record<string, string> }> = {
        'REST json': { body: json, headers: { 'content-type': 'application/json' } },
        'REST binary': {
          body: Buffer.concat([header, raw]),
          headers: {
            'content-type': 'application/octet-stream',
            'inference-header-content-length': String(header.length),
          },
        },
      };
      const grpcRequest = {
        model_name: model,
        inputs: [{ name: input.name, datatype: input.datatype, shape }],
        raw_input_contents: [raw],
      };
      for (const connections of CONCURRENCIES) {
        for (const form of [...Object.keys(rest), 'gRPC raw']) {
          let cell: Cell;
          const before = () => cpuSeconds(child.pid);
          let cpuBefore: number;
          if (form === 'gRPC raw') {
            await grpcCell(clients, grpcRequest, connections, 1); // warm-up, not counted
            cpuBefore = before();
            cell = await grpcCell(clients, grpcRequest, connections, DURATION_S);
          } else {
            const { body, headers } = rest[form];
            const spec: LoadSpec = {
              url,
              connections,
              requests: [{ method: 'POST', path: new URL(url).pathname, headers, body }],
            };
            await measureCell(spec, 1, 0);
            cpuBefore = before();
            const stats = await measureCell(spec, DURATION_S, 0);
            cell = { req_per_s: stats.req_per_s, p99_ms: stats.p99_ms, ok: stats.responses_2xx, errors: stats.errors };
          }
          const cpu = cpuSeconds(child.pid) - cpuBefore;
          rows.push([
            model,
            form,
            String(connections),
            cell.req_per_s.toFixed(1),
            cell.p99_ms.toFixed(2),
            (cell.ok ? (cpu * 1e6) / cell.ok : NaN).toFixed(0),
            String(cell.errors),
          ]);
          process.stderr.write(`${rows.at(-1)!.join('  ')}\n`);
        }
      }
    }
  } finally {
    for (const c of clients) c.close();
    await stopChild(child);
    await fs.promises.rm(repository, { recursive: true, force: true });
  }
  const head = ['model', 'form', 'c', 'req/s', 'p99 ms', 'CPU µs/req', 'errors'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((v, i) => v.padStart(widths[i])).join('  '));
  for (const model of ['iris', 'digits']) {
    for (const c of CONCURRENCIES) {
      const rate = (form: string) =>
        Number(rows.find((r) => r[0] === model && r[1] === form && r[2] === String(c))?.[3]);
      console.log(
        `${model} c=${c}: gRPC / REST json = ${(rate('gRPC raw') / rate('REST json')).toFixed(2)}×, ` +
          `gRPC / REST binary = ${(rate('gRPC raw') / rate('REST binary')).toFixed(2)}×`,
      );
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
