import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ModelLoadFailedError, ModelNotFoundError, ModelNotReadyError } from '../common/domain.errors';
import { AppConfig } from '../config/app.config';
import { MetricsService } from '../observability/metrics.service';
import { Batcher, BatchingOptions } from './batching/batcher';
import { WorkerScheduler } from './batching/worker.scheduler';
import { decidePlacement, PlacementDecision } from './placement';
import { ModelConfig, ModelSample, routingProblem } from './model-config';
import { ModelFolder, readModelFolder, readModelRepository } from './model-repository.reader';
import { buildSignature } from './model-signature';
import { ModelSignature, ModelState } from './model.types';
import { MODEL_RUNTIME, ModelRuntime, RunCost, RuntimeSession } from './runtime/model-runtime.interface';
import { decodeOutputs, encodeInstances } from './instance.codec';
import { JsonTensor } from './tensor.codec';

export interface ModelVersion {
  readonly model: string;
  readonly version: number;
  state: ModelState;
  reason?: string;
  signature?: ModelSignature;
  session?: RuntimeSession;
  /** The same model on the event loop, when it is placed inline. */
  inlineSession?: RuntimeSession;
  batcher?: Batcher;
  batching?: BatchingOptions;
  caching?: CachingOptions;
  placement?: PlacementDecision;
  /** SHA-256 of the model file: what the version really is, should a file be replaced under the same number. */
  digest?: string;
}

/** A version that can serve: what PredictionService works with. */
export interface ReadyModelVersion extends ModelVersion {
  readonly signature: ModelSignature;
  readonly session: RuntimeSession;
  readonly batcher: Batcher;
  readonly batching: BatchingOptions;
  readonly caching: CachingOptions;
  readonly digest: string;
}

/** Whether a version's predictions are cached (CACHE_ENABLED and its config.json), and for how long. */
export interface CachingOptions {
  readonly enabled: boolean;
  readonly ttlSeconds: number;
}

export interface Model {
  readonly name: string;
  readonly config: ModelConfig;
  readonly defaultVersion?: number;
  readonly versions: ReadonlyMap<number, ModelVersion>;
  /** A problem with the model folder itself (config.json, no versions); every version is FAILED. */
  readonly problem?: string;
  /** Why the last load did not apply, when what served before was kept serving instead. */
  readonly loadError?: string;
}

/** What a load made of a model: its default version and every version's state. */
export interface LoadOutcome {
  readonly model: string;
  readonly defaultVersion?: number;
  readonly versions: readonly { readonly version: number; readonly state: ModelState; readonly reason?: string }[];
}

/** A version asked for by number, or by one of config.json's version_labels. */
export type VersionSelector = number | string;

const DEFAULT_TOLERANCE = 1e-5;

/**
 * A routing key as a point in [0, 1): FNV-1a over its UTF-16 units, then MurmurHash3's finalizer,
 * so that keys differing in one character land far apart.
 */
export function hashFraction(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x100000000;
}

/** Read as a stream so that hashing a large model never holds the event loop for long. */
async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Holds every model of the repository and its versions' states. The repository is read at module
 * init (a missing repository stops start-up); sessions then load in the background so the HTTP
 * server can answer probes with LOADING meanwhile. A model that fails never affects the others.
 */
