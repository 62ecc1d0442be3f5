import { applyDecorators, CallHandler, ExecutionContext, Injectable, NestInterceptor, UseInterceptors } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ApiHeader } from '@nestjs/swagger';
import type { IncomingHttpHeaders } from 'node:http';
import { Observable, tap } from 'rxjs';
import { AnyRequest, contextOf } from '../common/request-context';
import { CachePolicy } from './prediction-cache.service';

const DEFAULT: CachePolicy = { read: true, write: true };

/**
 * What a request allows, by HTTP's own rules: `Cache-Control: no-cache` (or `Pragma: no-cache`)
 * (or `max-age=0`) asks for a fresh answer, which then refreshes the entry; `no-store` keeps the
 * request out of the cache altogether.
 */
export function cachePolicy(headers: IncomingHttpHeaders): CachePolicy {
  const control = headers['cache-control']?.toLowerCase();
  if (control === undefined) return headers.pragma?.toLowerCase().includes('no-cache') ? { read: false, write: true } : DEFAULT;
  const directives = control.split(',').map((d) => d.replace(/\s+/g, ''));
  const write = !directives.includes('no-store');
  const fresh = directives.includes('no-cache') || directives.includes('max-age=0');
  return { read: write && !fresh, write };
}

/**
 * Turns the prediction cache on for the routes it decorates: it reads the request's cache
 * directives into the request context, where PredictionService finds them, and answers
 * `X-Cache: HIT` when every instance came from the cache, `MISS` when any was computed.
 * The cache itself works per instance inside PredictionService, around the model run, so that a
 * batch's cached rows are served and only the others computed.
 */
@Injectable()
export class PredictionCacheInterceptor implements NestInterceptor {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  intercept(execution: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = execution.switchToHttp();
    const request = http.getRequest<AnyRequest & { headers: IncomingHttpHeaders }>();
    const context = contextOf(request);
    if (!context) return next.handle();
    context.cache = cachePolicy(request.headers);
    return next.handle().pipe(
      tap(() => {
        if (context.cacheHits === undefined) return;
        const adapter = this.adapterHost.httpAdapter;
        const response = http.getResponse<unknown>();
        adapter.setHeader(response, 'X-Cache', context.cacheMisses === 0 ? 'HIT' : 'MISS');
        adapter.setHeader(response, 'X-Cache-Hits', `${context.cacheHits}/${context.cacheHits + (context.cacheMisses ?? 0)}`);
      }),
    );
  }
}

/** Turns the prediction cache on for a controller or route, and documents the request header it reads. */
export const CachedPrediction = () =>
  applyDecorators(
    UseInterceptors(PredictionCacheInterceptor),
    ApiHeader({
      name: 'Cache-Control',
      required: false,
      description: '`no-cache` (or `max-age=0`): compute afresh and refresh the cached entries; `no-store`: neither read nor write the cache',
      schema: { type: 'string', example: 'no-cache' },
    }),
  );

/** The response headers of a cached route's answer, for its OpenAPI 200 response. */
export const CACHE_RESPONSE_HEADERS = {
  'X-Cache': {
    description: 'HIT when every instance came from the prediction cache, MISS when any was computed (absent when the model is not cached)',
    schema: { type: 'string', enum: ['HIT', 'MISS'] },
  },
  'X-Cache-Hits': { description: 'instances answered from the cache / instances in the request', schema: { type: 'string', example: '3/4' } },
};
