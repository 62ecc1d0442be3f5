import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIObject } from '@nestjs/swagger';
import { ModelSignature } from '../models/model.types';
import {
  elementSchema,
  modelDocument,
  schemaPrefix,
  tensorSchema,
  TypedModel,
  withModels,
} from './model-openapi.builder';

const errors = {
  '400': {
    description: 'bad',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/ErrorResponseDto' } } },
  },
};
const generic = (operationId: string) => ({
  operationId,
  parameters: [{ name: 'model', in: 'path' as const, required: true, schema: { type: 'string' } }],
  requestBody: { content: { 'application/json': { schema: { type: 'object' } } } },
  responses: { '200': { description: 'ok' }, ...errors },
});
const BASE: OpenAPIObject = {
  openapi: '3.0.0',
  info: { title: 'service', version: '1' },
  paths: {
    '/v1/models/{model}/predict': { post: generic('predict') },
    '/v1/models/{model}/predict/batch': { post: generic('predictBatch') },
    '/v2/models/{model}/infer': { post: generic('v2Infer') },
  },
  components: {
    schemas: {
      ErrorResponseDto: { type: 'object', properties: { error: { type: 'string' } } },
      UnusedDto: { type: 'object' },
    },
  },
};

const IRIS: TypedModel = {
  name: 'iris',
  version: 1,
  signature: {
    inputs: [{ name: 'float_input', type: 'float32', shape: [-1, 4] }],
    outputs: [
      { name: 'output_label', type: 'int64', shape: [-1] },
      { name: 'output_probability', type: 'float32', shape: [-1, 3] },
    ],
    batchable: true,
    features: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
    labels: ['setosa', 'versicolor', 'virginica'],
    labelOutput: 'output_label',
    probabilityOutput: 'output_probability',
  },
  samples: [{ features: [5.1, 3.5, 1.4, 0.2] }, { features: [7.0, 3.2, 4.7, 1.4] }],
};

/** Two inputs, no feature names, no labels, a fixed first dimension: only `inputs` describes it. */
const MULTI: ModelSignature = {
  inputs: [
    { name: 'a', type: 'int8', shape: [1, 2] },
    { name: 'b', type: 'string', shape: [1] },
  ],
  outputs: [{ name: 'y', type: 'bool', shape: [1, 2] }],
  batchable: false,
};

type Schemas = Record<string, Record<string, unknown>>;
const schemasOf = (doc: OpenAPIObject) => doc.components!.schemas as Schemas;

