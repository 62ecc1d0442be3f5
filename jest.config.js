const fs = require('node:fs');
const path = require('node:path');

/**
 * Unit specs beside the code, and the end-to-end suites in test/. The suites that exercise the HTTP
 * edge, where Express and Fastify differ (src/http/, and what each adapter does with a request and
 * its response), run once on each adapter; every other suite runs once, on Fastify, the default
 * HTTP_ADAPTER, since past the adapter the two run the same code.
 *
 * Projects, for --selectProjects: `unit`, `edge express`, `edge fastify`, `e2e`.
 */
const base = {
  rootDir: '.',
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testEnvironment: '<rootDir>/test/jest-environment.js',
};

/** Run on both adapters: each checks something src/ or the adapters do differently. */
const EDGE = [
  // Body parsing, content types, body limits and unknown routes: each adapter's parser and router,
  // which src/http/ makes refuse the same requests with the same structured errors.
  'malformed-requests',
  // The same on the Open Inference Protocol's routes, answered in its error shape.
  'v2-errors',
  // Triton's client framing (no Content-Type, binary tensors, gzip/deflate): /v2 bodies are read by
  // src/http/v2-body.ts ahead of each adapter's parser, and binary answers sent through each adapter.
  'v2-binary',
  // The configuration and statistics extensions: Express's router matches in order (GET
  // /v2/models/stats beside /v2/models/{model}), and the trailing slash of GET /v2/ is each router's.
  'v2-extensions',
  // Generated bodies, headers, paths and raw bytes against each adapter's parser, router and server.
  'fuzz',
  // Hostile and undecodable model names in paths: Fastify's router fails them in frameworkErrors,
  // Express's reaches the exception filter.
  'model-files',
  // API key middleware, CORS preflights, rate limits (counted per client address as each adapter
  // reads it, with their headers), security headers, keep-alive, and the 431/408/400 of the server
  // each adapter is made with.
  'security',
  // API keys through the real process: keys kept out of every log line, including the route and
  // path each adapter leaves for the request log.
  'security-logs',
  // CORS defaults and CORS_ORIGINS through each adapter's CORS plugin; request ids and timing on a
  // request the parser refuses; Retry-After.
  'api',
  // X-Cache headers, added as the headers are written, which each adapter reaches its own way; the
  // CORS headers that let browsers use them; JSON spellings through each parser.
  'cache',
  // Route labels: the matched pattern comes from Fastify's preHandler hook or Express's req.route.
  'metrics',
  // 503s set on Express's response or Fastify's reply (res.status), during start-up and shutdown.
  'probes',
  // ReDoc's script and the OpenAPI documents sent as text (Express would send a Buffer as JSON), and
  // Swagger UI's setup on each adapter.
  'model-openapi',
  // Models loaded, replaced and unloaded under load in a real process: tritonclient posts load and
  // unload with no body and no Content-Type, which src/http/v2-body.ts reads ahead of each adapter's
  // parser, and each adapter answers the unloaded model's 404 and the refused load's 400.
  'lifecycle',
  // Version labels and weighted traffic: the X-Routing-Key read from each adapter's request, and
  // X-Model-Version added as the headers are written, which each adapter reaches its own way.
  'canary',
  // The process: the matched route in each request's log line (see metrics), and SIGTERM under load,
  // which each adapter's server drains its own way.
  'process',
  // Traces from the process: the request's span stays active through each adapter's body parser and
  // router (bound listeners), and its name and http.route come from each adapter's matched pattern.
  'tracing',
];

/** Run once, on Fastify: none of them checks anything that differs between the adapters. */
const ONCE = [
  // Static checks of the manifests, the Dockerfile and the dashboard; they ask the running service
  // only whether their probe paths answer and which metric names it exposes.
  'deploy',
  'grafana',
  // The protocols and the models: answers, shapes, datatypes, versions, models without config.json
  // (v2-conformance in JSON and in binary tensors alike). Their edge cases on the wire, the binary
  // framing's among them, are in v2-errors, v2-binary and malformed-requests, on both adapters.
  'reference-predictions',
  'v2-conformance',
  'no-config-model',
  // The OpenAPI document's contents, and the clients and browser pages made from it; the documents
  // linted by Redocly and a second SDK (@hey-api/openapi-ts) generated, compiled and called.
  'openapi',
  'openapi-tools',
  'sdk',
  'examples',
  'swagger-ui',
  // Batching, workers, backpressure and deadlines, behind the HTTP layer; and a short soak.
  'throughput',
  'soak',
  // The scheduler over real workers, placement and its outputs, a worker that dies: past the adapter.
  'execution-core',
  // A worker thread that dies holding a run, in a real process: the runtime and the batchers, past the adapter.
  'worker-death',
  // Redis as the cache's and the rate limiter's store; their HTTP side is in cache and security.
  'cache-redis',
  'rate-limit-redis',
  // The Open Inference Protocol over gRPC: its own server (@grpc/grpc-js) beside HTTP, which neither
  // HTTP adapter touches; what it compares with the REST routes is the same on both.
  'grpc',
  // Valid requests answered whatever else the model is given: a request that fails inside onnxruntime
  // beside coalesced ones, and tensors of zero rows, on each protocol with the cache on and off.
  'isolation',
  // A real process loading and unloading digits, its RSS read from /proc: the memory behind the
  // workers, which neither HTTP adapter touches.
  'model-memory',
  // The prediction cache across a reload (explicit and poll): entries keyed by the file's digest,
  // behind the HTTP layer; X-Cache's own edge is in cache.
  'cache-reload',
];

// Every suite in test/ is in exactly one list, so a new suite cannot go unrun.
const suites = fs
  .readdirSync(path.join(__dirname, 'test'))
  .filter((file) => file.endsWith('.e2e-spec.ts'))
  .map((file) => file.replace(/\.e2e-spec\.ts$/, ''));
const listed = [...EDGE, ...ONCE];
const unlisted = suites.filter((suite) => !listed.includes(suite));
const stray = listed.filter((suite, i) => !suites.includes(suite) || listed.indexOf(suite) !== i);
if (unlisted.length > 0 || stray.length > 0) {
  throw new Error(
    `jest.config.js: put each test/*.e2e-spec.ts in EDGE or ONCE, once (unlisted: ${unlisted.join(', ') || 'none'}; ` +
      `missing or listed twice: ${stray.join(', ') || 'none'})`,
  );
}

const e2e = (displayName, adapter, names) => ({
  ...base,
  displayName,
  testMatch: names.map((name) => `<rootDir>/test/${name}.e2e-spec.ts`),
  globals: { TEST_HTTP_ADAPTER: adapter },
});

/** @type {import('jest').Config} */
module.exports = {
  // Real models, worker threads and child processes: generous, since these machines are shared.
  testTimeout: 60000,
  // Model sessions and servers are heavy; two workers match the two cores these machines have.
  maxWorkers: 2,
  projects: [
    { ...base, displayName: 'unit', testRegex: ['src/.*\\.spec\\.ts$'] },
    e2e('edge express', 'express', EDGE),
    e2e('edge fastify', 'fastify', EDGE),
    e2e('e2e', 'fastify', ONCE),
  ],
};
