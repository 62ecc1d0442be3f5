import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsObject,
  IsOptional,
  IsString,
  Min,
  ValidateNested,
} from 'class-validator';
import { UNSUPPORTED_DATATYPES, V2_DATATYPES } from '../v2.codec';

/** Tensor values: numbers, decimal strings (int64/uint64 beyond 2^53), strings (BYTES) or booleans, flat or nested. */
const DATA_SCHEMA: ApiPropertyOptions = {
  type: 'array',
  description:
    'Row-major values, flat or nested. FP*/INT*/UINT*: numbers (INT64/UINT64 beyond 2^53 as decimal strings); BOOL: true/false; BYTES: strings.',
  items: {
    oneOf: [
      { type: 'number' },
      { type: 'string' },
      { type: 'boolean' },
      { title: 'NestedValues', type: 'array', items: {} },
    ],
  },
};

const SHAPE: ApiPropertyOptions = {
  type: 'array',
  items: { type: 'integer' },
  description: 'Dimensions; -1 marks a dynamic one in metadata',
  example: [1, 4],
};

export class V2TensorMetadataDto {
  @ApiProperty({ example: 'float_input' })
  readonly name!: string;

  @ApiProperty({ enum: V2_DATATYPES, example: 'FP32' })
  readonly datatype!: string;

  @ApiProperty({ ...SHAPE, example: [-1, 4] })
  readonly shape!: number[];
}

export class V2ServerMetadataDto {
  @ApiProperty({ example: 'onnx-inference-service' })
  readonly name!: string;

  @ApiProperty({ example: '0.1.0' })
  readonly version!: string;

  @ApiProperty({
    type: [String],
    example: ['binary_tensor_data', 'classification', 'model_configuration', 'model_repository', 'statistics'],
  })
  readonly extensions!: string[];
}

export class V2LiveDto {
  @ApiProperty({ example: true })
  readonly live!: boolean;
}

export class V2ReadyDto {
  @ApiProperty({ example: true })
  readonly ready!: boolean;
}

export class V2ModelReadyDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: true })
  readonly ready!: boolean;
}

export class V2ModelMetadataDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ type: [String], example: ['1'] })
  readonly versions!: string[];

  @ApiProperty({ example: 'onnx_onnxv1' })
  readonly platform!: string;

  @ApiProperty({ type: [V2TensorMetadataDto] })
  readonly inputs!: V2TensorMetadataDto[];

  @ApiProperty({ type: [V2TensorMetadataDto] })
  readonly outputs!: V2TensorMetadataDto[];
}

export class V2InferInputDto {
  @ApiProperty({ example: 'float_input' })
  @IsString()
  @IsNotEmpty()
  readonly name!: string;

  @ApiProperty(SHAPE)
  @IsArray()
  @ArrayMaxSize(16)
  @IsInt({ each: true })
  @Min(0, { each: true })
  readonly shape!: number[];

  // Datatypes the service cannot feed pass here, so that the codec can say why (UNSUPPORTED_DATATYPES).
  @ApiProperty({ enum: V2_DATATYPES, example: 'FP32' })
  @IsIn([...V2_DATATYPES, ...Object.keys(UNSUPPORTED_DATATYPES)])
  readonly datatype!: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    properties: {
      binary_data_size: {
        type: 'integer',
        minimum: 0,
        description:
          'Binary tensor data extension: the input is not in `data` but in this many raw bytes after the JSON header ' +
          '(Content-Type application/octet-stream, Inference-Header-Content-Length giving the JSON length)',
      },
    },
  })
  @IsOptional()
  @IsObject()
  readonly parameters?: Record<string, unknown>;

  @ApiPropertyOptional({
    ...DATA_SCHEMA,
    example: [5.1, 3.5, 1.4, 0.2],
    description:
      `${DATA_SCHEMA.description} FP* values may be the strings "NaN", "Infinity" and "-Infinity". ` +
      'Absent when parameters.binary_data_size is given.',
  })
  @IsOptional()
  @IsArray({ message: 'data must be an array' })
  readonly data?: unknown[];
}

