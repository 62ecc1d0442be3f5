import 'reflect-metadata';
import { plainToInstance, Type } from 'class-transformer';
import { IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, Min, validateSync } from 'class-validator';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimizationLevel = (typeof GRAPH_OPTIMIZATION_LEVELS)[number];

/**
 * Every setting the service reads from the environment, with its default. Validated once at start
 * so a typo stops the process with a message naming the variable, instead of surfacing later.
 * The README's configuration table mirrors this class.
 */
export class AppConfig {
  @Type(() => Number)
  @IsInt({ message: 'PORT must be an integer between 0 and 65535' })
  @Min(0, { message: 'PORT must be an integer between 0 and 65535' })
  @Max(65535, { message: 'PORT must be an integer between 0 and 65535' })
  readonly PORT: number = 8000;

  @IsString()
  @IsNotEmpty({ message: 'HOST must not be empty' })
  readonly HOST: string = '0.0.0.0';

  @IsString()
  @IsNotEmpty({ message: 'MODEL_REPOSITORY must be a directory path' })
  readonly MODEL_REPOSITORY: string = './models';

  /** Model answering the lesson's routes (/predict, /predict/batch). */
  @IsOptional()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, { message: 'DEFAULT_MODEL must be a model folder name' })
  readonly DEFAULT_MODEL?: string = 'iris';

  @Type(() => Number)
  @IsInt({ message: 'MAX_BATCH_SIZE must be an integer between 1 and 100000' })
  @Min(1, { message: 'MAX_BATCH_SIZE must be an integer between 1 and 100000' })
  @Max(100000, { message: 'MAX_BATCH_SIZE must be an integer between 1 and 100000' })
  readonly MAX_BATCH_SIZE: number = 1024;

  @Matches(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, { message: 'BODY_LIMIT must be a size such as 1mb, 512kb or 1048576' })
  readonly BODY_LIMIT: string = '1mb';

  @IsIn(LOG_LEVELS, { message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` })
  readonly LOG_LEVEL: LogLevelName = 'info';

  @IsIn(['json', 'text'], { message: 'LOG_FORMAT must be json or text' })
  readonly LOG_FORMAT: 'json' | 'text' = 'json';

  /** Comma-separated origins, `*` for any, `none` to refuse cross-origin browser calls. */
  @IsString()
  readonly CORS_ORIGINS: string = '*';

  @Type(() => Number)
  @IsInt({ message: 'ORT_INTRA_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  @Min(0, { message: 'ORT_INTRA_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  @Max(256, { message: 'ORT_INTRA_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  readonly ORT_INTRA_OP_NUM_THREADS: number = 1;

  @Type(() => Number)
  @IsInt({ message: 'ORT_INTER_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  @Min(0, { message: 'ORT_INTER_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  @Max(256, { message: 'ORT_INTER_OP_NUM_THREADS must be an integer between 0 and 256 (0: onnxruntime decides)' })
  readonly ORT_INTER_OP_NUM_THREADS: number = 1;

  @IsIn(GRAPH_OPTIMIZATION_LEVELS, {
    message: `ORT_GRAPH_OPTIMIZATION_LEVEL must be one of ${GRAPH_OPTIMIZATION_LEVELS.join(', ')}`,
  })
  readonly ORT_GRAPH_OPTIMIZATION_LEVEL: GraphOptimizationLevel = 'all';

  /** Origins as a list, or true for any; false when cross-origin access is off. */
  corsOrigins(): string[] | boolean {
    const origins = this.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean);
    if (origins.length === 0 || origins.includes('none')) return false;
    return origins.includes('*') ? true : origins;
  }
}

const KEYS = Object.keys(new AppConfig()) as (keyof AppConfig)[];

export class ConfigError extends Error {}

/** Builds the configuration from environment variables; unset or empty variables take the default. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const given: Record<string, string> = {};
  for (const key of KEYS) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') given[key] = value.trim();
  }
  const config = plainToInstance(AppConfig, given);
  const errors = validateSync(config);
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const message = Object.values(e.constraints ?? {})[0] ?? 'is invalid';
      return `${message} (got ${JSON.stringify(given[e.property])})`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return config;
}
