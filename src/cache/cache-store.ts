import { KeyvCacheableMemory } from '@cacheable/memory';
import KeyvRedis, { createClient, RedisClientType } from '@keyv/redis';
import { Logger } from '@nestjs/common';
import { Keyv } from 'keyv';
import { AppConfig } from '../config/app.config';
import { TensorData } from '../models/model.types';
import { fromStored, toStored } from './cache-entry.codec';

type Outputs = Record<string, TensorData>;

export const CACHE_STORE = Symbol('CACHE_STORE');

/** The store behind cache-manager: one Keyv, plus what readiness, metrics and shutdown need to know of it. */
export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  readonly keyv: Keyv;
  /** Across the network: calls may stall or fail, so they are bounded by CACHE_TIMEOUT_MS. */
  readonly remote: boolean;
  /** One instance's outputs as the store holds them, and back (undefined for a value that is not such an entry). */
  encode(outputs: Outputs): unknown;
  decode(value: unknown): Outputs | undefined;
  /** The Redis connection, when the store is Redis: other shared state (rate-limit counts) uses it too. */
  readonly redis?: RedisClientType;
  /** Entries held now, where the store can count them cheaply (in memory). */
  readonly entries?: () => number;
  /** Resolves when the store answers a round trip; rejects with the reason otherwise. */
  ping(): Promise<void>;
  /** Closes the connection; called at application shutdown, after the last request was answered. */
  close(): Promise<void>;
}

/**
 * The Redis adapter, except that cache-manager's module may not close it: Nest destroys modules
 * before the HTTP server has drained, and requests still being answered would lose their cache.
 * CacheStore.close() closes the client at application shutdown instead.
 */
class SharedRedisAdapter extends KeyvRedis<unknown> {
  override async disconnect(): Promise<void> {}
}

/** Reconnection backoff: quick at first, then every 2 s, forever, so caching resumes by itself. */
const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);

function memoryStore(config: AppConfig): CacheStore {
  // No cloning: entries are plain JSON-safe objects that nothing mutates.
  const memory = new KeyvCacheableMemory({ lruSize: config.CACHE_MAX_ENTRIES, useClone: false });
  const keyv = new Keyv({ store: memory, useKeyPrefix: false, namespace: undefined });
  keyv.serialize = undefined;
  keyv.deserialize = undefined;
  return {
    kind: 'memory',
    keyv,
    remote: false,
    // Held as they are: only this process writes them and nothing mutates them, so no copy or encoding is needed.
    encode: (outputs) => outputs,
    decode: (value) => value as Outputs,
    entries: () => memory.store.size,
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

function redisStore(url: string, config: AppConfig): CacheStore {
  const logger = new Logger('Cache');
  const client = createClient({
    url,
    // Fail a command at once while disconnected instead of queueing it: a prediction never waits for Redis.
    disableOfflineQueue: true,
    socket: { connectTimeout: Math.max(1000, config.CACHE_TIMEOUT_MS), reconnectStrategy: reconnectDelay },
  }) as RedisClientType;
  let lastError = '';
  client.on('error', (err: Error) => {
    // Reconnection attempts repeat the same error: log it when it changes, not every 2 s.
    if (err.message !== lastError)
      logger.warn(`Redis: ${err.message || err.name}; predictions are computed uncached until it answers`);
    lastError = err.message;
  });
  client.on('ready', () => {
    if (lastError) logger.log('Redis answers again; caching resumed');
    lastError = '';
  });
  // Not awaited: the service starts and serves whether Redis is up or not.
  client.connect().catch(() => undefined);
  const adapter = new SharedRedisAdapter(client, { throwOnConnectError: false, throwOnErrors: true });
  const keyv = new Keyv({ store: adapter, useKeyPrefix: false, namespace: undefined, throwOnErrors: true });
  // Errors are counted and logged where the cache is used; these events would only repeat them.
  keyv.on('error', () => undefined);
  adapter.on('error', () => undefined);
  return {
    kind: 'redis',
    keyv,
    redis: client,
    remote: true,
    encode: toStored,
    decode: fromStored,
    ping: async () => {
      await client.ping();
    },
    close: async () => {
      if (client.isReady) await client.close().catch(() => client.destroy());
      else if (client.isOpen) client.destroy();
    },
  };
}

/** Redis when REDIS_URL is set, so every replica shares one cache; otherwise an LRU bounded by CACHE_MAX_ENTRIES. */
export function createCacheStore(config: AppConfig): CacheStore {
  return config.REDIS_URL ? redisStore(config.REDIS_URL, config) : memoryStore(config);
}
