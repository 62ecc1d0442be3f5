import { Logger } from '@nestjs/common';
import { Cache, createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { ClientClosedError, DeadlineExceededError } from '../common/domain.errors';
import { CacheUse, RequestContext } from '../common/request-context';
import { AppConfig, loadConfig } from '../config/app.config';
import { Batcher, BatchingOptions } from '../models/batching/batcher';
import { buildSignature } from '../models/model-signature';
import { CachingOptions, ReadyModelVersion } from '../models/model.registry';
import { TensorData } from '../models/model.types';
import { EncodedRun } from '../models/tensor.codec';
import { MetricsService } from '../observability/metrics.service';
import { doubling, FakeSession, FakeSessionOptions } from '../testing/fake-runtime';
import { metricValue } from '../testing/metrics';
import { fromStored, rowKeys, toStored } from './cache-entry.codec';
import { CacheStore, createCacheStore } from './cache-store';
import { PredictionCache } from './prediction-cache.service';

const BATCHING: BatchingOptions = {
  enabled: true,
  maxBatchSize: 64,
  maxQueueDelayMs: 0,
  maxQueueSize: 100,
  concurrency: 1,
};
const CACHED: CachingOptions = { enabled: true, ttlSeconds: 60 };
const DIGEST = 'ab'.repeat(32);

/** A READY version over this session and a real batcher, as the registry would make it. */
function version(session: FakeSession, caching = CACHED, model = 'm'): ReadyModelVersion {
  return {
    model,
    version: 1,
    state: 'READY',
    signature: buildSignature(session.inputs, session.outputs, {}),
    session,
    batcher: new Batcher(session, BATCHING, `Model '${model}' version 1`),
    batching: BATCHING,
    caching,
    digest: DIGEST,
  };
}

/** A run of these rows of x, as encodeInstances would make it. */
const rows = (...values: number[][]): EncodedRun => ({
  feeds: { x: { type: 'float32', dims: [values.length, values[0].length], data: Float32Array.from(values.flat()) } },
  count: values.length,
});
const y = (outputs: Record<string, TensorData>) => ({
  dims: outputs.y.dims,
  values: Array.from(outputs.y.data as Float32Array),
});

const READ_WRITE: CacheUse = { read: true, write: true };
const NO_CACHE: CacheUse = { read: false, write: true };
const NO_STORE: CacheUse = { read: false, write: false };
/** A request's context that uses the cache as told, with a fresh record of what it found. */
const request = (use: CacheUse = READ_WRITE, more: Partial<RequestContext> = {}): RequestContext => ({
  requestId: 'r',
  cache: { read: use.read, write: use.write },
  ...more,
});
const found = (context: RequestContext) => ({ hits: context.cache?.hits, misses: context.cache?.misses });

const nextTurn = () => new Promise((r) => setImmediate(r));

/** Waits a few turns of the event loop for something the code under test does asynchronously. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await nextTurn();
  expect(condition()).toBe(true);
}

/** Finishes the session's gated runs until the promise settles. */
async function answered<T>(session: FakeSession, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 100 && !settled; i++) await session.finishAll();
  return promise;
}

const cacheCounts = async (metrics: MetricsService, model = 'm') => ({
  hits: await metricValue(metrics, 'inference_cache_hits_total', { model, version: '1' }),
  misses: await metricValue(metrics, 'inference_cache_misses_total', { model, version: '1' }),
});

interface Harness {
  readonly config: AppConfig;
  readonly metrics: MetricsService;
  readonly store: CacheStore;
  readonly cache: Cache;
  readonly predictions: PredictionCache;
}

function harness(store?: CacheStore, env: NodeJS.ProcessEnv = {}): Harness {
  const config = loadConfig({ CACHE_KEY_PREFIX: 'spec:', ...env });
  const metrics = new MetricsService();
  const chosen = store ?? createCacheStore(config);
  const cache = createCache({ stores: [chosen.keyv] });
  return { config, metrics, store: chosen, cache, predictions: new PredictionCache(cache, chosen, config, metrics) };
}

