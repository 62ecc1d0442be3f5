import 'reflect-metadata';
import { plainToInstance, Transform, Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsNumber,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  Validate,
  validateSync,
} from 'class-validator';
import { ApiKeysSyntax, OpenPathsSyntax } from './security.validators';
import { MODEL_NAME } from '../common/model-names';
import { DOCS_PATHS, PROBE_PATHS } from '../common/probe-paths';
import { usableCpus } from './cpu-count';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'verbose'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimizationLevel = (typeof GRAPH_OPTIMIZATION_LEVELS)[number];
export const MODEL_CONTROL_MODES = ['none', 'explicit', 'poll'] as const;
export type ModelControlMode = (typeof MODEL_CONTROL_MODES)[number];

const BOOLEANS: Record<string, boolean> = {
  true: true,
  false: false,
  '1': true,
  '0': false,
  on: true,
  off: false,
  yes: true,
  no: false,
};

/** Leaves values that are not a known spelling of a boolean as they are, so validation names them. */
const toBoolean = ({ value }: { value: unknown }) =>
  typeof value === 'string' ? (BOOLEANS[value.toLowerCase()] ?? value) : value;

/**
 * One core is left to the event loop (HTTP parsing, validation, JSON) and the rest run inference;
 * on a one-core machine the single worker still keeps the event loop free between runs. Cores are
 * counted within a container's CPU limit.
 */
const DEFAULT_WORKERS = Math.max(1, usableCpus() - 1);

/** A whole number in [min, max], read from its environment string; the message names the variable. */
function IntBetween(min: number, max: number, hint = ''): PropertyDecorator {
  return (target, key) => {
    const message = `${String(key)} must be an integer between ${min} and ${max}${hint}`;
    for (const decorate of [Type(() => Number), IsInt({ message }), Min(min, { message }), Max(max, { message })])
      decorate(target, key);
  };
}

/**
 * Every setting the service reads from the environment, with its default. Validated once at start
 * so a typo stops the process with a message naming the variable, instead of surfacing later.
 * The README's configuration table mirrors this class.
 */
export class AppConfig {
  @IntBetween(0, 65535)
  readonly PORT: number = 8000;

  /** `::`: IPv6 and IPv4 alike (0.0.0.0 where there is no IPv6: http/listen-host.ts); an address: that one alone. */
  @IsString()
  @IsNotEmpty({ message: 'HOST must not be empty' })
  readonly HOST: string = '::';

  @IsString()
  @IsNotEmpty({ message: 'MODEL_REPOSITORY must be a directory path' })
  readonly MODEL_REPOSITORY: string = './models';

  /**
   * How models change while serving: `none` (read once at start-up), `explicit` (the repository
   * extension's load and unload routes), `poll` (changes on disk applied every REPOSITORY_POLL_SECONDS).
   */
  @IsIn(MODEL_CONTROL_MODES, { message: `MODEL_CONTROL_MODE must be one of ${MODEL_CONTROL_MODES.join(', ')}` })
  readonly MODEL_CONTROL_MODE: ModelControlMode = 'none';

  @IntBetween(1, 86400)
  readonly REPOSITORY_POLL_SECONDS: number = 5;

  /** Model answering the lesson's routes (/predict, /predict/batch). */
  @IsOptional()
  @Matches(MODEL_NAME, { message: 'DEFAULT_MODEL must be a model folder name' })
  readonly DEFAULT_MODEL?: string = 'iris';

  @IntBetween(1, 100000)
  readonly MAX_BATCH_SIZE: number = 1024;

  @Matches(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, { message: 'BODY_LIMIT must be a size such as 1mb, 512kb or 1048576' })
  readonly BODY_LIMIT: string = '1mb';

  /** Fastify by default: it does measurably less work per request than Express (docs/PERFORMANCE.md). */
  @IsIn(['express', 'fastify'], { message: 'HTTP_ADAPTER must be express or fastify' })
  readonly HTTP_ADAPTER: 'express' | 'fastify' = 'fastify';

  @IsIn(LOG_LEVELS, { message: `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}` })
  readonly LOG_LEVEL: LogLevelName = 'info';

