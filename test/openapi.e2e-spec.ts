import SwaggerParser from '@apidevtools/swagger-parser';
import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { startApp } from './support/app';

/** Every route the service answers, as OpenAPI path templates. */
const ROUTES: [string, string][] = [
  ['get', '/'],
  ['get', '/health'],
  ['get', '/health/live'],
  ['get', '/health/ready'],
  ['get', '/health/startup'],
  ['get', '/metrics'],
  ['post', '/predict'],
  ['post', '/predict/batch'],
  ['get', '/v1/models'],
  ['get', '/v1/models/{model}'],
  ['get', '/v1/models/{model}/versions/{version}'],
  ['post', '/v1/models/{model}/predict'],
  ['post', '/v1/models/{model}/versions/{version}/predict'],
  ['post', '/v1/models/{model}/predict/batch'],
  ['post', '/v1/models/{model}/versions/{version}/predict/batch'],
  ['post', '/v1/models/{model}/labels/{label}/predict'],
  ['post', '/v1/models/{model}/labels/{label}/predict/batch'],
  ['get', '/v2'],
  ['get', '/v2/health/live'],
  ['get', '/v2/health/ready'],
  ['get', '/v2/models/{model}'],
  ['get', '/v2/models/{model}/versions/{version}'],
  ['get', '/v2/models/{model}/ready'],
  ['get', '/v2/models/{model}/versions/{version}/ready'],
  ['get', '/v2/models/stats'],
  ['get', '/v2/models/{model}/config'],
  ['get', '/v2/models/{model}/versions/{version}/config'],
  ['get', '/v2/models/{model}/stats'],
  ['get', '/v2/models/{model}/versions/{version}/stats'],
  ['post', '/v2/models/{model}/infer'],
  ['post', '/v2/models/{model}/versions/{version}/infer'],
  ['post', '/v2/repository/index'],
  ['post', '/v2/repository/models/{model}/load'],
  ['post', '/v2/repository/models/{model}/unload'],
];

interface Operation {
  operationId?: string;
  'x-model'?: string;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
}

