import { DynamicModule, Module, ModuleMetadata, Provider } from '@nestjs/common';
import { ThrottlerModule, ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { AppConfig } from '../config/app.config';
import { ApiKeyStore } from './api-key.store';
import { RateLimiter } from './rate-limit.middleware';

/** Where the rate limiter keeps its counts. A module that provides this token can replace the default. */
export const RATE_LIMIT_STORAGE = Symbol('RATE_LIMIT_STORAGE');

/** The default: counts in this process's memory, so each replica limits on its own. */
@Module({
  providers: [{ provide: RATE_LIMIT_STORAGE, useFactory: (): ThrottlerStorage => new ThrottlerStorageService() }],
  exports: [RATE_LIMIT_STORAGE],
})
export class InMemoryRateLimitStorageModule {}

const ONE_MINUTE_MS = 60000;

/**
 * API keys and rate limits, each present only when configured: without API_KEYS/API_KEYS_FILE
 * there is no key store, and without RATE_LIMIT_RPM no throttler and no rate-limit middleware, so a service that
 * uses neither does no work for them on any request.
 *
 * `storageModule` is where counts shared across replicas plug in: a module exporting
 * RATE_LIMIT_STORAGE as a ThrottlerStorage (e.g. one backed by the Redis at REDIS_URL).
 */
@Module({})
export class SecurityModule {
  static forRoot(
    config: AppConfig,
    storageModule: NonNullable<ModuleMetadata['imports']>[number] = InMemoryRateLimitStorageModule,
  ): DynamicModule {
    const providers: Provider[] = [];
    const imports: NonNullable<ModuleMetadata['imports']> = [];
    if (config.apiKeysEnabled()) providers.push(ApiKeyStore);
    const rpm = config.RATE_LIMIT_RPM;
    if (rpm !== undefined) {
      imports.push(
        ThrottlerModule.forRootAsync({
          imports: [storageModule],
          inject: [RATE_LIMIT_STORAGE],
          useFactory: (storage: ThrottlerStorage) => ({
            throttlers: [{ name: 'default', ttl: ONE_MINUTE_MS, limit: rpm }],
            storage,
          }),
        }),
      );
      providers.push(RateLimiter);
    }
    return { module: SecurityModule, imports, providers, exports: providers };
  }
}
