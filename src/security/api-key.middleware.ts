import type { IncomingMessage, ServerResponse } from 'node:http';
import { DomainError } from '../common/domain.errors';
import { contextOf } from '../common/request-context';
import { Scope } from '../config/api-keys';
import type { KeyMatch } from './api-key.store';

/** What a request presents as its key: `Authorization: Bearer <key>`, else `X-API-Key: <key>`. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    return match ? match[1] : '';
  }
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
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

/** The scope a route needs. Every route the service has reads or infers; none changes the server. */
const REQUIRED_SCOPE: Scope = 'inference';

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
    if (isOpen(query < 0 ? url : url.slice(0, query))) return next();
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) return next();
    const key = presentedKey(req);
    if (key === undefined) {
      return next(
        new DomainError(
          'UNAUTHENTICATED',
          'This route needs an API key: send Authorization: Bearer <key> or X-API-Key: <key>',
        ),
      );
    }
    const match = key === '' ? undefined : lookup(key);
    if (match === undefined) return next(new DomainError('UNAUTHENTICATED', 'The API key is not valid'));
    if (!match.scopes.has(REQUIRED_SCOPE)) {
      return next(
        new DomainError('FORBIDDEN', `This API key is not allowed on this route: it needs the ${REQUIRED_SCOPE} scope`),
      );
    }
    // The rate limiter counts per key, by its digest.
    const context = contextOf(req);
    if (context) context.client = `key:${match.id}`;
    next();
  };
}
