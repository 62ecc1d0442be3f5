import { INestApplication } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bundled, makeRepository, startApp } from './support/app';
import { isStructuredError, listen, rawRequest } from './support/http';

/**
 * Broken model files and hostile model names, over HTTP: each broken model is FAILED with its
 * reason while the rest of the repository serves, and no model name in a path reaches a file
 * outside the repository.
 */

const OK = [5.1, 3.5, 1.4, 0.2];
const predict = (model: string) => ({
  method: 'POST',
  path: `/v1/models/${model}/predict`,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ features: OK }),
});

describe('broken model files', () => {
  let app: INestApplication;
  let port: number;
  let repository: string;

  beforeAll(async () => {
    const onnx = await fs.readFile(path.join(bundled('iris'), '1', 'model.onnx'));
    repository = await makeRepository(
      { iris: bundled('iris'), notjson: bundled('iris') },
      {
        'corrupt/1/model.onnx': Buffer.from('definitely not a protobuf'),
        'truncated/1/model.onnx': onnx.subarray(0, Math.floor(onnx.length * 0.6)),
        'notjson/config.json': 'labels: [setosa, versicolor]',
        'noversions/config.json': '{}',
      },
    );
    // A real model beside the repository, which no request may reach.
    await fs.cp(bundled('iris'), path.join(path.dirname(repository), `${path.basename(repository)}-outside`), {
      recursive: true,
    });
    app = await startApp({ MODEL_REPOSITORY: repository });
    port = await listen(app);
  });
  afterAll(async () => {
    await app?.close();
  });

  it.each([
    ['corrupt', /corrupt\/1\/model\.onnx failed/],
    ['truncated', /truncated\/1\/model\.onnx failed/],
    ['notjson', /notjson\/config\.json is not valid JSON/],
    ['noversions', /no version folders/],
  ])('lists %s as FAILED with its reason, and answers its predictions 503 with it', async (name, reason) => {
    const list = await rawRequest(port, { path: '/v1/models' });
    const model = (list.json as { models: { name: string; state: string; reason?: string }[] }).models.find(
      (m) => m.name === name,
    );
    expect(model).toEqual(expect.objectContaining({ state: 'FAILED', reason: expect.stringMatching(reason) }));
    const res = await rawRequest(port, predict(name));
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ error: 'MODEL_NOT_READY', message: expect.stringMatching(reason) });
    expect(res.text).not.toContain(repository);
  });

  it('serves the good model beside them, and stays up', async () => {
    const res = await rawRequest(port, predict('iris'));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ model: 'iris', label: 'setosa' });
    expect((await rawRequest(port, { path: '/health' })).json).toEqual({ status: 'degraded', models_loaded: ['iris'] });
    expect((await rawRequest(port, { path: '/health/live' })).status).toBe(200);
  });

  const outside = () => `${path.basename(repository)}-outside`;
  const hostile = (): string[] => [
    `..%2F${outside()}`,
    `%2E%2E%2F${outside()}`,
    `%2e%2e%2f${outside()}`,
    `..%252F${outside()}`,
    `..%5C${outside()}`,
    `iris%2F..%2F..%2F${outside()}`,
    `....%2F%2F${outside()}`,
    encodeURIComponent(path.join(path.dirname(repository), outside())),
    '%2Fetc%2Fpasswd',
    '..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd',
    '%2E%2E',
    '.',
    'iris%00',
    '%C0%AE%C0%AE%2F',
  ];

  it('never resolves a model name outside the repository, however it is written', async () => {
    for (const name of hostile()) {
      for (const req of [
        predict(name),
        { path: `/v1/models/${name}` },
        { path: `/v1/models/${name}/versions/1` },
        { path: `/v2/models/${name}` },
        { path: `/v2/models/${name}/ready` },
        {
          method: 'POST',
          path: `/v2/models/${name}/infer`,
          headers: { 'content-type': 'application/json' },
          body: '{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}',
        },
      ]) {
        const res = await rawRequest(port, req);
        const summary = {
          path: req.path,
          status: res.status,
          structured: isStructuredError(req.path, res.status, res),
        };
        expect(summary).toEqual({ path: req.path, status: expect.any(Number), structured: true });
        expect([400, 404]).toContain(res.status);
        expect(res.text).not.toContain('root:');
      }
    }
  });

  it('never serves a path with ../ in it (unencoded) either', async () => {
    for (const p of [
      `/v1/models/../${outside()}/predict`,
      `/v1/models/iris/../../${outside()}`,
      `/v2/models/../../${outside()}/infer`,
    ]) {
      const res = await rawRequest(port, {
        method: 'POST',
        path: p,
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect({ p, status: res.status, structured: isStructuredError(p, 404, res) }).toEqual({
        p,
        status: 404,
        structured: true,
      });
    }
  });

  it('lists only the repository’s own folders', async () => {
    const names = ((await rawRequest(port, { path: '/v1/models' })).json as { models: { name: string }[] }).models.map(
      (m) => m.name,
    );
    expect(names.sort()).toEqual(['corrupt', 'iris', 'notjson', 'noversions', 'truncated']);
  });
});
