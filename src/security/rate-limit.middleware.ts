import { Inject, Injectable } from '@nestjs/common';
import { getOptionsToken, getStorageToken, ThrottlerModuleOptions, ThrottlerStorage } from '@nestjs/throttler';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RateLimitedError } from '../common/domain.errors';
import { isProbePath } from '../common/probe-paths';
import { contextOf } from '../common/request-context';

/**
 * The rate limit, decided from the request line and headers alone. A Nest guard would run only once the
 * body had been read and parsed, so a client over its limit could still make the service parse a
 * megabyte per request; as middleware it runs in Fastify's onRequest (Express: before the body parser),
 * so a refused request costs a counter increment. Counts per API key when the request presented one
 * (the key middleware put its digest in the context), else per client address, in @nestjs/throttler's
 * storage (in memory, or the shared Redis one).
 */
@Injectable()
export class RateLimiter {
  private readonly ttlMs: number;
  readonly limit: number;

  constructor(
    @Inject(getOptionsToken()) options: ThrottlerModuleOptions,
    @Inject(getStorageToken()) private readonly storage: ThrottlerStorage,
  ) {
    const throttler = (Array.isArray(options) ? options : options.throttlers)[0];
    this.ttlMs = Number(throttler.ttl);
    this.limit = Number(throttler.limit);
  }

  /** Counts one request of this caller; resolves with what the headers say, or rejects with RATE_LIMITED. */
  async take(tracker: string): Promise<{ remaining: number; resetSeconds: number }> {
    const hit = await this.storage.increment(
      `rate-limit:default:${tracker}`,
      this.ttlMs,
      this.limit,
      this.ttlMs,
      'default',
    );
    if (hit.isBlocked) throw new RateLimitedError(Math.max(1, Math.ceil(hit.timeToBlockExpire)), this.limit);
    return { remaining: Math.max(0, this.limit - hit.totalHits), resetSeconds: hit.timeToExpire };
  }
}

/** The path a probe is called by, whatever trailing or doubled slashes it is spelled with. */
function plainPath(url: string): string {
  const query = url.indexOf('?');
  return (query < 0 ? url : url.slice(0, query)).replace(/\/{2,}/g, '/').replace(/(.)\/+$/, '$1');
}

export function rateLimitMiddleware(limiter: RateLimiter) {
  return (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void): void => {
    // The probes and /metrics are never limited: a kubelet's probe must not be refused for a client's traffic.
    if (isProbePath(plainPath(req.url ?? '/'))) return next();
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) return next();
    const tracker = contextOf(req)?.client ?? `ip:${req.socket.remoteAddress ?? 'unknown'}`;
    res.setHeader('X-RateLimit-Limit', String(limiter.limit));
    limiter.take(tracker).then(
      ({ remaining, resetSeconds }) => {
        res.setHeader('X-RateLimit-Remaining', String(remaining));
        res.setHeader('X-RateLimit-Reset', String(resetSeconds));
        next();
      },
      (err: unknown) => {
        res.setHeader('X-RateLimit-Remaining', '0');
        next(err);
      },
    );
  };
}
