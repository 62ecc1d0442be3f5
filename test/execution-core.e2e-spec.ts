import { INestApplication } from '@nestjs/common';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../src/config/app.config';
import { ElementType, pack, Scalar } from '../src/models/element-types';
import { toHalfBits } from '../src/models/float16';
import { ModelRegistry } from '../src/models/model.registry';
import { TensorData, ValueInfo } from '../src/models/model.types';
import { MODEL_RUNTIME } from '../src/models/runtime/model-runtime.interface';
import { OnnxRuntime } from '../src/models/runtime/onnx.runtime';
import { product } from '../src/models/tensor-rows';
import { BUNDLED_MODELS, bundled, fixture, FIXTURE_MODELS, makeRepository, ROOT, startApp } from './support/app';
import { waitFor } from './support/process';

/** Wide enough that one run of the slow fixture outlasts a 100 ms deadline many times over (2·D³ flops). */
const SLOW_WIDTH = 3000;
const slowBody = { inputs: { x: [new Array(SLOW_WIDTH).fill(1)] } };
const IRIS_ROW = { features: [5.1, 3.5, 1.4, 0.2] };
const irisConfig = (extra: Record<string, unknown>) =>
  JSON.stringify({ ...JSON.parse(readFileSync(path.join(bundled('iris'), 'config.json'), 'utf8')), ...extra });

describe('execution core: workers shared fairly, instances, placement, worker faults', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;
  let registry: ModelRegistry;

  beforeAll(async () => {
    const dir = await makeRepository(
      {
        iris: bundled('iris'),
        iris_inline: bundled('iris'),
        slow: fixture('slow'),
        slow_one: fixture('slow'),
        linear: fixture('linear'),
      },
      {
        'iris/config.json': irisConfig({ placement: 'worker' }),
        'iris_inline/config.json': irisConfig({ placement: 'inline' }),
        'slow_one/config.json': JSON.stringify({ instances: 1 }),
        'linear/config.json': JSON.stringify({ placement: 'worker' }),
      },
    );
    app = await startApp({ MODEL_REPOSITORY: dir, INFERENCE_WORKERS: '2', CACHE_ENABLED: 'false' });
    http = app.getHttpServer();
    registry = app.get(ModelRegistry);
  });
  afterAll(() => app.close());

  /** Slow requests, each recording in `order` when it is answered; resolves once `running` of them run. */
  async function occupy(model: string, count: number, running: number, order: string[], queued = 0) {
    const batcher = registry.servingVersion(model).batcher;
    const answers = Array.from({ length: count }, () =>
      request(http)
        .post(`/v1/models/${model}/predict`)
        .send(slowBody)
        .then((r) => (order.push(model), r)),
    );
    await waitFor(
      () => (batcher.stats.inFlight >= running && batcher.depth >= queued) || order.length > 0,
      30000,
      `${model} to run`,
    );
    expect(order).toEqual([]);
    return answers;
  }

  it('reports placement, instances and the measured cost', async () => {
    const worker = await request(http).get('/v1/models/iris').expect(200);
    expect(worker.body.placement).toMatchObject({ placement: 'worker', setting: 'worker', instances: 2 });
    expect(worker.body.placement.run_cost_us).toBeGreaterThan(0);
    const inline = await request(http).get('/v1/models/iris_inline').expect(200);
    expect(inline.body.placement).toMatchObject({ placement: 'inline', setting: 'inline', inline_max_rows: null });
    // The slow fixture's cost depends on its input's width, which no warm-up can know.
    const slow = await request(http).get('/v1/models/slow_one').expect(200);
    expect(slow.body.placement).toMatchObject({
      placement: 'worker',
      setting: 'auto',
      instances: 1,
      run_cost_us: null,
    });
  });

  it('answers a worker model 504 at its deadline while a slow model holds every worker, before the slow runs end', async () => {
    const order: string[] = [];
    const slow = await occupy('slow', 2, 2, order);
    const iris = await request(http).post('/v1/models/iris/predict').set('X-Request-Timeout-Ms', '100').send(IRIS_ROW);
    order.push('iris');
    expect(iris.status).toBe(504);
    expect(iris.body.error).toBe('DEADLINE_EXCEEDED');
    // An inline model needs no worker at all: it answers, also before the slow runs end.
    const inline = await request(http).post('/v1/models/iris_inline/predict').send(IRIS_ROW);
    order.push('iris_inline');
    expect(inline.status).toBe(200);
    expect(inline.body.label).toBe('setosa');
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
    expect(order).toEqual(['iris', 'iris_inline', 'slow', 'slow']);
  });

  it('leaves the other workers to other models while a model occupies its instances', async () => {
    const order: string[] = [];
    const slow = await occupy('slow_one', 2, 1, order, 1);
    const batcher = registry.servingVersion('slow_one').batcher;
    // One run of slow_one at a time: the second waits in its queue, not in a worker.
    expect([batcher.stats.inFlight, batcher.depth]).toEqual([1, 1]);
    const linear = await request(http)
      .post('/v1/models/linear/predict')
      .send({ inputs: { x: [1, 2, 3] } });
    order.push('linear');
    expect(linear.status).toBe(200);
    expect(linear.body.outputs.y).toEqual([4.75]);
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
    expect(order).toEqual(['linear', 'slow_one', 'slow_one']);
  });

  it('replaces a worker that dies, without touching the run on the other worker', async () => {
    const order: string[] = [];
    const slow = await occupy('slow_one', 1, 1, order);
    // A fault no request can cause: the idle thread is stopped from outside. (Stopping a thread
    // while onnxruntime runs in it aborts the whole process inside onnxruntime-node's binding.)
    const runtime: unknown = app.get(MODEL_RUNTIME);
    const pool = (runtime as { workers: { runs: number; terminate(): Promise<void> }[] }).workers;
    expect(pool.map((w) => w.runs).sort()).toEqual([0, 1]);
    await pool.find((w) => w.runs === 0)!.terminate();
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200]);
    // The replacement loads every session again; then both workers answer, each run on its own.
    const again = await Promise.all(
      [0, 1, 2, 3].map(() => request(http).post('/v1/models/iris/predict').send(IRIS_ROW)),
    );
    expect(again.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const after = await Promise.all([0, 1].map(() => request(http).post('/v1/models/slow/predict').send(slowBody)));
    expect(after.map((r) => r.status)).toEqual([200, 200]);
  });
});

