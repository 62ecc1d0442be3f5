/**
 * The naive baseline the service is measured against: bare node:http + onnxruntime-node, no framework,
 * no worker threads, no batching: every request is one `session.run` on the main thread.
 *
 * It exists to answer "what does the service's machinery (Nest, validation, worker threads, the batcher)
 * cost or buy, compared with the least code that gives the same answers?". So it mirrors the service's
 * routes and answers (for every model the bench loads: iris, digits and the MLP fixture) and uses the
 * same session settings as the service's defaults (intraOpNumThreads 1, interOpNumThreads 1, graph
 * optimisation "all", CPU provider), and it validates just enough to never answer wrongly.
 *
 * onnxruntime-node's `InferenceSession.run()` returns a promise, but the work itself runs synchronously
 * on the calling thread behind a setImmediate, so under plain Node each run blocks this event loop:
 * that is exactly the naive behaviour being measured.
 *
 * It also answers GET /health/live with {"status":"ok"}, as the service does: loaded by the bench, that
 * route is the floor of bare node:http (what the HTTP layer alone allows, with nothing else in the way).
 *
 * Run: PORT=9000 HOST=127.0.0.1 node -r ts-node/register/transpile-only bench/baseline.ts
 */
import * as http from 'node:http';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { MODELS, MODEL_DIRS } from './workload';

const ROOT = path.resolve(__dirname, '..');
/** Same cap as the service's MAX_BATCH_SIZE default, so neither side is asked to do more than the other. */
const MAX_INSTANCES = 1024;
/** Same as the service's BODY_LIMIT default (1mb). */
const MAX_BODY_BYTES = 1024 * 1024;

interface LoadedModel {
  session: ort.InferenceSession;
  /** Features per instance: the second dimension of `float_input`. */
  width: number;
}

class BadRequest extends Error {}

async function loadModel(name: (typeof MODELS)[number]): Promise<LoadedModel> {
  const session = await ort.InferenceSession.create(path.join(ROOT, MODEL_DIRS[name], '1', 'model.onnx'), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  const input = session.inputMetadata.find((m) => m.name === 'float_input');
  if (!input || !input.isTensor || typeof input.shape[1] !== 'number') {
    throw new Error(`${name}: expected an input float_input of shape [N, K]`);
  }
  return { session, width: input.shape[1] };
}

function toRow(value: unknown, width: number, where: string): number[] {
  if (!Array.isArray(value) || value.length !== width) {
    throw new BadRequest(`${where} must be an array of ${width} numbers`);
  }
  for (const v of value) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequest(`${where} must hold finite numbers only`);
  }
  return value as number[];
}

interface Prediction {
  prediction: number;
  probability: number;
  probabilities: number[];
}

/** One session.run for all rows; returns one prediction per row, in order. */
async function predict(model: LoadedModel, rows: number[][]): Promise<Prediction[]> {
  const k = model.width;
  const data = new Float32Array(rows.length * k);
  rows.forEach((row, i) => data.set(row, i * k));
  const out = await model.session.run({ float_input: new ort.Tensor('float32', data, [rows.length, k]) });
  const labels = out.output_label.data as BigInt64Array;
  const probs = out.output_probability.data as Float32Array;
  const classes = probs.length / rows.length;
  const predictions: Prediction[] = [];
  for (let i = 0; i < rows.length; i++) {
    const probabilities = Array.from(probs.subarray(i * classes, (i + 1) * classes));
    const prediction = Number(labels[i]);
    predictions.push({ prediction, probability: probabilities[prediction], probabilities });
  }
  return predictions;
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadRequest('body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}

const ROUTE = /^\/v1\/models\/([^/]+)\/predict(\/batch)?$/;

async function handle(
  models: Map<string, LoadedModel>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/health') return send(res, 200, { status: 'healthy' });
  // The bench's HTTP layer floor: the service's liveness route and answer, with no framework in front.
  if (req.method === 'GET' && url === '/health/live') return send(res, 200, { status: 'ok' });
  const match = req.method === 'POST' ? ROUTE.exec(url) : null;
  if (!match) return send(res, 404, { error: 'ROUTE_NOT_FOUND' });
  const model = models.get(match[1]);
  if (!model) return send(res, 404, { error: 'MODEL_NOT_FOUND' });
  const isBatch = match[2] !== undefined;

  let body: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(await readBody(req));
    if (typeof parsed !== 'object' || parsed === null) throw new BadRequest('body must be a JSON object');
    body = parsed as Record<string, unknown>;
  } catch (err) {
    return send(res, 400, {
      error: 'INVALID_INPUT',
      message: err instanceof BadRequest ? err.message : 'malformed JSON',
    });
  }

  let rows: number[][];
  try {
    if (isBatch) {
      const instances = body.instances;
      if (!Array.isArray(instances) || instances.length === 0 || instances.length > MAX_INSTANCES) {
        throw new BadRequest(`instances must be an array of 1 to ${MAX_INSTANCES} feature arrays`);
      }
      rows = instances.map((row, i) => toRow(row, model.width, `instances[${i}]`));
    } else {
      rows = [toRow(body.features, model.width, 'features')];
    }
  } catch (err) {
    if (err instanceof BadRequest) return send(res, 400, { error: 'INVALID_INPUT', message: err.message });
    throw err;
  }

  const predictions = await predict(model, rows);
  send(res, 200, isBatch ? { predictions } : predictions[0]);
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 9000);
  const host = process.env.HOST ?? '127.0.0.1';
  const models = new Map<string, LoadedModel>();
  for (const name of MODELS) models.set(name, await loadModel(name));

  const server = http.createServer((req, res) => {
    handle(models, req, res).catch((err: Error) => {
      console.error(err);
      if (!res.headersSent) send(res, 500, { error: 'INTERNAL' });
      else res.destroy();
    });
  });
  // Listen only once the models are loaded, so "accepting connections" means "ready".
  server.listen(port, host, () => console.log(`baseline listening on http://${host}:${port}`));
  const shutdown = (): void => {
    server.close(() => process.exit(0));
    // Keep-alive connections from the load generator would hold close() open; don't wait for them.
    server.closeAllConnections();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main().catch((err: Error) => {
  console.error(`baseline failed to start: ${err.message}`);
  process.exit(1);
});