  @IsIn(['json', 'text'], { message: 'LOG_FORMAT must be json or text' })
  readonly LOG_FORMAT: 'json' | 'text' = 'json';

  /** Comma-separated origins, `*` for any, `none` to refuse cross-origin browser calls. */
  @IsString()
  readonly CORS_ORIGINS: string = '*';

  @IntBetween(0, 256, ' (0: onnxruntime decides)')
  readonly ORT_INTRA_OP_NUM_THREADS: number = 1;

  @IntBetween(0, 256, ' (0: onnxruntime decides)')
  readonly ORT_INTER_OP_NUM_THREADS: number = 1;

  @IsIn(GRAPH_OPTIMIZATION_LEVELS, {
    message: `ORT_GRAPH_OPTIMIZATION_LEVEL must be one of ${GRAPH_OPTIMIZATION_LEVELS.join(', ')}`,
  })
  readonly ORT_GRAPH_OPTIMIZATION_LEVEL: GraphOptimizationLevel = 'all';

  /**
   * onnxruntime's CPU memory arena per session. Off by default: with it, memory of models unloaded
   * and loaded again stayed with the process instead of returning (test/model-memory.e2e-spec.ts).
   */
  @Transform(toBoolean)
  @IsBoolean({ message: 'ORT_CPU_MEM_ARENA must be true or false' })
  readonly ORT_CPU_MEM_ARENA: boolean = false;

  @IntBetween(1, 64)
  readonly INFERENCE_WORKERS: number = DEFAULT_WORKERS;

  @Transform(toBoolean)
  @IsBoolean({ message: 'BATCHING_ENABLED must be true or false' })
  readonly BATCHING_ENABLED: boolean = true;

  /**
   * A model whose runs cost less than this (measured at warm-up) runs on the event loop instead of a
   * worker, in batches whose estimated cost stays under it; 0 keeps every model on the workers.
   */
  @IntBetween(0, 100000)
  readonly INLINE_MAX_RUN_US: number = 100;

  /** Most rows in one coalesced run, unless a model's config.json says otherwise. */
  @IntBetween(1, 100000)
  readonly BATCH_MAX_SIZE: number = 64;

  /** How long a partial batch may wait for more rows while an inference worker is free. */
  @Type(() => Number)
  @IsNumber(
    { allowNaN: false, allowInfinity: false },
    { message: 'BATCH_MAX_QUEUE_DELAY_MS must be a number between 0 and 1000' },
  )
  @Min(0, { message: 'BATCH_MAX_QUEUE_DELAY_MS must be a number between 0 and 1000' })
  @Max(1000, { message: 'BATCH_MAX_QUEUE_DELAY_MS must be a number between 0 and 1000' })
  readonly BATCH_MAX_QUEUE_DELAY_MS: number = 0;

  /** Most rows waiting per model version; beyond it requests get 503 QUEUE_FULL. */
  @IntBetween(1, 1000000)
  readonly MAX_QUEUE_SIZE: number = 4096;

  /** Deadline for a request to start running, unless it sends X-Request-Timeout-Ms. */
  @IntBetween(1, 600000)
  readonly REQUEST_TIMEOUT_MS: number = 30000;

  /** Whether LOG_LEVEL lets lines of this level through. */
  logsAt(level: LogLevelName): boolean {
    return LOG_LEVELS.indexOf(this.LOG_LEVEL) >= LOG_LEVELS.indexOf(level);
  }

  /** BODY_LIMIT in bytes (k, m and g are powers of 1024, as Express reads them). */
  bodyLimitBytes(): number {
    const [, amount, unit = 'b'] = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(this.BODY_LIMIT)!;
    return Math.floor(Number(amount) * 1024 ** ['b', 'kb', 'mb', 'gb'].indexOf(unit.toLowerCase()));
  }

  /** After SIGTERM: how long readiness says 503 while requests are still accepted, for load balancers to notice. */
  @IntBetween(0, 600000)
  readonly SHUTDOWN_GRACE_MS: number = 5000;

  /**
   * After the grace period: how long accepted and queued requests may take to finish before the process exits anyway.
   */
  @IntBetween(0, 600000)
  readonly SHUTDOWN_TIMEOUT_MS: number = 20000;

