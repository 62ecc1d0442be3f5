import { applyDecorators } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { contextOf } from '../common/request-context';
import { CachePolicy } from './prediction-cache.service';

const DEFAULT: CachePolicy = { read: true, write: true };

/**
 * What a request allows, by HTTP's own rules: `Cache-Control: no-cache` (or `max-age=0`, or
 * `Pragma: no-cache`) asks for a fresh answer, which then refreshes the entry; `no-store` keeps the
 * request out of the cache altogether.
 */
export function cachePolicy(headers: IncomingHttpHeaders): CachePolicy {
  const control = headers['cache-control']?.toLowerCase();
  if (control === undefined)
    return headers.pragma?.toLowerCase().includes('no-cache') ? { read: false, write: true } : DEFAULT;
  const directives = control.split(',').map((d) => d.replace(/\s+/g, ''));
  const write = !directives.includes('no-store');
  const fresh = directives.includes('no-cache') || directives.includes('max-age=0');
  return { read: write && !fresh, write };
}

/**
 * The prediction cache's HTTP side: reads the request's cache directives into its context, where
 * PredictionService finds them (only the prediction routes call it, so only they use the cache), and
 * answers `X-Cache: HIT` when every instance came from the cache, `MISS` when any was computed, with
 * `X-Cache-Hits: <from the cache>/<instances>`. The cache itself works per instance inside
 * PredictionService, around the model run, so a batch's cached rows are served and only the others run.
 *
 * Middleware on Node's own request and response (after the request context), not a Nest
 * interceptor: on the prediction routes an interceptor measured 8.4-8.6k against 5.2-6.0k requests/s
 * (iris, single, c=32), its rxjs and async-resource machinery costing every prediction about a third.
 */
export function predictionCacheMiddleware() {
  return (req: IncomingMessage, res: ServerResponse, next: () => void): void => {
    const context = contextOf(req);
    if (req.method !== 'POST' || !context) return next();
    context.cache = cachePolicy(req.headers);
    // The outcome is known once the answer is ready, just before its headers are written.
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
    res.writeHead = (...args: unknown[]) => {
      if (context.cacheHits !== undefined) {
        res.setHeader('X-Cache', context.cacheMisses === 0 ? 'HIT' : 'MISS');
        res.setHeader('X-Cache-Hits', `${context.cacheHits}/${context.cacheHits + (context.cacheMisses ?? 0)}`);
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
