import { Logger } from '@nestjs/common';
import { createCache } from 'cache-manager';
import { createCacheStore } from '../cache/cache-store';
import { PredictionCache } from '../cache/prediction-cache.service';
import {
  DeadlineExceededError,
  DomainError,
  InferenceFailedError,
  NonFiniteOutputError,
  InvalidInputError,
  ModelNotFoundError,
  ModelNotReadyError,
  QueueFullError,
} from '../common/domain.errors';
import { RequestContext } from '../common/request-context';
import { AppConfig, loadConfig } from '../config/app.config';
import { ModelRegistry } from '../models/model.registry';
import { TensorData, ValueInfo } from '../models/model.types';
import { MetricsService } from '../observability/metrics.service';
import { Compute, FakeRuntime, FakeSession, FakeSessionOptions } from '../testing/fake-runtime';
import { metricValue } from '../testing/metrics';
import { makeRepository } from '../testing/model-repository';
import { PredictionService } from './prediction.service';

const LABELS = ['setosa', 'versicolor', 'virginica'];
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

/**
 * A stand-in for the iris classifier: the probabilities are a row's first three features over
 * their sum, and the label is the fourth feature, so that the label can disagree with the likeliest
 * class as a thresholded classifier's does; a negative feature fails the run.
 */
const classify: Compute = (feeds) => {
  const x = feeds.float_input;
  const values = Array.from(x.data as Float32Array);
  if (values.some((v) => v < 0)) throw new Error('negative input');
  const rows = x.dims[0];
  const probabilities = new Float32Array(rows * 3);
  const labels = new BigInt64Array(rows);
  for (let r = 0; r < rows; r++) {
    const scores = values.slice(r * 4, r * 4 + 3);
    const sum = scores.reduce((a, b) => a + b, 0);
    scores.forEach((s, k) => (probabilities[r * 3 + k] = s / sum));
    labels[r] = BigInt(Math.trunc(values[r * 4 + 3]));
  }
  return {
    output_label: { type: 'int64', dims: [rows], data: labels },
    output_probability: { type: 'float32', dims: [rows, 3], data: probabilities },
  };
};

const tensor = (name: string, type: 'float32' | 'int64', shape: number[]): ValueInfo => ({
  name,
  isTensor: true,
  type,
  shape,
});

const IRIS: FakeSessionOptions = {
  inputs: [tensor('float_input', 'float32', [-1, 4])],
  outputs: [tensor('output_label', 'int64', [-1]), tensor('output_probability', 'float32', [-1, 3])],
  compute: classify,
};
/** Scores only, no label output: the prediction is the highest score. */
const SCORER: FakeSessionOptions = {
  inputs: [tensor('x', 'float32', [-1, 3])],
  outputs: [tensor('probabilities', 'float32', [-1, 3])],
};
/** No batch dimension: one instance is the whole [1, 2] input. */
const FIXED: FakeSessionOptions = {
  inputs: [tensor('x', 'float32', [1, 2])],
  outputs: [tensor('y', 'float32', [1, 2])],
};

const IRIS_CONFIG = {
  description: 'a fake iris',
  labels: LABELS,
  features: FEATURES,
  samples: [{ features: [1, 2, 1, 0], expected: { output_label: 0, output_probability: [0.25, 0.5, 0.25] } }],
};

/** Model folders: the fake runtime never reads the file, only its path. */
const model = (name: string, config?: object, versions = [1]): Record<string, string> => ({
  ...Object.fromEntries(versions.map((v) => [`${name}/${v}/model.onnx`, 'not read by the fake runtime'])),
  ...(config ? { [`${name}/config.json`]: JSON.stringify(config) } : {}),
});

/** Which session a model file loads as, by its model folder. */
function sessionFor(modelPath: string): FakeSessionOptions | Error {
  const [name, version] = modelPath.split(/[\\/]/).slice(-3, -1);
  if (name === 'iris') return IRIS;
  if (name === 'fixed') return FIXED;
  if (name === 'scorer') return SCORER;
  if (name === 'slow') return { gated: true };
  if (name === 'broken' || (name === 'twice' && version === '2')) return new Error('not an onnx file');
  return {};
}

interface Service {
  readonly config: AppConfig;
  readonly registry: ModelRegistry;
  readonly metrics: MetricsService;
  readonly service: PredictionService;
}