/** Output parameters the service reads; others are accepted and ignored, as the protocol allows. */
export class V2OutputParametersDto {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    description: 'Classification extension: the top N classes as "<score>:<index>[:<label>]"',
  })
  readonly classification?: number;

  @ApiPropertyOptional({
    description:
      "Binary tensor data extension: true answers this output as raw bytes after the answer's JSON (default: the request's binary_data_output)",
  })
  readonly binary_data?: boolean;
}

export class V2RequestedOutputDto {
  @ApiProperty({ example: 'output_probability' })
  @IsString()
  @IsNotEmpty()
  readonly name!: string;

  // A plain object here, not a nested DTO: unknown parameters must pass (the controller reads the known ones).
  @ApiPropertyOptional({ type: V2OutputParametersDto })
  @IsOptional()
  @IsObject()
  readonly parameters?: V2OutputParametersDto & Record<string, unknown>;
}

export class V2InferRequestDto {
  @ApiPropertyOptional({ example: '42' })
  @IsOptional()
  @IsString()
  readonly id?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    properties: {
      binary_data_output: {
        type: 'boolean',
        description: 'Binary tensor data extension: every output in binary unless its own binary_data says otherwise',
      },
    },
  })
  @IsOptional()
  @IsObject()
  readonly parameters?: Record<string, unknown>;

  @ApiProperty({ type: [V2InferInputDto] })
  @IsArray({ message: 'inputs must be an array' })
  @ArrayNotEmpty()
  @ValidateNested({ each: true })
  @Type(() => V2InferInputDto)
  readonly inputs!: V2InferInputDto[];

  @ApiPropertyOptional({ type: [V2RequestedOutputDto], description: 'Outputs to return (all when absent)' })
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => V2RequestedOutputDto)
  readonly outputs?: V2RequestedOutputDto[];
}

export class V2OutputTensorDto {
  @ApiProperty({ example: 'output_label' })
  readonly name!: string;

  @ApiProperty({ ...SHAPE, example: [1] })
  readonly shape!: number[];

  @ApiProperty({ enum: V2_DATATYPES, example: 'INT64' })
  readonly datatype!: string;

  @ApiPropertyOptional({
    ...DATA_SCHEMA,
    example: [0],
    description:
      `${DATA_SCHEMA.description} FP* values the model computed as NaN or an infinity are the strings ` +
      '"NaN", "Infinity" and "-Infinity" (JSON has no such numbers; in binary they are their IEEE bits). ' +
      'Absent for an output answered in binary.',
  })
  readonly data?: (number | string | boolean)[];

  @ApiPropertyOptional({
    type: 'object',
    properties: {
      binary_data_size: {
        type: 'integer',
        description: "The output's raw bytes, after the JSON and the binary outputs before it",
      },
    },
  })
  readonly parameters?: { binary_data_size: number };
}

export class V2InferResponseDto {
  @ApiProperty({ example: 'iris' })
  readonly model_name!: string;

  @ApiProperty({ example: '1' })
  readonly model_version!: string;

  @ApiPropertyOptional({ example: '42' })
  readonly id?: string;

  @ApiProperty({ type: [V2OutputTensorDto] })
  readonly outputs!: V2OutputTensorDto[];
}

export class V2ErrorDto {
  @ApiProperty({ example: "Model 'rose' not found; available models: digits, iris" })
  readonly error!: string;
}

/** Where the version's runs go, as Triton's instance_group says it: the CPU, one instance per inference worker. */
export class V2InstanceGroupDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: 'KIND_CPU' })
  readonly kind!: string;

  @ApiProperty({ example: 2, description: 'Inference workers running the version' })
  readonly count!: number;
}

export class V2ConfigTensorDto {
  @ApiProperty({ example: 'float_input' })
  readonly name!: string;