  /** Cache repeated predictions (config.json `cache.enabled` turns it off per model). */
  @Transform(toBoolean)
  @IsBoolean({ message: 'CACHE_ENABLED must be true or false' })
  readonly CACHE_ENABLED: boolean = true;

  /** Most entries (one per instance) of the in-memory cache; the least recently used go first. */
  @IntBetween(1, 10000000)
  readonly CACHE_MAX_ENTRIES: number = 10000;

  /** How long a cached prediction lives, unless a model's config.json says otherwise. */
  @IntBetween(1, 31536000)
  readonly CACHE_TTL_SECONDS: number = 3600;

  /** Prefix of every cache key, so several services (or environments) can share one Redis. */
  @Matches(/^[\x21-\x7e]{0,64}$/, {
    message: 'CACHE_KEY_PREFIX must be at most 64 printable characters without spaces',
  })
  readonly CACHE_KEY_PREFIX: string = 'onnx-inference:';

  /** Longest wait for the cache store; past it the prediction is computed as if the cache missed. */
  @IntBetween(1, 10000)
  readonly CACHE_TIMEOUT_MS: number = 50;

  /** Redis shared by every replica; unset, each replica keeps its own in-memory cache. */
  @IsOptional()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  readonly REDIS_URL?: string;

  /** Whether readiness waits for Redis when REDIS_URL is set (predictions work without it, uncached). */
  @Transform(toBoolean)
  @IsBoolean({ message: 'READY_REQUIRES_REDIS must be true or false' })
  readonly READY_REQUIRES_REDIS: boolean = true;

  /**
   * API keys, comma-separated, each `<key>` or `<key>:<scope>[+<scope>]`. Never logged nor echoed
   * in an error message (see SECRETS below).
   */
  @IsOptional()
  @Validate(ApiKeysSyntax)
  readonly API_KEYS?: string;

  /** A file of API keys (a mounted Kubernetes Secret), re-read every API_KEYS_RELOAD_MS. */
  @IsOptional()
  @IsString()
  readonly API_KEYS_FILE?: string;

  @IntBetween(100, 3600000)
  readonly API_KEYS_RELOAD_MS: number = 5000;

  /** Paths answered without a key when keys are configured: exact paths, or prefixes ending in `*`. */
  @Validate(OpenPathsSyntax)
  readonly AUTH_OPEN_PATHS: string = PROBE_PATHS.join(',');

  /**
   * Whether the documentation (Swagger UI, ReDoc, the OpenAPI documents) answers without a key when
   * keys are configured: they describe routes, never data, and Swagger UI's Authorize button is how
   * a browser user gives a key at all.
   */
  @Transform(toBoolean)
  @IsBoolean({ message: 'DOCS_PUBLIC must be true or false' })
  readonly DOCS_PUBLIC: boolean = true;

  /**
   * The address clients reach the service at (behind a proxy or an ingress), for the OpenAPI
   * documents' `servers`; unset, they name the relative `/`, which tools resolve against the
   * address the document was fetched from.
   */
  @IsOptional()
  @Matches(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, {
    message: 'PUBLIC_URL must be an http:// or https:// URL without a query or fragment',
  })
  readonly PUBLIC_URL?: string;

  /** Requests per minute per API key (per client address without keys); unset: no limit. */
  @IsOptional()
  @IntBetween(1, 10000000)
  readonly RATE_LIMIT_RPM?: number;

  /** Longest array anywhere in a JSON body. */
  @IntBetween(1, 100000000)
  readonly MAX_ARRAY_LENGTH: number = 262144;

  /**
   * Most arrays and objects in a JSON body, and apart from them most object keys, counted in one pass over
   * the bytes before the body is parsed: what bounds the cost of parsing. 1024 instances of the bundled
   * models need about 2,050; large numeric tensors belong in the binary tensor extension.
   */
  @IntBetween(1, 100000000)
  readonly MAX_JSON_CONTAINERS: number = 16384;

  /** Longest string anywhere in a JSON body (BYTES tensor elements included), in characters. */
  @IntBetween(1, 100000000)
  readonly MAX_STRING_LENGTH: number = 65536;