async function serve(files: Record<string, string>, env: NodeJS.ProcessEnv = {}, loaded = true): Promise<Service> {
  const config = loadConfig({ MODEL_REPOSITORY: await makeRepository({}, files), ...env });
  const metrics = new MetricsService();
  const registry = new ModelRegistry(new FakeRuntime({ load: sessionFor }), config, metrics);
  const store = createCacheStore(config);
  const cache = new PredictionCache(createCache({ stores: [store.keyv] }), store, config, metrics);
  await registry.onModuleInit();
  if (loaded) await registry.whenLoaded();
  return { config, registry, metrics, service: new PredictionService(registry, config, metrics, cache) };
}

const REPOSITORY = {
  ...model('iris', IRIS_CONFIG),
  ...model('doubler'),
  ...model('fixed'),
  ...model('slow', { batching: { max_queue_size: 1 } }),
  ...model('broken'),
  ...model('twice', undefined, [1, 2]),
  ...model('scorer', { labels: ['a', 'b', 'c'] }),
  // No usable default version: the model itself has a problem.
  ...model('confused', { labels: ['a', 'b'], features: ['p', 'q'], default_version: 5 }),
};

const at = (i: number) => `instances[${i}]`;
const context = (more: Partial<RequestContext> = {}): RequestContext => ({ requestId: 'r', ...more });

/** The domain error a call rejects with. */
async function refusal(promise: Promise<unknown>): Promise<DomainError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

