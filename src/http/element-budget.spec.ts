import type { IncomingMessage } from 'node:http';
import { elementBudget, ROOM } from './element-budget';
import type { Model, ModelVersion } from '../models/model.registry';
import type { ModelSignature, TensorSpec } from '../models/model.types';

const tensor = (name: string, shape: number[]): TensorSpec => ({ name, type: 'float32', shape });

const signature = (inputs: TensorSpec[], batchable = true): ModelSignature => ({
  inputs,
  outputs: [tensor('out', batchable ? [-1, 3] : [1, 3])],
  batchable,
});

/** A model as the registry holds it, with a version per signature (undefined: not loaded yet). */
function model(name: string, ...signatures: (ModelSignature | undefined)[]): Model {
  const versions = new Map<number, ModelVersion>(
    signatures.map((s, i) => [i + 1, { model: name, version: i + 1, state: s ? 'READY' : 'LOADING', signature: s }]),
  );
  return { name, config: {}, versions, defaultVersion: 1 };
}

const MODELS = new Map<string, Model>([
  ['iris', model('iris', signature([tensor('float_input', [-1, 4])]))],
  // Two versions: the larger one bounds the body, whichever a request asks for.
  ['two', model('two', signature([tensor('a', [-1, 2, 3])]), signature([tensor('a', [-1, 4]), tensor('b', [-1, 5])]))],
  ['whole', model('whole', signature([tensor('x', [1, 6])], false))],
  ['text', model('text', signature([tensor('tokens', [-1, -1])]))],
  ['loading', model('loading', undefined)],
]);

const budgetOf = elementBudget((name) => MODELS.get(name), 'iris', 1024);
const at = (url: string) => budgetOf({ url } as IncomingMessage);

describe('elementBudget', () => {
  it('gives a prediction route what its model takes, twice over for nested arrays, with ROOM', () => {
    expect(at('/v1/models/iris/predict')).toEqual({
      max: 9 + ROOM,
      reason: "model 'iris' takes 4 values per instance, one instance here",
    });
    expect(at('/v1/models/iris/predict/batch')).toEqual({
      max: 1024 * 9 + ROOM,
      reason: "model 'iris' takes 4 values per instance, at most MAX_BATCH_SIZE (1024) instances",
    });
    expect(at('/v2/models/iris/infer')?.max).toBe(1024 * 9 + ROOM);
    expect(at('/v2/models/iris/versions/1/infer')?.max).toBe(1024 * 9 + ROOM);
  });

  it('reads every spelling of the routes: versions, labels, the default model, a query, a trailing slash, escapes', () => {
    const single = 9 + ROOM;
    for (const url of [
      '/v1/models/iris/versions/1/predict',
      '/v1/models/iris/labels/stable/predict',
      '/v1/models/%69ris/predict',
      '/v1/models/iris/predict?x=1',
      '/v1/models/iris/predict/',
      '/predict',
      '/predict?debug',
      '/V1/Models/iris/Predict',
    ]) {
      expect({ url, max: at(url)?.max }).toEqual({ url, max: single });
    }
    expect(at('/predict/batch')?.max).toBe(1024 * 9 + ROOM);
    expect(at('/v1/models/iris/labels/stable/predict/batch')?.max).toBe(1024 * 9 + ROOM);
  });

  it('takes the largest version, the sum over inputs, and the whole tensor of a model without a batch dimension', () => {
    expect(at('/v1/models/two/predict')?.max).toBe(2 * 9 + 1 + ROOM);
    expect(at('/v1/models/whole/predict')?.max).toBe(2 * 6 + 1 + ROOM);
  });

  it('gives ROOM to a route without tensors, an unknown model and a default model that is not set', () => {
    expect(at('/v2/repository/models/iris/load')).toEqual({ max: ROOM, reason: 'this route takes no tensors' });
    expect(at('/v1/models/iris/predictions')).toEqual({ max: ROOM, reason: 'this route takes no tensors' });
    const none = { max: ROOM, reason: 'no model of that name is served' };
    expect(at('/v1/models/nope/predict')).toEqual(none);
    expect(at('/v1/models/%E0%A4%A/predict')).toEqual(none);
    const noDefault = elementBudget((name) => MODELS.get(name), undefined, 1024);
    expect(noDefault({ url: '/predict' } as IncomingMessage)?.max).toBe(ROOM);
  });

  it('sets no bound where the model takes inputs of any size, or has no version loaded yet', () => {
    expect(at('/v1/models/text/predict')).toBeUndefined();
    expect(at('/v2/models/text/infer')).toBeUndefined();
    expect(at('/v1/models/loading/predict')).toBeUndefined();
  });
});
