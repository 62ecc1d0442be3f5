import { DefaultModelBatchResponseDto, DefaultModelPredictResponseDto } from './dto/default-model.dto';
import { ModelDescriptionDto, ModelSummaryDto } from './dto/model.dto';
import { BatchPredictResponseDto, PredictResponseDto } from './dto/prediction.dto';
import { ClassifiedResult, ModelDescription, ModelSummary, PredictionResult } from './prediction.service';

/**
 * The service's own REST API (v1, and the default model's short routes kept from the FastAPI
 * service it replaces): PredictionService's answers in these routes' snake_case field names.
 */

export const toSummary = (m: ModelSummary): ModelSummaryDto => ({
  name: m.name,
  description: m.description,
  default_version: m.defaultVersion,
  state: m.state,
  reason: m.reason,
  versions: m.versions,
  version_labels: m.versionLabels,
  traffic: m.traffic,
});

/** Measured µs to a tenth: finer figures are noise. */
const round = (us: number): number => Math.round(us * 10) / 10;

export const toDescription = (d: ModelDescription): ModelDescriptionDto => ({
  ...toSummary(d),
  version: d.version,
  version_state: d.versionState,
  platform: d.platform,
  inputs: d.inputs,
  outputs: d.outputs,
  batchable: d.batchable,
  labels: d.labels,
  features: d.features,
  label_output: d.labelOutput,
  probability_output: d.probabilityOutput,
  placement:
    d.placement && d.batching
      ? {
          placement: d.placement.placement,
          setting: d.placement.setting,
          reason: d.placement.reason,
          instances: d.batching.concurrency,
          inline_max_rows: Number.isFinite(d.placement.inlineMaxRows) ? d.placement.inlineMaxRows! : null,
          run_cost_us: d.placement.cost ? round(d.placement.cost.perRunUs) : null,
          row_cost_us: d.placement.cost ? round(d.placement.cost.perRowUs) : null,
        }
      : null,
});

export const toPredictResponse = (r: PredictionResult): PredictResponseDto => ({
  model: r.model,
  version: r.version,
  ...r.predictions[0],
  latency_ms: r.latencyMs,
});

export const toBatchResponse = (r: PredictionResult): BatchPredictResponseDto => ({
  model: r.model,
  version: r.version,
  predictions: r.predictions,
  latency_ms: r.latencyMs,
});

export function toDefaultModelResponse(r: ClassifiedResult): DefaultModelPredictResponseDto {
  const [p] = r.predictions;
  return {
    prediction: p.prediction,
    probability: p.probability,
    class_name: p.label,
    model_version: String(r.version),
    latency_ms: r.latencyMs,
  };
}

export const toDefaultModelBatchResponse = (r: ClassifiedResult): DefaultModelBatchResponseDto => ({
  predictions: r.predictions.map((p) => p.prediction),
  probabilities: r.predictions.map((p) => p.probability),
  class_names: r.predictions.map((p) => p.label),
  model_version: String(r.version),
  latency_ms: r.latencyMs,
});