describe('PredictionService', () => {
  let s: Service;
  const sessionOf = (name: string) => s.registry.servingVersion(name).session as FakeSession;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    s = await serve(REPOSITORY, { MAX_BATCH_SIZE: '4', DEFAULT_MODEL: 'iris' });
  });
  afterAll(async () => {
    await s.registry.onApplicationShutdown();
    Logger.overrideLogger(['log', 'error', 'warn', 'fatal']);
  });

  describe('predict', () => {
    it("answers one instance with the classifier's reading of its outputs", async () => {
      const result = await s.service.predict('iris', undefined, [[1, 2, 1, 0]], at);
      expect(result).toEqual({
        model: 'iris',
        version: 1,
        predictions: [
          {
            prediction: 0,
            label: 'setosa',
            probability: 0.25,
            probabilities: [0.25, 0.5, 0.25],
            outputs: { output_label: 0, output_probability: [0.25, 0.5, 0.25] },
          },
        ],
        latencyMs: expect.any(Number),
      });
      expect(result.latencyMs).toBeGreaterThanOrEqual(0);
    });

    it('answers a batch in order, in one run for a batchable model', async () => {
      const session = sessionOf('iris');
      const [runs, rows] = [session.runCount, session.rowCount];
      const result = await s.service.predict('iris', 1, [[2, 1, 1, 0], [1, 2, 1, 1], { features: [0, 0, 4, 2] }], at);
      expect(result.predictions.map((p) => [p.prediction, p.label, p.probability])).toEqual([
        [0, 'setosa', 0.5],
        [1, 'versicolor', 0.5],
        [2, 'virginica', 1],
      ]);
      expect([session.runCount - runs, session.rowCount - rows]).toEqual([1, 3]);
    });

    it('reads the likeliest class as the prediction of a model with scores and no label output', async () => {
      const result = await s.service.predict(
        'scorer',
        undefined,
        [
          [1, 3, 2],
          [5, 0, 5],
        ],
        at,
      );
      expect(result.predictions).toEqual([
        { prediction: 1, label: 'b', probability: 6, probabilities: [2, 6, 4], outputs: { probabilities: [2, 6, 4] } },
        // A tie goes to the first class.
        {
          prediction: 0,
          label: 'a',
          probability: 10,
          probabilities: [10, 0, 10],
          outputs: { probabilities: [10, 0, 10] },
        },
      ]);
    });

    it('runs a model without a batch dimension once per instance', async () => {
      const session = sessionOf('fixed');
      const runs = session.runCount;
      const result = await s.service.predict('fixed', undefined, [[1, 2], { inputs: { x: [[3, 4]] } }], at);
      expect(result.predictions.map((p) => p.outputs)).toEqual([{ y: [[2, 4]] }, { y: [[6, 8]] }]);
      expect(result.predictions[0]).toMatchObject({ prediction: null, label: null, probabilities: null });
      expect(session.runCount - runs).toBe(2);
    });

    it('reads named features in any order as the configured order', async () => {
      const named = { petal_width: 0, sepal_width: 2, petal_length: 1, sepal_length: 1 };
      const [a, b] = await Promise.all([
        s.service.predict('iris', undefined, [named, { features: named }], at),
        s.service.predict(
          'iris',
          undefined,
          [
            [1, 2, 1, 0],
            [1, 2, 1, 0],
          ],
          at,
        ),
      ]);
      expect(a.predictions).toEqual(b.predictions);
      expect(a.predictions[0]).toMatchObject({ label: 'setosa', probabilities: [0.25, 0.5, 0.25] });
    });

    it('refuses invalid instances with the path of each problem, before any run', async () => {
      const session = sessionOf('iris');
      const runs = session.runCount;
      const err = await refusal(
        s.service.predict('iris', undefined, [[1, 2, 1, 0], { features: [1, 2, 'x', 4] }, { sepal_length: 1 }], at),
      );
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.details).toEqual([
        { path: 'instances[1].features[2]', message: 'must be a finite number, got "x"' },
        { path: 'instances[2].sepal_width', message: 'missing feature' },
        { path: 'instances[2].petal_length', message: 'missing feature' },
        { path: 'instances[2].petal_width', message: 'missing feature' },
      ]);
      expect(session.runCount).toBe(runs);
    });

    it('refuses more instances than MAX_BATCH_SIZE before any run', async () => {
      const session = sessionOf('iris');
      const runs = session.runCount;
      const err = await refusal(s.service.predict('iris', undefined, Array(5).fill([1, 1, 1, 1]), at));
      expect(err).toBeInstanceOf(InvalidInputError);
      expect(err.message).toBe('The batch has 5 instances; the limit is 4 (MAX_BATCH_SIZE)');
      expect(err.details).toEqual([{ path: 'instances', message: 'at most 4 instances per request' }]);
      expect(session.runCount).toBe(runs);
      await expect(s.service.predict('iris', undefined, Array(4).fill([1, 1, 1, 1]), at)).resolves.toBeDefined();
    });

    it('refuses an unknown model or version with MODEL_NOT_FOUND', async () => {
      const unknown = await refusal(s.service.predict('rose', undefined, [[1]], at));
      expect(unknown).toBeInstanceOf(ModelNotFoundError);
      expect(unknown.message).toBe(
        "Model 'rose' not found; available models: broken, confused, doubler, fixed, iris, scorer, slow, twice",
      );
      const version = await refusal(s.service.predict('iris', 7, [[1]], at));
      expect(version.code).toBe('MODEL_NOT_FOUND');
      expect(version.message).toBe("Model 'iris' has no version 7; versions: 1");
    });

    it('refuses a version that is not ready with MODEL_NOT_READY and why', async () => {
      const failed = await refusal(s.service.predict('broken', undefined, [[1]], at));
      expect(failed).toBeInstanceOf(ModelNotReadyError);
      expect(failed.message).toBe("Model 'broken' version 1 failed to load: not an onnx file");
      // The other version of the same model still serves.
      expect((await s.service.predict('twice', 1, [[1]], at)).predictions[0].outputs).toEqual({ y: [2] });
      expect((await refusal(s.service.predict('twice', 2, [[1]], at))).code).toBe('MODEL_NOT_READY');
      const confused = await refusal(s.service.predict('confused', undefined, [[1]], at));
      expect(confused.message).toBe(
        "Model 'confused' cannot serve: confused/config.json default_version is 5, but the versions present are 1",
      );
    });

    it('refuses a version still loading with MODEL_NOT_READY', async () => {
      const loading = await serve(model('doubler'), {}, false);
      const err = await refusal(loading.service.predict('doubler', undefined, [[1]], at));
      expect(err).toBeInstanceOf(ModelNotReadyError);
      expect(err.message).toBe("Model 'doubler' version 1 is still loading");
      await loading.registry.whenLoaded();
      expect(loading.service.isReady('doubler')).toBe(true);
      await loading.registry.onApplicationShutdown();
    });

    it('reports a failed run as INFERENCE_FAILED naming the model and version', async () => {
      const err = await refusal(
        s.service.predict(
          'iris',
          undefined,
          [
            [1, 2, 1, 0],
            [1, -2, 1, 0],
          ],
          at,
        ),
      );
      expect(err).toBeInstanceOf(InferenceFailedError);
      expect(err.message).toBe("Model 'iris' version 1 failed to run: negative input");
    });

    it('refuses an instance whose outputs are not finite as NON_FINITE_OUTPUT, naming the output and instance', async () => {
      // All-zero scores: the fake's probabilities are 0/0.
      const err = await refusal(
        s.service.predict(
          'iris',
          undefined,
          [
            [1, 2, 1, 0],
            [0, 0, 0, 1],
          ],
          at,
        ),
      );
      expect(err).toBeInstanceOf(NonFiniteOutputError);
      expect(err.message).toMatch(/computed NaN in output 'output_probability' for instances\[1\]/);
      expect(err.details).toEqual([{ path: 'instances[1]', message: "output 'output_probability'[0] is NaN" }]);
      // The tensor route carries the same values as they are.
      const tensors = await s.service.infer('iris', undefined, [
        { name: 'float_input', type: 'float32', shape: [1, 4], data: [0, 0, 0, 1] },
      ]);
      expect(Number.isNaN(Array.from(tensors.outputs.output_probability.data as Float32Array)[0])).toBe(true);
    });

    it('lets the batcher’s own refusals through unchanged: a full queue, a passed deadline', async () => {
      const session = sessionOf('slow');
      const running = s.service.predict('slow', undefined, [[1]], at);
      await new Promise((r) => setImmediate(r));
      expect(session.held).toHaveLength(1);
      const queued = s.service.predict('slow', undefined, [[2]], at);
      const full = await refusal(s.service.predict('slow', undefined, [[3]], at));
      expect(full).toBeInstanceOf(QueueFullError);
      expect(full.message).toBe("Model 'slow' version 1 has 1 rows queued (limit 1); retry later");
      await session.finishAll();
      // The queued request is running now; the next one misses its deadline while it waits.
      const late = await refusal(
        s.service.predict('slow', undefined, [[4]], at, context({ deadline: Date.now() - 1 })),
      );
      expect(late).toBeInstanceOf(DeadlineExceededError);
      await session.finishAll();
      expect((await running).predictions[0].outputs).toEqual({ y: [2] });
      expect((await queued).predictions[0].outputs).toEqual({ y: [4] });
    });

    it('records what served the request in its context', async () => {
      const ctx = context();
      await s.service.predict(
        'iris',
        undefined,
        [
          [1, 1, 1, 1],
          [1, 2, 1, 0],
        ],
        at,
        ctx,
      );
      expect(ctx.served).toEqual({ model: 'iris', version: 1, batchSize: 2 });
      // Known before validation, so a refused request is logged against its model too.
      const refused = context();
      await refusal(s.service.predict('twice', 1, [['x']], at, refused));
      expect(refused.served).toEqual({ model: 'twice', version: 1, batchSize: 1 });
    });

    it('answers a repeat from the prediction cache when the request allows it', async () => {
      const session = sessionOf('doubler');
      const first = context({ cache: { read: true, write: true } });
      await s.service.predict('doubler', undefined, [[10], [11]], at, first);
      const runs = session.runCount;
      const again = context({ cache: { read: true, write: true } });
      const result = await s.service.predict('doubler', undefined, [[11], [10]], at, again);
      expect(result.predictions.map((p) => p.outputs)).toEqual([{ y: [22] }, { y: [20] }]);
      expect(again.cache).toMatchObject({ hits: 2, misses: 0 });
      expect(session.runCount).toBe(runs);
    });
  });

  describe('infer', () => {
    const x = (shape: number[], data: unknown) => ({ name: 'x', type: 'float32' as const, shape, data });

    it('runs whole tensors and answers whole tensors, recording the rows in the context', async () => {
      const ctx = context();
      const result = await s.service.infer(
        'doubler',
        undefined,
        [
          x(
            [2, 3],
            [
              [1, 2, 3],
              [4, 5, 6],
            ],
          ),
        ],
        ctx,
      );
      expect(result).toEqual({
        model: 'doubler',
        version: 1,
        outputs: { y: { type: 'float32', dims: [2, 3], data: Float32Array.of(2, 4, 6, 8, 10, 12) } },
        labels: undefined,
      });
      expect(ctx.served).toEqual({ model: 'doubler', version: 1, batchSize: 2 });
      const iris = await s.service.infer('iris', 1, [
        { name: 'float_input', type: 'float32', shape: [1, 4], data: [1, 2, 1, 0] },
      ]);
      expect(iris.labels).toEqual(LABELS);
      expect(iris.outputs.output_label).toEqual<TensorData>({ type: 'int64', dims: [1], data: BigInt64Array.of(0n) });
    });

    it('refuses tensors that do not fit the model, and more rows than MAX_BATCH_SIZE, before any run', async () => {
      const session = sessionOf('iris');
      const runs = session.runCount;
      const input = (shape: number[]) => ({ name: 'float_input', type: 'float32' as const, shape, data: [] });
      const shape = await refusal(s.service.infer('iris', 1, [input([1, 3])]));
      expect(shape).toBeInstanceOf(InvalidInputError);
      expect(shape.details).toEqual([
        { path: 'inputs[0].shape', message: "input 'float_input' has shape [*, 4]; got [1, 3]" },
      ]);
      const rows = await refusal(
        s.service.infer('iris', 1, [{ ...input([5, 4]), data: Array(20).fill(1) }], context()),
      );
      expect(rows.message).toBe('The batch has 5 rows; the limit is 4 (MAX_BATCH_SIZE)');
      expect(rows.details).toEqual([{ path: 'inputs', message: 'at most 4 rows per request' }]);
      expect(session.runCount).toBe(runs);
    });

    it('reports a failed run as INFERENCE_FAILED', async () => {
      const err = await refusal(s.service.infer('doubler', undefined, [x([1, 2], [1, -1])]));
      expect(err).toBeInstanceOf(InferenceFailedError);
      expect(err.message).toBe("Model 'doubler' version 1 failed to run: negative input");
    });
  });

  describe('describing models', () => {
    it('describes a version: its state, tensors and classifier fields', () => {
      expect(s.service.describeModel('iris')).toEqual({
        name: 'iris',
        description: 'a fake iris',
        defaultVersion: 1,
        state: 'READY',
        versions: [{ version: 1, state: 'READY', reason: undefined }],
        version: 1,
        versionState: 'READY',
        platform: 'fake',
        inputs: [{ name: 'float_input', type: 'float32', shape: [-1, 4] }],
        outputs: [
          { name: 'output_label', type: 'int64', shape: [-1] },
          { name: 'output_probability', type: 'float32', shape: [-1, 3] },
        ],
        batchable: true,
        batching: { enabled: true, maxBatchSize: 64, maxQueueDelayMs: 0, maxQueueSize: 4096, concurrency: 1 },
        // The fake runtime has no inline sessions, and no measured cost.
        placement: {
          placement: 'worker',
          setting: 'auto',
          cost: undefined,
          reason: 'the runtime has no inline sessions',
        },
        labels: LABELS,
        features: FEATURES,
        labelOutput: 'output_label',
        probabilityOutput: 'output_probability',
      });
    });

    it('describes a version that failed, without tensors', () => {
      expect(s.service.describeModel('twice', 2)).toMatchObject({
        name: 'twice',
        defaultVersion: 2,
        state: 'FAILED',
        reason: 'version 2: not an onnx file',
        version: 2,
        versionState: 'FAILED',
        inputs: [],
        outputs: [],
        batchable: false,
        labels: null,
        features: null,
        labelOutput: null,
        probabilityOutput: null,
      });
      expect(s.service.describeModel('twice', 1)).toMatchObject({ version: 1, versionState: 'READY', batchable: true });
      expect(() => s.service.describeModel('twice', 3)).toThrow(ModelNotFoundError);
    });

    it("describes a model without a usable default by its first version, with its config.json's names", () => {
      expect(s.service.describeModel('confused')).toMatchObject({
        defaultVersion: null,
        state: 'FAILED',
        reason: 'confused/config.json default_version is 5, but the versions present are 1',
        version: 1,
        versionState: 'FAILED',
        inputs: [],
        labels: ['a', 'b'],
        features: ['p', 'q'],
      });
    });

    it('lists every model with its state and versions', () => {
      expect(s.service.listModels().map((m) => [m.name, m.state, m.defaultVersion, m.versions.length])).toEqual([
        ['broken', 'FAILED', 1, 1],
        ['confused', 'FAILED', null, 1],
        ['doubler', 'READY', 1, 1],
        ['fixed', 'READY', 1, 1],
        ['iris', 'READY', 1, 1],
        ['scorer', 'READY', 1, 1],
        ['slow', 'READY', 1, 1],
        ['twice', 'FAILED', 2, 2],
      ]);
      expect(s.service.listModels().find((m) => m.name === 'broken')).toEqual({
        name: 'broken',
        description: undefined,
        defaultVersion: 1,
        state: 'FAILED',
        reason: 'version 1: not an onnx file',
        versions: [{ version: 1, state: 'FAILED', reason: 'not an onnx file' }],
      });
    });

    it('tells whether a model or one version is ready', () => {
      expect(s.service.isReady('iris')).toBe(true);
      expect(s.service.isReady('twice')).toBe(false);
      expect(s.service.isReady('twice', 1)).toBe(true);
      expect(() => s.service.isReady('rose')).toThrow(ModelNotFoundError);
    });
  });

  describe('metrics', () => {
    it("counts each request answered or failed against its model version, failures by Triton's reason and code", async () => {
      const labels = { model: 'fixed', version: '1' };
      const success = () => metricValue(s.metrics, 'inference_request_success_total', labels);
      const reasons: Record<string, string> = { INVALID_INPUT: 'OTHER', INFERENCE_FAILED: 'BACKEND' };
      const failure = (code: string) =>
        metricValue(s.metrics, 'inference_request_failure_total', { ...labels, reason: reasons[code], code });
      const before = { ok: await success(), invalid: await failure('INVALID_INPUT') };
      const failed = await failure('INFERENCE_FAILED');
      await s.service.predict('fixed', undefined, [[1, 2]], at);
      await s.service.infer('fixed', undefined, [{ name: 'x', type: 'float32', shape: [1, 2], data: [1, 2] }]);
      await refusal(s.service.predict('fixed', undefined, [[1]], at));
      await refusal(s.service.predict('fixed', undefined, [[1, -2]], at));
      expect(await success()).toBe(before.ok + 2);
      expect(await failure('INVALID_INPUT')).toBe(before.invalid + 1);
      expect(await failure('INFERENCE_FAILED')).toBe(failed + 1);
      const text = await s.metrics.metrics();
      expect(text).toContain('inference_request_duration_seconds_count{model="fixed",version="1"}');
    });

    it('counts nothing against a model that does not exist', async () => {
      await refusal(s.service.predict('rose', undefined, [[1]], at));
      expect(await s.metrics.metrics()).not.toContain('model="rose"');
    });
  });
});

