import { CACHE_MANAGER } from '@nestjs/cache-manager';
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Context, SpanKind } from '@opentelemetry/api';
import type { Cache } from 'cache-manager';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { CacheUse, RequestContext } from '../common/request-context';
import { TimeoutError, withTimeout } from '../common/with-timeout';
import { AppConfig } from '../config/app.config';
import { ReadyModelVersion } from '../models/model.registry';
import { TensorData } from '../models/model.types';
import { EncodedRun } from '../models/tensor.codec';
import { concatRows, gatherRows, splitRows } from '../models/tensor-rows';
import { MetricsService } from '../observability/metrics.service';
import { redisSpanAttributes, traced, tracingOn } from '../observability/tracing';
import { rowKeys } from './cache-entry.codec';
import { CACHE_STORE, CacheStore } from './cache-store';

type Outputs = Record<string, TensorData>;

/** Runs the rows it is given through the model in one run. */
type Compute = (feeds: Record<string, TensorData>, rows: number) => Promise<Outputs>;

/** After a store failure, calls are skipped this long, so an outage costs no request a timeout each. */
const RETRY_AFTER_MS = 1000;

interface Deferred {
  readonly promise: Promise<Outputs>;
  resolve(outputs: Outputs): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: (outputs: Outputs) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<Outputs>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // A row nobody else joined may fail unobserved; the request that owns it reports the error.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * The prediction cache, as a decorator of the batcher's submit: the same call and answer, with the
 * cache around it. It works per instance: each row of a run is keyed by model, version, the version's
 * file digest and the row's encoded input bytes. Rows found in the store are served from it, the
 * rest go to the model together in one run, and identical rows already being computed on this
 * replica are joined rather than computed again. The store (memory or Redis, through cache-manager)
 * is never allowed to fail or slow a prediction: each call to Redis has a short timeout, and a
 * failure is counted, logged, and the row computed.
 */
@Injectable()
export class PredictionCache implements OnApplicationShutdown {
  private readonly logger = new Logger('Cache');
  private readonly inflight = new Map<string, Promise<Outputs>>();
  /** cache-manager reports a failed read as an event and answers misses: the event is matched to its call here. */
  private readonly failedReads = new WeakMap<readonly string[], unknown>();
  private skipUntil = 0;
  private healthy = true;

  constructor(
    @Inject(CACHE_MANAGER) private readonly cache: Cache,
    @Inject(CACHE_STORE) private readonly store: CacheStore,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.cache.on('mget', (event: { keys: string[]; error?: unknown }) => {
      if (event.error !== undefined) this.failedReads.set(event.keys, event.error);
    });
    if (store.entries) metrics.setCacheEntriesSource(store.entries);
  }

  /**
   * The outputs of `run` on the version's batcher, with the request's deadline and cancellation;
   * when the version is cached and the request allows it (its context's `cache`), every row the
   * cache holds is taken from it and only the others are computed, and the request's hits and
   * misses are counted into its context.
   */
  submit(entry: ReadyModelVersion, run: EncodedRun, request?: RequestContext): Promise<Outputs> {
    // The signal is read only when a run is really queued: a request the cache answers never makes one.
    const compute: Compute = (feeds, rows) =>
      entry.batcher.submit(feeds, rows, {
        deadline: request?.deadline,
        signal: request?.signal,
        trace: request?.trace,
      });
    const use = request?.cache;
    // A run of no rows has no row to key: it goes to the model as it is.
    if (!use || !entry.caching.enabled || run.count === 0) return compute(run.feeds, run.count);
    return this.cached(entry, run, use, compute, request?.trace);
  }

