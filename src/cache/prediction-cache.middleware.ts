import { applyDecorators, Type } from '@nestjs/common';
import { ApiHeader, ApiOkResponse } from '@nestjs/swagger';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { CacheUse, contextOf } from '../common/request-context';

/**
 * What a request allows, by HTTP's own rules: `Cache-Control: no-cache` (or `max-age=0`, or
 * `Pragma: no-cache`) asks for a fresh answer, which then refreshes the entry; `no-store` keeps the
 * request out of the cache altogether.
 */
export function cachePolicy(headers: IncomingHttpHeaders): CacheUse {
  const control = headers['cache-control']?.toLowerCase();
  if (control === undefined) return { read: !headers.pragma?.toLowerCase().includes('no-cache'), write: true };
  const directives = control.split(',').map((d) => d.replace(/\s+/g, ''));
  const write = !directives.includes('no-store');
  const fresh = directives.includes('no-cache') || directives.includes('max-age=0');
  return { read: write && !fresh, write };
}

/**
 * HIT when every instance came from the cache, MISS when any was computed; undefined when the cache was not consulted.
 */
export function cacheOutcome(use: CacheUse | undefined): 'HIT' | 'MISS' | undefined {
  if (use?.hits === undefined) return undefined;
  return use.misses === 0 ? 'HIT' : 'MISS';
}

/**
 * The prediction cache's HTTP side: reads the request's cache directives into its context, where
 * the prediction cache finds them (only the prediction routes run a model, so only they use it),
 * and answers `X-Cache` (see cacheOutcome) with `X-Cache-Hits: <from the cache>/<instances>`.
 *
 * Middleware on Node's own request and response (after the request context), not a Nest
 * interceptor, whose per-request machinery costs a small prediction a large share of its time
 * (docs/PERFORMANCE.md).
 */
export function predictionCacheMiddleware() {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const context = contextOf(req);
    if (req.method !== 'POST' || !context) return next();
    const use = (context.cache = cachePolicy(req.headers));
    // The outcome is known once the answer is ready, just before its headers are written.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = (...args: unknown[]) => {
      const status = typeof args[0] === 'number' ? args[0] : res.statusCode;
      // An error answers no prediction, even when its rows came from the cache (an unknown output name, say).
      const outcome = status < 400 ? cacheOutcome(use) : undefined;
      if (outcome) {
        res.setHeader('X-Cache', outcome);
        res.setHeader('X-Cache-Hits', `${use.hits}/${use.hits! + (use.misses ?? 0)}`);
      }
      return writeHead(...args);
    };
    next();
  };
}

/** Documents, on a cached route, the request header that steers the cache. */
export const ApiCacheControl = () =>
  applyDecorators(
    ApiHeader({
      name: 'Cache-Control',
      required: false,
      description:
        '`no-cache` (or `max-age=0`): compute afresh and refresh the cached entries; `no-store`: neither read nor write the cache',
      schema: { type: 'string', example: 'no-cache' },
    }),
  );

/** The response headers of a cached route's answer, for its OpenAPI 200 response. */
export const CACHE_RESPONSE_HEADERS = {
  'X-Cache': {
    description:
      'HIT when every instance came from the prediction cache, MISS when any was computed (absent when the model is not cached)',
    schema: { type: 'string', enum: ['HIT', 'MISS'] },
  },
  'X-Cache-Hits': {
    description: 'instances answered from the cache / instances in the request',
    schema: { type: 'string', example: '3/4' },
  },
};

/** On every answer of a route that ran a model (written by observability/latency.middleware.ts). */
const MODEL_VERSION_HEADER = {
  'X-Model-Version': {
    description: 'The model version that answered: under config.json traffic or a label, the one it resolved to',
    schema: { type: 'string', example: '1' },
  },
};

/**
 * A cached route's documentation: the Cache-Control it reads, and its 200 answer with the cache's
 * headers and the version's. Every prediction route is a cached one, so this is where they meet.
 */
export const ApiCachedOkResponse = (type: Type<unknown>) =>
  applyDecorators(
    ApiCacheControl(),
    ApiOkResponse({ type, headers: { ...CACHE_RESPONSE_HEADERS, ...MODEL_VERSION_HEADER } }),
  );