  @ApiProperty({ example: 'TYPE_FP32', description: "Triton's model-config data type (BYTES is TYPE_STRING)" })
  readonly data_type!: string;

  @ApiProperty({ type: [Number], example: [4], description: 'Without the batch dimension when max_batch_size > 0' })
  readonly dims!: number[];
}

/** Triton's model configuration (model_config.proto as JSON), the fields this service can give. */
export class V2ModelConfigDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: 'onnxruntime_onnx' })
  readonly platform!: string;

  @ApiProperty({ example: 'onnxruntime' })
  readonly backend!: string;

  @ApiProperty({ example: { specific: { versions: [1] } } })
  readonly version_policy!: { specific: { versions: number[] } };

  @ApiProperty({ example: 64, description: 'Rows per run; 0 for a model without a batch dimension' })
  readonly max_batch_size!: number;

  @ApiProperty({ type: [V2ConfigTensorDto] })
  readonly input!: V2ConfigTensorDto[];

  @ApiProperty({ type: [V2ConfigTensorDto] })
  readonly output!: V2ConfigTensorDto[];

  @ApiPropertyOptional({ example: { max_queue_delay_microseconds: 1000 } })
  readonly dynamic_batching?: { max_queue_delay_microseconds: number };

  @ApiProperty({ type: [V2InstanceGroupDto] })
  readonly instance_group!: V2InstanceGroupDto[];

  @ApiProperty({ example: 'model.onnx' })
  readonly default_model_filename!: string;

  @ApiPropertyOptional({ example: { labels: { string_value: 'setosa,versicolor,virginica' } } })
  readonly parameters?: Record<string, { string_value: string }>;
}

export class V2DurationDto {
  @ApiProperty({ example: 12 })
  readonly count!: number;

  @ApiProperty({ example: 3400000, description: 'Summed duration in nanoseconds' })
  readonly ns!: number;
}

export class V2InferenceStatsDto {
  @ApiProperty({ type: V2DurationDto, description: 'Requests answered, and their time in the service' })
  readonly success!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Requests failed, and their time in the service' })
  readonly fail!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Requests queued in the batcher, and their wait' })
  readonly queue!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Requests whose inputs were prepared (within the run: ns 0)' })
  readonly compute_input!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: "Requests run, and the run time of each request's batch" })
  readonly compute_infer!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Requests whose outputs were read (within the run: ns 0)' })
  readonly compute_output!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Rows answered by the prediction cache (not timed: ns 0)' })
  readonly cache_hit!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Rows the prediction cache did not hold (not timed: ns 0)' })
  readonly cache_miss!: V2DurationDto;
}

export class V2BatchStatsDto {
  @ApiProperty({ example: 4, description: 'Rows in the run' })
  readonly batch_size!: number;

  @ApiProperty({ type: V2DurationDto })
  readonly compute_input!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto, description: 'Runs of this size, and their time' })
  readonly compute_infer!: V2DurationDto;

  @ApiProperty({ type: V2DurationDto })
  readonly compute_output!: V2DurationDto;
}

export class V2VersionStatisticsDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiProperty({ example: '1' })
  readonly version!: string;

  @ApiProperty({ example: 1767225600000, description: 'Epoch ms of the last answered request; 0 before any' })
  readonly last_inference!: number;

  @ApiProperty({ example: 40, description: 'Rows run by the model (inference_count_total in /metrics)' })
  readonly inference_count!: number;

  @ApiProperty({ example: 12, description: 'Runs (inference_exec_count_total in /metrics)' })
  readonly execution_count!: number;

  @ApiProperty({ type: V2InferenceStatsDto })
  readonly inference_stats!: V2InferenceStatsDto;

  @ApiProperty({ type: [V2BatchStatsDto] })
  readonly batch_stats!: V2BatchStatsDto[];
}

export class V2ModelStatisticsDto {
  @ApiProperty({ type: [V2VersionStatisticsDto] })
  readonly model_stats!: V2VersionStatisticsDto[];
}