  /** Whether the Open Inference Protocol's gRPC service listens beside HTTP. */
  @Transform(toBoolean)
  @IsBoolean({ message: 'GRPC_ENABLED must be true or false' })
  readonly GRPC_ENABLED: boolean = true;

  /** The gRPC port: Triton's, so that its clients' defaults reach it. */
  @IntBetween(0, 65535)
  readonly GRPC_PORT: number = 8001;

  /** Largest gRPC message received or sent, in bytes (gRPC's default: 4 MiB); larger get RESOURCE_EXHAUSTED. */
  @IntBetween(1024, 1073741824)
  readonly GRPC_MAX_MESSAGE_BYTES: number = 4194304;

  /** Largest request line and headers together, in bytes (Node's maxHeaderSize); larger ones get 431. */
  @IntBetween(1024, 1048576)
  readonly MAX_HEADER_SIZE: number = 16384;

  /** How long a client may take to send a whole request (headers and body); then 408. */
  @IntBetween(1000, 600000)
  readonly HTTP_REQUEST_TIMEOUT_MS: number = 30000;

  /** How long an idle keep-alive connection stays open: longer than a load balancer's usual 60 s idle timeout. */
  @IntBetween(1000, 600000)
  readonly KEEP_ALIVE_TIMEOUT_MS: number = 65000;

  /**
   * Most connections open at once; past it a new one is closed on arrival, logged and counted. Below the
   * process's file-descriptor limit (ulimit -n), less what models, logs and Redis hold, so that the
   * service refuses cleanly before the kernel refuses it a socket.
   */
  @IntBetween(1, 1000000)
  readonly MAX_CONNECTIONS: number = 10000;

  /**
   * Answers per second, and as many in a burst, to requests refused before their body was read (too
   * large, too costly to parse, no valid key): each closes its connection, so a client sending such
   * bodies back to back costs the service a connection per body. Past it they wait their turn
   * (RefusalPacer). 429 and 503 are never held.
   */
  @IntBetween(0, 1000000, ' (0: answered at once)')
  readonly REFUSED_BODIES_PER_SECOND: number = 100;

  /** Whether requests need an API key: when API_KEYS or API_KEYS_FILE is set, even to no keys. */
  apiKeysEnabled(): boolean {
    return this.API_KEYS !== undefined || this.API_KEYS_FILE !== undefined;
  }

  /** Paths answered without a key when keys are configured: AUTH_OPEN_PATHS, and the docs unless DOCS_PUBLIC is off. */
  openPaths(): string[] {
    const configured = this.AUTH_OPEN_PATHS.split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    return this.DOCS_PUBLIC ? [...configured, ...DOCS_PATHS] : configured;
  }

  /** The OpenAPI documents' server: PUBLIC_URL without a trailing slash, else the relative `/`. */
  publicUrl(): string {
    return this.PUBLIC_URL === undefined ? '/' : this.PUBLIC_URL.replace(/\/+$/, '') || '/';
  }

  /** Origins as a list, or true for any; false when cross-origin access is off. */
  corsOrigins(): string[] | boolean {
    const origins = this.CORS_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean);
    if (origins.length === 0 || origins.includes('none')) return false;
    return origins.includes('*') ? true : origins;
  }
}

/** Optional settings have no default, so they are not own keys of a fresh AppConfig: named here. */
const OPTIONAL_KEYS = ['API_KEYS', 'API_KEYS_FILE', 'PUBLIC_URL', 'RATE_LIMIT_RPM', 'REDIS_URL'] as const;
export const CONFIG_KEYS = [...new Set([...Object.keys(new AppConfig()), ...OPTIONAL_KEYS])] as (keyof AppConfig)[];
const KEYS = CONFIG_KEYS;

/** Settings whose values are never repeated in a message: they would end up in a log. */
const SECRETS = new Set<string>(['API_KEYS', 'REDIS_URL']);

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
      return SECRETS.has(e.property) ? message : `${message} (got ${JSON.stringify(given[e.property])})`;
    });
    throw new ConfigError(`Invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return config;
}