  private async cached(
    entry: ReadyModelVersion,
    run: EncodedRun,
    policy: CacheUse,
    compute: Compute,
    parent: Context | undefined,
  ): Promise<Outputs> {
    const batched = entry.signature.batchable;
    const keys = rowKeys(this.config.CACHE_KEY_PREFIX, entry, run.feeds, batched ? run.count : 1, batched);
    const rows: Promise<Outputs>[] = new Array<Promise<Outputs>>(keys.length);
    const joined = new Set<number>();
    const own = new Map<number, Deferred>();
    for (let i = 0; i < keys.length; i++) {
      const pending = policy.read ? this.inflight.get(keys[i]) : undefined;
      if (pending) {
        rows[i] = pending;
        joined.add(i);
        continue;
      }
      const row = deferred();
      own.set(i, row);
      rows[i] = row.promise;
      // Only requests that read the cache share computations: a no-cache request asked for its own.
      if (policy.read) this.inflight.set(keys[i], row.promise);
    }

    let hits = 0;
    let computedAll: Outputs | undefined;
    try {
      const missing = policy.read ? await this.lookUp(entry, keys, own, joined.size, parent) : [...own.keys()];
      hits += own.size - missing.length;
      if (missing.length > 0) {
        computedAll = await this.computeInto(entry, run, batched, keys, missing, own, policy, compute, parent);
      }
    } catch (err) {
      for (const row of own.values()) row.reject(err);
      throw err;
    } finally {
      if (policy.read)
        for (const [i, row] of own) if (this.inflight.get(keys[i]) === row.promise) this.inflight.delete(keys[i]);
    }

    // A joined computation that failed (its own client left, its deadline passed) is no answer for this request:
    // the row is computed here, and counted and stored as this request's own miss.
    const recomputed: number[] = [];
    const outputs = await Promise.all(
      rows.map((row, i) =>
        joined.has(i)
          ? row.catch(() => {
              recomputed.push(i);
              return this.computeAlone(entry, run, batched, i, compute);
            })
          : row,
      ),
    );
    hits += joined.size - recomputed.length;
    if (policy.write && recomputed.length > 0) {
      await this.write(
        entry,
        recomputed.map((i) => ({ key: keys[i], value: this.store.encode(outputs[i]) })),
        parent,
      );
    }
    const misses = keys.length - hits;
    policy.hits = (policy.hits ?? 0) + hits;
    policy.misses = (policy.misses ?? 0) + misses;
    this.metrics.observeCache(entry.model, entry.version, hits, misses);
    if (computedAll) return computedAll;
    if (!batched) return outputs[0];
    return Object.fromEntries(Object.keys(outputs[0]).map((name) => [name, concatRows(outputs.map((o) => o[name]))]));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }

  /** readInto, as the request's `cache lookup` span when it is traced. */
  private lookUp(
    entry: ReadyModelVersion,
    keys: readonly string[],
    own: ReadonlyMap<number, Deferred>,
    joined: number,
    parent: Context | undefined,
  ): Promise<number[]> {
    if (!parent) return this.readInto(entry, keys, own);
    return traced(
      'cache lookup',
      parent,
      {
        'inference.model.name': entry.model,
        'inference.model.version': entry.version,
        'cache.store': this.store.kind,
        'cache.rows': keys.length,
        // Rows identical to ones another request is computing now: joined, never looked up.
        'cache.joined': joined,
      },
      async (span) => {
        const missing = await this.readInto(entry, keys, own);
        span?.setAttributes({ 'cache.hits': own.size - missing.length, 'cache.misses': missing.length });
        return missing;
      },
    );
  }

  /** Resolves the rows the store holds; returns the indexes of the others. */
  private async readInto(
    entry: ReadyModelVersion,
    keys: readonly string[],
    own: ReadonlyMap<number, Deferred>,
  ): Promise<number[]> {
    const indexes = [...own.keys()];
    const values = await this.read(indexes.map((i) => keys[i]));
    const names = entry.signature.outputs.map((o) => o.name);
    const missing: number[] = [];
    indexes.forEach((rowIndex, j) => {
      const outputs = values[j] === undefined ? undefined : this.store.decode(values[j]);
      // An entry without exactly this model's outputs is not this model's answer, whoever wrote it.
      if (outputs && names.length === Object.keys(outputs).length && names.every((n) => n in outputs))
        own.get(rowIndex)!.resolve(outputs);
      else missing.push(rowIndex);
    });
    return missing;
  }

