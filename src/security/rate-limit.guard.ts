import { ExecutionContext, Injectable } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants';
import { ThrottlerGuard, ThrottlerLimitDetail } from '@nestjs/throttler';
import { RateLimitedError } from '../common/domain.errors';
import { isProbePath } from '../common/probe-paths';
import { AnyRequest, contextOf } from '../common/request-context';

/**
 * @nestjs/throttler's guard, counting per caller rather than per route: per API key when the
 * request presented one (the key middleware put its digest in the context), else per client
 * address. Over the limit it raises the service's own RATE_LIMITED error, which the exception
 * filter answers with 429 and Retry-After. Registered only when RATE_LIMIT_RPM is set; the probes
 * and /metrics (PROBE_PATHS) are exempt.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /** By the route's declared path rather than the request's, so no spelling of a URL can make a probe count. */
  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    const path = [context.getClass(), context.getHandler()]
      .map((target) => String(Reflect.getMetadata(PATH_METADATA, target) ?? '').replace(/^\/+|\/+$/g, ''))
      .filter(Boolean)
      .join('/');
    return Promise.resolve(isProbePath(`/${path}`));
  }

  protected override async getTracker(req: Record<string, unknown>): Promise<string> {
    const client = contextOf(req as unknown as AnyRequest)?.client;
    return client ?? `ip:${await super.getTracker(req)}`;
  }

  /** One budget per caller across every route, the same key in any storage (Redis included). */
  protected override generateKey(_context: ExecutionContext, tracker: string, throttlerName: string): string {
    return `rate-limit:${throttlerName}:${tracker}`;
  }

  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    return Promise.reject(new RateLimitedError(Math.max(1, Math.ceil(detail.timeToBlockExpire)), detail.limit));
  }
}
