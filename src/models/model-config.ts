import { plainToInstance, Type } from 'class-transformer';
import {
  ArrayNotEmpty,
  ArrayUnique,
  IsArray,
  IsBoolean,
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
  if (errors.length > 0) {
    throw new Error(
      `${file} is invalid: ${flattenValidationErrors(errors)
        .map((d) => `${d.path}: ${d.message}`)
        .join('; ')}`,
    );
  }
  return config;
}
