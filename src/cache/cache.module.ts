import { CacheModule } from '@nestjs/cache-manager';
import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app.config';
import { ModelsModule } from '../models/models.module';
import { CACHE_STORE, CacheStore, createCacheStore } from './cache-store';
import { PredictionCache } from './prediction-cache.service';

/** The store, made once and shared by cache-manager, readiness, shutdown and the rate limiter's Redis counts. */
@Module({
  providers: [
    { provide: CACHE_STORE, useFactory: (config: AppConfig) => createCacheStore(config), inject: [AppConfig] },
  ],
  exports: [CACHE_STORE],
})
export class CacheStoreModule {}

/**
 * The prediction cache: cache-manager (through @nestjs/cache-manager) over an in-memory LRU, or
 * over Redis when REDIS_URL is set so that every replica shares one cache.
 */
@Module({
  imports: [
    CacheStoreModule,
    ModelsModule,
    CacheModule.registerAsync({
      imports: [CacheStoreModule],
      inject: [CACHE_STORE],
      useFactory: (store: CacheStore) => ({ stores: [store.keyv] }),
    }),
  ],
  providers: [PredictionCache],
  exports: [PredictionCache, CacheStoreModule],
})
export class PredictionCacheModule {}
