import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { bundled, fixture, makeRepository, startApp } from './support/app';

/**
 * The Open Inference Protocol's model configuration and statistics extensions, and the server
 * metadata that lists them, checked against the models' real metadata and against the counts of
 * /metrics. On both adapters: Express's router matches routes in order (GET /v2/models/stats next to
 * /v2/models/{model}), and each adapter treats the trailing slash of GET /v2/ its own way.
 */

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

describe('Open Inference Protocol (V2): configuration and statistics extensions', () => {
  let app: INestApplication;
  let http: ReturnType<INestApplication['getHttpServer']>;

  beforeAll(async () => {
    const dir = await makeRepository({
      iris: bundled('iris'),
      iris_versions: fixture('iris_versions'),
      fixed_shape: fixture('fixed_shape'),
      types: fixture('types'),
    });
    app = await startApp({
      MODEL_REPOSITORY: dir,
      INFERENCE_WORKERS: '2',
      BATCH_MAX_SIZE: '32',
      BATCH_MAX_QUEUE_DELAY_MS: '2',
    });
    http = app.getHttpServer();
  });
  afterAll(() => app.close());

  describe('server metadata', () => {
    it.each(['/v2', '/v2/'])('GET %s lists exactly the extensions the service implements', async (path) => {
      const res = await request(http).get(path).expect(200);
      expect(res.body).toEqual({
        name: expect.any(String),
        version: expect.any(String),
        extensions: ['binary_tensor_data', 'classification', 'model_configuration', 'model_repository', 'statistics'],
      });
    });

    it('the repository extension: the index in every mode; load refused in the default mode, in the V2 shape', async () => {
      const res = await request(http).post('/v2/repository/index').send({}).expect(200);
      expect(res.body).toEqual(expect.arrayContaining([{ name: 'iris', version: '1', state: 'READY' }]));
      const load = await request(http).post('/v2/repository/models/iris/load').expect(400);
      expect(load.body).toEqual({ error: expect.stringMatching(/needs MODEL_CONTROL_MODE=explicit/) });
    });
  });

  describe('model configuration', () => {
    const configType = (datatype: string) => (datatype === 'BYTES' ? 'TYPE_STRING' : `TYPE_${datatype}`);

    it.each(['iris', 'types'])(
      "%s: Triton's model-config JSON, tensors from the model's own metadata without the batch dimension",
      async (model) => {
        const meta = (await request(http).get(`/v2/models/${model}`).expect(200)).body as {
          inputs: Tensor[];
          outputs: Tensor[];
        };
        const res = await request(http).get(`/v2/models/${model}/config`).expect(200);
        const tensors = (list: Tensor[]) =>
          list.map((t) => ({ name: t.name, data_type: configType(t.datatype), dims: t.shape.slice(1) }));
        expect(res.body).toEqual({
          name: model,
          platform: 'onnxruntime_onnx',
          backend: 'onnxruntime',
          version_policy: { specific: { versions: [1] } },
          max_batch_size: 32,
          input: tensors(meta.inputs),
          output: tensors(meta.outputs),
          dynamic_batching: { max_queue_delay_microseconds: 2000 },
          instance_group: [{ name: model, kind: 'KIND_CPU', count: 2 }],
          default_model_filename: 'model.onnx',
          ...(model === 'iris' ? { parameters: { labels: { string_value: 'setosa,versicolor,virginica' } } } : {}),
        });
        expect(res.body.input[0]).toEqual(
          model === 'iris' ? { name: 'float_input', data_type: 'TYPE_FP32', dims: [4] } : expect.anything(),
        );
      },
    );

    it('a model without a batch dimension: max_batch_size 0, full dims, no dynamic batching', async () => {
      const res = await request(http).get('/v2/models/fixed_shape/config').expect(200);
      expect(res.body.max_batch_size).toBe(0);
      expect(res.body.input).toEqual([{ name: 'x', data_type: 'TYPE_FP32', dims: [1, 4] }]);
      expect(res.body.output).toEqual([{ name: 'y', data_type: 'TYPE_FP32', dims: [1, 2] }]);
      expect(res.body.dynamic_batching).toBeUndefined();
    });

    it('one version by its number; 404 {"error"} for an unknown model or version', async () => {
      const res = await request(http).get('/v2/models/iris_versions/versions/1/config').expect(200);
      expect(res.body.version_policy).toEqual({ specific: { versions: [1] } });
      for (const path of ['/v2/models/rose/config', '/v2/models/iris/versions/9/config']) {
        const missing = await request(http).get(path).expect(404);
        expect(Object.keys(missing.body)).toEqual(['error']);
      }
    });
  });

  describe('statistics', () => {
    const stats = async (path: string) => (await request(http).get(path).expect(200)).body.model_stats;
    const metric = async (name: string, model: string) => {
      const text = (await request(http).get('/metrics').expect(200)).text;
      const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${model}",version="1"}`));
      return line === undefined ? 0 : Number(line.split(' ').at(-1));
    };
    const infer = (rows: number[][]) =>
      request(http)
        .post('/v2/models/iris/infer')
        .send({ inputs: [{ name: 'float_input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }] });

    it('count what iris served: requests, failures, runs, rows, batch sizes and cache use, as /metrics does', async () => {
      const before = Date.now();
      // One request at a time, each with rows of its own, so each is one run of its own size and no cache hit.
      await infer([[1, 1, 1, 1]]).expect(200);
      await infer([
        [2, 2, 2, 2],
        [3, 3, 3, 3],
      ]).expect(200);
      await infer([
        [4, 4, 4, 4],
        [5, 5, 5, 5],
        [6, 6, 6, 6],
      ]).expect(200);
      await request(http)
        .post('/v2/models/iris/infer')
        .send({ inputs: [{ name: 'float_input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] })
        .expect(400);
      await infer([[1, 1, 1, 1]]).expect(200); // from the cache

      const [iris] = await stats('/v2/models/iris/stats');
      expect(iris).toMatchObject({ name: 'iris', version: '1', inference_count: 6, execution_count: 3 });
      expect(iris.last_inference).toBeGreaterThanOrEqual(before);
      expect(iris.last_inference).toBeLessThanOrEqual(Date.now());
      const s = iris.inference_stats;
      expect(s.success.count).toBe(4);
      expect(s.success.ns).toBeGreaterThan(0);
      expect(s.fail.count).toBe(1);
      expect(s.queue.count).toBe(3);
      expect(s.compute_infer.count).toBe(3);
      expect(s.compute_infer.ns).toBeGreaterThan(0);
      expect(s.cache_hit.count).toBe(1);
      expect(s.cache_miss.count).toBe(6);
      expect(
        iris.batch_stats.map((b: { batch_size: number; compute_infer: { count: number } }) => [
          b.batch_size,
          b.compute_infer.count,
        ]),
      ).toEqual([
        [1, 1],
        [2, 1],
        [3, 1],
      ]);

      expect(await metric('inference_count_total', 'iris')).toBe(iris.inference_count);
      expect(await metric('inference_exec_count_total', 'iris')).toBe(iris.execution_count);
      expect(await metric('inference_request_success_total', 'iris')).toBe(s.success.count);
      expect(await metric('inference_cache_hits_total', 'iris')).toBe(s.cache_hit.count);
      expect(await metric('inference_cache_misses_total', 'iris')).toBe(s.cache_miss.count);
    });

    it('GET /v2/models/stats lists every version of every model; one version alone by its path', async () => {
      const all = await stats('/v2/models/stats');
      const names = all.map((e: { name: string; version: string }) => `${e.name}/${e.version}`).sort();
      const versions = (await request(http).get('/v2/models/iris_versions').expect(200)).body.versions as string[];
      expect(names).toEqual(
        ['fixed_shape/1', 'iris/1', ...versions.map((v) => `iris_versions/${v}`), 'types/1'].sort(),
      );
      const one = await stats('/v2/models/iris_versions/versions/1/stats');
      expect(one).toEqual([expect.objectContaining({ name: 'iris_versions', version: '1', execution_count: 0 })]);
    });

    it('an unused model answers zeros, not an error; an unknown one 404 {"error"}', async () => {
      const [types] = await stats('/v2/models/types/stats');
      expect(types.inference_count).toBe(0);
      expect(types.inference_stats.success).toEqual({ count: 0, ns: 0 });
      expect(types.batch_stats).toEqual([]);
      const missing = await request(http).get('/v2/models/rose/stats').expect(404);
      expect(Object.keys(missing.body)).toEqual(['error']);
    });
  });
});
