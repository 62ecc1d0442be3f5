/**
 * The routes Kubernetes and Prometheus call: never rate limited, and answered without an API key
 * unless AUTH_OPEN_PATHS says otherwise (it defaults to these).
 */
export const PROBE_PATHS: readonly string[] = [
  '/health',
  '/health/live',
  '/health/ready',
  '/health/startup',
  '/v2/health/live',
  '/v2/health/ready',
  '/metrics',
];

const PROBES = new Set(PROBE_PATHS);

/** Whether a route's path (a literal, as routes are declared) is one of the probes. */
export const isProbePath = (path: string): boolean => PROBES.has(path);

/**
 * The documentation: Swagger UI (its page and assets), the documents, ReDoc, and each model's
 * document. Answered without an API key while DOCS_PUBLIC is on, since they describe the routes and
 * never serve data, and a browser cannot send a key to reach Swagger UI's Authorize button. A `*`
 * inside a path stands for one segment (a model name); at the end, for any rest.
 */
export const DOCS_PATHS: readonly string[] = [
  '/docs',
  '/docs/*',
  '/docs-json',
  '/docs-yaml',
  '/redoc',
  '/redoc/*',
  '/v1/models/*/openapi.json',
];
