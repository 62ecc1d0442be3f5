import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

const STATES = ['LOADING', 'READY', 'FAILED'];
const ELEMENT_TYPES = [
  'float16',
  'float32',
  'float64',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'string',
];

export class TensorSpecDto {
  @ApiProperty({ example: 'float_input' })
  readonly name!: string;

  @ApiProperty({ enum: ELEMENT_TYPES, example: 'float32' })
  readonly type!: string;

  @ApiProperty({ type: [Number], example: [-1, 4], description: '-1 marks a dynamic dimension' })
  readonly shape!: readonly number[];
}

export class VersionStatusDto {
  @ApiProperty({ type: 'integer', example: 1 })
  readonly version!: number;

  @ApiProperty({ enum: STATES, example: 'READY' })
  readonly state!: string;

  @ApiPropertyOptional({ example: 'self-test sample 0: output_label expected 0, got 2' })
  readonly reason?: string;
}

export class PlacementDto {
  @ApiProperty({
    enum: ['inline', 'worker'],
    example: 'inline',
    description: 'inline: runs on the event loop (no thread hop); worker: runs in the inference worker threads',
  })
  readonly placement!: string;

  @ApiProperty({ enum: ['auto', 'inline', 'worker'], example: 'auto', description: 'config.json `placement`' })
  readonly setting!: string;

  @ApiProperty({ example: 'a run costs less than INLINE_MAX_RUN_US (100 µs)' })
  readonly reason!: string;

  @ApiProperty({
    type: 'integer',
    example: 2,
    description: 'Most inference workers the version holds at once (config.json `instances`, else the whole pool)',
  })
  readonly instances!: number;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    example: 64,
    description: 'Most rows of one inline run (larger requests run on a worker); null when unbounded or not inline',
  })
  readonly inline_max_rows!: number | null;

  @ApiProperty({
    type: 'number',
    nullable: true,
    example: 12.5,
    description: "A run's fixed cost in µs, measured at warm-up on an inference thread; null when not measured",
  })
  readonly run_cost_us!: number | null;

  @ApiProperty({
    type: 'number',
    nullable: true,
    example: 0.4,
    description: 'The cost of each row of a run in µs, measured at warm-up; null when not measured',
  })
  readonly row_cost_us!: number | null;
}

export class ModelSummaryDto {
  @ApiProperty({ example: 'iris' })
  readonly name!: string;

  @ApiPropertyOptional({ example: 'Iris species classifier' })
  readonly description?: string;

  @ApiProperty({ type: 'integer', nullable: true, example: 1 })
  readonly default_version!: number | null;

  @ApiProperty({
    enum: STATES,
    example: 'READY',
    description: 'LOADING while any version loads, FAILED when any version failed, READY otherwise',
  })
  readonly state!: string;

  @ApiPropertyOptional({ description: 'Why the model is FAILED' })
  readonly reason?: string;

  @ApiProperty({ type: [VersionStatusDto] })
  readonly versions!: VersionStatusDto[];

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'integer' },
    example: { stable: 1, canary: 2 },
    description: 'config.json version_labels: the version each label names (POST .../labels/{label}/predict)',
  })
  readonly version_labels?: Record<string, number>;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: { type: 'integer' },
    example: { '1': 90, '2': 10 },
    description: 'config.json traffic: how unversioned requests are split between versions, by weight',
  })
  readonly traffic?: Record<string, number>;
}

export class ModelListDto {
  @ApiProperty({ type: [ModelSummaryDto] })
  readonly models!: ModelSummaryDto[];
}

export class ModelDescriptionDto extends ModelSummaryDto {
  @ApiProperty({ type: 'integer', example: 1, description: 'The version described' })
  readonly version!: number;

  @ApiProperty({ enum: STATES, example: 'READY', description: 'State of the version described' })
  readonly version_state!: string;

  @ApiProperty({ example: 'onnxruntime' })
  readonly platform!: string;

  @ApiProperty({ type: [TensorSpecDto] })
  readonly inputs!: readonly TensorSpecDto[];

  @ApiProperty({ type: [TensorSpecDto] })
  readonly outputs!: readonly TensorSpecDto[];

  @ApiProperty({
    description: 'Whether instances are stacked into one run (every input and output has a dynamic first dimension)',
  })
  readonly batchable!: boolean;

  @ApiProperty({ type: [String], nullable: true, example: ['setosa', 'versicolor', 'virginica'] })
  readonly labels!: readonly string[] | null;

  @ApiProperty({
    type: [String],
    nullable: true,
    example: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'],
  })
  readonly features!: readonly string[] | null;

  @ApiProperty({ type: 'string', nullable: true, example: 'output_label' })
  readonly label_output!: string | null;

  @ApiProperty({ type: 'string', nullable: true, example: 'output_probability' })
  readonly probability_output!: string | null;

  @ApiProperty({
    type: PlacementDto,
    nullable: true,
    description: 'Where the version runs and what a run cost when it warmed up; null until it is loaded',
  })
  readonly placement!: PlacementDto | null;
}

export class ServiceInfoDto {
  @ApiProperty({ example: 'onnx-inference-service' })
  readonly name!: string;

  @ApiProperty({ example: '0.1.0' })
  readonly version!: string;

  @ApiProperty({ type: [ModelSummaryDto] })
  readonly models!: ModelSummaryDto[];

  @ApiProperty({ example: '/docs' })
  readonly docs!: string;

  @ApiProperty({ example: '/docs-json' })
  readonly openapi!: string;
}