/** Writes an entry for the first row of `run` straight into the store, as another replica could have. */
async function plant(h: Harness, entry: ReadyModelVersion, run: EncodedRun, outputs: Record<string, TensorData>) {
  const [key] = rowKeys(h.config.CACHE_KEY_PREFIX, entry, run.feeds, 1, true);
  await h.cache.mset([{ key, value: h.store.encode(outputs), ttl: 60000 }]);
}
const STALE = { y: { type: 'float32', dims: [1, 2], data: Float32Array.of(99, 99) } } as const;

describe('PredictionCache', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'fatal']));
  afterEach(() => jest.restoreAllMocks());

  it('computes a miss and stores it; a repeat is a hit that never runs', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    const first = request();
    expect(y(await h.predictions.submit(entry, rows([1, 2]), first))).toEqual({ dims: [1, 2], values: [2, 4] });
    expect(found(first)).toEqual({ hits: 0, misses: 1 });
    expect(h.store.entries!()).toBe(1);
    const again = request();
    expect(y(await h.predictions.submit(entry, rows([1, 2]), again))).toEqual({ dims: [1, 2], values: [2, 4] });
    expect(found(again)).toEqual({ hits: 1, misses: 0 });
    expect(session.runCount).toBe(1);
    expect(await cacheCounts(h.metrics)).toEqual({ hits: 1, misses: 1 });
  });

  it('keys entries by model: another model fed the same row computes its own', async () => {
    const h = harness();
    const session = new FakeSession();
    await h.predictions.submit(version(session), rows([1, 2]), request());
    const other = request();
    await h.predictions.submit(version(session, CACHED, 'other'), rows([1, 2]), other);
    expect(found(other)).toEqual({ hits: 0, misses: 1 });
    expect(session.runCount).toBe(2);
  });

  it('runs only the rows it does not hold, in one run, and answers every row in order', async () => {
    const h = harness();
    const fed: number[][] = [];
    const session = new FakeSession({
      compute: (feeds) => {
        fed.push(Array.from(feeds.x.data as Float32Array));
        return doubling()(feeds);
      },
    });
    const entry = version(session);
    await h.predictions.submit(entry, rows([1, 1], [3, 3]), request());
    const context = request();
    const outputs = await h.predictions.submit(entry, rows([1, 1], [2, 2], [3, 3], [4, 4]), context);
    expect(y(outputs)).toEqual({ dims: [4, 2], values: [2, 2, 4, 4, 6, 6, 8, 8] });
    expect(fed).toEqual([
      [1, 1, 3, 3],
      [2, 2, 4, 4],
    ]);
    expect(found(context)).toEqual({ hits: 2, misses: 2 });
    const all = request();
    expect(y(await h.predictions.submit(entry, rows([4, 4], [3, 3], [2, 2]), all)).values).toEqual([8, 8, 6, 6, 4, 4]);
    expect(found(all)).toEqual({ hits: 3, misses: 0 });
    expect(fed).toHaveLength(2);
  });

  it('computes a row repeated within one request once', async () => {
    const h = harness();
    const session = new FakeSession();
    const context = request();
    const outputs = await h.predictions.submit(version(session), rows([5, 5], [6, 6], [5, 5]), context);
    expect(y(outputs)).toEqual({ dims: [3, 2], values: [10, 10, 12, 12, 10, 10] });
    expect(session.rowCount).toBe(2);
    expect(found(context)).toEqual({ hits: 1, misses: 2 });
  });

  it('caches a model without a batch dimension by its whole input, and adds up the hits of every run of a request', async () => {
    const h = harness();
    const session = new FakeSession({
      inputs: [{ name: 'x', isTensor: true, type: 'float32', shape: [2, 2] }],
      outputs: [{ name: 'y', isTensor: true, type: 'float32', shape: [2, 2] }],
    });
    const entry = version(session);
    expect(entry.signature.batchable).toBe(false);
    const first: EncodedRun = { ...rows([1, 2], [3, 4]), count: 1 };
    const second: EncodedRun = { ...rows([1, 2], [3, 5]), count: 1 };
    const context = request();
    for (const run of [first, first, second, first]) await h.predictions.submit(entry, run, context);
    expect(y(await h.predictions.submit(entry, first, context))).toEqual({ dims: [2, 2], values: [2, 4, 6, 8] });
    expect(y(await h.predictions.submit(entry, second, context))).toEqual({ dims: [2, 2], values: [2, 4, 6, 10] });
    expect(session.runCount).toBe(2);
    expect(found(context)).toEqual({ hits: 4, misses: 2 });
  });

  it('joins identical rows in flight: 20 concurrent identical requests compute one row', async () => {
    const h = harness();
    const session = new FakeSession({ gated: true });
    const entry = version(session);
    const contexts = Array.from({ length: 20 }, () => request());
    const pending = contexts.map((c) => h.predictions.submit(entry, rows([7, 8]), c));
    await until(() => session.held.length === 1);
    await session.finishAll();
    for (const outputs of await Promise.all(pending)) expect(y(outputs)).toEqual({ dims: [1, 2], values: [14, 16] });
    expect([session.runCount, session.rowCount]).toEqual([1, 1]);
    expect(found(contexts[0])).toEqual({ hits: 0, misses: 1 });
    for (const c of contexts.slice(1)) expect(found(c)).toEqual({ hits: 1, misses: 0 });
    expect(await cacheCounts(h.metrics)).toEqual({ hits: 19, misses: 1 });
  });

  describe('a request that joined a row computes it itself when the row it joined fails', () => {
    /** A session kept busy by one run, so that the next requests queue behind it. */
    async function busy(h: Harness, options: FakeSessionOptions = {}) {
      const session = new FakeSession({ gated: true, ...options });
      const entry = version(session);
      const blocker = h.predictions.submit(entry, rows([9, 9]));
      await until(() => session.held.length === 1);
      return { session, entry, blocker };
    }

    it("because the first request's deadline passed while it queued", async () => {
      const h = harness();
      const { session, entry, blocker } = await busy(h);
      const leader = h.predictions.submit(entry, rows([1, 1]), request(READ_WRITE, { deadline: Date.now() - 1 }));
      const joiner = h.predictions.submit(entry, rows([1, 1], [5, 5]), request());
      await expect(leader).rejects.toBeInstanceOf(DeadlineExceededError);
      expect(y(await answered(session, joiner))).toEqual({ dims: [2, 2], values: [2, 2, 10, 10] });
      await blocker;
      // The blocker's row, the joiner's own row, then the row it had joined, alone: the first request's never ran.
      expect(session.held).toEqual([]);
      expect([session.runCount, session.rowCount]).toEqual([3, 3]);
    });

    it("because the first request's client went away while it queued", async () => {
      const h = harness();
      const { session, entry, blocker } = await busy(h);
      const left = new AbortController();
      const leader = h.predictions.submit(entry, rows([1, 1]), request(READ_WRITE, { signal: left.signal }));
      const joiner = h.predictions.submit(entry, rows([1, 1]), request());
      await until(() => entry.batcher.depth === 1);
      left.abort();
      await expect(leader).rejects.toBeInstanceOf(ClientClosedError);
      expect(y(await answered(session, joiner))).toEqual({ dims: [1, 2], values: [2, 2] });
      await blocker;
      expect([session.runCount, session.rowCount]).toEqual([2, 2]);
    });

    it("because the first request's run failed", async () => {
      const h = harness();
      let failures = 1;
      const session = new FakeSession({
        gated: true,
        compute: (feeds) => {
          if (failures-- > 0) throw new Error('the worker crashed');
          return doubling()(feeds);
        },
      });
      const entry = version(session);
      const leader = h.predictions.submit(entry, rows([1, 1]), request());
      const joining = request();
      const joiner = h.predictions.submit(entry, rows([1, 1]), joining);
      await until(() => session.held.length === 1);
      await session.finishAll();
      await expect(leader).rejects.toThrow('the worker crashed');
      expect(y(await answered(session, joiner))).toEqual({ dims: [1, 2], values: [2, 2] });
      expect(session.runCount).toBe(2);
      // It computed the row itself: a miss, not a hit, and stored, so the next identical request is answered.
      expect(found(joining)).toEqual({ hits: 0, misses: 1 });
      const next = request();
      expect(y(await h.predictions.submit(entry, rows([1, 1]), next))).toEqual({ dims: [1, 2], values: [2, 2] });
      expect(found(next)).toEqual({ hits: 1, misses: 0 });
      expect(session.runCount).toBe(2);
    });
  });

  it('sends a run of no rows straight to the model, which has no row to key', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    const empty = { feeds: { x: { type: 'float32' as const, dims: [0, 2], data: new Float32Array(0) } }, count: 0 };
    const context = request();
    expect(y(await h.predictions.submit(entry, empty, context))).toEqual({ dims: [0, 2], values: [] });
    expect(found(context)).toEqual({ hits: undefined, misses: undefined });
    expect(session.runCount).toBe(1);
  });

  it('never caches an error: the next identical request runs again', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    await expect(h.predictions.submit(entry, rows([-1, 1]), request())).rejects.toThrow('negative input');
    await expect(h.predictions.submit(entry, rows([-1, 1]), request())).rejects.toThrow('negative input');
    expect(session.runCount).toBe(2);
    expect(h.store.entries!()).toBe(0);
  });

  it('takes an entry only when it holds exactly the outputs of this model', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    await plant(h, entry, rows([1, 2]), { z: STALE.y });
    await plant(h, entry, rows([3, 4]), { y: STALE.y, z: STALE.y });
    const context = request();
    const outputs = await h.predictions.submit(entry, rows([1, 2], [3, 4]), context);
    expect(y(outputs).values).toEqual([2, 4, 6, 8]);
    expect(found(context)).toEqual({ hits: 0, misses: 2 });
    // The foreign entries were replaced by this model's answers.
    await h.predictions.submit(entry, rows([1, 2], [3, 4]), request());
    expect(session.runCount).toBe(1);
  });

  it('computes afresh for no-cache, and refreshes the entry', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    await plant(h, entry, rows([1, 2]), STALE);
    expect(y(await h.predictions.submit(entry, rows([1, 2]), request())).values).toEqual([99, 99]);
    const fresh = request(NO_CACHE);
    expect(y(await h.predictions.submit(entry, rows([1, 2]), fresh)).values).toEqual([2, 4]);
    expect(found(fresh)).toEqual({ hits: 0, misses: 1 });
    expect(session.runCount).toBe(1);
    expect(y(await h.predictions.submit(entry, rows([1, 2]), request())).values).toEqual([2, 4]);
    expect(session.runCount).toBe(1);
  });

  it('does not join a computation in flight for no-cache', async () => {
    const h = harness();
    const session = new FakeSession({ gated: true });
    const entry = version(session);
    const shared = h.predictions.submit(entry, rows([1, 2]), request());
    const own = h.predictions.submit(entry, rows([1, 2]), request(NO_CACHE));
    // One run holds the shared row; the no-cache request's own row queues behind it.
    await until(() => session.runCount === 1 && entry.batcher.depth === 1);
    expect(y(await answered(session, shared)).values).toEqual([2, 4]);
    expect(y(await answered(session, own)).values).toEqual([2, 4]);
    expect(session.rowCount).toBe(2);
  });

  it('neither reads nor writes the store for no-store', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    await plant(h, entry, rows([1, 2]), STALE);
    const context = request(NO_STORE);
    expect(y(await h.predictions.submit(entry, rows([1, 2], [5, 6]), context)).values).toEqual([2, 4, 10, 12]);
    expect(found(context)).toEqual({ hits: 0, misses: 2 });
    expect(h.store.entries!()).toBe(1);
    expect(y(await h.predictions.submit(entry, rows([1, 2]), request())).values).toEqual([99, 99]);
  });

  it('answers a hit without queueing, so even a request whose client has left gets it', async () => {
    const h = harness();
    const session = new FakeSession();
    const entry = version(session);
    await h.predictions.submit(entry, rows([1, 2]), request());
    const left = new AbortController();
    left.abort();
    const gone = request(READ_WRITE, { signal: left.signal });
    expect(y(await h.predictions.submit(entry, rows([1, 2]), gone)).values).toEqual([2, 4]);
    await expect(h.predictions.submit(entry, rows([3, 4]), gone)).rejects.toBeInstanceOf(ClientClosedError);
    expect(session.runCount).toBe(1);
  });

  it('goes straight to the batcher for a version whose caching is off, or a request without cache directives', async () => {
    const h = harness();
    const reads = jest.spyOn(h.cache, 'mget');
    const writes = jest.spyOn(h.cache, 'mset');
    const session = new FakeSession({ gated: true });
    const off = version(session, { enabled: false, ttlSeconds: 60 });
    const on = version(session);
    const context = request();
    const cases = [
      h.predictions.submit(off, rows([1, 2]), context),
      h.predictions.submit(on, rows([1, 2]), { requestId: 'no directives' }),
      h.predictions.submit(on, rows([1, 2])),
    ];
    // Queued at once, without the turn of the event loop a cache read waits for.
    expect(session.runCount).toBe(2);
    await session.finishAll();
    await session.finishAll();
    for (const outputs of await Promise.all(cases)) expect(y(outputs).values).toEqual([2, 4]);
    expect(session.runCount).toBe(3);
    expect(reads).not.toHaveBeenCalled();
    expect(writes).not.toHaveBeenCalled();
    expect(found(context)).toEqual({ hits: undefined, misses: undefined });
    expect(await cacheCounts(h.metrics)).toEqual({ hits: 0, misses: 0 });
  });
});

