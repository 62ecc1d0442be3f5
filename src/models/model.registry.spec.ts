import { Logger } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bundled, BUNDLED_MODELS, fixture, makeRepository } from '../testing/model-repository';
import { ModelNotFoundError, ModelNotReadyError } from '../common/domain.errors';
import { loadConfig } from '../config/app.config';
import { MetricsService } from '../observability/metrics.service';
import { hashFraction, ModelRegistry } from './model.registry';
import { OnnxRuntime } from './runtime/onnx.runtime';

async function loadRegistry(repository: string): Promise<ModelRegistry> {
  const config = loadConfig({ MODEL_REPOSITORY: repository });
  const registry = new ModelRegistry(new OnnxRuntime(config), config);
  await registry.onModuleInit();
  await registry.whenLoaded();
  return registry;
}

describe('ModelRegistry (real onnxruntime sessions)', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'fatal']));

  it('loads the bundled repository, passing the config.json self-tests', async () => {
    const registry = await loadRegistry(BUNDLED_MODELS);
    expect(registry.list().map((m) => [m.name, registry.stateOf(m).state, m.defaultVersion])).toEqual([
      ['digits', 'READY', 1],
      ['iris', 'READY', 1],
    ]);
    const iris = registry.servingVersion('iris');
    expect(iris.signature).toMatchObject({
      batchable: true,
      labelOutput: 'output_label',
      probabilityOutput: 'output_probability',
    });
    await registry.onApplicationShutdown();
    expect(() => registry.servingVersion('iris')).toThrow(ModelNotReadyError);
  });

  it('serves several versions, with the default version from config.json', async () => {
    const registry = await loadRegistry(await makeRepository({ iris: fixture('iris_versions') }));
    expect(registry.servingVersion('iris').version).toBe(1);
    expect(registry.servingVersion('iris', 2).version).toBe(2);
    expect(() => registry.servingVersion('iris', 3)).toThrow(
      new ModelNotFoundError("Model 'iris' has no version 3; versions: 1, 2"),
    );
    expect(() => registry.servingVersion('rose')).toThrow(/Model 'rose' not found; available models: iris/);
    await registry.onApplicationShutdown();
  });

  it('skips a model folder that is a symbolic link out of the repository, saying so, and follows one inside it', async () => {
    const outside = await makeRepository({ iris: fixture('iris_versions') });
    const dir = await makeRepository({ iris: fixture('iris_versions') });
    await fs.mkdir(path.join(dir, '.store'));
    await fs.rename(path.join(dir, 'iris'), path.join(dir, '.store', 'iris'));
    await fs.symlink(path.join(dir, '.store', 'iris'), path.join(dir, 'iris'));
    await fs.symlink(path.join(outside, 'iris'), path.join(dir, 'escaped'));
    await fs.symlink(path.join(dir, 'nowhere'), path.join(dir, 'dangling'));
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const registry = await loadRegistry(dir);
      expect(registry.list().map((m) => m.name)).toEqual(['iris']);
      const lines = warned.mock.calls.map((c) => String(c[0]));
      expect(lines).toContain('escaped: skipped, a symbolic link out of the model repository');
      expect(lines).toContain('dangling: skipped, a symbolic link to nothing');
      await registry.onApplicationShutdown();
    } finally {
      warned.mockRestore();
    }
  });

  it('takes the highest version as default when config.json does not say', async () => {
    const dir = await makeRepository({ iris: fixture('iris_versions') });
    await fs.rm(path.join(dir, 'iris', 'config.json'));
    const registry = await loadRegistry(dir);
    expect(registry.servingVersion('iris').version).toBe(2);
    await registry.onApplicationShutdown();
  });

  it('marks each broken model FAILED with its reason and keeps serving the others', async () => {
    const iris = bundled('iris');
    const irisConfig = JSON.parse(await fs.readFile(path.join(iris, 'config.json'), 'utf8'));
    const onnx = await fs.readFile(path.join(iris, '1', 'model.onnx'));
    const dir = await makeRepository(
      {
        good: iris,
        zipmap: fixture('zipmap'),
        selftest: iris,
        badlabels: iris,
        baddefault: iris,
        badjson: iris,
        badfield: iris,
      },
      {
        'corrupt/1/model.onnx': Buffer.from('this is not an onnx file'),
        'truncated/1/model.onnx': onnx.subarray(0, onnx.length / 2),
        'emptyversion/1/README.md': 'no model here',
        'noversions/config.json': '{}',
        'selftest/config.json': JSON.stringify({
          ...irisConfig,
          samples: [{ ...irisConfig.samples[0], expected: { output_label: 2 } }],
        }),
        'badlabels/config.json': JSON.stringify({ ...irisConfig, labels: ['a', 'b'] }),
        'baddefault/config.json': JSON.stringify({ ...irisConfig, default_version: 5 }),
        'badjson/config.json': '{ "labels": [',
        'badfield/config.json': JSON.stringify({ labels: 'setosa', default_version: 0, colour: 'blue' }),
      },
    );
    const registry = await loadRegistry(dir);
    const reasons = Object.fromEntries(registry.list().map((m) => [m.name, registry.stateOf(m)]));
    expect(reasons.good).toEqual({ state: 'READY' });
    expect(registry.servingVersion('good').version).toBe(1);
    const failed = (name: string, reason: RegExp) => {
      expect(reasons[name].state).toBe('FAILED');
      expect(reasons[name].reason).toMatch(reason);
    };
    failed('corrupt', /version 1: .*(protobuf|parse|Load model)/i);
    failed('truncated', /version 1: /);
    failed('emptyversion', /emptyversion\/1\/model\.onnx is missing/);
    failed('noversions', /no version folders: expected noversions\/<version>\/model\.onnx/);
    failed('zipmap', /output 'output_probability' is not a tensor .*zipmap': False/);
    failed('selftest', /self-test sample 0: output_label expected 2, got 0/);
    failed('badlabels', /labels has 2 names, but output 'output_probability' has 3 classes/);
    failed('baddefault', /default_version is 5, but the versions present are 1/);
    failed('badjson', /badjson\/config\.json is not valid JSON/);
    failed('badfield', /^badfield\/config\.json is invalid: /);
    expect(reasons.badfield.reason).toMatch(/labels: labels must be an array/);
    expect(reasons.badfield.reason).toMatch(/default_version: default_version must not be less than 1/);
    expect(reasons.badfield.reason).toMatch(/colour: unknown field/);
    // Reasons reach clients, so they name files relative to the repository, never the server's paths.
    expect(JSON.stringify(reasons)).not.toContain(dir);
    expect(reasons.corrupt.reason).toMatch(/corrupt\/1\/model\.onnx/);
    expect(() => registry.servingVersion('selftest')).toThrow(ModelNotReadyError);
    expect(() => registry.servingVersion('selftest')).toThrow(/failed to load: self-test sample 0/);
    await registry.onApplicationShutdown();
  });

  it('stops start-up when the repository does not exist', async () => {
    const config = loadConfig({ MODEL_REPOSITORY: '/nonexistent/models' });
    const registry = new ModelRegistry(new OnnxRuntime(config), config);
    await expect(registry.onModuleInit()).rejects.toThrow('MODEL_REPOSITORY /nonexistent/models is not a directory');
  });

  it('keeps a model READY that fails on some inputs, and counts the runs it split into its metrics', async () => {
    const dir = await makeRepository(
      { gather: fixture('gather') },
      // A queue delay: the requests below, submitted in one turn of the event loop, then share one run.
      { 'gather/config.json': JSON.stringify({ batching: { max_queue_delay_ms: 50 } }) },
    );
    const config = loadConfig({ MODEL_REPOSITORY: dir, INFERENCE_WORKERS: '1' });
    const metrics = new MetricsService();
    const registry = new ModelRegistry(new OnnxRuntime(config), config, metrics);
    await registry.onModuleInit();
    await registry.whenLoaded();
    const { batcher } = registry.servingVersion('gather');
    const idx = (...values: bigint[]) => ({
      idx: { type: 'int64' as const, dims: [values.length, 1], data: BigInt64Array.from(values) },
    });
    const runsBefore = batcher.stats.runs;
    const outcomes = await Promise.all(
      [idx(1n, -1n), idx(7n), idx(3n)].map((feeds) =>
        batcher.submit(feeds, feeds.idx.dims[0]).then(
          (o) => Array.from(o.out.data as Float32Array),
          (e: Error) => e.message,
        ),
      ),
    );
    expect(outcomes).toEqual([[20, 50], expect.stringContaining('idx=7'), [40]]);
    // One shared run that failed, then each request alone.
    expect(batcher.stats.runs - runsBefore).toBe(4);
    expect(registry.stateOf(registry.findVersion('gather').model).state).toBe('READY');
    expect(await metrics.metrics()).toContain('inference_batch_splits_total{model="gather",version="1"} 1');
    await registry.onApplicationShutdown();
  });

  it('serves an empty repository with no models', async () => {
    const registry = await loadRegistry(await makeRepository({}));
    expect(registry.list()).toEqual([]);
    await registry.onApplicationShutdown();
  });

  describe('version labels and traffic (config.json version_labels, traffic)', () => {
    let registry: ModelRegistry;
    beforeAll(async () => {
      const dir = await makeRepository({ iv: fixture('iris_versions') });
      const config = JSON.parse(await fs.readFile(path.join(dir, 'iv', 'config.json'), 'utf8'));
      await fs.writeFile(
        path.join(dir, 'iv', 'config.json'),
        JSON.stringify({ ...config, version_labels: { stable: 1, canary: 2 }, traffic: { '1': 75, '2': 25 } }),
      );
      registry = await loadRegistry(dir);
    });
    afterAll(() => registry.onApplicationShutdown());

    it('resolves a label to its version, and names the labels when one is unknown', () => {
      expect(registry.servingVersion('iv', 'stable').version).toBe(1);
      expect(registry.servingVersion('iv', 'canary').version).toBe(2);
      expect(registry.findVersion('iv', 'canary').entry?.version).toBe(2);
      expect(() => registry.servingVersion('iv', 'beta')).toThrow(
        new ModelNotFoundError("Model 'iv' has no version label 'beta'; labels: stable, canary"),
      );
    });

    it('splits unversioned requests by weight, the same routing key always on the same version', () => {
      const keys = Array.from({ length: 4000 }, (_, i) => `caller-${i}`);
      const chosen = keys.map((k) => registry.servingVersion('iv', undefined, k).version);
      const second = chosen.filter((v) => v === 2).length / chosen.length;
      expect(Math.abs(second - 0.25)).toBeLessThanOrEqual(0.03);
      expect(keys.map((k) => registry.servingVersion('iv', undefined, k).version)).toEqual(chosen);
      const unkeyed = Array.from({ length: 4000 }, () => registry.servingVersion('iv').version);
      expect(Math.abs(unkeyed.filter((v) => v === 2).length / unkeyed.length - 0.25)).toBeLessThanOrEqual(0.03);
      // A number still names that version, whatever the weights.
      expect(registry.servingVersion('iv', 2, 'caller-0').version).toBe(2);
      expect(registry.serves(registry.getModel('iv'))).toBe(true);
    });
  });

  it('spreads routing keys evenly over [0, 1)', () => {
    const points = Array.from({ length: 10000 }, (_, i) => hashFraction(`k${i}`));
    expect(points.every((p) => p >= 0 && p < 1)).toBe(true);
    const tenths = Array.from({ length: 10 }, (_, d) => points.filter((p) => Math.floor(p * 10) === d).length);
    for (const count of tenths) expect(Math.abs(count - 1000)).toBeLessThanOrEqual(150);
    expect(hashFraction('same')).toBe(hashFraction('same'));
  });

  it('fails a model whose labels or traffic name a version it does not serve, saying which', async () => {
    const versions = fixture('iris_versions');
    const config = JSON.parse(await fs.readFile(path.join(versions, 'config.json'), 'utf8'));
    const dir = await makeRepository(
      { labels: versions, weights: versions, policy: versions },
      {
        'labels/config.json': JSON.stringify({ ...config, version_labels: { canary: 3 } }),
        'weights/config.json': JSON.stringify({ ...config, traffic: { '1': 50, '4': 50 } }),
        'policy/config.json': JSON.stringify({
          ...config,
          version_policy: { specific: { versions: [1] } },
          traffic: { '1': 90, '2': 10 },
        }),
      },
    );
    const registry = await loadRegistry(dir);
    const reasons = Object.fromEntries(registry.list().map((m) => [m.name, registry.stateOf(m).reason]));
    expect(reasons).toEqual({
      labels: 'labels/config.json version_labels.canary names version 3, which is not served (served: 1, 2)',
      weights: 'weights/config.json traffic names version 4, which is not served (served: 1, 2)',
      policy: 'policy/config.json traffic names version 2, which is not served (served: 1)',
    });
    await registry.onApplicationShutdown();
  });
});
