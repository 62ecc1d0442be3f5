import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  Max,
  IsNotEmpty,
  IsNumber,
  IsObject,
  IsOptional,
  IsString,
  Min,
  ValidateNested,
  validateSync,
} from 'class-validator';
import { VERSION, VERSION_LABEL } from '../common/model-names';
import { flattenValidationErrors } from '../common/validation-errors';

/** One known input with the outputs the model must produce for it (a self-test run after loading). */
export class ModelSample {
  /** Same forms as a prediction: a feature array, or named features. */
  @IsOptional()
  readonly features?: unknown;

  @IsOptional()
  @IsObject()
  readonly inputs?: Record<string, unknown>;

  /** Expected value of each named output for this one instance. */
  @IsObject()
  readonly expected!: Record<string, unknown>;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  readonly tolerance?: number;
}

/** Dynamic batching of this model; unset fields take the server-wide defaults. */
export class ModelBatchingConfig {
  @IsOptional()
  @IsBoolean()
  readonly enabled?: boolean;

  @IsOptional()
  @IsInt()
  @Min(1)
  readonly max_batch_size?: number;

  @IsOptional()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(0)
  @Max(1000)
  readonly max_queue_delay_ms?: number;

  @IsOptional()
  @IsInt()
  @Min(1)
  readonly max_queue_size?: number;
}

/** Prediction caching of this model; unset fields take the server-wide defaults. */
export class ModelCacheConfig {
  @IsOptional()
  @IsBoolean()
  readonly enabled?: boolean;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(31536000)
  readonly ttl_seconds?: number;
}

export class LatestVersionsPolicy {
  @IsInt()
  @Min(1)
  readonly num_versions!: number;
}

export class SpecificVersionsPolicy {
  @IsArray()
  @ArrayNotEmpty()
  @ArrayUnique()
  @IsInt({ each: true })
  @Min(1, { each: true })
  readonly versions!: number[];
}

/** Which version folders are served, in Triton's terms; exactly one of the three. */
export class VersionPolicy {
  @IsOptional()
  @IsObject()
  readonly all?: Record<string, never>;

  @IsOptional()
  @ValidateNested()
  @Type(() => LatestVersionsPolicy)
  readonly latest?: LatestVersionsPolicy;

  @IsOptional()
  @ValidateNested()
  @Type(() => SpecificVersionsPolicy)
  readonly specific?: SpecificVersionsPolicy;
}

/** Where a version's runs go: `auto` decides by the cost measured at warm-up (placement.ts). */
export const PLACEMENTS = ['auto', 'inline', 'worker'] as const;
export type PlacementSetting = (typeof PLACEMENTS)[number];

/** The optional `<model>/config.json` of a model folder. */
export class ModelConfig {
  @IsOptional()
  @IsString()
  readonly description?: string;

  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @IsString({ each: true })
  readonly labels?: string[];

  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @ArrayUnique()
  @IsString({ each: true })
  @IsNotEmpty({ each: true })
  readonly features?: string[];

  @IsOptional()
  @IsString()
  readonly label_output?: string;

  @IsOptional()
  @IsString()
  readonly probability_output?: string;

  @IsOptional()
  @IsInt()
  @Min(1)
  readonly default_version?: number;

  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => ModelSample)
  readonly samples?: ModelSample[];

  @IsOptional()
  @ValidateNested()
  @Type(() => ModelBatchingConfig)
  readonly batching?: ModelBatchingConfig;

  @IsOptional()
  @ValidateNested()
  @Type(() => ModelCacheConfig)
  readonly cache?: ModelCacheConfig;

  /** Most inference workers one version holds at once (Triton's instance_group count); default the whole pool. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(64)
  readonly instances?: number;

  @IsOptional()
  @IsIn(PLACEMENTS, { message: `placement must be one of ${PLACEMENTS.join(', ')}` })
  readonly placement?: PlacementSetting;

  /** `{"all": {}}` (the default), `{"latest": {"num_versions": N}}` or `{"specific": {"versions": [...]}}`. */
  @IsOptional()
  @ValidateNested()
  @Type(() => VersionPolicy)
  readonly version_policy?: VersionPolicy;

  /** Names for versions, as TF Serving's version_labels: `{"stable": 1, "canary": 2}`. */
  @IsOptional()
  @IsObject()
  readonly version_labels?: Record<string, number>;

  /** How unversioned requests are split between versions, by weight: `{"1": 90, "2": 10}`. */
  @IsOptional()
  @IsObject()
  readonly traffic?: Record<string, number>;
}

/** What is wrong with config.json's version_labels and traffic on their own, or undefined. */
function routingShapeProblem(config: ModelConfig): string | undefined {
  for (const [label, version] of Object.entries(config.version_labels ?? {})) {
    if (!VERSION_LABEL.test(label))
      return `version_labels: '${label}' is not a label name (a letter or _ first, then letters, digits, _ . -)`;
    if (!Number.isInteger(version) || version < 1)
      return `version_labels.${label}: must be a version number (a positive integer), got ${JSON.stringify(version)}`;
  }
  const weights = Object.entries(config.traffic ?? {});
  if (config.traffic && weights.length === 0) return 'traffic: must name at least one version';
  for (const [version, weight] of weights) {
    if (!VERSION.test(version)) return `traffic: '${version}' is not a version number`;
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0)
      return `traffic.${version}: must be a whole, non-negative weight, got ${JSON.stringify(weight)}`;
  }
  if (weights.length > 0 && weights.every(([, w]) => w === 0)) return 'traffic: at least one weight must be above 0';
  return undefined;
}

/**
 * Whether config.json's version_labels and traffic name only versions that are served (on disk and
 * kept by version_policy); the reason when not.
 */
export function routingProblem(config: ModelConfig, served: readonly number[], file: string): string | undefined {
  const missing = (v: number) => !served.includes(v);
  const present = served.length ? served.join(', ') : 'none';
  for (const [label, version] of Object.entries(config.version_labels ?? {})) {
    if (missing(version))
      return `${file} version_labels.${label} names version ${version}, which is not served (served: ${present})`;
  }
  for (const [version, weight] of Object.entries(config.traffic ?? {})) {
    if (weight > 0 && missing(Number(version)))
      return `${file} traffic names version ${version}, which is not served (served: ${present})`;
  }
  return undefined;
}

/** The version numbers a policy serves out of those on disk (sorted ascending). */
export function selectVersions(policy: VersionPolicy | undefined, present: readonly number[]): number[] {
  if (policy?.latest) return present.slice(-policy.latest.num_versions);
  if (policy?.specific) return present.filter((v) => policy.specific!.versions.includes(v));
  return [...present];
}

/**
 * Parses and validates the text of a config.json. Throws an Error whose message names the file
 * and every offending field.
 */
export function parseModelConfig(text: string, file: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`${file} must hold a JSON object`);
  }
  const config = plainToInstance(ModelConfig, raw);
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: true });
  const policy = config.version_policy;
  if (errors.length === 0 && policy && Object.keys(policy).filter((k) => k in policy).length !== 1) {
    throw new Error(`${file} is invalid: version_policy: must hold exactly one of all, latest, specific`);
  }
  const routing = errors.length === 0 ? routingShapeProblem(config) : undefined;
  if (routing) throw new Error(`${file} is invalid: ${routing}`);
  if (errors.length > 0) {
    throw new Error(
      `${file} is invalid: ${flattenValidationErrors(errors)
        .map((d) => `${d.path}: ${d.message}`)
        .join('; ')}`,
    );
  }
  return config;
}
