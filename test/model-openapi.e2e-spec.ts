import SwaggerParser from '@apidevtools/swagger-parser';
import { INestApplication } from '@nestjs/common';
import Ajv from 'ajv';
import { promises as fs } from 'node:fs';
import request from 'supertest';
import { bundled, fixture, makeRepository, startApp } from './support/app';

interface Operation {
  operationId: string;
  'x-model'?: string;
  requestBody: { content: { 'application/json': { schema: { $ref: string }; example: unknown } } };
  responses: Record<string, { content?: { 'application/json': { schema: { $ref?: string } } } }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Record<string, unknown>> };
}

/** Every typed operation of a document: the per-model routes, marked with x-model. */
const typedOperations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.values(ops)
      .filter((op) => op['x-model'])
      .map((op) => ({ path, op })),
  );

/**
 * Checks bodies against the document's own schemas: OpenAPI 3.0 schemas are JSON Schema plus
 * `nullable`, which Ajv knows; formats such as `float` are descriptive only.
 */
function schemaChecker(doc: Document) {
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema({ components: doc.components }, 'doc');
  return (schemaRef: string, body: unknown): string[] => {
    const validate = ajv.compile({ $ref: `doc${schemaRef}` });
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  };
}

/** Posts each typed route's own example and checks the answer against the route's response schema. */
async function checkExamples(app: INestApplication, doc: Document): Promise<string[]> {
  const check = schemaChecker(doc);
  const problems: string[] = [];
  for (const { path, op } of typedOperations(doc)) {
    const media = op.requestBody.content['application/json'];
    problems.push(...check(media.schema.$ref, media.example).map((p) => `${op.operationId} example: ${p}`));
    const res = await request(app.getHttpServer())
      .post(path)
      .send(media.example as object);
    if (res.status !== 200) {
      problems.push(`${op.operationId}: ${res.status} ${JSON.stringify(res.body)}`);
      continue;
    }
    problems.push(
      ...check(op.responses['200'].content!['application/json'].schema.$ref!, res.body).map(
        (p) => `${op.operationId} answer: ${p}`,
      ),
    );
  }
  return problems;
}

