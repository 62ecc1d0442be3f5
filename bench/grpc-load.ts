/**
 * The gRPC load generator of the bench's gRPC cells, a process of its own (forked by bench/grpc.ts),
 * so that its CPU time is neither the service's nor the bench's, and is reported beside the cell. It
 * keeps its channels open across the runs it is asked for over IPC: a closed loop of `connections`
 * ModelInfer calls in flight, spread over a few channels, each replaced as it answers, for a duration
 * (the warm-up) or for a number of calls (the measured run, so that no call is cut with its work done).
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as path from 'node:path';

export interface LoadOrder {
  address: string;
  /** ModelInfer requests, cycled by every loop; raw_input_contents as base64 over IPC. */
  requests: { model_name: string; inputs: object[]; raw_input_contents: string[] }[];
  connections: number;
  limit: { duration_s: number } | { amount: number };
}

export interface LoadReport {
  ok: number;
  errors: number;
  /** The first error's status and details, when there were any. */
  first_error: string | null;
  wall_s: number;
  p50_ms: number;
  p99_ms: number;
  /** This process's user + system CPU seconds over the run. */
  client_cpu_s: number;
}

/** Most channels (HTTP/2 connections) one run spreads its calls over. */
const MAX_CHANNELS = 4;

type InferClient = grpc.Client & {
  ModelInfer(request: object, callback: (err: grpc.ServiceError | null) => void): void;
};

const definitions = loadSync(path.resolve(__dirname, '..', 'proto', 'grpc_service.proto'), {
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

const channels = new Map<string, InferClient[]>();

function clientsFor(address: string): InferClient[] {
  let clients = channels.get(address);
  if (!clients) {
    clients = Array.from(
      { length: MAX_CHANNELS },
      // Distinct channel options, so that grpc-js opens one connection per client rather than sharing one.
      (_, i) =>
        new Service(address, grpc.credentials.createInsecure(), { 'grpc.bench-channel': i }) as unknown as InferClient,
    );
    channels.set(address, clients);
  }
  return clients;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export async function runLoad(order: LoadOrder): Promise<LoadReport> {
  const clients = clientsFor(order.address).slice(0, Math.min(MAX_CHANNELS, order.connections));
  const requests = order.requests.map((r) => ({
    ...r,
    raw_input_contents: r.raw_input_contents.map((b) => Buffer.from(b, 'base64')),
  }));
  const times: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const limit = order.limit;
  const until = 'duration_s' in limit ? performance.now() + limit.duration_s * 1000 : Infinity;
  let left = 'amount' in limit ? limit.amount : Infinity;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const loop = async (i: number): Promise<void> => {
    const client = clients[i % clients.length];
    let next = i;
    while (left > 0 && performance.now() < until) {
      left--;
      const request = requests[next++ % requests.length];
      const start = performance.now();
      const err = await new Promise<grpc.ServiceError | null>((resolve) => client.ModelInfer(request, resolve));
      if (err) {
        errors++;
        firstError ??= `${grpc.status[err.code]}: ${err.details}`;
      } else times.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: order.connections }, (_, i) => loop(i)));
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = Float64Array.from(times).sort();
  return {
    ok: times.length,
    errors,
    first_error: firstError,
    wall_s: wall,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
  };
}

if (require.main === module) {
  if (!process.send) {
    console.error('bench/grpc-load.ts is forked by bench/grpc.ts and takes its orders over IPC');
    process.exit(1);
  }
  process.on('message', (order: LoadOrder) => {
    runLoad(order).then(
      (report) => process.send!({ report }),
      (err: unknown) => process.send!({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
  // The parent going away ends this process too.
  process.on('disconnect', () => process.exit(0));
}
