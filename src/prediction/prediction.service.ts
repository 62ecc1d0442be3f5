import { Injectable } from '@nestjs/common';
import { PredictionCache } from '../cache/prediction-cache.service';
import {
  DomainError,
  InferenceFailedError,
  InvalidInputError,
  ModelNotFoundError,
  NonFiniteOutputError,
} from '../common/domain.errors';
import { RequestContext } from '../common/request-context';
import { AppConfig } from '../config/app.config';
import { Model, ModelRegistry, ReadyModelVersion, VersionSelector } from '../models/model.registry';
import { MetricsService } from '../observability/metrics.service';
import { ModelSignature, ModelState, TensorData, TensorSpec } from '../models/model.types';
import { decodeOutputs, encodeInstances, InstanceOutputs } from '../models/instance.codec';
import { encodeTensors, JsonTensor, TensorInput } from '../models/tensor.codec';
import { BatchingOptions } from '../models/batching/batcher';
import { PlacementDecision } from '../models/placement';
import { VersionStatistics } from '../observability/inference-statistics';

/** The answer for one instance. Classifier fields are null for models that are not classifiers. */
export interface Prediction {
  readonly prediction: number | null;
  readonly label: string | null;
  readonly probability: number | null;
  readonly probabilities: number[] | null;
  readonly outputs: InstanceOutputs;
}

export interface PredictionResult {
  readonly model: string;
  readonly version: number;
  readonly predictions: Prediction[];
  readonly latencyMs: number;
}

/** The default model's answer, which is a classifier's: every prediction has a class. */
export interface ClassifiedResult extends PredictionResult {
  readonly predictions: (Prediction & { readonly prediction: number })[];
}

/** The answer to whole tensors in: whole tensors out, for tensor protocols. */
export interface TensorResult {
  readonly model: string;
  readonly version: number;
  readonly outputs: Record<string, TensorData>;
  readonly labels?: readonly string[];
}

export interface VersionStatus {
  readonly version: number;
  readonly state: ModelState;
  readonly reason?: string;
}

export interface ModelSummary {
  readonly name: string;
  readonly description?: string;
  readonly defaultVersion: number | null;
  readonly state: ModelState;
  readonly reason?: string;
  readonly versions: VersionStatus[];
  readonly versionLabels?: Readonly<Record<string, number>>;
  readonly traffic?: Readonly<Record<string, number>>;
}

/** One version of a model (the default unless asked), as every protocol's metadata route describes it. */
export interface ModelDescription extends ModelSummary {
  readonly version: number;
  readonly versionState: ModelState;
  readonly platform: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly batchable: boolean;
  readonly labels: readonly string[] | null;
  readonly features: readonly string[] | null;
  readonly labelOutput: string | null;
  readonly probabilityOutput: string | null;
  /** How the version is batched and how many workers run it; null until it is loaded. */
  readonly batching: BatchingOptions | null;
  /** Where its runs go and what a run cost at warm-up; null until it is loaded. */
  readonly placement: PlacementDecision | null;
}

/** One model version's inference statistics (see observability/inference-statistics.ts). */
export interface VersionStatisticsEntry {
  readonly model: string;
  readonly version: number;
  readonly statistics: VersionStatistics;
}

function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Where in an output the first NaN or infinity is (`[2]`, `[0][1]`, or `` for a scalar), if anywhere. */
function nonFiniteAt(value: JsonTensor): { at: string; value: number } | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : { at: '', value };
  if (!Array.isArray(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const found = nonFiniteAt(value[i]);
    if (found) return { at: `[${i}]${found.at}`, value: found.value };
  }
  return undefined;
}

/**
 * A prediction, label or probability read from NaN or an infinity would be an answer made from no number
 * (argmax over NaN is index 0; JSON writes NaN as null): the instance is refused, naming the output.
 */
function checkFinite(model: string, predictions: readonly Prediction[], pathOf: (i: number) => string): void {
  for (let i = 0; i < predictions.length; i++) {
    for (const [name, value] of Object.entries(predictions[i].outputs)) {
      const found = nonFiniteAt(value);
      if (!found) continue;
      const instance = pathOf(i) || 'body';
      throw new NonFiniteOutputError(
        `Model '${model}' computed ${found.value} in output '${name}' for ${instance === 'body' ? 'the instance' : instance}; ` +
          "no prediction can be read from it (check the input's scale; /v2 returns such values as they are)",
        [{ path: instance, message: `output '${name}'${found.at} is ${found.value}` }],
      );
    }
  }
}