describe('PredictionService default model', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'fatal']));

  async function defaultOf(files: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<string> {
    const { service, registry } = await serve(files, env);
    try {
      return service.defaultModelName();
    } catch (err) {
      return `${(err as DomainError).code}: ${(err as Error).message}`;
    } finally {
      await registry.onApplicationShutdown();
    }
  }

  it('is DEFAULT_MODEL when the repository holds it', async () => {
    expect(await defaultOf({ ...model('iris', IRIS_CONFIG), ...model('doubler') }, { DEFAULT_MODEL: 'doubler' })).toBe(
      'doubler',
    );
  });

  it('is the only model when DEFAULT_MODEL is not in the repository', async () => {
    expect(await defaultOf(model('doubler'), { DEFAULT_MODEL: 'iris' })).toBe('doubler');
  });

  it('is no model when DEFAULT_MODEL is absent and there are several, or none', async () => {
    expect(await defaultOf({ ...model('fixed'), ...model('doubler') }, { DEFAULT_MODEL: 'iris' })).toBe(
      "MODEL_NOT_FOUND: No default model: DEFAULT_MODEL is 'iris', which is not in the repository; models: doubler, fixed",
    );
    expect(await defaultOf({})).toBe(
      "MODEL_NOT_FOUND: No default model: DEFAULT_MODEL is 'iris', which is not in the repository; models: none",
    );
  });

  it('says DEFAULT_MODEL is unset when it is', async () => {
    const { service, registry, config } = await serve({ ...model('fixed'), ...model('doubler') });
    Object.defineProperty(config, 'DEFAULT_MODEL', { value: undefined });
    expect(() => service.defaultModelName()).toThrow(
      new ModelNotFoundError('No default model: DEFAULT_MODEL is unset; models: doubler, fixed'),
    );
    await registry.onApplicationShutdown();
  });

  it('predicts with the default model when it is a classifier, and refuses one that is not', async () => {
    const { service, registry } = await serve({ ...model('iris', IRIS_CONFIG), ...model('doubler') });
    const result = await service.predictDefault([{ features: [2, 1, 1, 1] }], () => '');
    expect(result).toMatchObject({ model: 'iris', predictions: [{ prediction: 1, label: 'versicolor' }] });
    await registry.onApplicationShutdown();

    const other = await serve(model('doubler'));
    const ctx = context();
    const err = await refusal(other.service.predictDefault([[1]], () => '', ctx));
    expect(err).toBeInstanceOf(InvalidInputError);
    expect(err.message).toBe("The default model 'doubler' is not a classifier; use POST /v1/models/doubler/predict");
    expect(ctx.served).toEqual({ model: 'doubler', version: 1, batchSize: 1 });
    await other.registry.onApplicationShutdown();
  });
});
