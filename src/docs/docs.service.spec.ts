import type { OpenAPIObject } from '@nestjs/swagger';
import { DomainError } from '../common/domain.errors';
import { Model, ModelRegistry, ModelVersion } from '../models/model.registry';
import { ModelSignature } from '../models/model.types';
import { DocsService } from './docs.service';

const SIGNATURE: ModelSignature = {
  inputs: [{ name: 'x', type: 'float32', shape: [-1, 3] }],
  outputs: [{ name: 'y', type: 'float32', shape: [-1, 1] }],
  batchable: true,
};
const op = (operationId: string) => ({ operationId, responses: { '200': { description: 'ok' } } });
const BASE: OpenAPIObject = {
  openapi: '3.0.0',
  info: { title: 'service', version: '1' },
  paths: {
    '/v1/models/{model}/predict': { post: op('predict') },
    '/v1/models/{model}/predict/batch': { post: op('predictBatch') },
    '/v2/models/{model}/infer': { post: op('v2Infer') },
  },
};

/**
 * The registry's view of one model whose version loads in the background, as the real registry's
 * does after start-up: the document must follow it from one request to the next.
 */
function registryWith(version: ModelVersion): ModelRegistry {
  const model: Model = { name: 'linear', config: {}, defaultVersion: 1, versions: new Map([[1, version]]) };
  return {
    list: () => [model],
    getModel: (name: string) => {
      if (name !== 'linear') throw new DomainError('MODEL_NOT_FOUND', `Model '${name}' not found`);
      return model;
    },
    stateOf: () => ({ state: version.state }),
  } as unknown as ModelRegistry;
}

describe('DocsService', () => {
  it('builds the scanned document once and adds the models READY at each request', () => {
    const version: ModelVersion = { model: 'linear', version: 1, state: 'LOADING' };
    const docs = new DocsService(registryWith(version));
    const build = jest.fn(() => BASE);
    docs.useBase(build);

    expect(Object.keys(docs.document().paths)).toEqual(Object.keys(BASE.paths));
    expect(() => docs.modelDocument('linear')).toThrow(/no READY default version.*LOADING/);

    Object.assign(version, { state: 'READY', signature: SIGNATURE });
    expect(docs.document().paths['/v1/models/linear/predict'].post?.operationId).toBe('predictLinear');
    expect(Object.keys(docs.modelDocument('linear').paths)).toEqual([
      '/v1/models/linear/predict',
      '/v1/models/linear/predict/batch',
      '/v2/models/linear/infer',
    ]);
    expect(build).toHaveBeenCalledTimes(1);
    expect(BASE.paths['/v1/models/linear/predict']).toBeUndefined();
  });

  it('builds each document and its text once per change of the ready models, not per request', () => {
    const version: ModelVersion = { model: 'linear', version: 1, state: 'READY', signature: SIGNATURE };
    const docs = new DocsService(registryWith(version));
    docs.useBase(() => BASE);

    const first = docs.document();
    expect(docs.document()).toBe(first);
    const json = docs.json();
    expect(JSON.parse(json)).toEqual(first);
    expect(docs.json()).toBe(json);
    expect(docs.yaml()).toContain('operationId: predictLinear');
    expect(docs.modelDocument('linear')).toBe(docs.modelDocument('linear'));

    // A load that replaces the version brings a new signature: a new document.
    Object.assign(version, { signature: { ...SIGNATURE } });
    const second = docs.document();
    expect(second).not.toBe(first);
    // Unloaded (or failed): its routes leave the document.
    Object.assign(version, { state: 'FAILED' });
    expect(docs.document().paths['/v1/models/linear/predict']).toBeUndefined();
    expect(docs.yaml()).not.toContain('predictLinear');
  });
});
