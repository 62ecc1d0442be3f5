import { Logger, Module } from '@nestjs/common';
import { ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import type { RedisClientType } from '@keyv/redis';
import { SpanKind } from '@opentelemetry/api';
import { CacheStoreModule } from '../cache/cache.module';
import { CACHE_STORE, CacheStore } from '../cache/cache-store';
import { withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app.config';
import { redisSpanAttributes, traced, tracingOn } from '../observability/tracing';
import { RATE_LIMIT_STORAGE } from './security.module';

/**
 * One window's count and its block, in one atomic step, so that replicas counting the same caller
 * at the same moment never lose a hit: INCR starts the window (PEXPIRE on its first hit); past the
 * limit a block key is set for blockDuration. Returns hits, the window's and the block's ms left.
 */
const INCREMENT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
local blocked = redis.call('PTTL', KEYS[2])
if blocked <= 0 and tonumber(ARGV[3]) > 0 and hits > tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  blocked = tonumber(ARGV[3])
end
return {hits, ttl, blocked}
`;

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/**
 * Rate-limit counts in the Redis at REDIS_URL, shared by every replica, so a caller's budget is
 * the same whichever pod answers. When Redis does not answer within CACHE_TIMEOUT_MS the count is
 * kept in this process instead, as without Redis: limits loosen to per replica for the outage,
 * and no request fails because of it.
 */
export class RedisRateLimitStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RateLimit');
  private readonly local = new ThrottlerStorageService();
  private shared = true;

  constructor(
    private readonly redis: RedisClientType,
    private readonly timeoutMs: number,
    /** CACHE_KEY_PREFIX: one Redis may serve several services or environments. */
    private readonly prefix: string,
    /** REDIS_URL, for the address on the calls' trace spans. */
    private readonly url?: string,
  ) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): ReturnType<ThrottlerStorage['increment']> {
    try {
      const counter = this.prefix + key;
      const eval_ = () =>
        this.redis.eval(INCREMENT, {
          keys: [counter, `${counter}:blocked`],
          arguments: [String(ttl), String(limit), String(blockDuration)],
        });
      // The caller's span is the active one: the HTTP middleware and the gRPC call run inside theirs.
      const call = tracingOn()
        ? traced('EVAL', undefined, redisSpanAttributes(this.url, 'EVAL', 2), eval_, SpanKind.CLIENT)
        : eval_();
      const [hits, windowMs, blockMs] = (await withTimeout(call, this.timeoutMs, 'CACHE_TIMEOUT_MS')) as number[];
      if (!this.shared) this.logger.log('Redis answers again; rate limits are shared across replicas again');
      this.shared = true;
      const blocked = blockDuration > 0 ? blockMs > 0 : hits > limit;
      return {
        totalHits: hits,
        timeToExpire: seconds(windowMs),
        isBlocked: blocked,
        timeToBlockExpire: blocked ? seconds(blockDuration > 0 ? blockMs : windowMs) : 0,
      };
    } catch (err) {
      if (this.shared)
        this.logger.warn(
          `Redis did not count a request (${(err as Error).message}); counting in this replica until it answers`,
        );
      this.shared = false;
      return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    }
  }
}

/** RATE_LIMIT_STORAGE backed by the cache's Redis connection (REDIS_URL). */
@Module({
  imports: [CacheStoreModule],
  providers: [
    {
      provide: RATE_LIMIT_STORAGE,
      inject: [CACHE_STORE, AppConfig],
      useFactory: (store: CacheStore, config: AppConfig): ThrottlerStorage =>
        new RedisRateLimitStorage(store.redis!, config.CACHE_TIMEOUT_MS, config.CACHE_KEY_PREFIX, config.REDIS_URL),
    },
  ],
  exports: [RATE_LIMIT_STORAGE],
})
export class RedisRateLimitStorageModule {}
