import { INestApplication, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { promises as fs } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../src/config/app.config';
import { buildOpenApiDocument } from '../src/openapi';
import { ApiKeyStore } from '../src/security/api-key.store';
import { requiredScope } from '../src/security/api-key.middleware';
import { isStructuredError, listen, RawResponse, rawRequest } from './support/http';
import { bundled, makeRepository, startApp } from './support/app';

/**
 * API keys, rate limits and the limits on every input, against the real application on a real
 * port (raw requests: paths and headers reach the server exactly as written).
 */

const INFERENCE_KEY = 'inference-key-0123456789abcdef';
const ADMIN_ONLY_KEY = 'admin-only-key-0123456789abcdef';
const FILE_KEY = 'file-key-0123456789abcdef-one';
const ROTATED_KEY = 'file-key-0123456789abcdef-two';
const OK = [5.1, 3.5, 1.4, 0.2];
/** The documentation: Swagger UI's page and an asset, the documents, ReDoc, and a model's document. */
const DOC_PAGES = [
  '/docs',
  '/docs/swagger-ui-init.js',
  '/docs-json',
  '/docs-yaml',
  '/redoc',
  '/redoc/redoc.standalone.js',
  '/v1/models/iris/openapi.json',
];
const PROBES = [
  '/health',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/v2/health/live',
  '/v2/health/ready',
  '/metrics',
];

const json = (body: unknown) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Every route of the OpenAPI document, with its parameters filled in, and a body where it takes one. */
function routesOf(app: INestApplication): { method: string; path: string; body?: string }[] {
  const doc = buildOpenApiDocument(app);
  return Object.entries(doc.paths).flatMap(([route, item]) =>
    Object.keys(item)
      .filter((m) => ['get', 'post'].includes(m))
      .map((method) => ({
        method: method.toUpperCase(),
        path: route.replace('{model}', 'iris').replace('{version}', '1').replace('{label}', 'stable'),
        body:
          method === 'post'
            ? JSON.stringify(
                route.startsWith('/v2')
                  ? { inputs: [{ name: 'float_input', shape: [1, 4], datatype: 'FP32', data: OK }] }
                  : route.endsWith('batch')
                    ? { instances: [OK] }
                    : { features: OK },
              )
            : undefined,
      })),
  );
}

async function send(
  port: number,
  route: { method: string; path: string; body?: string },
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  return rawRequest(port, {
    method: route.method,
    path: route.path,
    body: route.body,
    headers: route.body ? { 'content-type': 'application/json', ...headers } : headers,
  });
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 50));
}