describe('model OpenAPI builder', () => {
  it('names schemas after the model, uniquely', () => {
    expect(schemaPrefix('iris', new Set())).toBe('Iris');
    expect(schemaPrefix('iris_versions', new Set())).toBe('IrisVersions');
    expect(schemaPrefix('iris-versions', new Set(['IrisVersions']))).toBe('IrisVersions2');
    expect(schemaPrefix('3d.net', new Set())).toBe('Model3dNet');
  });

  it('describes fixed dimensions with exact lengths and dynamic ones without', () => {
    expect(tensorSchema([-1, 2], { type: 'number' })).toEqual({
      type: 'array',
      items: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
    });
    expect(elementSchema('uint8')).toEqual({ type: 'integer', format: 'int32', minimum: 0, maximum: 255 });
    expect(elementSchema('int64').oneOf).toHaveLength(2);
  });

  it('adds concrete typed routes beside the generic ones, leaving the base document untouched', () => {
    const before = structuredClone(BASE);
    const doc = withModels(BASE, [IRIS]);
    expect(BASE).toEqual(before);
    const op = doc.paths['/v1/models/iris/predict'].post!;
    expect(op.operationId).toBe('predictIris');
    expect(op.parameters).toEqual([]);
    expect(op.security).toBeUndefined();
    expect(op.responses['400']).toEqual(errors['400']);
    expect(doc.paths['/v1/models/iris/predict/batch'].post!.operationId).toBe('predictIrisBatch');
    expect(doc.paths['/v2/models/iris/infer'].post!.operationId).toBe('inferIris');
    expect(doc.paths['/v2/models/iris/infer'].post!.responses).toBe(
      BASE.paths['/v2/models/{model}/infer'].post!.responses,
    );
    expect(doc.paths['/v1/models/{model}/predict']).toBe(BASE.paths['/v1/models/{model}/predict']);
    const schemas = schemasOf(doc);
    expect(schemas.IrisFeatures).toMatchObject({ required: IRIS.signature.features, additionalProperties: false });
    expect(schemas.IrisFeatureArray).toMatchObject({ minItems: 4, maxItems: 4 });
    expect((schemas.IrisPrediction.properties as Schemas).label.enum).toEqual([
      'setosa',
      'versicolor',
      'virginica',
      null,
    ]);
  });

  it("keeps the generic route's header parameters and security requirements", () => {
    const guarded = structuredClone(BASE);
    const predict = guarded.paths['/v1/models/{model}/predict'].post!;
    predict.parameters = [...predict.parameters!, { name: 'X-Request-Id', in: 'header', schema: { type: 'string' } }];
    predict.security = [{ apiKey: [] }];
    const op = withModels(guarded, [IRIS]).paths['/v1/models/iris/predict'].post!;
    expect(op.parameters).toEqual([{ name: 'X-Request-Id', in: 'header', schema: { type: 'string' } }]);
    expect(op.security).toEqual([{ apiKey: [] }]);
  });

  it("takes the examples from the model's self-test samples, by feature name", () => {
    const doc = withModels(BASE, [IRIS]);
    const example = (p: string) =>
      (doc.paths[p].post!.requestBody as { content: Record<string, { example: unknown }> }).content['application/json']
        .example;
    expect(example('/v1/models/iris/predict')).toEqual({
      features: { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
    });
    expect(example('/v1/models/iris/predict/batch')).toEqual({
      instances: [
        { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
        { sepal_length: 7, sepal_width: 3.2, petal_length: 4.7, petal_width: 1.4 },
      ],
    });
    expect(example('/v2/models/iris/infer')).toEqual({
      inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
    });
  });

  it('types a model without feature names by its inputs, with zeros of their shapes as the example', () => {
    const doc = withModels(BASE, [{ name: 'multi', version: 3, signature: MULTI }]);
    const schemas = schemasOf(doc);
    expect(schemas.MultiFeatures).toBeUndefined();
    expect(schemas.MultiFeatureArray).toBeUndefined();
    expect(schemas.MultiInputs).toMatchObject({
      required: ['a', 'b'],
      properties: { a: tensorSchema([1, 2], elementSchema('int8')), b: tensorSchema([1], { type: 'string' }) },
    });
    expect(schemas.MultiPredictRequest).toMatchObject({ required: ['inputs'] });
    const body = doc.paths['/v1/models/multi/predict'].post!.requestBody as {
      content: Record<string, { example: unknown }>;
    };
    expect(body.content['application/json'].example).toEqual({ inputs: { a: [[0, 0]], b: [''] } });
    const v2 = doc.paths['/v2/models/multi/infer'].post!.requestBody as {
      content: Record<string, { example: unknown }>;
    };
    expect(v2.content['application/json'].example).toEqual({
      inputs: [
        { name: 'a', shape: [1, 2], datatype: 'INT8', data: [0, 0] },
        { name: 'b', shape: [1], datatype: 'BYTES', data: [''] },
      ],
    });
    const inputs = (schemas.MultiV2InferRequest.properties as Schemas).inputs;
    expect(inputs).toMatchObject({
      minItems: 2,
      maxItems: 2,
      items: { oneOf: [{ properties: { name: { enum: ['a'] } } }, { properties: { name: { enum: ['b'] } } }] },
    });
  });

  it('makes a valid document of several models, and one of a single model with only the schemas it uses', async () => {
    const doc = withModels(BASE, [IRIS, { name: 'multi', version: 1, signature: MULTI }]);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
    const single = modelDocument(BASE, IRIS);
    expect(Object.keys(single.paths).sort()).toEqual([
      '/v1/models/iris/predict',
      '/v1/models/iris/predict/batch',
      '/v2/models/iris/infer',
    ]);
    expect(Object.keys(schemasOf(single))).toContain('ErrorResponseDto');
    expect(Object.keys(schemasOf(single))).not.toContain('UnusedDto');
    await expect(SwaggerParser.validate(structuredClone(single) as never)).resolves.toBeDefined();
  });

  it('says which versions answer: the default, or the split config.json traffic makes', () => {
    const description = (model: TypedModel) =>
      withModels(BASE, [model]).paths['/v1/models/iris/predict'].post!.description;
    expect(description(IRIS)).toMatch(/Answered by version 1, the default; /);
    expect(description({ ...IRIS, traffic: { '1': 3, '2': 1, '3': 0 } })).toMatch(
      /Answered by version 1 \(75%\), 2 \(25%\), split by config.json traffic \(sticky per X-Routing-Key\)/,
    );
  });
});
