import { Logger } from '@nestjs/common';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bundled, BUNDLED_MODELS, fixture, makeRepository } from '../testing/model-repository';
import { ModelNotFoundError, ModelNotReadyError } from '../common/domain.errors';
import { loadConfig } from '../config/app.config';
import { ModelRegistry } from './model.registry';
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

  it('serves an empty repository with no models', async () => {
    const registry = await loadRegistry(await makeRepository({}));
    expect(registry.list()).toEqual([]);
    await registry.onApplicationShutdown();
  });
});