@Injectable()
export class ModelRegistry implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ModelRegistry.name);
  private readonly models = new Map<string, Model>();
  private loading: Promise<void> = Promise.resolve();
  private root = '';
  /** Models unloaded on purpose, with why: they answer 404 saying so, and readiness leaves them out. */
  private readonly unloaded = new Map<string, string>();
  /** The load or unload each model is running; the next one for the model waits for it. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** A load waiting its turn, which later loads of the model join rather than queue again. */
  private readonly queuedLoads = new Map<string, Promise<LoadOutcome>>();
  /** Requests holding each version: a replaced version is released only once they are answered. */
  private readonly leases = new WeakMap<ModelVersion, number>();
  private readonly drainWaiters = new WeakMap<ModelVersion, () => void>();
  /** The inference workers, shared by every version's batcher. */
  private readonly scheduler: WorkerScheduler;

  constructor(
    @Inject(MODEL_RUNTIME) private readonly runtime: ModelRuntime,
    private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {
    this.scheduler = new WorkerScheduler(runtime.concurrency);
  }

  async onModuleInit(): Promise<void> {
    const root = (this.root = path.resolve(this.config.MODEL_REPOSITORY));
    const folders = await readModelRepository(root, (why) => this.logger.warn(why));
    for (const folder of folders) this.models.set(folder.name, this.register(folder));
    if (folders.length === 0) this.logger.warn(`model repository ${root} holds no models`);
    this.loading = this.loadAll(folders);
    this.metrics?.setVersionStateSource(() => this.list().flatMap((m) => [...m.versions.values()].map((v) => v.state)));
    this.metrics?.setQueueDepthSource(() =>
      this.list().flatMap((m) =>
        [...m.versions.values()]
          .filter((v) => v.batcher)
          .map((v) => ({
            model: v.model,
            version: v.version,
            depth: v.batcher!.depth,
            requests: v.batcher!.pendingRequests,
          })),
      ),
    );
  }

  /** Resolves once every version has finished loading, successfully or not. */
  whenLoaded(): Promise<void> {
    return this.loading;
  }

  list(): Model[] {
    return [...this.models.values()];
  }

  /** The runtime's name for what it serves, as model metadata reports it. */
  get platform(): string {
    return this.runtime.platform;
  }

  /** The model of that name, if there is one; getModel says why not. */
  findModel(name: string): Model | undefined {
    return this.models.get(name);
  }

  getModel(name: string): Model {
    const model = this.models.get(name);
    if (!model && this.unloaded.has(name)) {
      throw new ModelNotFoundError(`Model '${name}' is unloaded (${this.unloaded.get(name)})`);
    }
    if (!model) {
      const names = [...this.models.keys()];
      throw new ModelNotFoundError(
        `Model '${name}' not found; available models: ${names.length ? names.join(', ') : 'none'}`,
      );
    }
    return model;
  }

  /**
   * A model and the version asked for: the given one, by number or by config.json label (unknown
   * versions and labels throw), or the default, which is undefined when the model folder itself has
   * a problem. The version may not be ready.
   */
  findVersion(name: string, version?: VersionSelector): { model: Model; entry?: ModelVersion } {
    const model = this.getModel(name);
    const number = typeof version === 'string' ? this.labelled(model, version) : version;
    if (number !== undefined && !model.versions.has(number)) {
      throw new ModelNotFoundError(
        `Model '${name}' has no version ${number}; versions: ${[...model.versions.keys()].join(', ')}`,
      );
    }
    const wanted = number ?? model.defaultVersion;
    return { model, entry: wanted === undefined ? undefined : model.versions.get(wanted) };
  }

  /**
   * The version that answers a request: the given one (a number or a label), or, unversioned,
   * the one config.json's traffic picks for the caller (sticky per routing key), else the default.
   */
  servingVersion(name: string, version?: VersionSelector, routingKey?: string): ReadyModelVersion {
    if (version === undefined) {
      const model = this.getModel(name);
      if (model.config.traffic && !model.problem) return this.routed(model, routingKey);
    }
    const { model, entry } = this.findVersion(name, version);
    if (!entry) throw new ModelNotReadyError(`Model '${name}' cannot serve: ${model.problem}`);
    const which = `Model '${name}' version ${entry.version}${typeof version === 'string' ? ` (label '${version}')` : ''}`;
    if (entry.state === 'LOADING') throw new ModelNotReadyError(`${which} is still loading`);
    if (entry.state === 'FAILED') throw new ModelNotReadyError(`${which} failed to load: ${entry.reason}`);
    return entry as ReadyModelVersion;
  }

  /** The version number a config.json label names. */
  private labelled(model: Model, label: string): number {
    const version = model.config.version_labels?.[label];
    if (version === undefined) {
      const labels = Object.keys(model.config.version_labels ?? {});
      throw new ModelNotFoundError(
        `Model '${model.name}' has no version label '${label}'; labels: ${labels.length ? labels.join(', ') : 'none (config.json version_labels)'}`,
      );
    }
    return version;
  }

  /**
   * Picks a version by config.json traffic weights among those READY. A routing key always hashes
   * to the same point, so the same caller stays on the same version while the weights stand; and
   * as the versions' shares are laid out in order, raising a later version's weight moves only
   * callers from the earlier ones onto it, never between the others.
   */
  private routed(model: Model, routingKey?: string): ReadyModelVersion {
    const candidates: { entry: ModelVersion; weight: number }[] = [];
    for (const [version, weight] of Object.entries(model.config.traffic!)) {
      const entry = model.versions.get(Number(version));
      if (weight > 0 && entry?.state === 'READY') candidates.push({ entry, weight });
    }
    if (candidates.length === 0) {
      throw new ModelNotReadyError(
        `Model '${model.name}' cannot serve: no version its traffic names (${Object.keys(model.config.traffic!).join(', ')}) is READY`,
      );
    }
    const total = candidates.reduce((sum, c) => sum + c.weight, 0);
    let point = (routingKey === undefined ? Math.random() : hashFraction(routingKey)) * total;
    for (const c of candidates) {
      if (point < c.weight) return c.entry as ReadyModelVersion;
      point -= c.weight;
    }
    return candidates.at(-1)!.entry as ReadyModelVersion;
  }

  /**
   * Whether unversioned requests to the model are answered now: its default version is READY (or,
   * with traffic weights, one of the versions they name). A version that failed beside it does not
   * stop it serving, so it does not make readiness fail.
   */
  serves(model: Model): boolean {
    if (model.config.traffic && !model.problem) {
      return Object.entries(model.config.traffic).some(
        ([v, w]) => w > 0 && model.versions.get(Number(v))?.state === 'READY',
      );
    }
    return model.defaultVersion !== undefined && model.versions.get(model.defaultVersion)?.state === 'READY';
  }

  /** The repository folder, resolved. */
  get repositoryRoot(): string {
    return this.root;
  }

  /** Models unloaded on purpose, and why. */
  unloadedModels(): ReadonlyMap<string, string> {
    return this.unloaded;
  }

  /**
   * Marks a version as used by one request until the returned function is called. Versions taken
   * out of service wait for their leases, so that no request that already chose one loses it.
   */
  lease(entry: ModelVersion): () => void {
    this.leases.set(entry, (this.leases.get(entry) ?? 0) + 1);
    let returned = false;
    return () => {
      if (returned) return;
      returned = true;
      const left = this.leases.get(entry)! - 1;
      this.leases.set(entry, left);
      if (left === 0) this.drainWaiters.get(entry)?.();
    };
  }

  /**
   * Makes what is on disk the model's served state (config.json replaced by `config` when given).
   * New or changed versions load, warm up and pass the self-test first; then the model switches in
   * one step; versions no longer wanted are drained and released. A load asked for while one waits
   * joins it, so concurrent loads never load a version twice.
   */
  load(name: string, config?: ModelConfig): Promise<LoadOutcome> {
    if (config === undefined) {
      const queued = this.queuedLoads.get(name);
      if (queued) return queued;
    }
    const work: Promise<LoadOutcome> = this.serialized(name, () => {
      if (this.queuedLoads.get(name) === work) this.queuedLoads.delete(name);
      return this.reload(name, config);
    });
    if (config === undefined) this.queuedLoads.set(name, work);
    return work;
  }

  /**
   * Takes the model out of service: new requests get 404, those already accepted are answered,
   * then every session is released.
   */
  unload(name: string, why = 'unloaded through the repository API'): Promise<void> {
    return this.serialized(name, () => this.unloadNow(name, why));
  }

  private serialized<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(name) ?? this.loading;
    const next = previous.catch(() => undefined).then(work);
    this.chains.set(name, next);
    void next
      .finally(() => {
        if (this.chains.get(name) === next) this.chains.delete(name);
      })
      .catch(() => undefined);
    return next;
  }

  private async reload(name: string, override?: ModelConfig): Promise<LoadOutcome> {
    const started = performance.now();
    const old = this.models.get(name);
    const present = await fs.stat(path.join(this.root, name)).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!present) {
      if (!old) throw new ModelNotFoundError(`Model '${name}' is not in the repository: there is no folder ${name}/`);
      await this.unloadNow(name, 'its folder left the repository');
      return { model: name, versions: [] };
    }
    const read = await readModelFolder(this.root, name);
    const folder: ModelFolder = override
      ? {
          ...read,
          config: override,
          configError: routingProblem(
            override,
            read.versions.map((v) => v.version),
            'the configuration sent',
          ),
        }
      : read;
    if (old && folder.configError) {
      // A bad config.json must not take down what serves: keep the model as it is, and say why.
      this.models.set(name, { ...old, loadError: folder.configError });
      this.metrics?.observeModelLoad(name, 'failure', (performance.now() - started) / 1000);
      this.logger.error(`model ${name} load FAILED, still serving what was loaded before: ${folder.configError}`);
      throw new ModelLoadFailedError(`Model '${name}' was not loaded: ${folder.configError}`);
    }
    const fresh = this.register(folder);
    const configKey = JSON.stringify(folder.config);
    const reusable = old && !old.problem && JSON.stringify(old.config) === configKey ? old : undefined;
    const versions = new Map<number, ModelVersion>();
    const loads: Promise<void>[] = [];
    for (const v of folder.versions) {
      const entry = fresh.versions.get(v.version)!;
      versions.set(v.version, entry);
      if (entry.state !== 'LOADING') continue;
      const digest = await sha256Of(v.file).catch(() => undefined);
      const kept = reusable?.versions.get(v.version);
      if (kept && kept.state === 'READY' && kept.digest === digest) {
        versions.set(v.version, kept);
        continue;
      }
      loads.push(this.loadVersion(fresh, entry, v.file));
    }
    // One at a time: each load already runs in every worker, and the workers also serve requests.
    for (const load of loads) await load;
    const model: Model = { ...fresh, versions, defaultVersion: this.chooseDefault(fresh, versions, old) };
    this.models.set(name, model);
    this.unloaded.delete(name);
    // A first load's default version is in its "loaded" line below.
    if (old && old.defaultVersion !== model.defaultVersion) {
      this.logger.log(
        `model ${name} default version ${old?.defaultVersion ?? 'none'} -> ${model.defaultVersion ?? 'none'}`,
      );
    }
    const kept = new Set(versions.values());
    const retired = old ? [...old.versions.values()].filter((v) => !kept.has(v)) : [];
    await Promise.all(retired.map((v) => this.retire(v, 'was replaced by a load')));
    const outcome: LoadOutcome = {
      model: name,
      defaultVersion: model.defaultVersion,
      versions: [...versions.values()].map((v) => ({ version: v.version, state: v.state, reason: v.reason })),
    };
    const failed = outcome.versions.filter((v) => v.state === 'FAILED');
    const ms = (performance.now() - started).toFixed(1);
    const seconds = (performance.now() - started) / 1000;
    if (model.problem || failed.length > 0) {
      const why = model.problem ?? failed.map((v) => `version ${v.version}: ${v.reason}`).join('; ');
      this.metrics?.observeModelLoad(name, 'failure', seconds);
      this.logger.error(`model ${name} load FAILED in ${ms} ms: ${why}`);
      throw new ModelLoadFailedError(`Model '${name}' did not load whole: ${why}`);
    }
    this.metrics?.observeModelLoad(name, 'success', seconds);
    const loaded = [...versions.keys()].join(', ');
    this.logger.log(`model ${name} loaded in ${ms} ms: versions ${loaded}, default ${model.defaultVersion}`);
    return outcome;
  }

  /**
   * The version config.json asks for (else the highest) when it is READY; otherwise, on a reload,
   * the version that served before, if it still does; else the highest READY one.
   */
  private chooseDefault(fresh: Model, versions: ReadonlyMap<number, ModelVersion>, old?: Model): number | undefined {
    const wanted = fresh.defaultVersion;
    if (wanted === undefined && fresh.problem) return undefined;
    if (wanted !== undefined && versions.get(wanted)?.state === 'READY') return wanted;
    const before = old?.defaultVersion;
    if (before !== undefined && versions.get(before)?.state === 'READY') return before;
    const ready = [...versions.values()].filter((v) => v.state === 'READY').map((v) => v.version);
    return ready.length > 0 ? Math.max(...ready) : wanted;
  }

  private async unloadNow(name: string, why: string): Promise<void> {
    const model = this.models.get(name);
    if (!model) {
      if (this.unloaded.has(name)) return;
      throw new ModelNotFoundError(`Model '${name}' is not loaded`);
    }
    this.models.delete(name);
    this.unloaded.set(name, why);
    await Promise.all([...model.versions.values()].map((v) => this.retire(v, why)));
  }

  /** Waits for the version's requests, then releases its session in every worker. */
  private async retire(entry: ModelVersion, why: string): Promise<void> {
    const started = performance.now();
    if (this.leases.get(entry)) await new Promise<void>((resolve) => this.drainWaiters.set(entry, resolve));
    const { session, inlineSession, batcher } = entry;
    const was = entry.state;
    batcher?.close(why);
    await batcher?.idle();
    Object.assign(entry, {
      state: 'FAILED',
      reason: why,
      session: undefined,
      inlineSession: undefined,
      batcher: undefined,
    });
    for (const s of [session, inlineSession]) {
      await s
        ?.release()
        .catch((err: Error) => this.logger.warn(`releasing ${entry.model}/${entry.version}: ${err.message}`));
    }
    const ms = (performance.now() - started).toFixed(1);
    this.metrics?.observeModelUnload(entry.model);
    this.logger.log(`model ${entry.model} version ${entry.version} ${was} -> UNLOADED in ${ms} ms (${why})`);
  }

  /** LOADING while any version loads, FAILED (with the reasons) when any failed, READY otherwise. */
  stateOf(model: Model): { state: ModelState; reason?: string } {
    if (model.problem) return { state: 'FAILED', reason: model.problem };
    const versions = [...model.versions.values()];
    if (versions.some((v) => v.state === 'LOADING')) return { state: 'LOADING' };
    const failed = versions.filter((v) => v.state === 'FAILED');
    if (failed.length)
      return { state: 'FAILED', reason: failed.map((v) => `version ${v.version}: ${v.reason}`).join('; ') };
    return { state: 'READY' };
  }

  async onApplicationShutdown(): Promise<void> {
    await this.loading;
    await Promise.allSettled([...this.chains.values()]);
    for (const model of this.models.values()) {
      for (const v of model.versions.values()) {
        const { session, inlineSession, batcher } = v;
        batcher?.close('is shutting down');
        Object.assign(v, {
          state: 'FAILED',
          reason: 'the service is shutting down',
          session: undefined,
          inlineSession: undefined,
          batcher: undefined,
        });
        // A session released under a run in flight would crash its worker: let the runs finish first.
        await batcher?.idle();
        for (const s of [session, inlineSession]) {
          await s
            ?.release()
            .catch((err: Error) => this.logger.warn(`releasing ${v.model}/${v.version}: ${err.message}`));
        }
      }
    }
    await this.runtime.close();
  }

  private register(folder: ModelFolder): Model {
    for (const line of folder.ignored) this.logger.warn(line);
    const numbers = folder.versions.map((v) => v.version);
    let problem = folder.configError;
    if (!problem && numbers.length === 0) {
      problem = `no version folders: expected ${folder.name}/<version>/model.onnx, e.g. ${folder.name}/1/model.onnx`;
    }
    const defaultVersion = folder.config.default_version ?? numbers.at(-1);
    if (!problem && defaultVersion !== undefined && !numbers.includes(defaultVersion)) {
      problem = `${folder.name}/config.json default_version is ${defaultVersion}, but the versions present are ${numbers.join(', ')}`;
    }
    const versions = new Map<number, ModelVersion>();
    for (const v of folder.versions) {
      const reason = problem ?? v.missing;
      versions.set(v.version, { model: folder.name, version: v.version, state: reason ? 'FAILED' : 'LOADING', reason });
    }
    if (problem) this.logger.error(`model ${folder.name} FAILED: ${problem}`);
    return {
      name: folder.name,
      config: folder.config,
      defaultVersion: problem ? undefined : defaultVersion,
      versions,
      problem,
    };
  }

  private async loadAll(folders: readonly ModelFolder[]): Promise<void> {
    for (const folder of folders) {
      const model = this.models.get(folder.name)!;
      const started = performance.now();
      for (const v of folder.versions) {
        const entry = model.versions.get(v.version)!;
        if (entry.state === 'LOADING') await this.loadVersion(model, entry, v.file);
      }
      const state = this.stateOf(model).state;
      const outcome = state === 'READY' ? 'success' : 'failure';
      this.metrics?.observeModelLoad(model.name, outcome, (performance.now() - started) / 1000);
      // Each failed version has had its error line; this is the model's one line at info.
      const versions = [...model.versions.values()].map((v) => `${v.version} ${v.state}`).join(', ');
      const ms = (performance.now() - started).toFixed(1);
      this.logger.log(
        `model ${model.name} ${state} in ${ms} ms: versions ${versions}, default ${model.defaultVersion}`,
      );
    }
  }

  private async loadVersion(model: Model, entry: ModelVersion, file: string): Promise<void> {
    const started = performance.now();
    let session: RuntimeSession | undefined;
    let inlineSession: RuntimeSession | undefined;
    try {
      const digest = sha256Of(file);
      // Awaited once the session is up; if loading fails first, its own error is the one to report.
      digest.catch(() => undefined);
      const options = {
        intraOpNumThreads: this.config.ORT_INTRA_OP_NUM_THREADS,
        interOpNumThreads: this.config.ORT_INTER_OP_NUM_THREADS,
        graphOptimizationLevel: this.config.ORT_GRAPH_OPTIMIZATION_LEVEL,
        cpuMemArena: this.config.ORT_CPU_MEM_ARENA,
      };
      session = await this.runtime.load(file, {
        ...options,
        measureRows: model.config.batching?.max_batch_size ?? this.config.BATCH_MAX_SIZE,
      });
      const signature = buildSignature(session.inputs, session.outputs, model.config);
      if (session.warmUpError)
        this.logger.warn(
          `model ${model.name} version ${entry.version}: warm-up with zeros failed: ${session.warmUpError}`,
        );
      await this.selfTest(signature, session, model.config.samples ?? []);
      const placement = decidePlacement({
        setting: model.config.placement,
        cost: session.cost,
        maxRunUs: this.config.INLINE_MAX_RUN_US,
        inlineAvailable: this.runtime.loadInline !== undefined,
      });
      if (placement.placement === 'inline') {
        inlineSession = await this.runtime.loadInline!(file, options);
        await this.selfTest(signature, inlineSession, model.config.samples ?? []);
      }
      const batching = this.batchingOptions(model.config, signature);
      const batcher = new Batcher(
        session,
        { ...batching, holdMs: holdMsOf(session.cost) },
        `Model '${model.name}' version ${entry.version}`,
        (run) => this.metrics?.observeRun(model.name, entry.version, run),
        () => this.metrics?.observeBatchSplit(model.name, entry.version),
        {
          scheduler: this.scheduler,
          inline: inlineSession && { session: inlineSession, maxRows: placement.inlineMaxRows ?? Infinity },
        },
        { 'inference.model.name': model.name, 'inference.model.version': entry.version },
      );
      Object.assign(entry, {
        state: 'READY',
        signature,
        session,
        inlineSession,
        batcher,
        batching,
        caching: this.cachingOptions(model.config),
        placement,
        digest: await digest,
        reason: undefined,
      });
      const ms = (performance.now() - started).toFixed(1);
      const cost = session.cost
        ? `${session.cost.perRunUs.toFixed(0)} µs a run + ${session.cost.perRowUs.toFixed(1)} µs a row`
        : 'cost not measured';
      // At info each model has one line, once all its versions are loaded (load, above).
      this.logger.debug(
        `model ${model.name} version ${entry.version} READY in ${ms} ms (${model.config.samples?.length ?? 0} self-test samples passed; ` +
          `batching ${batching.enabled ? `up to ${batching.maxBatchSize} rows` : 'off'}; ` +
          `${placement.placement} (${cost}: ${placement.reason}))`,
      );
    } catch (err) {
      await session?.release().catch(() => undefined);
      await inlineSession?.release().catch(() => undefined);
      // Reasons reach clients: name the model file relative to the repository, not the server's path.
      const reason = (err as Error).message.split(this.root + path.sep).join('');
      Object.assign(entry, { state: 'FAILED', reason, session: undefined, inlineSession: undefined });
      this.logger.error(`model ${model.name} version ${entry.version} FAILED: ${entry.reason}`);
    }
  }

  /** config.json's batching over the server-wide defaults; never for a model without a batch dimension. */
  private batchingOptions(config: ModelConfig, signature: ModelSignature): BatchingOptions {
    const own = config.batching ?? {};
    return {
      enabled: signature.batchable && (own.enabled ?? this.config.BATCHING_ENABLED),
      maxBatchSize: own.max_batch_size ?? this.config.BATCH_MAX_SIZE,
      maxQueueDelayMs: own.max_queue_delay_ms ?? this.config.BATCH_MAX_QUEUE_DELAY_MS,
      maxQueueSize: own.max_queue_size ?? this.config.MAX_QUEUE_SIZE,
      concurrency: Math.min(config.instances ?? this.runtime.concurrency, this.runtime.concurrency),
    };
  }

  /** config.json's cache section over the server-wide settings. */
  private cachingOptions(config: ModelConfig): CachingOptions {
    return {
      enabled: this.config.CACHE_ENABLED && (config.cache?.enabled ?? true),
      ttlSeconds: config.cache?.ttl_seconds ?? this.config.CACHE_TTL_SECONDS,
    };
  }

  /** Runs config.json samples and compares outputs, so a broken artifact is never served. */
  private async selfTest(
    signature: ModelSignature,
    session: RuntimeSession,
    samples: readonly ModelSample[],
  ): Promise<void> {
    for (const [i, sample] of samples.entries()) {
      const where = `self-test sample ${i}`;
      const instance = sample.inputs !== undefined ? { inputs: sample.inputs } : { features: sample.features };
      let outputs;
      try {
        const [run] = encodeInstances(signature, [instance], () => `samples[${i}]`);
        [outputs] = decodeOutputs(signature, await session.run(run.feeds), 1);
      } catch (err) {
        const details = (err as { details?: { path: string; message: string }[] }).details ?? [];
        throw new Error(
          `${where}: ${(err as Error).message}${details.map((d) => `; ${d.path}: ${d.message}`).join('')}`,
        );
      }
      for (const [name, expected] of Object.entries(sample.expected)) {
        if (!(name in outputs))
          throw new Error(`${where}: config.json expects output '${name}', which the model does not have`);
        const mismatch = compare(expected, outputs[name], sample.tolerance ?? DEFAULT_TOLERANCE, name);
        if (mismatch) throw new Error(`${where}: ${mismatch}`);
      }
    }
  }
}

/** How long a partial batch may wait for company (holdMs): the measured cost of a run, which each row joining saves. */
const holdMsOf = (cost: RunCost | undefined): number => (cost ? cost.perRunUs / 1000 : 0);

/** Describes the first difference between an expected and an actual output, or undefined when they agree. */
function compare(expected: unknown, actual: JsonTensor, tolerance: number, at: string): string | undefined {
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual) || expected.length !== actual.length) {
      return `${at} expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const m = compare(expected[i], actual[i], tolerance, `${at}[${i}]`);
      if (m) return m;
    }
    return undefined;
  }
  if (typeof expected === 'number' && typeof actual === 'number') {
    return Math.abs(expected - actual) <= tolerance
      ? undefined
      : `${at} expected ${expected}, got ${actual} (tolerance ${tolerance})`;
  }
  return expected === actual ? undefined : `${at} expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
}