type Mode = 'up' | 'failing' | 'stalled';

/** A Keyv storage adapter whose reads and writes can be made to fail or never answer, as Redis can. */
class FlakyAdapter {
  readonly map = new Map<string, unknown>();
  reads: Mode = 'up';
  writes: Mode = 'up';
  calls = 0;

  getMany(keys: string[]): Promise<unknown[]> {
    return this.answer(this.reads, () => keys.map((k) => this.map.get(k)));
  }

  setMany(entries: { key: string; value: unknown }[]): Promise<void> {
    return this.answer(this.writes, () => {
      for (const e of entries) this.map.set(e.key, e.value);
    });
  }

  get(key: string): Promise<unknown> {
    return this.answer(this.reads, () => this.map.get(key));
  }

  set(key: string, value: unknown): Promise<void> {
    return this.answer(this.writes, () => void this.map.set(key, value));
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.map.delete(key));
  }

  clear(): Promise<void> {
    this.map.clear();
    return Promise.resolve();
  }

  private answer<T>(mode: Mode, value: () => T): Promise<T> {
    this.calls++;
    if (mode === 'failing') return Promise.reject(new Error('connection refused'));
    if (mode === 'stalled') return new Promise<T>(() => undefined);
    return Promise.resolve(value());
  }
}

/** A remote store over the flaky adapter, holding entries as Redis does. */
function remoteStore(adapter: FlakyAdapter): CacheStore {
  const keyv = new Keyv({ store: adapter, useKeyPrefix: false, namespace: undefined, throwOnErrors: true });
  keyv.serialize = undefined;
  keyv.deserialize = undefined;
  keyv.on('error', () => undefined);
  return {
    kind: 'redis',
    keyv,
    remote: true,
    encode: toStored,
    decode: fromStored,
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
}

describe('PredictionCache during a store outage', () => {
  const TIMEOUT_MS = 20;
  /** Just past the back-off after a store failure. */
  const BACK_OFF_MS = 1001;

  let adapter: FlakyAdapter;
  let h: Harness;
  let session: FakeSession;
  let entry: ReadyModelVersion;
  let offset: number;

  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'fatal']));
  beforeEach(() => {
    adapter = new FlakyAdapter();
    h = harness(remoteStore(adapter), { CACHE_TIMEOUT_MS: String(TIMEOUT_MS) });
    session = new FakeSession();
    entry = version(session);
    offset = 0;
    const now = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => now() + offset);
  });
  afterEach(() => jest.restoreAllMocks());

  const errors = (operation: string, reason: string) =>
    metricValue(h.metrics, 'inference_cache_errors_total', { operation, reason });
  const predict = async (context = request()) => {
    const outputs = await h.predictions.submit(entry, rows([1, 2]), context);
    expect(y(outputs)).toEqual({ dims: [1, 2], values: [2, 4] });
    return context;
  };

  it("stores entries in their remote form, for the version's TTL, and reads them back", async () => {
    const written = Date.now();
    await predict();
    const stored = [...adapter.map.values()] as { value: unknown; expires: number }[];
    expect(stored[0].expires - written).toBeGreaterThanOrEqual(CACHED.ttlSeconds * 1000);
    expect(stored[0].expires - written).toBeLessThan(CACHED.ttlSeconds * 1000 + 1000);
    expect(stored).toEqual([
      {
        value: toStored({ y: { type: 'float32', dims: [1, 2], data: Float32Array.of(2, 4) } }),
        expires: expect.any(Number),
      },
    ]);
    expect(found(await predict())).toEqual({ hits: 1, misses: 0 });
    expect(session.runCount).toBe(1);
  });

  it('computes when a read fails, counts it, skips the store for the back-off, then resumes caching', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    const log = jest.spyOn(Logger.prototype, 'log');
    adapter.reads = 'failing';
    expect(found(await predict())).toEqual({ hits: 0, misses: 1 });
    expect(await errors('read', 'error')).toBe(1);
    // The write was skipped as well: the store had just failed.
    expect(adapter.calls).toBe(1);
    adapter.reads = 'up';
    await predict();
    await predict();
    expect(adapter.calls).toBe(1);
    expect(session.runCount).toBe(3);
    expect(await errors('read', 'error')).toBe(1);
    expect(warn).toHaveBeenCalledTimes(1);
    // Still failing after the back-off: counted again, but the outage was already logged.
    adapter.reads = 'failing';
    offset = BACK_OFF_MS;
    await predict();
    expect(adapter.calls).toBe(2);
    expect(await errors('read', 'error')).toBe(2);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(log).not.toHaveBeenCalled();
    adapter.reads = 'up';
    offset = 2 * BACK_OFF_MS;
    expect(found(await predict())).toEqual({ hits: 0, misses: 1 });
    expect(adapter.calls).toBe(4);
    expect(found(await predict())).toEqual({ hits: 1, misses: 0 });
    expect(session.runCount).toBe(5);
    expect(log).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
  });

  it('computes when a read never answers, counted as a timeout after CACHE_TIMEOUT_MS', async () => {
    adapter.reads = 'stalled';
    const started = performance.now();
    await predict();
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 1);
    expect(await errors('read', 'timeout')).toBe(1);
    expect(await errors('read', 'error')).toBe(0);
    adapter.reads = 'up';
    offset = BACK_OFF_MS;
    await predict();
    expect(found(await predict())).toEqual({ hits: 1, misses: 0 });
    expect(session.runCount).toBe(2);
  });

  it('answers when a write fails or never answers, counting each by its reason', async () => {
    adapter.writes = 'failing';
    await predict();
    expect(await errors('write', 'error')).toBe(1);
    expect(adapter.map.size).toBe(0);
    offset = BACK_OFF_MS;
    adapter.writes = 'stalled';
    await predict();
    expect(await errors('write', 'timeout')).toBe(1);
    offset = 2 * BACK_OFF_MS;
    adapter.writes = 'up';
    await predict();
    expect(found(await predict())).toEqual({ hits: 1, misses: 0 });
    expect(session.runCount).toBe(3);
    expect(await errors('read', 'error')).toBe(0);
  });
});