describe('OpenAPI document', () => {
  let app: INestApplication;
  let doc: {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown> };
  };

  beforeAll(async () => {
    app = await startApp();
    doc = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
  });
  afterAll(() => app.close());

  it('is a valid OpenAPI 3 document', async () => {
    expect(doc.openapi).toMatch(/^3\./);
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it("covers every route, and nothing else but the typed copies of the models' prediction routes", () => {
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => !op['x-model'])
        .map(([m]) => `${m} ${p}`),
    );
    expect(documented.sort()).toEqual(ROUTES.map(([m, p]) => `${m} ${p}`).sort());
    // Concrete paths the templated routes answer (see model-openapi.e2e-spec.ts).
    const typed = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => op['x-model'])
        .map(([m]) => `${m} ${p}`),
    );
    expect(typed.sort()).toEqual([
      'post /v1/models/digits/predict',
      'post /v1/models/digits/predict/batch',
      'post /v1/models/iris/predict',
      'post /v1/models/iris/predict/batch',
      'post /v2/models/digits/infer',
      'post /v2/models/iris/infer',
    ]);
  });

  it.each(ROUTES)('%s %s has an operationId, a typed success response and typed errors', (method, route) => {
    const op = doc.paths[route][method];
    expect(op.operationId).toMatch(/^[a-zA-Z][a-zA-Z0-9]*$/);
    const ok = Object.entries(op.responses).find(([status]) => status.startsWith('2'));
    if (route === '/metrics') expect(ok?.[1].content?.['text/plain'].schema).toEqual({ type: 'string' });
    else {
      // An array (the repository index, as Triton answers it) is typed by its items.
      const schema = ok?.[1].content?.['application/json'].schema as { $ref?: string; items?: { $ref?: string } };
      expect(schema?.$ref ?? schema?.items?.$ref).toMatch(/^#\/components\/schemas\/\w+Dto$/);
    }
    if (method === 'post') {
      expect(op.requestBody?.content['application/json'].schema.$ref).toMatch(/RequestDto$/);
      // The Open Inference Protocol's routes answer errors in its own shape; only inference can be unavailable.
      const error = route.startsWith('/v2') ? 'V2ErrorDto' : 'ErrorResponseDto';
      const statuses = route.startsWith('/v2/repository') ? ['400', '404'] : ['400', '404', '503'];
      for (const status of statuses) {
        expect(op.responses[status].content?.['application/json'].schema?.$ref).toBe(`#/components/schemas/${error}`);
      }
    }
  });

  it.each(['/v2/models/{model}/infer', '/v2/models/{model}/versions/{version}/infer', '/v2/models/iris/infer'])(
    '%s describes the binary tensor form: octet-stream in and out, framed by Inference-Header-Content-Length',
    (route) => {
      const op = doc.paths[route].post as Operation & {
        requestBody: { content: Record<string, { schema: { type?: string; format?: string } }> };
        parameters: { name: string; in: string }[];
        responses: Record<string, { headers?: Record<string, unknown> }>;
      };
      expect(Object.keys(op.requestBody.content).sort()).toEqual(['application/json', 'application/octet-stream']);
      expect(op.requestBody.content['application/octet-stream'].schema).toMatchObject({
        type: 'string',
        format: 'binary',
      });
      expect(Object.keys(op.responses['200'].content ?? {}).sort()).toEqual([
        'application/json',
        'application/octet-stream',
      ]);
      expect(op.responses['200'].headers).toHaveProperty('Inference-Header-Content-Length');
      expect(op.parameters.filter((p) => p.in === 'header').map((p) => p.name)).toEqual(
        expect.arrayContaining(['Inference-Header-Content-Length', 'Content-Encoding', 'Accept-Encoding']),
      );
    },
  );

  it('operationIds are unique, so generated SDKs get one method per route', () => {
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('serves Swagger UI at /docs', async () => {
    const res = await request(app.getHttpServer()).get('/docs').expect(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    expect(res.text).toMatch(/swagger-ui/i);
  });
});

/** Every `oneOf` in a document, with where it is. */
function oneOfs(value: unknown, at = '#'): { at: string; variants: Record<string, unknown>[] }[] {
  if (typeof value !== 'object' || value === null) return [];
  const found = Object.entries(value).flatMap(([key, v]) => oneOfs(v, `${at}/${key}`));
  const variants = (value as { oneOf?: unknown }).oneOf;
  return Array.isArray(variants) ? [{ at, variants: variants as Record<string, unknown>[] }, ...found] : found;
}

/** The scheme names the operations' security requirements use. */
function requiredSchemes(doc: { paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>> }) {
  return [
    ...new Set(
      Object.values(doc.paths)
        .flatMap((item) => Object.values(item))
        .flatMap((op) => op.security ?? [])
        .flatMap((requirement) => Object.keys(requirement)),
    ),
  ].sort();
}

describe('OpenAPI conventions (what linters and SDK generators check)', () => {
  type Doc = {
    servers?: { url: string }[];
    paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>>;
    components: { schemas: Record<string, { properties?: Record<string, unknown> }>; securitySchemes?: object };
  };
  let app: INestApplication;
  let whole: Doc;
  let iris: Doc;

  beforeAll(async () => {
    app = await startApp({ API_KEYS: 'a-key-for-the-conventions-suite' });
    const http = request(app.getHttpServer());
    // With keys on, the documents stay readable without one (DOCS_PUBLIC's default).
    whole = (await http.get('/docs-json').expect(200)).body;
    iris = (await request(app.getHttpServer()).get('/v1/models/iris/openapi.json').expect(200)).body;
  });
  afterAll(() => app?.close());

  it('names a server: the relative / without PUBLIC_URL', () => {
    expect(whole.servers).toEqual([{ url: '/' }]);
    expect(iris.servers).toEqual([{ url: '/' }]);
  });

  it('names PUBLIC_URL as the server when it is set', async () => {
    const behindProxy = await startApp({ PUBLIC_URL: 'https://ml.example.com/inference/' });
    try {
      const doc = (await request(behindProxy.getHttpServer()).get('/v1/models/iris/openapi.json').expect(200))
        .body as Doc;
      expect(doc.servers).toEqual([{ url: 'https://ml.example.com/inference' }]);
    } finally {
      await behindProxy.close();
    }
  });

  it('defines every security scheme its operations require, in the whole and in each model’s document', () => {
    for (const doc of [whole, iris]) {
      expect(requiredSchemes(doc)).toEqual(['apiKey', 'bearer']);
      expect(Object.keys(doc.components.securitySchemes ?? {}).sort()).toEqual(['apiKey', 'bearer']);
    }
  });

  // Alternatives of different primitive types read apart by their type (number | string); objects and arrays do not.
  it('titles every oneOf alternative that is an object or an array', () => {
    const found = [...oneOfs(whole), ...oneOfs(iris)];
    // The request DTOs' and the per-model builder's alternatives are both in there.
    expect(found.length).toBeGreaterThan(3);
    const untitled = found.flatMap(({ at, variants }) =>
      variants.filter((v) => (v.type === 'object' || v.type === 'array') && typeof v.title !== 'string').map(() => at),
    );
    expect(untitled).toEqual([]);
  });

  it('types the default model’s probability as a number or null', () => {
    expect(whole.components.schemas.DefaultModelPredictResponseDto.properties?.probability).toEqual(
      expect.objectContaining({ type: 'number', nullable: true }),
    );
  });
});
