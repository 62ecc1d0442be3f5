import helmet, { HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * For JSON answers: the headers that matter to a browser handed one (never sniff it into HTML or
 * script, never frame it, no referrer, HTTPS only), with a CSP that allows nothing. helmet's
 * headers meant for HTML documents (Origin-Agent-Cluster, the opener policy, the legacy IE, Flash
 * and XSS-filter switches) would add some 400 bytes to every answer for nothing.
 */
export const API_HEADERS: HelmetOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

/**
 * For the Swagger UI pages: helmet's defaults but upgrade-insecure-requests, which would break them over plain HTTP.
 */
export const DOCS_HEADERS: HelmetOptions = { contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } };

/** helmet's headers for the options, computed by helmet itself, once. */
function headersOf(options: HelmetOptions): [string, string][] {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: unknown) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => (failure = err));
  if (failure) throw failure instanceof Error ? failure : new Error('helmet refused the security header options');
  return headers;
}

/**
 * helmet's security headers: the API set on every answer, helmet's defaults on the documentation
 * (`/docs` and its assets). The values are static, so they are computed once at start-up rather
 * than by helmet's dozen middleware functions on every request.
 */
export function securityHeadersMiddleware(docsPrefix = '/docs') {
  const api = headersOf(API_HEADERS);
  const docs = headersOf(DOCS_HEADERS);
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    for (const [name, value] of req.url?.startsWith(docsPrefix) ? docs : api) res.setHeader(name, value);
    next();
  };
}
