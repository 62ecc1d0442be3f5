/**
 * The gRPC load generator of the bench's gRPC cells, a process of its own (forked by bench/grpc.ts),
 * so that its CPU time is neither the service's nor the bench's, and is reported beside the cell. It
 * keeps its connections open across the runs it is asked for over IPC: a closed loop of `connections`
 * ModelInfer calls in flight, spread over a few HTTP/2 connections, each replaced as it answers, for a
 * duration (the warm-up) or for a number of calls (the measured run, so that no call is cut with its
 * work done).
 *
 * Like the REST load generators, it sends prepared bytes and reads only the status: each request is
 * serialized once (by the .proto's own serializer) and framed as gRPC frames it, and a call counts as
 * OK when its trailers say grpc-status 0 after a whole response message. A @grpc/grpc-js client costs
 * several times the service's own CPU per call on these small models, and on a machine of two cores
 * that would measure the client; bench/grpc.ts checks the answers' values with one beforehand.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as http2 from 'node:http2';
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

/** Most HTTP/2 connections one run spreads its calls over. */
const MAX_CONNECTIONS = 4;
const PATH = '/inference.GRPCInferenceService/ModelInfer';
const HEADERS = {
  ':method': 'POST',
  ':path': PATH,
  'content-type': 'application/grpc',
  te: 'trailers',
};
/** Bytes before a gRPC message: the compressed flag and the message length. */
const PREFIX = 5;

const definitions = loadSync(path.resolve(__dirname, '..', 'proto', 'grpc_service.proto'), {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
});
const modelInfer = (definitions['inference.GRPCInferenceService'] as grpc.ServiceDefinition).ModelInfer;

/** One request as it goes on the wire: uncompressed, its length, the message. */
function frame(request: object): Buffer {
  const message = modelInfer.requestSerialize(request);
  const prefix = Buffer.alloc(PREFIX);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

const sessions = new Map<string, http2.ClientHttp2Session[]>();

function sessionsFor(address: string): http2.ClientHttp2Session[] {
  let open = sessions.get(address);
  if (!open || open.some((s) => s.closed || s.destroyed)) {
    open = Array.from({ length: MAX_CONNECTIONS }, () => {
      const session = http2.connect(`http://${address}`);
      // A failed connection fails its calls, which the run counts; it must not crash the process.
      session.on('error', () => undefined);
      return session;
    });
    sessions.set(address, open);
  }
  return open;
}

/** One call: resolves with null when it ends OK, or with what went wrong. */
function callOnce(session: http2.ClientHttp2Session, body: Buffer): Promise<string | null> {
  return new Promise((resolve) => {
    const stream = session.request(HEADERS);
    let bytes = 0;
    let status: string | undefined;
    let message = '';
    const statusOf = (headers: http2.IncomingHttpHeaders) => {
      if (headers['grpc-status'] !== undefined) {
        status = String(headers['grpc-status']);
        message = decodeURIComponent(String(headers['grpc-message'] ?? ''));
      }
    };
    stream.on('response', statusOf);
    stream.on('trailers', statusOf);
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    stream.on('error', (err) => (message ||= err.message));
    stream.on('close', () => {
      if (status === '0' && bytes > PREFIX) resolve(null);
      else resolve(`${status === undefined ? 'no status' : (grpc.status[Number(status)] ?? status)}: ${message}`);
    });
    stream.end(body);
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export async function runLoad(order: LoadOrder): Promise<LoadReport> {
  const open = sessionsFor(order.address).slice(0, Math.min(MAX_CONNECTIONS, order.connections));
  const requests = order.requests.map((r) =>
    frame({ ...r, raw_input_contents: r.raw_input_contents.map((b) => Buffer.from(b, 'base64')) }),
  );
  const times: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const limit = order.limit;
  const until = 'duration_s' in limit ? performance.now() + limit.duration_s * 1000 : Infinity;
  let left = 'amount' in limit ? limit.amount : Infinity;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const loop = async (i: number): Promise<void> => {
    const session = open[i % open.length];
    let next = i;
    while (left > 0 && performance.now() < until) {
      left--;
      const request = requests[next++ % requests.length];
      const start = performance.now();
      const err = await callOnce(session, request);
      if (err !== null) {
        errors++;
        firstError ??= err;
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