/** Deterministic values of every element type, varied enough that a wrong element shows. */
function values(type: ElementType, size: number): TensorData['data'] {
  const at = (i: number) => ((i * 37) % 19) / 4 - 2;
  const list: Scalar[] = Array.from({ length: size }, (_, i): Scalar => {
    if (type === 'string') return `s${i % 3}`;
    if (type === 'bool') return i % 2;
    if (type === 'float16') return toHalfBits(at(i));
    if (type.startsWith('float')) return at(i);
    // Small indices: valid for the gather fixture's table, and within every integer type.
    return type === 'int64' || type === 'uint64' ? BigInt(i % 4) : i % 4;
  });
  return pack(type, list);
}

function feedsFor(inputs: readonly ValueInfo[]): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  for (const input of inputs) {
    if (!input.isTensor) throw new Error(`input ${input.name} is not a tensor`);
    const dims = input.shape.map((d, i) => (d === -1 ? (i === 0 ? 3 : 2) : d));
    feeds[input.name] = { type: input.type, dims, data: values(input.type, product(dims)) };
  }
  return feeds;
}

/** Type, dimensions and the exact bytes (or strings) of every output. */
function exactly(outputs: Record<string, TensorData>) {
  return Object.entries(outputs).map(([name, t]) => ({
    name,
    type: t.type,
    dims: [...t.dims],
    data: Array.isArray(t.data)
      ? t.data
      : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('hex'),
  }));
}

describe('inline and worker sessions give bit-identical outputs', () => {
  const runtime = new OnnxRuntime(loadConfig({ INFERENCE_WORKERS: '1' }));
  const options = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
  afterAll(() => runtime.close());

  const files: string[] = [];
  for (const root of [BUNDLED_MODELS, FIXTURE_MODELS]) {
    for (const model of readdirSync(root, { withFileTypes: true })) {
      if (!model.isDirectory()) continue;
      for (const version of readdirSync(path.join(root, model.name))) {
        const file = path.join(root, model.name, version, 'model.onnx');
        if (existsSync(file)) files.push(path.relative(ROOT, file));
      }
    }
  }

  it('finds every bundled model and fixture', () => {
    expect(files).toContain('models/iris/1/model.onnx');
    expect(files).toContain('models/digits/1/model.onnx');
    expect(files.filter((f) => f.startsWith('test/fixtures/')).length).toBeGreaterThanOrEqual(11);
  });

  it.each(files)('%s', async (relative) => {
    const file = path.join(ROOT, relative);
    const worker = await runtime.load(file, options);
    const inline = await runtime.loadInline(file, options);
    try {
      expect(inline.inputs).toEqual(worker.inputs);
      expect(inline.outputs).toEqual(worker.outputs);
      const feeds = feedsFor(worker.inputs);
      // The worker takes the feeds' buffers: each side gets its own copy of the same values.
      const copy = (f: Record<string, TensorData>) =>
        Object.fromEntries(
          Object.entries(f).map(([k, t]) => [k, { ...t, data: Array.isArray(t.data) ? [...t.data] : t.data.slice() }]),
        ) as Record<string, TensorData>;
      const [a, b] = await Promise.allSettled([worker.run(copy(feeds)), inline.run(copy(feeds))]);
      if (a.status === 'rejected' || b.status === 'rejected') {
        // A model that cannot run these inputs (zipmap's non-tensor output) fails the same way in both places.
        expect([a.status, b.status]).toEqual(['rejected', 'rejected']);
        expect(String((b as PromiseRejectedResult).reason)).toBe(String((a as PromiseRejectedResult).reason));
        return;
      }
      expect(exactly(b.value)).toEqual(exactly(a.value));
    } finally {
      await worker.release();
      await inline.release();
    }
  });
});
