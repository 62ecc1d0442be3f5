import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../common/domain.errors';
import { contextOf } from '../common/request-context';
import { Scope } from '../config/api-keys';
import type { KeyMatch } from './api-key.store';

/** What a request presents as its key: `Authorization: Bearer <key>`, else `X-API-Key: <key>`. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const header = req.headers['x-api-key'];
  return keyOf(req.headers.authorization, typeof header === 'string' ? header : undefined);
}

/**
 * The key in an Authorization value (`Bearer <key>`), else in an X-API-Key value: the one reading
 * for HTTP headers and gRPC metadata alike. '' for an Authorization that is not a Bearer token.
 */
export function keyOf(authorization: string | undefined, apiKey: string | undefined): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    return match ? match[1] : '';
  }
  return apiKey?.trim();
}

/**
 * Exact paths, prefixes written with a trailing `*`, and paths with a `*` inside standing for one
 * segment (only the service's own DOCS_PATHS have those: AUTH_OPEN_PATHS refuses them).
 */
export function openPathMatcher(paths: readonly string[]): (path: string) => boolean {
  const segmented = paths.filter((p) => p.slice(0, -1).includes('*'));
  const plain = paths.filter((p) => !segmented.includes(p));
  const exact = new Set(plain.filter((p) => !p.endsWith('*')));
  const prefixes = plain.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  const patterns = segmented.map((p) => {
    const body = p.endsWith('*') ? p.slice(0, -1) : p;
    const source = body
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]+');
    return new RegExp(`^${source}${p.endsWith('*') ? '' : '$'}`);
  });
  return (path) =>
    exact.has(path) || prefixes.some((p) => path.startsWith(p)) || patterns.some((pattern) => pattern.test(path));
}

/** Routes that change what the server serves: Triton's repository load and unload. */
const ADMIN_ROUTE = /^\/v2\/repository\/models\/[^/]+\/(load|unload)\/?$/;

/**
 * The scope a request needs, read from its method and path before routing (so an unknown route
 * still needs a key). Everything reads or infers, but load and unload, which change the server.
 */
export function requiredScope(method: string | undefined, path: string): Scope {
  return method === 'POST' && ADMIN_ROUTE.test(path) ? 'admin' : 'inference';
}

/**
 * The key in force that a request presents, allowed on the service's routes; else the error to
 * answer (a missing or unknown key, or one without the scope). Shared by HTTP and gRPC.
 */
export function authorize(
  lookup: (key: string) => KeyMatch | undefined,
  key: string | undefined,
  scope: Scope,
): KeyMatch {
  if (key === undefined) {
    throw new DomainError(
      'UNAUTHENTICATED',
      'This route needs an API key: send Authorization: Bearer <key> or X-API-Key: <key>',
    );
  }
  const match = key === '' ? undefined : lookup(key);
  if (match === undefined) throw new DomainError('UNAUTHENTICATED', 'The API key is not valid');
  if (!match.scopes.has(scope)) {
    throw new DomainError('FORBIDDEN', `This API key is not allowed on this route: it needs the ${scope} scope`);
  }
  return match;
}

/**
 * Lets through only requests with a key in force, except on the open paths (the probes and
 * /metrics by default) and CORS preflights (which browsers send without credentials). Middleware,
 * not a guard: it runs before routing, so unknown routes answer 401 too and reveal nothing, and it
 * serves Express and Fastify alike. Registered only when keys are configured.
 */
export function apiKeyMiddleware(lookup: (key: string) => KeyMatch | undefined, openPaths: readonly string[]) {
  const isOpen = openPathMatcher(openPaths);
  return (req: IncomingMessage, _res: ServerResponse, next: (error?: unknown) => void): void => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (isOpen(path)) return next();
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) return next();
    let match: KeyMatch;
    try {
      match = authorize(lookup, presentedKey(req), requiredScope(req.method, path));
    } catch (err) {
      return next(err);
    }
    // The rate limiter counts per key, by its digest.
    const context = contextOf(req);
    if (context) context.client = `key:${match.id}`;
    next();
  };
}
