import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { GrpcServer } from '../src/grpc/grpc.server';
import { fixture, makeRepository, startApp } from './support/app';
import { call, Clients, connect, grpc } from './support/grpc';
import { listen } from './support/http';

/**
 * Version labels and weighted traffic (config.json version_labels and traffic) on `iv`, the
 * two-version iris fixture: label routes on v1, V2 and gRPC; unversioned requests split by weight,
 * sticky per X-Routing-Key; the version that answered in every answer (X-Model-Version and the
 * body); and labels and weights following a reload. On both adapters: the routing key is read from
 * the request's headers and X-Model-Version added as the answer's headers are written, which each
 * adapter reaches its own way.
 */

const VERSIONS = fixture('iris_versions');
const FEATURES = [5.1, 3.5, 1.4, 0.2];
const V2_BODY = { inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: FEATURES }] };
const GRPC_BODY = {
  model_name: 'iv',
  inputs: [{ name: 'float_input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: FEATURES } }],
};
const REQUESTS = 2000;
// Thousands of requests on a shared, loaded machine: generous, and no figure of time is asserted.
const HEAVY_MS = 300000;

type Answer = { status: number; version: number; header: string | null; body: Record<string, unknown> };

async function baseConfig(): Promise<Record<string, unknown>> {
  const config = JSON.parse(await fs.readFile(path.join(VERSIONS, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config.default_version;
  return config;
}

describe('version labels and canary traffic', () => {
  let app: INestApplication;
  let clients: Clients;
  let base: string;
  let dir: string;

  const writeConfig = async (extra: Record<string, unknown>) =>
    fs.writeFile(path.join(dir, 'iv', 'config.json'), JSON.stringify({ ...(await baseConfig()), ...extra }));

  const post = async (route: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> => {
    const res = await fetch(`${base}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as Record<string, unknown>;
    return {
      status: res.status,
      version: Number(answer.model_version ?? answer.version),
      header: res.headers.get('x-model-version'),
      body: answer,
    };
  };
  const predict = (headers?: Record<string, string>) => post('/v1/models/iv/predict', { features: FEATURES }, headers);
  const infer = (headers?: Record<string, string>) => post('/v2/models/iv/infer', V2_BODY, headers);
  const grpcInfer = async (version = '', metadata: Record<string, string> = {}) => {
    const { response, error } = await call<{ model_version: string }>(
      clients.inference,
      'ModelInfer',
      { ...GRPC_BODY, model_version: version },
      { metadata },
    );
    if (error) throw new Error(`ModelInfer: ${grpc.status[error.code]} ${error.details}`);
    return Number(response!.model_version);
  };

  /** `n` requests, `concurrency` at a time, each made by `send(i)`. */
  async function many<T>(n: number, send: (i: number) => Promise<T>, concurrency = 16): Promise<T[]> {
    const results: T[] = new Array<T>(n);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < n) {
          const i = next++;
          results[i] = await send(i);
        }
      }),
    );
    return results;
  }

  const share = (versions: number[], version: number) => versions.filter((v) => v === version).length / versions.length;

  beforeAll(async () => {
    dir = await makeRepository({ iv: VERSIONS });
    await writeConfig({ version_labels: { stable: 1, canary: 2 }, traffic: { '1': 90, '2': 10 } });
    app = await startApp({ MODEL_REPOSITORY: dir, MODEL_CONTROL_MODE: 'explicit', CACHE_ENABLED: 'false' });
    base = `http://127.0.0.1:${await listen(app)}`;
    clients = connect(app.get(GrpcServer).port!);
  }, HEAVY_MS);
  afterAll(async () => {
    clients.close();
    await app.close();
  });

  it(
    'routes a label to its version on v1 (single and batch), V2 (infer, metadata, ready) and gRPC',
    async () => {
      for (const [label, version] of [
        ['stable', 1],
        ['canary', 2],
      ] as const) {
        const single = await post(`/v1/models/iv/labels/${label}/predict`, { features: FEATURES });
        expect(single).toMatchObject({ status: 200, version, header: String(version) });
        const batch = await post(`/v1/models/iv/labels/${label}/predict/batch`, { instances: [FEATURES, FEATURES] });
        expect(batch).toMatchObject({ status: 200, version, header: String(version) });
        expect(batch.body.predictions).toHaveLength(2);
        // The label's answer is its version's: the same as asking for the number.
        const byNumber = await post(`/v1/models/iv/versions/${version}/predict`, { features: FEATURES });
        expect(single.body.probabilities).toEqual(byNumber.body.probabilities);

        const v2 = await post(`/v2/models/iv/versions/${label}/infer`, V2_BODY);
        expect(v2).toMatchObject({ status: 200, version, header: String(version) });
        expect(v2.body.model_version).toBe(String(version));
        const metadata = await fetch(`${base}/v2/models/iv/versions/${label}`);
        expect(metadata.status).toBe(200);
        expect(((await metadata.json()) as { versions: string[] }).versions).toEqual(['1', '2']);
        expect((await fetch(`${base}/v2/models/iv/versions/${label}/ready`)).status).toBe(200);

        expect(await grpcInfer(label)).toBe(version);
      }
      // /v1/models shows what routes where.
      const listed = (await (await fetch(`${base}/v1/models`)).json()) as { models: Record<string, unknown>[] };
      expect(listed.models.find((m) => m.name === 'iv')).toMatchObject({
        version_labels: { stable: 1, canary: 2 },
        traffic: { '1': 90, '2': 10 },
      });
      // The two versions really differ, so the answers above tell them apart.
      const [one, two] = await Promise.all(
        [1, 2].map((v) => post(`/v1/models/iv/versions/${v}/predict`, { features: FEATURES })),
      );
      expect(one.body.probabilities).not.toEqual(two.body.probabilities);
    },
    HEAVY_MS,
  );

  it('refuses an unknown label with 404 naming the labels, and a malformed one with 400', async () => {
    const unknown = await post('/v1/models/iv/labels/beta/predict', { features: FEATURES });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({
      error: 'MODEL_NOT_FOUND',
      message: "Model 'iv' has no version label 'beta'; labels: stable, canary",
    });
    const v2 = await post('/v2/models/iv/versions/beta/infer', V2_BODY);
    expect(v2.status).toBe(404);
    expect(v2.body.error).toMatch(/no version label 'beta'/);
    const malformed = await post('/v1/models/iv/labels/1st/predict', { features: FEATURES });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: 'INVALID_INPUT' });
    const { error } = await call(clients.inference, 'ModelInfer', { ...GRPC_BODY, model_version: 'beta' });
    expect(error && grpc.status[error.code]).toBe('NOT_FOUND');
  });

  it(
    `splits ${REQUESTS} unversioned requests 90/10 within 5 points, each answer naming its version`,
    async () => {
      const answers = await many(REQUESTS, (i) => (i % 2 ? infer() : predict()));
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
      expect(answers.filter((a) => a.header !== String(a.version))).toEqual([]);
      const versions = answers.map((a) => a.version);
      expect(new Set(versions)).toEqual(new Set([1, 2]));
      expect(Math.abs(share(versions, 2) - 0.1)).toBeLessThanOrEqual(0.05);
      // The readiness of the model as a whole is that of what its traffic names.
      expect((await fetch(`${base}/v2/models/iv/ready`)).status).toBe(200);
    },
    HEAVY_MS,
  );

  it(
    `gives each X-Routing-Key one version on every protocol, ${REQUESTS} keys split 90/10 within 5 points`,
    async () => {
      const keyed = await many(REQUESTS, (i) => predict({ 'x-routing-key': `user-${i}` }));
      expect(keyed.filter((a) => a.status !== 200)).toEqual([]);
      expect(
        Math.abs(
          share(
            keyed.map((a) => a.version),
            2,
          ) - 0.1,
        ),
      ).toBeLessThanOrEqual(0.05);
      // The same keys again, on V2 and gRPC as well: none moves.
      const sample = Array.from({ length: 200 }, (_, i) => i * 10);
      const again = await many(sample.length, async (j) => {
        const i = sample[j];
        const key = `user-${i}`;
        const [v1, v2, g] = await Promise.all([
          predict({ 'x-routing-key': key }),
          infer({ 'x-routing-key': key }),
          grpcInfer('', { 'x-routing-key': key }),
        ]);
        return { key, first: keyed[i].version, now: [v1.version, v2.version, g] };
      });
      expect(again.filter((a) => a.now.some((v) => v !== a.first))).toEqual([]);
    },
    HEAVY_MS,
  );

  it(
    'follows a reload: traffic moved to 0/100 and a label moved; names of versions not served are refused with the reason',
    async () => {
      // What a canary that went well comes to: all traffic to version 2, stable pointing at it.
      await writeConfig({ version_labels: { stable: 2, previous: 1 }, traffic: { '1': 0, '2': 100 } });
      const load = await fetch(`${base}/v2/repository/models/iv/load`, { method: 'POST' });
      expect(load.status).toBe(200);
      const after = await many(200, (i) => (i % 2 ? infer({ 'x-routing-key': `user-${i}` }) : predict()));
      expect(new Set(after.map((a) => a.version))).toEqual(new Set([2]));
      expect((await post('/v1/models/iv/labels/stable/predict', { features: FEATURES })).version).toBe(2);
      expect((await post('/v1/models/iv/labels/previous/predict', { features: FEATURES })).version).toBe(1);
      expect((await post('/v1/models/iv/labels/canary/predict', { features: FEATURES })).status).toBe(404);

      // A label or weight naming a version that is not served: the load says why, what served keeps serving.
      for (const bad of [{ version_labels: { next: 3 } }, { traffic: { '2': 50, '3': 50 } }]) {
        await writeConfig(bad);
        const refused = await fetch(`${base}/v2/repository/models/iv/load`, { method: 'POST' });
        expect(refused.status).toBe(400);
        expect(((await refused.json()) as { error: string }).error).toMatch(
          /iv\/config\.json (version_labels\.next|traffic) names version 3, which is not served \(served: 1, 2\)/,
        );
        expect((await post('/v1/models/iv/labels/stable/predict', { features: FEATURES })).version).toBe(2);
        expect((await predict()).version).toBe(2);
      }
    },
    HEAVY_MS,
  );

  it(
    'answers a label whose version failed to load with 503 saying so, and serves the others',
    async () => {
      await fs.mkdir(path.join(dir, 'iv', '3'));
      await fs.writeFile(path.join(dir, 'iv', '3', 'model.onnx'), 'not an ONNX model');
      await writeConfig({ version_labels: { stable: 2, broken: 3 }, traffic: { '2': 100 } });
      const load = await fetch(`${base}/v2/repository/models/iv/load`, { method: 'POST' });
      expect(load.status).toBe(400);
      const broken = await post('/v1/models/iv/labels/broken/predict', { features: FEATURES });
      expect(broken.status).toBe(503);
      expect(broken.body).toMatchObject({
        error: 'MODEL_NOT_READY',
        message: expect.stringMatching(/^Model 'iv' version 3 \(label 'broken'\) failed to load: /),
      });
      expect((await grpcInfer('stable')).valueOf()).toBe(2);
      expect((await predict()).version).toBe(2);
    },
    HEAVY_MS,
  );
});
