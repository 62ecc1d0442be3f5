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