  /**
   * Runs the missing rows in one run, resolves them and stores them; the run's whole outputs when it carried every row.
   */
  private async computeInto(
    entry: ReadyModelVersion,
    run: EncodedRun,
    batched: boolean,
    keys: readonly string[],
    missing: readonly number[],
    own: ReadonlyMap<number, Deferred>,
    policy: CacheUse,
    compute: Compute,
    parent: Context | undefined,
  ): Promise<Outputs | undefined> {
    const all = missing.length === keys.length;
    const outputs = await compute(
      all ? run.feeds : gatherRows(run.feeds, missing),
      batched ? missing.length : run.count,
    );
    const split = batched ? splitRows(outputs, missing.length) : [outputs];
    if (!split) throw new Error(`the model's outputs do not have one row per instance (${missing.length} instances)`);
    missing.forEach((rowIndex, j) => own.get(rowIndex)!.resolve(split[j]));
    if (policy.write)
      await this.write(
        entry,
        missing.map((rowIndex, j) => ({ key: keys[rowIndex], value: this.store.encode(split[j]) })),
        parent,
      );
    return all ? outputs : undefined;
  }

  private async computeAlone(
    entry: ReadyModelVersion,
    run: EncodedRun,
    batched: boolean,
    row: number,
    compute: Compute,
  ): Promise<Outputs> {
    if (!batched) return compute(run.feeds, run.count);
    return splitRows(await compute(gatherRows(run.feeds, [row]), 1), 1)![0];
  }

  private async read(keys: string[]): Promise<unknown[]> {
    if (Date.now() < this.skipUntil) return keys.map(() => undefined);
    // Memory answers within the turn of the event loop that parsed the request, and an answer written
    // there costs the main thread far more than one written after the loop has read every request that
    // arrived with it (docs/PERFORMANCE.md). Redis's round trip waits for a turn by itself.
    if (!this.store.remote) await nextTurn();
    try {
      const values = await this.bounded(this.redisCall('MGET', keys.length, undefined, () => this.cache.mget(keys)));
      if (this.failedReads.has(keys)) throw this.failedReads.get(keys);
      this.succeeded();
      return values;
    } catch (err) {
      this.failed('read', err);
      return keys.map(() => undefined);
    }
  }

  private async write(
    entry: ReadyModelVersion,
    list: { key: string; value: unknown }[],
    parent: Context | undefined,
  ): Promise<void> {
    if (Date.now() < this.skipUntil) return;
    const seconds = entry.caching.ttlSeconds;
    try {
      await this.bounded(
        this.redisCall('MSET', list.length, parent, () =>
          this.cache.mset(list.map((e) => ({ ...e, ttl: seconds * 1000 }))),
        ),
      );
      this.succeeded();
    } catch (err) {
      this.failed('write', err);
    }
  }

  /** A call that reaches Redis, as a client span when tracing is on (memory calls are not spans). */
  private redisCall<T>(
    operation: string,
    keys: number,
    parent: Context | undefined,
    call: () => Promise<T>,
  ): Promise<T> {
    if (!this.store.remote || !tracingOn()) return call();
    return traced(
      operation,
      parent,
      () => redisSpanAttributes(this.config.REDIS_URL, operation, keys),
      call,
      SpanKind.CLIENT,
    );
  }

  /**
   * A remote store's call, cut off at CACHE_TIMEOUT_MS; memory answers at once, and a timer per call would only cost.
   */
  private bounded<T>(call: Promise<T>): Promise<T> {
    return this.store.remote ? withTimeout(call, this.config.CACHE_TIMEOUT_MS, 'CACHE_TIMEOUT_MS') : call;
  }

  private failed(operation: 'read' | 'write', err: unknown): void {
    const timeout = err instanceof TimeoutError;
    this.metrics.observeCacheError(operation, timeout ? 'timeout' : 'error');
    // Logged when the store starts failing and when it answers again, not for every request in between.
    if (this.healthy) {
      this.logger.warn(
        `cache ${operation} failed (${(err as Error)?.message ?? String(err)}); predictions are computed uncached, the ${this.store.kind} store retried every ${RETRY_AFTER_MS} ms`,
      );
    }
    this.healthy = false;
    this.skipUntil = Date.now() + RETRY_AFTER_MS;
  }

  private succeeded(): void {
    if (this.healthy) return;
    this.healthy = true;
    this.logger.log(`the ${this.store.kind} cache store answers again; caching resumed`);
  }
}