/** Reads an instance's outputs as a classifier's answer, where the signature names the outputs. */
function readClassifier(signature: ModelSignature, outputs: InstanceOutputs): Prediction {
  const raw = signature.probabilityOutput ? outputs[signature.probabilityOutput] : undefined;
  const probabilities = Array.isArray(raw) && raw.every((p) => typeof p === 'number') ? raw : null;
  const labelValue = signature.labelOutput ? outputs[signature.labelOutput] : undefined;
  let prediction: number | null = null;
  let label: string | null = null;
  if (typeof labelValue === 'number') prediction = labelValue;
  else if (typeof labelValue === 'string') {
    label = labelValue;
    const index = signature.labels?.indexOf(labelValue) ?? -1;
    prediction = index >= 0 ? index : null;
  } else if (probabilities) prediction = argmax(probabilities);
  if (label === null && prediction !== null) label = signature.labels?.[prediction] ?? null;
  const probability = probabilities && prediction !== null ? (probabilities[prediction] ?? null) : null;
  return { prediction, label, probability, probabilities, outputs };
}

/**
 * The business of the service, independent of any protocol: find the model, check the input
 * against it, run it, and read the answer. Every protocol's routes call this.
 */
@Injectable()
export class PredictionService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly config: AppConfig,
    private readonly metrics: MetricsService,
    private readonly cache: PredictionCache,
  ) {}

  /**
   * Predicts for a list of instances in as few runtime calls as the model allows.
   * `pathOf` names each instance in error details (`instances[3]`, or `` for a single body);
   * `context` carries the deadline and cancellation, and receives what was resolved.
   */
  async predict(
    modelName: string,
    version: VersionSelector | undefined,
    instances: readonly unknown[],
    pathOf: (i: number) => string,
    context?: RequestContext,
  ): Promise<PredictionResult> {
    const started = performance.now();
    const entry = this.registry.servingVersion(modelName, version, context?.routingKey);
    if (context) context.served = { model: entry.model, version: entry.version, batchSize: instances.length };
    return this.measured(entry, () => this.predictWith(entry, instances, pathOf, context, started));
  }

  private async predictWith(
    entry: ReadyModelVersion,
    instances: readonly unknown[],
    pathOf: (i: number) => string,
    context: RequestContext | undefined,
    started: number,
  ): Promise<PredictionResult> {
    if (instances.length > this.config.MAX_BATCH_SIZE) {
      throw new InvalidInputError(
        `The batch has ${instances.length} instances; the limit is ${this.config.MAX_BATCH_SIZE} (MAX_BATCH_SIZE)`,
        [{ path: 'instances', message: `at most ${this.config.MAX_BATCH_SIZE} instances per request` }],
      );
    }

    // Validation happens here, before queueing, so one bad request never spoils a batch.
    const runs = encodeInstances(entry.signature, instances, pathOf);
    const results = await Promise.all(
      runs.map((run) => this.asRunFailure(entry, this.cache.submit(entry, run, context))),
    );
    const predictions = runs.flatMap((run, i) =>
      decodeOutputs(entry.signature, results[i], run.count).map((o) => readClassifier(entry.signature, o)),
    );
    checkFinite(entry.model, predictions, pathOf);
    return {
      model: entry.model,
      version: entry.version,
      predictions,
      latencyMs: Number((performance.now() - started).toFixed(3)),
    };
  }

  /**
   * Runs whole tensors (batch dimension included), as tensor protocols send them, through the same
   * validation, batcher and error handling as predict().
   */
  async infer(
    modelName: string,
    version: VersionSelector | undefined,
    inputs: readonly TensorInput[],
    context?: RequestContext,
  ): Promise<TensorResult> {
    const entry = this.registry.servingVersion(modelName, version, context?.routingKey);
    return this.measured(entry, () => this.inferWith(entry, inputs, context));
  }

  private async inferWith(
    entry: ReadyModelVersion,
    inputs: readonly TensorInput[],
    context?: RequestContext,
  ): Promise<TensorResult> {
    const run = encodeTensors(entry.signature, inputs, (i) => `inputs[${i}]`);
    if (context) context.served = { model: entry.model, version: entry.version, batchSize: run.count };
    if (run.count > this.config.MAX_BATCH_SIZE) {
      throw new InvalidInputError(
        `The batch has ${run.count} rows; the limit is ${this.config.MAX_BATCH_SIZE} (MAX_BATCH_SIZE)`,
        [{ path: 'inputs', message: `at most ${this.config.MAX_BATCH_SIZE} rows per request` }],
      );
    }
    const outputs = await this.asRunFailure(entry, this.cache.submit(entry, run, context));
    return { model: entry.model, version: entry.version, outputs, labels: entry.signature.labels };
  }

  /** Whether a model (or one version of it) can serve now; unknown models and versions throw. */
  isReady(modelName: string, version?: VersionSelector): boolean {
    const found = this.registry.findVersion(modelName, version);
    // Unversioned, it is what answers unversioned requests: the default, or the versions traffic names.
    return version === undefined ? this.registry.serves(found.model) : found.entry?.state === 'READY';
  }

  /** Predicts with the default model (see defaultModelName), which must be a classifier. */
  async predictDefault(
    instances: readonly unknown[],
    pathOf: (i: number) => string,
    context?: RequestContext,
  ): Promise<ClassifiedResult> {
    const model = this.defaultModelName();
    const result = await this.predict(model, undefined, instances, pathOf, context);
    if (result.predictions.some((p) => p.prediction === null)) {
      throw new InvalidInputError(
        `The default model '${model}' is not a classifier; use POST /v1/models/${model}/predict`,
      );
    }
    return result as ClassifiedResult;
  }

  /** The model the short routes (/predict) answer with: DEFAULT_MODEL, or the repository's only model. */
  defaultModelName(): string {
    const names = this.registry.list().map((m) => m.name);
    const wanted = this.config.DEFAULT_MODEL;
    if (wanted && names.includes(wanted)) return wanted;
    if (names.length === 1) return names[0];
    throw new ModelNotFoundError(
      `No default model: DEFAULT_MODEL is ${wanted ? `'${wanted}', which is not in the repository` : 'unset'}; models: ${names.join(', ') || 'none'}`,
    );
  }

  listModels(): ModelSummary[] {
    return this.registry.list().map((m) => this.summarize(m));
  }

  describeModel(name: string, version?: VersionSelector): ModelDescription {
    const found = this.registry.findVersion(name, version);
    const model = found.model;
    // A model without a usable default is still described, by its first version.
    const entry = found.entry ?? model.versions.values().next().value;
    if (!entry) throw new ModelNotFoundError(`Model '${name}' has no versions`);
    const signature = entry.signature;
    return {
      ...this.summarize(model),
      version: entry.version,
      versionState: entry.state,
      platform: this.registry.platform,
      inputs: signature?.inputs ?? [],
      outputs: signature?.outputs ?? [],
      batchable: signature?.batchable ?? false,
      labels: model.config.labels ?? null,
      features: model.config.features ?? null,
      labelOutput: signature?.labelOutput ?? null,
      probabilityOutput: signature?.probabilityOutput ?? null,
      batching: entry.batching ?? null,
      placement: entry.placement ?? null,
    };
  }

  /**
   * Inference statistics of every version of every model, of one model's versions, or of one
   * version; an unknown model or version throws as everywhere else.
   */
  statistics(modelName?: string, version?: VersionSelector): VersionStatisticsEntry[] {
    const found = modelName === undefined ? undefined : this.registry.findVersion(modelName, version);
    const models = found ? [found.model] : this.registry.list();
    // A label names one version: the number it stands for now.
    const number = found ? (version === undefined ? undefined : found.entry?.version) : (version as number | undefined);
    return models.flatMap((m) =>
      [...m.versions.values()]
        .filter((v) => number === undefined || v.version === number)
        .map((v) => ({
          model: m.name,
          version: v.version,
          statistics: this.metrics.statistics.get(m.name, v.version),
        })),
    );
  }

  private summarize(model: Model): ModelSummary {
    return {
      name: model.name,
      description: model.config.description,
      defaultVersion: model.defaultVersion ?? null,
      ...this.registry.stateOf(model),
      versions: [...model.versions.values()].map((v) => ({ version: v.version, state: v.state, reason: v.reason })),
      versionLabels: model.config.version_labels,
      traffic: model.config.traffic,
    };
  }

  /** Counts a request against its model version as answered (with its duration) or failed (with its code). */
  private async measured<T>(entry: ReadyModelVersion, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    // Held until answered, so that a load replacing this version waits for this request.
    const done = this.registry.lease(entry);
    try {
      const result = await work();
      this.metrics.observeInference(entry.model, entry.version, (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      // The duration feeds only the statistics extension's fail.ns; the Prometheus histogram counts answers alone.
      const seconds = (performance.now() - started) / 1000;
      this.metrics.observeInference(
        entry.model,
        entry.version,
        seconds,
        err instanceof DomainError ? err.code : 'INTERNAL',
      );
      throw err;
    } finally {
      done();
    }
  }

  /** Domain errors (queue full, deadline, shutting down) pass through; anything else is a fault of the run. */
  private async asRunFailure<T>(entry: ReadyModelVersion, run: Promise<T>): Promise<T> {
    try {
      return await run;
    } catch (err) {
      if (err instanceof DomainError) throw err;
      throw new InferenceFailedError(
        `Model '${entry.model}' version ${entry.version} failed to run: ${(err as Error).message}`,
      );
    }
  }
}