describe('API keys', () => {
  let app: INestApplication;
  let port: number;
  let keyFile: string;
  let routes: { method: string; path: string; body?: string }[];

  beforeAll(async () => {
    keyFile = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'keys-')), 'api-keys');
    await fs.writeFile(keyFile, `# mounted from a Secret\n${FILE_KEY}\n`);
    // iris with a version label, so that the label routes are among those answered.
    const irisConfig = JSON.parse(await fs.readFile(path.join(bundled('iris'), 'config.json'), 'utf8')) as object;
    const repository = await makeRepository(
      { iris: bundled('iris'), digits: bundled('digits') },
      { 'iris/config.json': JSON.stringify({ ...irisConfig, version_labels: { stable: 1 } }) },
    );
    app = await startApp({
      MODEL_REPOSITORY: repository,
      API_KEYS: `${INFERENCE_KEY}, ${ADMIN_ONLY_KEY}:admin`,
      API_KEYS_FILE: keyFile,
      API_KEYS_RELOAD_MS: '100',
    });
    port = await listen(app);
    routes = routesOf(app).filter((r) => !PROBES.includes(r.path));
  });
  afterAll(async () => {
    await app?.close();
  });

  it('leaves the probes and /metrics open', async () => {
    for (const probe of PROBES) {
      const res = await rawRequest(port, { path: probe });
      expect({ probe, status: res.status }).toEqual({ probe, status: 200 });
    }
  });

  it('answers every other route of the OpenAPI document 401 without a key, with the structured body', async () => {
    expect(routes.length).toBeGreaterThan(15);
    for (const route of [
      ...routes,
      { method: 'GET', path: '/no/such/route' },
      // Near the open documentation paths, but not them: a `*` there is one segment, not any rest.
      { method: 'GET', path: '/v1/models/iris/versions/1/openapi.json' },
      { method: 'GET', path: '/docsx' },
    ]) {
      const res = await send(port, route);
      expect({ route, status: res.status, structured: isStructuredError(route.path, 401, res) }).toEqual({
        route,
        status: 401,
        structured: true,
      });
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('leaves the documentation open (DOCS_PUBLIC defaults to true): it describes routes, never data', async () => {
    for (const docPath of DOC_PAGES) {
      const res = await rawRequest(port, { path: docPath });
      expect({ docPath, status: res.status }).toEqual({ docPath, status: 200 });
    }
  });

  it('answers 401 for a key not in force, a malformed header, and a key sent in the query string', async () => {
    const route = { method: 'GET', path: '/v1/models' };
    const attempts: Record<string, string>[] = [
      { authorization: 'Bearer not-a-real-key-0123456789' },
      { 'x-api-key': 'not-a-real-key-0123456789' },
      { authorization: INFERENCE_KEY },
      { authorization: 'Basic dXNlcjpwYXNz' },
    ];
    for (const headers of attempts) {
      const res = await send(port, route, headers);
      expect({ headers, status: res.status, error: (res.json as { error: string }).error }).toEqual({
        headers,
        status: 401,
        error: 'UNAUTHENTICATED',
      });
    }
    expect((await send(port, { method: 'GET', path: `/v1/models?api_key=${INFERENCE_KEY}` })).status).toBe(401);
  });

  it('answers every inference route with a valid key, as a Bearer token or in X-API-Key', async () => {
    for (const route of routes.filter((r) => requiredScope(r.method, r.path) === 'inference')) {
      const ways: Record<string, string>[] = [{ authorization: `Bearer ${INFERENCE_KEY}` }, { 'X-API-Key': FILE_KEY }];
      for (const headers of ways) {
        const res = await send(port, route, headers);
        expect({ route, status: res.status }).toEqual({ route, status: 200 });
      }
    }
  });

  it('answers 403 to a key without the inference scope, in each protocol’s error shape', async () => {
    const v1 = await send(
      port,
      { method: 'POST', path: '/v1/models/iris/predict', body: JSON.stringify({ features: OK }) },
      { authorization: `Bearer ${ADMIN_ONLY_KEY}` },
    );
    expect(v1.status).toBe(403);
    expect(v1.json).toMatchObject({ statusCode: 403, error: 'FORBIDDEN' });
    const v2 = await send(port, { method: 'GET', path: '/v2/models/iris' }, { 'x-api-key': ADMIN_ONLY_KEY });
    expect(v2.status).toBe(403);
    expect(v2.json).toEqual({ error: expect.stringMatching(/inference scope/) });
  });

  it('lets only admin keys reach the repository load and unload routes', async () => {
    const admin = routes.filter((r) => requiredScope(r.method, r.path) === 'admin').map((r) => r.path);
    expect(admin.sort()).toEqual(['/v2/repository/models/iris/load', '/v2/repository/models/iris/unload']);
    for (const path of admin) {
      const refused = await send(port, { method: 'POST', path }, { authorization: `Bearer ${INFERENCE_KEY}` });
      expect(refused.status).toBe(403);
      expect(refused.json).toEqual({ error: expect.stringMatching(/admin scope/) });
      // Past the key check, the route itself answers: this server runs with MODEL_CONTROL_MODE=none.
      const allowed = await send(port, { method: 'POST', path }, { authorization: `Bearer ${ADMIN_ONLY_KEY}` });
      expect(allowed.status).toBe(400);
      expect(allowed.json).toEqual({ error: expect.stringMatching(/MODEL_CONTROL_MODE=none/) });
    }
  });

  it('lets CORS preflights through without a key, allowing the key headers', async () => {
    const res = await rawRequest(port, {
      method: 'OPTIONS',
      path: '/v1/models/iris/predict',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,x-api-key,content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toEqual(
      expect.stringContaining('x-api-key'),
    );
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toEqual(
      expect.stringContaining('authorization'),
    );
  });

  it('takes a rotated key file into account without a restart, and keeps the keys in force when the new file is invalid', async () => {
    const withKey = (key: string) =>
      send(port, { method: 'GET', path: '/v1/models' }, { authorization: `Bearer ${key}` });
    expect((await withKey(ROTATED_KEY)).status).toBe(401);
    // As Kubernetes updates a mounted Secret: a new file swapped in by rename.
    await fs.writeFile(`${keyFile}.new`, `${ROTATED_KEY}\n`);
    await fs.rename(`${keyFile}.new`, keyFile);
    await until(async () => (await withKey(ROTATED_KEY)).status === 200);
    expect((await withKey(FILE_KEY)).status).toBe(401);
    expect((await withKey(INFERENCE_KEY)).status).toBe(200);

    await fs.writeFile(keyFile, 'too-short\n');
    await app.get(ApiKeyStore).reload();
    expect((await withKey(ROTATED_KEY)).status).toBe(200);
  });
});

describe('API keys with DOCS_PUBLIC=false', () => {
  let app: INestApplication;
  let port: number;
  beforeAll(async () => {
    app = await startApp({ API_KEYS: INFERENCE_KEY, DOCS_PUBLIC: 'false' });
    port = await listen(app);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('keeps the documentation behind a key, and serves it with one', async () => {
    for (const docPath of DOC_PAGES) {
      const res = await rawRequest(port, { path: docPath });
      expect({ docPath, status: res.status }).toEqual({ docPath, status: 401 });
      const withKey = await rawRequest(port, { path: docPath, headers: { 'x-api-key': INFERENCE_KEY } });
      expect({ docPath, status: withKey.status }).toEqual({ docPath, status: 200 });
    }
  });
});

describe('API keys in the OpenAPI document', () => {
  it.each([
    ['with keys configured', { API_KEYS: INFERENCE_KEY }, [{ bearer: [] }, { apiKey: [] }]],
    ['without keys', {}, [{ bearer: [] }, { apiKey: [] }, {}]],
  ])('declares both schemes and requires them on every route but the open ones, %s', async (_label, env, required) => {
    const app = await startApp(env);
    try {
      const doc = buildOpenApiDocument(app);
      expect(doc.components?.securitySchemes).toEqual({
        bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
        apiKey: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
      });
      for (const [route, item] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(
          item as Record<string, { security: unknown; responses: Record<string, unknown> }>,
        )) {
          const open = PROBES.includes(route);
          expect({ method, route, security: op.security }).toEqual({ method, route, security: open ? [] : required });
          expect({ method, route, has401: '401' in op.responses, has429: '429' in op.responses }).toEqual({
            method,
            route,
            has401: !open,
            has429: !open,
          });
        }
      }
    } finally {
      await app.close();
    }
  });
});

describe('API keys: configuration', () => {
  it('refuses to start on a malformed key, without repeating it', async () => {
    const secret = 'short-secret';
    await expect(startApp({ API_KEYS: `${INFERENCE_KEY},${secret}` })).rejects.toThrow(
      /API_KEYS entry 2: a key must be at least 16 characters/,
    );
    await expect(startApp({ API_KEYS: `${INFERENCE_KEY},${secret}` })).rejects.not.toThrow(secret);
    await expect(startApp({ API_KEYS: `${INFERENCE_KEY}:root` })).rejects.toThrow(/unknown scope "root"/);
  });

  it('refuses to start when API_KEYS_FILE cannot be read or holds a bad entry', async () => {
    await expect(new ApiKeyStore(loadConfig({ API_KEYS_FILE: '/no/such/keys' })).onModuleInit()).rejects.toThrow(
      /API_KEYS_FILE \/no\/such\/keys cannot be read \(ENOENT\)/,
    );
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'keys-')), 'api-keys');
    await fs.writeFile(file, `${FILE_KEY}\nweak\n`);
    await expect(new ApiKeyStore(loadConfig({ API_KEYS_FILE: file })).onModuleInit()).rejects.toThrow(
      /API_KEYS_FILE entry 2: a key must be/,
    );
  });

  it('warns at start when keys are on but none is configured (a Secret shipped empty), and not otherwise', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'keys-')), 'api-keys');
      await fs.writeFile(file, '# No keys yet\n');
      const empty = new ApiKeyStore(loadConfig({ API_KEYS_FILE: file }));
      await empty.onModuleInit();
      empty.onApplicationShutdown();
      expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
        expect.stringMatching(/API keys are on but none is configured: every route except AUTH_OPEN_PATHS answers 401/),
      ]);
      warn.mockClear();
      await fs.writeFile(file, `${FILE_KEY}\n`);
      const filled = new ApiKeyStore(loadConfig({ API_KEYS_FILE: file }));
      await filled.onModuleInit();
      filled.onApplicationShutdown();
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('rate limits', () => {
  let app: INestApplication;
  let port: number;

  beforeAll(async () => {
    app = await startApp({ RATE_LIMIT_RPM: '3', API_KEYS: `${INFERENCE_KEY},${FILE_KEY}` });
    port = await listen(app);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers 429 with Retry-After past the limit, per key, and always answers the probes', async () => {
    const get = (key: string, p = '/v1/models') =>
      rawRequest(port, { path: p, headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 3; i++) {
      const res = await get(INFERENCE_KEY);
      expect(res.status).toBe(200);
      expect(res.headers['x-ratelimit-limit']).toBe('3');
    }
    const limited = await get(INFERENCE_KEY, '/v1/models/iris');
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ statusCode: 429, error: 'RATE_LIMITED', details: [] });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    const v2 = await rawRequest(port, {
      method: 'POST',
      path: '/v2/models/iris/infer',
      headers: { authorization: `Bearer ${INFERENCE_KEY}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(v2.status).toBe(429);
    expect(v2.json).toEqual({ error: expect.stringMatching(/Rate limit of 3 requests per minute/) });

    // Another key has its own budget.
    expect((await get(FILE_KEY)).status).toBe(200);
    for (let round = 0; round < 3; round++) {
      for (const probe of PROBES)
        expect({ probe, status: (await rawRequest(port, { path: probe })).status }).toEqual({ probe, status: 200 });
    }
  });

  it('limits by client address when there are no keys', async () => {
    const open = await startApp({ RATE_LIMIT_RPM: '2' });
    try {
      const openPort = await listen(open);
      expect((await rawRequest(openPort, { path: '/v1/models' })).status).toBe(200);
      expect((await rawRequest(openPort, { path: '/' })).status).toBe(200);
      expect((await rawRequest(openPort, { path: '/v1/models' })).status).toBe(429);
      // The documents are no exception: each costs more to send than most API answers.
      for (const docs of ['/docs-json', '/docs-yaml', '/v1/models/iris/openapi.json'])
        expect({ docs, status: (await rawRequest(openPort, { path: docs })).status }).toEqual({ docs, status: 429 });
      expect((await rawRequest(openPort, { path: '/health/ready' })).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('without keys or limits configured', () => {
  let app: INestApplication;
  let port: number;

  beforeAll(async () => {
    app = await startApp({
      MAX_STRING_LENGTH: '64',
      MAX_ARRAY_LENGTH: '100',
      MAX_HEADER_SIZE: '4096',
      HTTP_REQUEST_TIMEOUT_MS: '1000',
    });
    port = await listen(app);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('registers neither the key store nor the rate limiter', async () => {
    // Through ModuleRef: the application's own get() would log the miss as an error.
    expect(() => app.get(ModuleRef).get(ApiKeyStore, { strict: false })).toThrow(/ApiKeyStore/);
    const res = await rawRequest(port, { path: '/v1/models' });
    expect(res.status).toBe(200);
    expect(res.headers['x-ratelimit-limit']).toBeUndefined();
  });

  it('sends helmet’s security headers (the API set on JSON, helmet’s defaults on the docs), and keep-alive as configured', async () => {
    for (const p of ['/v1/models', '/no/such/route']) {
      const res = await rawRequest(port, { path: p, headers: { connection: 'keep-alive' } });
      expect(res.headers).toMatchObject({
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'strict-transport-security': expect.stringContaining('max-age='),
        'content-security-policy': "default-src 'none';frame-ancestors 'none'",
        'referrer-policy': 'no-referrer',
        'cross-origin-resource-policy': 'same-origin',
        'keep-alive': 'timeout=65',
      });
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
    const docs = await rawRequest(port, { path: '/docs' });
    expect(docs.status).toBe(200);
    expect(docs.headers).toMatchObject({
      'content-security-policy': expect.stringContaining("default-src 'self'"),
      'x-frame-options': 'SAMEORIGIN',
      'origin-agent-cluster': '?1',
      'x-content-type-options': 'nosniff',
    });
    expect(docs.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
  });

  it('refuses strings and arrays over their limits, naming where', async () => {
    const longString = await rawRequest(port, {
      method: 'POST',
      path: '/v1/models/iris/predict',
      ...json({ inputs: { float_input: OK }, note: 'x'.repeat(65) }),
    });
    expect(longString.status).toBe(400);
    expect(longString.json).toMatchObject({
      error: 'INVALID_INPUT',
      details: [{ path: 'note', message: expect.stringMatching(/MAX_STRING_LENGTH/) }],
    });
    const bytes = await rawRequest(port, {
      method: 'POST',
      path: '/v2/models/iris/infer',
      ...json({ inputs: [{ name: 'float_input', shape: [1, 1], datatype: 'BYTES', data: ['y'.repeat(100)] }] }),
    });
    expect(bytes.status).toBe(400);
    expect(bytes.json).toEqual({ error: expect.stringMatching(/inputs\[0\]\.data\[0\]: a string of 100 characters/) });
    const longArray = await rawRequest(port, {
      method: 'POST',
      path: '/v1/models/iris/predict/batch',
      ...json({ instances: new Array(101).fill(OK) }),
    });
    expect(longArray.status).toBe(400);
    expect(longArray.json).toMatchObject({
      details: [{ path: 'instances', message: expect.stringMatching(/MAX_ARRAY_LENGTH/) }],
    });
  });

  it('answers headers over MAX_HEADER_SIZE with a structured 431', async () => {
    const res = await rawRequest(port, { path: '/v1/models', headers: { 'x-padding': 'p'.repeat(5000) } });
    expect(res.status).toBe(431);
    expect(res.json).toEqual({
      statusCode: 431,
      error: 'HEADERS_TOO_LARGE',
      message: expect.stringMatching(/MAX_HEADER_SIZE/),
      details: [],
      requestId: expect.any(String),
    });
    expect(res.headers['x-request-id']).toBe((res.json as { requestId: string }).requestId);
  });

  it('answers a request that never finishes arriving with a structured 408', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.write(
          'POST /v1/models/iris/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"feat',
        ),
      );
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
      statusCode: 408,
      error: 'REQUEST_TIMEOUT',
    });
  });

  it('answers bytes that are not HTTP with a structured 400', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('\x00\x01 not http at all\r\n\r\n'));
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
      statusCode: 400,
      error: 'INVALID_INPUT',
    });
  });

  it("counts what Node's parser refused (431, 408, 400 above) in http_requests_total, under one route label", async () => {
    const metrics = (await rawRequest(port, { path: '/metrics' })).text;
    for (const status of ['400', '408', '431']) {
      expect(metrics).toMatch(
        new RegExp(`^http_requests_total\\{method="UNKNOWN",route="unparsed",status="${status}"\\} [1-9]`, 'm'),
      );
    }
  });

  it('answers unknown routes with the structured 404 on every method, never an HTML page', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const p of ['/nowhere', '/v1/nowhere', '/v2/nowhere', '/docs/nowhere/deeper']) {
        const res = await rawRequest(port, {
          method,
          path: p,
          ...(method === 'GET' || method === 'DELETE' ? {} : json({})),
        });
        expect({
          method,
          p,
          status: res.status,
          html: /<html/i.test(res.text),
          structured: isStructuredError(p, 404, res),
        }).toEqual({ method, p, status: 404, html: false, structured: true });
      }
    }
  });
});