describe('per-model OpenAPI (bundled models)', () => {
  let app: INestApplication;
  let doc: Document;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    app = await startApp();
    doc = (await http().get('/docs-json').expect(200)).body;
  });
  afterAll(() => app.close());

  it('gives each model typed routes beside the generic ones, and the validator finds no error', async () => {
    expect(
      typedOperations(doc)
        .map(({ path, op }) => `${op.operationId} ${path}`)
        .sort(),
    ).toEqual([
      'inferDigits /v2/models/digits/infer',
      'inferIris /v2/models/iris/infer',
      'predictDigits /v1/models/digits/predict',
      'predictDigitsBatch /v1/models/digits/predict/batch',
      'predictIris /v1/models/iris/predict',
      'predictIrisBatch /v1/models/iris/predict/batch',
    ]);
    expect(doc.paths['/v1/models/{model}/predict'].post.operationId).toBe('predict');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('types iris by its feature names, feature count and labels', () => {
    const s = doc.components.schemas;
    expect(s.IrisFeatures).toMatchObject({
      type: 'object',
      required: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
      properties: { sepal_length: { type: 'number', format: 'float' } },
      additionalProperties: false,
    });
    expect(s.IrisFeatureArray).toMatchObject({ type: 'array', minItems: 4, maxItems: 4, items: { type: 'number' } });
    expect(s.IrisPrediction.properties).toMatchObject({
      model: { enum: ['iris'] },
      label: { enum: ['setosa', 'versicolor', 'virginica', null] },
    });
    expect(s.IrisPrediction.properties).toMatchObject({ probabilities: { minItems: 3, maxItems: 3 } });
    expect(s.IrisOutputs).toMatchObject({ required: ['output_label', 'output_probability'] });
    expect(s.DigitsFeatureArray).toMatchObject({ minItems: 64, maxItems: 64 });
    expect(s.DigitsFeatures).toBeUndefined();
  });

  it('types V2 inference by input name, datatype and rank', () => {
    expect(doc.components.schemas.IrisV2InferRequest.properties).toMatchObject({
      inputs: {
        minItems: 1,
        maxItems: 1,
        items: {
          properties: {
            name: { enum: ['float_input'] },
            datatype: { enum: ['FP32'] },
            shape: { minItems: 2, maxItems: 2 },
          },
        },
      },
      outputs: { items: { properties: { name: { enum: ['output_label', 'output_probability'] } } } },
    });
  });

  it("answers every model's example with 200, in the shape of its typed response", async () => {
    expect(await checkExamples(app, doc)).toEqual([]);
    const iris = doc.paths['/v1/models/iris/predict'].post.requestBody.content['application/json'].example;
    expect(
      (
        await http()
          .post('/v1/models/iris/predict')
          .send(iris as object)
          .expect(200)
      ).body.label,
    ).toBe('setosa');
  });

  it('refuses what the typed schema refuses, as the server always did', async () => {
    const check = schemaChecker(doc);
    const misspelt = { features: { sepal_lenght: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 } };
    expect(check('#/components/schemas/IrisPredictRequest', misspelt)).not.toEqual([]);
    const res = await http().post('/v1/models/iris/predict').send(misspelt).expect(400);
    expect(res.body.details).toEqual(
      expect.arrayContaining([{ path: 'features.sepal_lenght', message: expect.stringMatching(/unknown feature/) }]),
    );
    expect(check('#/components/schemas/IrisPredictRequest', { features: [5.1, 3.5, 1.4] })).not.toEqual([]);
    await http()
      .post('/v1/models/iris/predict')
      .send({ features: [5.1, 3.5, 1.4] })
      .expect(400);
  });

  it('serves a document per model at /v1/models/{model}/openapi.json, valid on its own', async () => {
    const iris: Document = (await http().get('/v1/models/iris/openapi.json').expect(200)).body;
    expect(Object.keys(iris.paths).sort()).toEqual([
      '/v1/models/iris/predict',
      '/v1/models/iris/predict/batch',
      '/v2/models/iris/infer',
    ]);
    expect(Object.keys(iris.components.schemas)).toEqual(
      expect.arrayContaining(['IrisFeatures', 'IrisPrediction', 'ErrorResponseDto']),
    );
    expect(Object.keys(iris.components.schemas).some((name) => name.startsWith('Digits'))).toBe(false);
    await expect(SwaggerParser.validate(structuredClone(iris) as never)).resolves.toBeDefined();
    const missing = await http().get('/v1/models/rose/openapi.json').expect(404);
    expect(missing.body.error).toBe('MODEL_NOT_FOUND');
  });

  it('serves ReDoc at /redoc, its script from node_modules, the page held to the service by its policy', async () => {
    const page = await http().get('/redoc').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toContain('<redoc spec-url="/docs-json">');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const script = await http().get('/redoc/redoc.standalone.js').expect(200);
    expect(script.headers['content-type']).toMatch(/^application\/javascript/);
    expect(script.text.length).toBeGreaterThan(100_000);
    expect(script.text).not.toMatch(/^\{"type":"Buffer"/);
  });

  it('puts the typed routes in the YAML document and in Swagger UI too', async () => {
    expect((await http().get('/docs-yaml').expect(200)).text).toContain('operationId: predictIris');
    expect((await http().get('/docs/swagger-ui-init.js').expect(200)).text).toContain('"predictIris"');
  });
});

describe('per-model OpenAPI (a repository of many kinds of model)', () => {
  let app: INestApplication;
  let dir: string;
  let doc: Document;

  beforeAll(async () => {
    dir = await makeRepository({
      iris: bundled('iris'),
      iris_versions: fixture('iris_versions'),
      linear: fixture('linear'),
      multi_input: fixture('multi_input'),
      fixed_shape: fixture('fixed_shape'),
      types: fixture('types'),
      fp16: fixture('fp16'),
      spec_example: fixture('spec_example'),
      slow: fixture('slow'),
      zipmap: fixture('zipmap'),
    });
    // zipmap fails to load on purpose: its error line would only be noise here.
    app = await startApp({ MODEL_REPOSITORY: dir, LOG_LEVEL: 'fatal' });
    doc = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
  });
  afterAll(async () => {
    await app?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it('has typed routes for every READY model found at start-up, none for a FAILED one, and stays valid', async () => {
    const models = new Set(typedOperations(doc).map(({ op }) => op['x-model']));
    expect([...models].sort()).toEqual([
      'fixed_shape',
      'fp16',
      'iris',
      'iris_versions',
      'linear',
      'multi_input',
      'slow',
      'spec_example',
      'types',
    ]);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
    const failed = await request(app.getHttpServer()).get('/v1/models/zipmap/openapi.json').expect(503);
    expect(failed.body.error).toBe('MODEL_NOT_READY');
  });

  it('types models without feature names by input name, shape and element type', () => {
    const s = doc.components.schemas;
    expect(s.MultiInputInputs).toMatchObject({
      required: ['a', 'b'],
      properties: {
        a: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'number' } },
        b: { type: 'array', minItems: 3, maxItems: 3, items: { oneOf: [{ type: 'integer' }, { type: 'string' }] } },
      },
    });
    expect(s.MultiInputFeatureArray).toBeUndefined();
    expect(s.SpecExampleInputs).toMatchObject({
      properties: { input0: { items: { type: 'integer', minimum: 0 } }, input1: { type: 'boolean' } },
    });
  });

  it("answers every model's example with 200, in the shape of its typed response", async () => {
    expect(await checkExamples(app, doc)).toEqual([]);
  });
});
